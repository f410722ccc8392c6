"""``harness bench``: the benchmark table, a calibrated baseline, a gated timed run, the history and its plot."""
from __future__ import annotations

import argparse
import json

from harness.surfaces.bench.gate import DEFAULT_BASELINE
from harness.surfaces.cli.common import command


def add_parser(sub) -> None:
    """Declare ``harness bench`` and its options."""
    p = command(sub, "bench", "throughput benchmarks: calibrate a baseline, run them gated, show the table or "
                "the history", """
harness bench --calibrate tests/test_speed.py      3 runs per thread count of unchanged code -> the baseline
harness bench --run tests/test_speed.py            time once, fail on a significant slowdown, print the table
harness bench --run -k tiny --run-slow             this repository's tests/benchmarks, pytest arguments after --run
harness bench --history --plot speed.png           every saved run: the series, their steps, a plot""",
                 description="Without --run/--calibrate/--history: print the table of a pytest-benchmark JSON "
                 "(PATH, or the newest under --storage). --calibrate times the unchanged suite several times "
                 "(each a pytest process, at torch's threads and at one fewer) and writes the speed baseline: per "
                 "benchmark its figure in reference units and its between-run spread. --run times the suite once; a "
                 "benchmark fails when its slowdown's 99%% lower bound exceeds the minimum effect (10%% unless the "
                 "baseline says otherwise).")
    p.add_argument("path", nargs="?", help="a pytest-benchmark JSON file or a directory (default: --storage)")
    p.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage directory")
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help=f"the speed baseline file (default: {DEFAULT_BASELINE}"
                   "; pytest finds it there by itself, or set the ini key harness_speed_baseline)")
    p.add_argument("--runs", type=int, default=3, help="calibration runs per thread count (default: 3; more runs, "
                   "a truer spread and a longer calibration)")
    p.add_argument("--min-effect", type=float, default=0.10, help="calibration: the smallest slowdown that fails, "
                   "as a fraction (default: 0.10)")
    p.add_argument("--history", action="store_true", help="every saved run of each benchmark, with the steps "
                   "(change points) found in it")
    p.add_argument("--plot", metavar="PNG", help="draw the run and the history of the saved runs (each benchmark's "
                   "figure in reference units, relative to the baseline, with its gate and steps) into PNG")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--run", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                      help="run the timed suite gated; everything after --run goes to pytest")
    mode.add_argument("--calibrate", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                      help="calibrate the speed baseline; everything after --calibrate goes to pytest")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness bench``: the benchmark table, a calibrated baseline, a gated timed run, the history and its plot."""
    from harness.surfaces import bench
    from harness.surfaces.bench import runner

    if args.calibrate is not None:
        from harness.surfaces.bench.gate import Rule

        if args.runs < 2:
            raise SystemExit("harness bench: --runs must be at least 2 (one run has no spread)")
        return runner.calibrate(args.calibrate, args.runs, args.baseline, args.storage,
                                Rule(min_effect=args.min_effect))
    if args.run is not None:
        return runner.run(args.run, args.storage, args.baseline)
    if args.history:
        from harness.surfaces.bench import history

        from harness.errors import InputError
        from harness.surfaces.bench.gate import SpeedBaseline

        try:
            baseline = SpeedBaseline.load(args.baseline)
        except InputError:
            baseline = None
        print(history.format_history(history.series(history.saved_runs(args.storage)), baseline))
    else:
        path = bench.newest_json(args.path or args.storage)
        print(bench.summarize(json.loads(path.read_text()), str(path)))
    if args.plot:
        from harness.surfaces.bench.plot import plot_storage

        plot_storage(args.plot, args.path, args.storage, args.baseline)
        print(f"\nwrote {args.plot}")
    return 0
