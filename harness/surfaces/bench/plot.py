"""Throughput benchmark plots: the newest run at a glance, and every benchmark's history.

``harness bench --plot OUT.png`` draws two panels:

* left, the run (a JSON, or the newest under ``--storage``): one bar per benchmark, seconds of audio
  per second on a log axis, labelled with its configuration and, where FLOPs are counted, the
  fraction of the matmul peak;
* right, the history: each benchmark's throughput in every saved run of the same host, relative to
  its first saved run (100 %), with the gate of ``harness bench --run`` (a fastest round 25 % slower,
  throughput 80 %) drawn as a line: a regression is a line that drops under it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from harness.surfaces import bench

#: the slowdown ``harness bench --run`` fails on (``bench.COMPARE_FAIL``: fastest round 25 % slower)
GATE = float(bench.COMPARE_FAIL.split(":")[1].rstrip("%")) / 100


def _label(r: Dict) -> str:
    parts = [r["stage"], r["impl"] or ""]
    if r["model_size"] not in (None, "-"):
        parts.append(str(r["model_size"]))
    if r["batch"] is not None:
        parts.append(f"b{r['batch']}")
    if r["clip_seconds"] is not None:
        parts.append(f"{r['clip_seconds']:g}s")
    return " ".join(p for p in parts if p)


def history(files: Sequence[Path], node: Optional[str] = None) -> tuple:
    """The saved runs ``files`` (oldest first), keeping only those made on ``node`` when it is given.

    Returns ``(run datetimes, {benchmark name: [(run index, audio_seconds_per_second), ...]})``.
    """
    runs: List[str] = []
    out: Dict[str, List[tuple]] = {}
    for f in files:
        try:
            data = json.loads(Path(f).read_text())
        except (OSError, ValueError):
            continue
        if node is not None and (data.get("machine_info") or {}).get("node") != node:
            continue
        runs.append(str(data.get("datetime", Path(f).stem)))
        for r in bench.rows(data):
            if r["audio_seconds_per_second"]:
                out.setdefault(r["name"], []).append((len(runs) - 1, r["audio_seconds_per_second"]))
    return runs, out


def plot(data: dict, files: Sequence[Path], path: str, node: Optional[str] = None):
    """Write the two-panel PNG for the run ``data`` and the saved runs ``files``; returns the figure."""
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

    runs, hist = history(files, node)
    by_name = {r["name"]: r for r in recs}
    drawn = 0
    for name, points in hist.items():
        if len(points) < 2 or name not in by_name:
            continue
        first = points[0][1]
        xs, ys = [i for i, _ in points], [100 * v / first for _, v in points]
        right.plot(xs, ys, marker="o", ms=3, lw=1, color=colors[by_name[name]["group"]], alpha=0.7)
        if ys[-1] < 100 / (1 + GATE):  # name the ones under the gate
            right.annotate(_label(by_name[name]), (xs[-1], ys[-1]), fontsize=7, color="red",
                           xytext=(-6, 0), textcoords="offset points", va="center", ha="right")
        drawn += 1
    right.axhline(100, color="grey", lw=0.8)
    right.axhline(100 / (1 + GATE), color="red", lw=1, ls="--", label=f"gate: {100 * GATE:.0f} % slower")
    right.set_xticks(range(len(runs)), [r[5:16].replace("T", " ") for r in runs], rotation=45, ha="right",
                     fontsize=7)
    right.set_ylabel("throughput vs its first saved run (%)")
    right.set_xlabel("saved run (oldest first)")
    right.set_title(f"history: {drawn} benchmarks in >= 2 saved runs" + (f" of {node}" if node else ""))
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def plot_storage(path: str, source: Optional[str] = None, storage: str = bench.DEFAULT_STORAGE) -> Path:
    """``harness bench --plot``: the run ``source`` (or the newest under ``storage``) with the history of
    the saved runs of the host that made it. Returns the JSON that was plotted."""
    run = bench.newest_json(source or storage)
    data = json.loads(run.read_text())
    files = sorted(Path(storage).rglob("[0-9][0-9][0-9][0-9]_*.json")) if Path(storage).is_dir() else []
    plot(data, files, path, node=(data.get("machine_info") or {}).get("node"))
    return run
