"""Throughput benchmark plots: the newest run at a glance, and every benchmark's history against its gate.

``harness bench --plot OUT.png`` draws two panels:

* below, the run (a JSON, or the newest under ``--storage``): one bar per benchmark, seconds of audio
  per second on a log axis, labelled with its configuration and, where FLOPs are counted, the
  fraction of the matmul peak;
* above, the history: each benchmark's time per round in reference units in every saved run
  (:mod:`harness.surfaces.bench.history`), relative to its baseline's centre (or its first saved run without a
  baseline), the gate's minimum effect as a line, the calibrated noise band shaded, and each step found
  (change point) marked, the series without a step in grey: a regression is a line that steps up through the gate.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Optional

from harness.surfaces import bench
from harness.surfaces.bench import history as bench_history
from harness.surfaces.bench.gate import DEFAULT_BASELINE, SpeedBaseline
from harness.errors import InputError


def _label(r: Dict) -> str:
    parts = [r["stage"], r["impl"] or ""]
    if r["model_size"] not in (None, "-"):
        parts.append(str(r["model_size"]))
    if r["batch"] is not None:
        parts.append(f"b{r['batch']}")
    if r["clip_seconds"] is not None:
        parts.append(f"{r['clip_seconds']:g}s")
    return " ".join(p for p in parts if p)


def plot(data: dict, hist: dict, path: str, baseline: Optional[SpeedBaseline] = None):
    """Write the two-panel PNG for the run ``data`` and the history ``hist``
    (:func:`harness.surfaces.bench.history.series`); returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    recs = sorted((r for r in bench.rows(data) if r["audio_seconds_per_second"]),
                  key=lambda r: (r["group"], r["stage"], str(r["model_size"]), r["batch"] or 0, r["impl"] or ""))
    if not recs:
        raise ValueError("no benchmark with a throughput in this run (was it made with --benchmark-disable?)")
    groups = sorted({r["group"] for r in recs})
    colors = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    fig, (right, left) = plt.subplots(2, 1, figsize=(14, 6.5 + 0.22 * len(recs)),
                                      gridspec_kw={"height_ratios": [5, 1.5 + 0.22 * len(recs)]})

    y = list(range(len(recs)))
    left.barh(y, [r["audio_seconds_per_second"] for r in recs], color=[colors[r["group"]] for r in recs])
    left.set_xscale("log")
    left.set_yticks(y, [_label(r) for r in recs], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("seconds of audio per second (log)")
    for yi, r in zip(y, recs):
        if r["peak_fraction"]:
            left.text(r["audio_seconds_per_second"], yi, f" {100 * r['peak_fraction']:.0f}% peak", va="center",
                      fontsize=7)
    left.set_title(f"run of {data.get('datetime', '?')[:19]}")
    if any(groups):
        left.legend(handles=[Patch(color=colors[g], label=g) for g in groups if g], fontsize=7, loc="lower right")

    min_effect = baseline.rule.min_effect if baseline else 0.10
    drawn, stepped = 0, 0
    for name, by_threads in sorted(hist.items()):
        for threads, points in sorted(by_threads.items()):
            if len(points) < 2:
                continue
            entry = (baseline.entries.get(name) or {}).get(threads) if baseline else None
            center = math.exp(entry.center) if entry else points[0].figure
            xs, ys = [p.run for p in points], [p.figure / center for p in points]
            found = bench_history.steps(points, min_effect, bench_history.spread(baseline, name, threads))
            drawn += 1
            if not found:  # quiet series in grey: the eye goes to the ones that stepped
                right.plot(xs, ys, marker=".", ms=3, lw=0.6, color="grey", alpha=0.35)
                continue
            color = plt.get_cmap("tab10")(stepped % 10)
            stepped += 1
            label = f"{name.split('::')[-1]} ({threads} thread{'s' if threads > 1 else ''})"
            right.plot(xs, ys, marker="o", ms=4, lw=1.4, color=color, label=label)
            if entry:
                band = math.exp(2 * bench_history.spread(baseline, name, threads))
                right.fill_between(xs, 1 / band, band, color=color, alpha=0.08)
            for step in found:
                right.axvline(step.at - 0.5, color=color, lw=0.8, ls=":")
                right.annotate(f"x{step.ratio:.2f}", (step.at, ys[xs.index(step.at)]), fontsize=8, color=color,
                               xytext=(4, 4), textcoords="offset points")
    right.axhline(1, color="grey", lw=0.8)
    right.axhline(1 + min_effect, color="red", lw=1, ls="--", label=f"gate: +{100 * min_effect:.0f} % time, beyond noise")
    right.set_ylabel("time per round in reference units, relative to the baseline")
    right.set_xlabel("saved run (oldest first)")
    right.set_title(f"history: {drawn} series in >= 2 saved runs, {stepped} with a step (grey: none)"
                    + ("" if baseline else " (no baseline: vs first run)"))
    right.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def plot_storage(path: str, source: Optional[str] = None, storage: str = bench.DEFAULT_STORAGE,
                 baseline: str = DEFAULT_BASELINE) -> Path:
    """``harness bench --plot``: the run ``source`` (or the newest under ``storage``) with the history of every
    saved run, relative to the speed baseline ``baseline`` when it exists. Returns the JSON that was plotted."""
    run = bench.newest_json(source or storage)
    try:
        base = SpeedBaseline.load(baseline)
    except InputError:
        base = None
    plot(json.loads(run.read_text()), bench_history.series(bench_history.saved_runs(storage)), path, base)
    return run
