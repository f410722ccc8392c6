"""``harness bench``: the benchmark table, a gated timed run, or the history plot."""
from __future__ import annotations

import argparse
import json

from harness.surfaces.cli.common import command


def add_parser(sub) -> None:
    """Declare ``harness bench`` and its options."""
    p = command(sub, "bench", "print the newest throughput benchmark run as a table (or --run the suite)", """
harness bench --run                        time tests/benchmarks, fail on a regression, print the table
harness bench --run -k tiny --run-slow     pytest arguments after --run
harness bench .benchmarks --plot bench.png   the newest saved run and its history as a plot""",
                 description="Without --run: print the table of a pytest-benchmark JSON (PATH, or the newest "
                 "under --storage). With --run: time tests/benchmarks, save the run, fail on a regression against "
                 "the last saved run of this machine (none on a first run), print the table.")
    p.add_argument("path", nargs="?", help="a pytest-benchmark JSON file or a directory (default: --storage)")
    p.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage directory")
    p.add_argument("--plot", metavar="PNG", help="also draw the run and the history of the saved runs of its host "
                   "(throughput relative to each benchmark's first run, with the regression gate) into PNG")
    p.add_argument("--run", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                   help="run the timed suite; everything after --run goes to pytest (e.g. --run -k tiny --run-slow)")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness bench``: the benchmark table, a gated timed run, or the history plot."""
    from harness.surfaces import bench

    if args.run is not None:
        return bench.run(args.run, storage=args.storage)
    path = bench.newest_json(args.path or args.storage)
    print(bench.summarize(json.loads(path.read_text()), str(path)))
    if args.plot:
        from harness.surfaces.bench.plot import plot_storage

        plot_storage(args.plot, str(path), args.storage)
        print(f"\nwrote {args.plot}")
    return 0
