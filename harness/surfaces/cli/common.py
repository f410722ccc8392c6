"""What the commands share: option helpers, help texts, the help formatter."""
from __future__ import annotations

import argparse

from harness.vocabulary import COMPONENT_NAMES, COMPONENTS, DEFAULTS, PRECISIONS, SCOPES

#: ``--scope``'s help: what each of the calibration's scopes measures, and how long it takes
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
    """``--scope``: what a calibration measures (:data:`harness.vocabulary.SCOPES`)."""
    p.add_argument("--scope", default=default, choices=SCOPES, help=f"{SCOPE_HELP} (default: {default_help})")


def add_components(p: argparse.ArgumentParser, restrict: bool = False, components=COMPONENTS) -> None:
    """``--frontend``, ``--vae``, ``--vocoder`` (or the named ``components``): the component each stage runs
    (default: the correct one), or with ``restrict`` a repeatable restriction to the named ones (default: every
    registered one)."""
    for component in components:
        what = COMPONENT_NAMES[component]
        if restrict:
            p.add_argument(f"--{component}", action="append", help=f"restrict to these {what}s (repeatable; "
                           "default: all)")
        else:
            p.add_argument(f"--{component}", default=DEFAULTS[component],
                           help=f"the {what} to run (see 'harness list')")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tiny", help=MODEL_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--dtype", default="fp32", choices=PRECISIONS,
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


class Inputs:
    """The files a command reads, from the paths given on its command line, and every path given that yields none.

    A directory stands for the files in it (recursively, sorted) whose suffix is one of ``suffixes``. A path that
    does not exist, an empty directory and a directory without such a file are *skipped*, each with its reason,
    before anything is read, so a CI job with a wrong data path fails with that path named rather than passing on
    nothing.

    Parameters
    ----------
    paths : sequence of str
        Files and directories as given.
    suffixes : sequence of str
        The suffixes (lower case, with the dot) a directory's files must have to be taken.

    Attributes
    ----------
    files : list of str
        The files to read, in the order given (a directory's in sorted order).
    skipped : list of str
        One line per path given that yields no file: ``"<path>: <reason>"``.
    """

    def __init__(self, paths, suffixes):
        import os
        from pathlib import Path

        self.files, self.skipped, self._members = [], [], {}
        for given in map(str, paths):
            p = Path(given)
            if p.is_dir():
                inside = sorted(f for f in p.rglob("*") if f.is_file())
                found = [str(f) for f in inside if f.suffix.lower() in suffixes]
                if found:
                    self._members[given] = found
                    self.files += found
                elif not inside:
                    self.skipped.append(f"{given}: empty directory (no file in it)")
                else:
                    self.skipped.append(f"{given}: directory without a usable file ({len(inside)} file(s), none "
                                        f"ending in {', '.join(suffixes)})")
            elif not p.exists():
                self.skipped.append(f"{given}: file not found (no such file or directory; working directory is "
                                    f"{os.getcwd()})")
            else:  # a file of any suffix is read as given: its reader says what is wrong with it
                self.files.append(given)

    def unused_directories(self, unusable) -> list:
        """One line per directory given all of whose files are in ``unusable`` (their own errors name each file).

        Parameters
        ----------
        unusable : iterable of str
            The files that could not be used, or the error lines that start with their path.

        Returns
        -------
        list of str
            ``"<dir>: none of its N file(s) could be used (each named above)"`` per such directory.
        """
        unusable = list(unusable)

        def bad(f):
            return any(u == f or u.startswith(f + ":") for u in unusable)

        return [f"{d}: none of its {len(fs)} file(s) could be used (each named above)"
                for d, fs in self._members.items() if all(bad(f) for f in fs)]


def report_nothing_evaluated(lines, what: str) -> int:
    """Print each unusable path's line on stderr and that nothing was ``what``; the exit status 2 to return.

    Parameters
    ----------
    lines : sequence of str
        ``"<path>: <reason>"`` lines, one per path or file that could not be used.
    what : str
        What the command would have done (``"evaluated"``, ``"written"``).

    Returns
    -------
    int
        2: a job whose inputs are all unusable must not pass.
    """
    import sys

    for line in lines:
        print(f"harness: error: {line}", file=sys.stderr)
    print(f"harness: error: nothing {what}: no usable file among the paths given", file=sys.stderr)
    return 2


def use_threads(command_name: str, device: str, verbose: bool) -> None:
    """Before a command's model work on a CPU: torch threads = the cores other work leaves free
    (:func:`harness.machine.use_free_cores`), said on stderr with ``-v``. Figures measured on two threads while a
    CPU-bound process holds one of two cores are slower and noisier than on one."""
    import sys

    if str(device) not in ("cpu", "auto"):
        return
    from harness import machine

    line = machine.use_free_cores()
    if verbose:
        print(f"{command_name}: {line}", file=sys.stderr)
