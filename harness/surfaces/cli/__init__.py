"""``harness`` command line: one thin module per command, each declaring its options (``add_parser``) and
running it (``run``) on the library's functions.

Every user-facing failure (bad audio, unknown name, weights not available) prints one line
``harness: error: <file>: <reason> (<hint>)`` and exits with status 2. Nothing here imports torch until a
command runs (``harness --help`` stays fast).
"""
from __future__ import annotations

import argparse
import sys

from harness import machine
from harness.surfaces.cli import (
    bench, build_real_size, diagnose, evaluate, golden, listing, matrix, mel, reconstruct, thresholds, train,
)
from harness.surfaces.cli.common import HelpFormatter

#: the commands, in the order a user needs them: your own audio; goldens and thresholds; speed and the bundled model
COMMANDS = [matrix, diagnose, mel, reconstruct, golden, thresholds, listing, build_real_size, bench, evaluate, train]


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` command line: commands in the order a user needs them."""
    parser = argparse.ArgumentParser(
        prog="harness", formatter_class=HelpFormatter,
        description="AudioLDM2 reconstruction-chain regression harness: which stage (front-end, VAE, vocoder) "
                    "loses quality, on your files and in CI.",
        epilog="examples:\n"
               "  harness matrix my.wav                      every combination on your file: a summary, exit 1 on "
               "a failure\n"
               "  harness diagnose my.wav --out report/      which stage loses quality, with report/report.html\n"
               "  harness mel my.wav --out mels/             the right AudioLDM2 log-mel as .npy\n"
               "  harness golden --model cvssp/audioldm2     goldens + thresholds for pytest (golden/<model-slug>)\n"
               "  python -m pytest                           the quality tests (the pytest plugin)\n"
               "run 'harness COMMAND -h' for a command's options and examples")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """The ``harness`` command: parse ``argv``, run the command; a :class:`~harness.errors.HarnessError` is one
    line on stderr and exit status 2."""
    from harness.errors import HarnessError
    from harness.model.entry_points import load_entry_points

    load_entry_points()
    args = build_parser().parse_args(argv)
    # this process is the harness's own: reusing freed memory spares the kernel zeroing every large
    # activation afresh (8-10 % of a real-size VAE or vocoder call; the process keeps its peak memory)
    machine.keep_freed_memory()
    try:
        return args.fn(args)
    except (HarnessError, ValueError, FileNotFoundError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
