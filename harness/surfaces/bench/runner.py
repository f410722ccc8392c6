"""``harness bench --calibrate`` and ``harness bench --run``: the timed suite as pytest processes.

Calibration runs the unchanged suite ``runs`` times at the threads torch starts with and as many times at one
thread fewer (what a run gets beside one busy process), interleaved, each a pytest process of its own (so the
spread includes what differs between processes), saves every run with pytest-benchmark's own storage, and fits
the baseline (:func:`harness.surfaces.bench.gate.fit`). A gated run is one timed pytest process with
``--harness-speed-baseline``: each benchmark judges itself and fails as a test (:class:`harness.surfaces.bench.timing.Bench`).
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

from harness.surfaces.bench import DEFAULT_STORAGE, newest_json, summarize
from harness.surfaces.bench.gate import DEFAULT_BASELINE, Rule, fit

#: the suite timed when no test path is given and it exists (this repository's benchmarks); elsewhere pytest's own
#: ``testpaths`` (``--benchmark-only`` skips every test that is not a benchmark)
DEFAULT_TESTS = "tests/benchmarks"


def pytest_command(pytest_args: Sequence[str] = (), storage: str = DEFAULT_STORAGE, baseline: str = "off",
                   threads: Optional[int] = None, json_out: Optional[Path] = None) -> List[str]:
    """The timed, saved pytest command: ``baseline`` is the speed baseline to gate against, or ``off``;
    ``threads`` fixes torch's threads (calibration), ``json_out`` also writes the run's JSON there."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-enable", "--benchmark-only",
           "--benchmark-autosave", f"--benchmark-storage=file://{Path(storage).resolve()}",
           "--benchmark-columns=min,median,stddev,rounds", f"--harness-speed-baseline={baseline}"]
    if threads:
        cmd.append(f"--harness-speed-threads={threads}")
    if json_out is not None:
        cmd.append(f"--benchmark-json={json_out}")
    if Path(DEFAULT_TESTS).is_dir() and not any(Path(a.split("::")[0]).exists() for a in pytest_args
                                                if not a.startswith("-")):
        cmd.append(DEFAULT_TESTS)
    return cmd + list(pytest_args)


def thread_counts(started: int) -> List[int]:
    """The thread counts a baseline is calibrated at: torch's, and one fewer (none below 1)."""
    return [started] + ([started - 1] if started > 1 else [])


def calibrate(pytest_args: Sequence[str] = (), runs: int = 3, baseline: str = DEFAULT_BASELINE,
              storage: str = DEFAULT_STORAGE, rule: Rule = Rule()) -> int:
    """Time the unchanged suite ``runs`` times per thread count, then write the speed baseline ``baseline``.

    Returns the exit status: 0 written; 1 a run failed (nothing written: a failing suite calibrates nothing).
    """
    import torch

    counts = thread_counts(torch.get_num_threads())
    plan = [t for _ in range(runs) for t in counts]
    docs, started = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for i, threads in enumerate(plan, 1):
            out = Path(tmp) / f"run-{i}.json"
            cmd = pytest_command([*pytest_args, "-q"], storage, "off", threads, out)
            print(f"calibration run {i}/{len(plan)} on {threads} thread(s): $ {shlex.join(cmd)}", flush=True)
            t0 = time.monotonic()
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if done.returncode != 0 or not out.exists():
                print(done.stdout[-6000:], file=sys.stderr)
                print(f"calibration run {i} failed (pytest exit {done.returncode}, its output above); no baseline "
                      "written: a failing suite calibrates nothing.", file=sys.stderr)
                return 1
            docs.append(json.loads(out.read_text()))
            left = (len(plan) - i) * (time.monotonic() - started) / i
            print(f"  {time.monotonic() - t0:.0f} s; about {left / 60:.1f} min left", flush=True)
    base = fit(docs, rule, {"command": shlex.join(["harness", "bench", "--calibrate", *pytest_args]),
                            "commit": (docs[-1].get("commit_info") or {}).get("id"),
                            "threads": counts, "runs_per_thread_count": runs})
    path = base.save(baseline)
    print(f"wrote {path}: {len(base.entries)} benchmarks, between-run spread pooled {base.pooled_between():.3f} "
          f"(log units), rule: fail when the {rule.confidence:.0%} lower bound of a slowdown exceeds "
          f"+{rule.min_effect:.0%}")
    return 0


def run(pytest_args: Sequence[str] = (), storage: str = DEFAULT_STORAGE, baseline: str = DEFAULT_BASELINE) -> int:
    """Run the timed suite once, saved, gated against ``baseline`` when it exists; print the table.

    Returns pytest's exit status (1 when a benchmark is significantly slower than its baseline).
    """
    gate = baseline if Path(baseline).exists() else "off"
    print(f"gating against {baseline}" if gate != "off" else
          f"no speed baseline at {baseline}: this run is saved, nothing is gated; calibrate one with "
          f"`harness bench --calibrate {shlex.join(pytest_args)}`", flush=True)
    cmd = pytest_command(pytest_args, storage, gate)
    print("$ " + shlex.join(cmd), flush=True)
    code = subprocess.call(cmd)
    try:
        newest = newest_json(storage)
    except FileNotFoundError:
        return code
    print()
    print(summarize(json.loads(newest.read_text()), str(newest)))
    return code
