"""What the commands share: option helpers, help texts, the help formatter."""
from __future__ import annotations

import argparse

#: harness.judging.calibration.SCOPES, spelled out so that `harness --help` imports no torch (a test keeps them equal)
SCOPES = ("all", "chain", "absolute", "reference", "golden")
SCOPE_HELP = ("what calibration measures: golden = every variant's golden stages only (seconds); reference = the "
              "correct variants' golden stages and the correct combinations' limits on the golden set, which judge "
              "your own variants (the known mistakes then skip; a few minutes at real size on 2 cores); absolute = "
              "also the known mistakes, asserted detected, what the whole matrix judges (minutes; about 26 min at "
              "real size on a slow 2-core machine); chain = also the whole chains of the known mistakes heard "
              "through HiFi-GAN, asserted where clearly separated (about a quarter more; ~70 s a chain at real "
              "size); all = also the relative margins that judge audio without a stored baseline, `harness matrix` "
              "on your files (the longest part: 69 more clips)")


def add_max_seconds(p: argparse.ArgumentParser) -> None:
    from harness.signal.audio import MAX_SECONDS

    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="refuse longer files from their header, "
                   f"unread (memory grows with the length; default: {MAX_SECONDS:g} s)")


def add_scope(p: argparse.ArgumentParser, default, default_help: str) -> None:
    """``--scope``: what a calibration measures (:data:`SCOPES`)."""
    p.add_argument("--scope", default=default, choices=SCOPES, help=f"{SCOPE_HELP} (default: {default_help})")


#: harness.judging.stages.COMPONENTS and DEFAULTS, spelled out so that `harness --help` imports no torch (a test
#: keeps them equal): the chain's components, each with its correct default
COMPONENTS = ("frontend", "vae", "vocoder")
DEFAULTS = {"frontend": "audioldm2", "vae": "scaled", "vocoder": "hifigan"}
_COMPONENT_NAMES = {"frontend": "front-end", "vae": "VAE variant", "vocoder": "vocoder variant"}


def add_components(p: argparse.ArgumentParser, restrict: bool = False, components=COMPONENTS) -> None:
    """``--frontend``, ``--vae``, ``--vocoder`` (or the named ``components``): the component each stage runs
    (default: the correct one), or with ``restrict`` a repeatable restriction to the named ones (default: every
    registered one)."""
    for component in components:
        what = _COMPONENT_NAMES[component]
        if restrict:
            p.add_argument(f"--{component}", action="append", help=f"restrict to these {what}s (repeatable; "
                           "default: all)")
        else:
            p.add_argument(f"--{component}", default=DEFAULTS[component],
                           help=f"the {what} to run (see 'harness list')")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tiny", help=MODEL_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="model dtype; the VAE stays fp32 under fp16 (force_upcast)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; every option's default shown unless it says its own or has none."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def command(sub, name: str, help: str, examples: str, description: str = "") -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter,
                          epilog="examples:\n" + "\n".join("  " + line for line in examples.strip().splitlines()))


MODEL_HELP = "bundled name (tiny), local diffusers directory or hub id (cvssp/audioldm2)"
GOLDEN_DIR_HELP = ("golden directory with thresholds.toml (default: golden/<model-slug> if it exists, else the "
                   "copy shipped with a bundled model)")
CHANNEL_HELP = "how a multi-channel file becomes mono: its first channel, or the mean of all"
