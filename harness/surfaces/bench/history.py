"""Every saved run of a benchmark as a series, and the steps in it (change points).

pytest-benchmark keeps each saved run (``--benchmark-autosave``: ``.benchmarks/<machine>/NNNN_*.json``). A
benchmark's series is its figure in reference units (:class:`harness.surfaces.bench.timing.Timing`) run after
run, on one thread count; :func:`change_points` finds where it stepped, by binary segmentation: the split
of a segment that best separates two means is kept when the step is larger than both the minimum effect and
``z`` standard errors of the difference (the standard error from the calibrated between-run spread, or the
series' own residual spread), then each side is searched again.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from harness.surfaces.bench import is_run
from harness.surfaces.bench.gate import SpeedBaseline, observed


@dataclass(frozen=True)
class Point:
    """One saved run of one benchmark: when, its figure in reference units, raw median seconds, threads."""

    run: int
    when: str
    figure: float
    seconds: float
    threads: int


@dataclass(frozen=True)
class Step:
    """A change point: from run ``at`` on, the benchmark's figure is ``ratio`` times what it was before."""

    at: int
    when: str
    ratio: float


def saved_runs(storage) -> List[Path]:
    """Every pytest-benchmark JSON under ``storage``, oldest first (by its ``datetime``, else the file time)."""
    files = list(Path(storage).rglob("*.json")) if Path(storage).is_dir() else []

    def when(f: Path) -> str:
        try:
            return str(json.loads(f.read_text()).get("datetime") or "")
        except (OSError, ValueError):
            return ""

    return sorted((f for f in files if is_run(f)), key=lambda f: (when(f), f.stat().st_mtime))


def series(files: Sequence[Path]) -> Dict[str, Dict[int, List[Point]]]:
    """Per benchmark (full name) and thread count, its :class:`Point` in each run of ``files`` that timed it."""
    out: Dict[str, Dict[int, List[Point]]] = {}
    for i, f in enumerate(files):
        try:
            data = json.loads(Path(f).read_text())
        except (OSError, ValueError):
            continue
        for b in data.get("benchmarks", []):
            obs = observed(b.get("extra_info") or {})
            if obs is None:
                continue
            point = Point(i, str(data.get("datetime", "")), math.exp(obs.figure),
                          statistics.median(obs.seconds) if obs.seconds else float("nan"), obs.threads)
            out.setdefault(b.get("fullname") or b["name"], {}).setdefault(obs.threads, []).append(point)
    return out


def change_points(values: Sequence[float], min_effect: float = 0.10, spread: Optional[float] = None,
                  z: float = 3.0, min_size: int = 1) -> List[tuple]:
    """Steps in a series of positive figures, by binary segmentation on their logarithms.

    Parameters
    ----------
    values : sequence of float
        The figures, oldest first.
    min_effect : float
        The smallest step reported, as a fraction (0.10: 10 %).
    spread : float, optional
        The standard deviation of one figure (log units), e.g. the baseline's between-run spread; default: the
        pooled spread of the values around their segments' means.
    z : float
        How many standard errors of the difference of two means a step must exceed.
    min_size : int
        The fewest runs on each side of a step.

    Returns
    -------
    list of (int, float)
        ``(index, ratio)``: from ``values[index]`` on, the mean is ``ratio`` times the mean before, oldest first.
    """
    logs = [math.log(v) for v in values]

    def best_split(lo: int, hi: int):
        best = None
        for k in range(lo + min_size, hi - min_size + 1):
            a, b = logs[lo:k], logs[k:hi]
            gain = len(a) * len(b) / (hi - lo) * (statistics.fmean(b) - statistics.fmean(a)) ** 2
            if best is None or gain > best[0]:
                best = (gain, k)
        return best

    cuts: List[int] = []

    def search(lo: int, hi: int):
        found = best_split(lo, hi)
        if found is None:
            return
        k = found[1]
        a, b = logs[lo:k], logs[k:hi]
        step = statistics.fmean(b) - statistics.fmean(a)
        sd = spread
        if sd is None:
            resid = [v - statistics.fmean(a) for v in a] + [v - statistics.fmean(b) for v in b]
            sd = math.sqrt(sum(r * r for r in resid) / max(1, len(resid) - 2))
        se = sd * math.sqrt(1 / len(a) + 1 / len(b))
        if abs(step) > math.log1p(min_effect) and abs(step) > z * se:
            cuts.append(k)
            search(lo, k)
            search(k, hi)

    search(0, len(logs))
    out = []
    for k in sorted(cuts):
        before = [c for c in sorted(cuts) if c < k]
        after = [c for c in sorted(cuts) if c > k]
        lo, hi = (before[-1] if before else 0), (after[0] if after else len(logs))
        out.append((k, math.exp(statistics.fmean(logs[k:hi]) - statistics.fmean(logs[lo:k]))))
    return out


def steps(points: Sequence[Point], min_effect: float = 0.10, spread: Optional[float] = None) -> List[Step]:
    """The :class:`Step` s of one benchmark's series (:func:`change_points` over its figures)."""
    return [Step(points[k].run, points[k].when, ratio)
            for k, ratio in change_points([p.figure for p in points], min_effect, spread)]


def spread(baseline: Optional[SpeedBaseline], name: str, threads: int) -> Optional[float]:
    """The spread the gate judges ``name`` on ``threads`` with (its between-run spread, the pooled one of like
    benchmarks, the rule's floor: the largest), or None without a baseline entry."""
    entry = (baseline.entries.get(name) or {}).get(threads) if baseline else None
    if entry is None:
        return None
    return max(entry.between, baseline.pooled_between(entry.seconds), baseline.rule.floor)


def format_history(hist: Dict[str, Dict[int, List[Point]]], baseline: Optional[SpeedBaseline] = None) -> str:
    """One line per benchmark and thread count: runs, first and last figure, and every step found (judged with the
    baseline's spreads and minimum effect when there is one)."""
    min_effect = baseline.rule.min_effect if baseline else 0.10
    lines = []
    for name in sorted(hist):
        for threads, points in sorted(hist[name].items()):
            found = steps(points, min_effect, spread(baseline, name, threads))
            text = "; ".join(f"step x{s.ratio:.2f} at run {s.at} ({s.when[:19]})" for s in found) or "no step"
            lines.append(f"{name} [{threads} thread(s)]: {len(points)} runs, {points[0].figure:.4g} -> "
                         f"{points[-1].figure:.4g} reference units; {text}")
    return "\n".join(lines) if lines else "no saved run with reference units (time them with harness bench --run)"
