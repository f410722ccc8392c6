"""Throughput benchmark plots: the newest run at a glance, and every benchmark's history against its gate.

``harness bench --plot OUT.png`` draws two panels:

* left, the run (a JSON, or the newest under ``--storage``): one bar per benchmark, seconds of audio
  per second on a log axis, labelled with its configuration and, where FLOPs are counted, the
  fraction of the matmul peak;
* right, the history: each benchmark's time per round in reference units in every saved run
  (:mod:`harness.surfaces.bench.history`), relative to its baseline's centre (or its first saved run without a
  baseline), the gate's minimum effect as a line, the calibrated noise band shaded, and each step found
  (change point) marked: a regression is a line that steps up through the gate.
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, max(4.0, 0.28 * len(recs) + 1.5)),
                                      gridspec_kw={"width_ratios": [3, 2]})

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
    left.legend(handles=[Patch(color=colors[g], label=g) for g in groups], fontsize=7, loc="lower right")

    min_effect = baseline.rule.min_effect if baseline else 0.10
    drawn = 0
    for i, (name, by_threads) in enumerate(sorted(hist.items())):
        for threads, points in sorted(by_threads.items()):
            if len(points) < 2:
                continue
            entry = (baseline.entries.get(name) or {}).get(threads) if baseline else None
            center = math.exp(entry.center) if entry else points[0].figure
            xs, ys = [p.run for p in points], [p.figure / center for p in points]
            color = plt.get_cmap("tab10")(i % 10)
            right.plot(xs, ys, marker="o", ms=3, lw=1, color=color, alpha=0.8)
            if entry and entry.between:
                band = math.exp(2 * max(entry.between, baseline.rule.floor))
                right.fill_between(xs, 1 / band, band, color=color, alpha=0.06)
            for step in bench_history.steps(points, min_effect, entry.between if entry else None):
                right.axvline(step.at - 0.5, color=color, lw=0.8, ls=":")
                right.annotate(f"{name.split('::')[-1]} x{step.ratio:.2f}", (step.at, ys[xs.index(step.at)]),
                               fontsize=7, color=color, xytext=(4, 4), textcoords="offset points")
            drawn += 1
    right.axhline(1, color="grey", lw=0.8)
    right.axhline(1 + min_effect, color="red", lw=1, ls="--", label=f"gate: +{100 * min_effect:.0f} % time, beyond noise")
    right.set_ylabel("time per round in reference units, relative to the baseline")
    right.set_xlabel("saved run (oldest first)")
    right.set_title(f"history: {drawn} series in >= 2 saved runs" + ("" if baseline else " (no baseline: vs first run)"))
    right.legend(fontsize=7)
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
