"""A Markdown summary of a run's quality tests for a CI page (``pytest --harness-summary FILE``).

Built from the figures each check records as JUnit properties
(:meth:`harness.surfaces.quality_check.QualityCheck.check`), so it works the same under pytest-xdist.
Three sections, in the order a reader needs them:

1. **failures**, grouped by culprit component: the failures at the culprit's own stage in full (combination,
   stage, clip, value against limit, evidence, fix), the failures that follow from them as consequences;
2. the figures **closest to their limits** (smallest headroom), where the next regression will show;
3. **drift** against the calibration baseline (the value calibration measured on the same clip).

It stays under :data:`MAX_BYTES` (GitHub's job-summary limit is 1 MiB) by summarising, never by cutting a
failure: consequences collapse to counts first, then the other sections shrink.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from harness import atomic

#: the summary's size limit in bytes (GitHub Actions refuses job summaries over 1 MiB)
MAX_BYTES = 1024 * 1024 - 4096
#: rows of the "closest to their limits" and "drift" tables
TOP = 15
#: a smaller change of a figure against calibration's value is float round-off, not drift
MIN_DRIFT_PCT = 0.1


def _figures(props: Dict[str, object]) -> List[dict]:
    return json.loads(props.get("harness_figures", "[]"))


#: how a failed figure compares with its limit (the condition that holds, not the one that failed) and what the limit
#: is called, per bound: a ceiling (max), a floor (min), what a known mistake must reach to be detected (detect_*)
_BREACH = {"max": (">", "limit"), "min": ("<", "floor"), "detect_max": (">", "needed to detect"),
           "detect_min": ("<", "needed to detect")}


def _breach(f: dict) -> str:
    """A failed figure as the condition that holds: ``mel_l1 0.9315 > limit 0.01 (over by 0.9215) on `clip```."""
    op, name = _BREACH.get(f["bound"], ("vs", "limit"))
    gap = abs(f["value"] - f["limit"])
    how = ("over" if op == ">" else "under") if not f["bound"].startswith("detect") else "short"
    clip = f" on `{f['clip']}`" if f.get("clip") else ""
    return f"{f['metric']} {f['value']:.4g} {op} {name} {f['limit']:.4g} ({how} by {gap:.3g}){clip}"


def _failure_line(nodeid: str, props: Dict[str, object]) -> str:
    figs = [f for f in _figures(props) if not f["ok"]]
    if props.get("harness_error"):
        what = f"error: {str(props['harness_error'])[:120]}"
    elif figs:
        what = "; ".join(_breach(f) for f in figs)
    else:
        what = "see the test's output"
    evidence = f" — evidence `{props['harness_evidence']}`" if props.get("harness_evidence") else ""
    return (f"| `{props.get('harness_combination')}` | {props.get('harness_stage')} | "
            f"{props.get('harness_verdict')} | {what}{evidence} |")


def _failures(records: Sequence[Tuple[str, str, Dict]], level: int) -> List[str]:
    """Level 0: every failure with its figures, consequences listed; 1: consequences as counts; 2: the
    culprit's own failures as lists of combination names per stage (the evidence paths follow from them)."""
    collapse = level >= 1
    failed = [(n, p) for n, o, p in records if o == "failed"]
    if not failed:
        return ["## Failures\n", "None: every quality test passed or was skipped with its reason.\n"]
    lines = [f"## Failures ({len(failed)})\n"]
    by_culprit: Dict[str, List[Tuple[str, Dict]]] = defaultdict(list)
    for n, p in failed:
        by_culprit[str(p.get("harness_culprit", "unknown"))].append((n, p))
    for culprit, items in sorted(by_culprit.items(), key=lambda kv: -len(kv[1])):
        own = [(n, p) for n, p in items if not p.get("harness_follows_from")]
        after = [(n, p) for n, p in items if p.get("harness_follows_from")]
        lines.append(f"### Culprit: {culprit} — {len(own)} failure(s) at its own stage, {len(after)} downstream\n")
        fixes = sorted({str(p.get("harness_fix")) for _, p in own if p.get("harness_fix")})
        if len(fixes) == 1 or level >= 2:  # one fix for the group: said once, above its rows
            lines += [f"> {f}\n" for f in fixes]
        if own and level >= 2:
            stages = defaultdict(list)
            for _, p in own:
                stages[p.get("harness_stage")].append(f"`{p.get('harness_combination')}`")
            lines += [f"- at stage '{stage}' ({len(names)}): " + ", ".join(names) for stage, names in stages.items()]
            lines.append("\nEvidence: `<report dir>/<combination>-<stage>/`.\n")
        elif own and len(fixes) > 1:  # several fixes in one group: each row says its own
            lines += ["| combination | stage | verdict | what failed | fix |", "|---|---|---|---|---|"]
            lines += [_failure_line(n, p)[:-1] + f"| {str(p.get('harness_fix') or '-')} |" for n, p in own]
            lines.append("")
        elif own:
            lines += ["| combination | stage | verdict | what failed |", "|---|---|---|---|"]
            lines += [_failure_line(n, p) for n, p in own]
            lines.append("")
        if after:
            if collapse:
                counts = defaultdict(int)
                for _, p in after:
                    counts[(p.get("harness_follows_from"), p.get("harness_stage"))] += 1
                lines.append("Consequences: " + ", ".join(f"{c} at stage '{s}' (follow from '{f}')"
                                                         for (f, s), c in sorted(counts.items())) + "\n")
            else:
                lines.append(f"<details><summary>{len(after)} consequence(s): failures that follow from an "
                             "earlier stage of the same combination</summary>\n")
                lines += [f"- `{p.get('harness_combination')}` at {p.get('harness_stage')} (follows from "
                          f"'{p.get('harness_follows_from')}')" for _, p in after]
                lines.append("\n</details>\n")
    return lines


#: a passing figure with less headroom than this (in % of its limit) is shown among those closest to their limits
TIGHT_PCT = 25.0


def _used(f: dict) -> str:
    """The calibrated margin a figure has used, said as what it means: the band between calibration's value on the
    same clip (0 %) and the limit (100 %). A figure at calibration's value has used none of it, however narrow the
    band (its headroom says how narrow); one better than calibration's value has used none either."""
    used = f.get("margin_used_pct")
    if used is None:
        return "-"
    if abs(used) < 0.5:  # round-off either side of calibration's value: not -0 %
        return "0 % (at calibration)"
    return f"{used:.0f} %" if used > 0 else "0 % (better than calibration)"


def _closest(records, top: int) -> List[str]:
    """The passing figures with the least headroom (room before the verdict flips, in % of the limit), tightest
    first: only those under :data:`TIGHT_PCT`, at most ``top`` of them."""
    if top <= 0:  # the last resort of a summary over its size limit: failures only
        return []
    rows = []
    for _, o, p in records:
        for f in _figures(p) if o == "passed" else []:
            if f.get("headroom_pct") is not None and f["headroom_pct"] < TIGHT_PCT:
                rows.append((f["headroom_pct"], p, f))
    rows.sort(key=lambda r: r[0])
    if not rows:
        return ["## Closest to their limits\n", f"No passing figure is within {TIGHT_PCT:.0f} % of its limit.\n"]
    lines = ["## Closest to their limits\n",
             f"Passing figures within {TIGHT_PCT:.0f} % of their limit, tightest first"
             + (f" ({min(top, len(rows))} of {len(rows)})" if len(rows) > top else "") + ". Headroom: the room left "
             "before the verdict flips, in the metric's units and in % of the limit; margin used: how far the figure has moved from "
             "calibration's value on the same clip (0 %) towards the limit (100 %).\n",
             "| combination | stage | metric | clip | value | limit | headroom | margin used |",
             "|---|---|---|---|---|---|---|---|"]
    for _, p, f in rows[:top]:
        op = "<=" if f["bound"] in ("max", "detect_max") else ">="
        lines.append(f"| `{p['harness_combination']}` | {p['harness_stage']} | {f['metric']} | `{f['clip']}` | "
                     f"{f['value']:.4g} | {op} {f['limit']:.4g} | {abs(f['limit'] - f['value']):.3g} "
                     f"({f['headroom_pct']:.1f} %) | {_used(f)} |")
    return lines + [""]


def _drift(records, top: int) -> List[str]:
    rows = []
    for _, o, p in records:
        for f in _figures(p):
            if f.get("baseline") not in (None, 0) and f["bound"] in ("max", "min"):
                change = 100.0 * (f["value"] - f["baseline"]) / abs(f["baseline"])
                if abs(change) >= MIN_DRIFT_PCT:
                    rows.append((change, p, f))
    worse = [r for r in rows if (r[0] > 0) == (r[2]["bound"] == "max")]
    worse.sort(key=lambda r: -abs(r[0]))
    lines = ["## Drift against the calibration baseline (largest changes for the worse)\n",
             "| combination | stage | metric | clip | baseline → now | change | limit |", "|---|---|---|---|---|---|---|"]
    for d, p, f in worse[:top]:
        lines.append(f"| `{p['harness_combination']}` | {p['harness_stage']} | {f['metric']} | `{f['clip']}` | "
                     f"{f['baseline']:.4g} → {f['value']:.4g} | {d:+.1f} % | {f['limit']:.4g} |")
    if not worse:
        lines.append(f"| (no figure moved for the worse by {MIN_DRIFT_PCT} % or more) | | | | | | |")
    return lines + [""]


#: the JUnit property every timed benchmark's speed verdict carries (:meth:`harness.surfaces.bench.gate.SpeedVerdict.properties`)
SPEED_KEY = "harness_speed_benchmark"


def _speed(records) -> List[str]:
    """The speed verdicts: failures first, then by ratio, one row each (benchmark, baseline, now, ratio, verdict)."""
    rows = [(n, o, p) for n, o, p in records if SPEED_KEY in p]
    if not rows:
        return []

    def order(row):
        p = row[2]
        return (row[1] != "failed", -float(p.get("harness_speed_ratio") or 0.0))

    def secs(v):
        return "-" if v in (None, "") else f"{float(v) * 1000:.4g} ms"

    failed = sum(1 for _, o, _ in rows if o == "failed")
    lines = [f"## Speed ({len(rows)} benchmarks: {failed} failed)\n",
             "Time per round against the calibrated baseline, judged in reference units (load that slows every "
             "kernel alike divides out); the interval is the ratio's at the gate's confidence.\n",
             "| benchmark | baseline | now | ratio (interval) | verdict |", "|---|---|---|---|---|"]
    for n, o, p in sorted(rows, key=order):
        ratio = p.get("harness_speed_ratio")
        shown = "-" if ratio in (None, "") else (f"{float(ratio):.2f}x ({float(p['harness_speed_low']):.2f}-"
                                                  f"{float(p['harness_speed_high']):.2f})")
        lines.append(f"| `{p[SPEED_KEY].split('::')[-1]}` | {secs(p.get('harness_speed_baseline_seconds'))} | "
                     f"{secs(p.get('harness_speed_seconds'))} | {shown} | "
                     f"{'**FAILS** ' if o == 'failed' else ''}{p.get('harness_speed_verdict')} |")
    return lines + [""]


#: pytest's order of the outcomes in its summary line
_ORDER = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "error")


def _counts(counts: Dict[str, int]) -> str:
    known = [o for o in _ORDER if counts.get(o)] + sorted(o for o in counts if o not in _ORDER and counts[o])
    return ", ".join(f"{counts[o]} {o}" for o in known) or "none ran"


def _dependencies(records) -> List[str]:
    """The ``harness_drift`` properties (packages whose versions changed since the goldens were made), once each."""
    changed = sorted({str(p["harness_drift"]) for _, _, p in records if p.get("harness_drift")})
    return [f"**Dependencies changed since the goldens:** {'; '.join(changed)}. A failure may come from them rather "
            "than from your code: compare with the versions the goldens were made with before re-calibrating.\n"] \
        if changed else []


def markdown(records: Sequence[Tuple[str, str, Dict[str, object]]], counts: Dict[str, int] = None) -> str:
    """The summary of ``records``: ``(node id, outcome, {harness_* property: value})`` per quality test or timed
    benchmark (those carry :data:`SPEED_KEY`).

    Parameters
    ----------
    records : sequence of tuple
        The tests that recorded figures.
    counts : dict, optional
        ``{outcome: number}`` of every harness test as pytest's summary line counts them (``failed``, ``passed``,
        ``skipped``, ``error``, ...), those without figures included; the header says them. Without it the header
        counts ``records``.

    Returns
    -------
    str
        Markdown, at most :data:`MAX_BYTES` bytes in UTF-8 whatever the number of records; every failure is
        named in it.
    """
    speed = [r for r in records if SPEED_KEY in r[2]]
    quality_records = [r for r in records if SPEED_KEY not in r[2]]
    if counts is None:
        own = defaultdict(int)
        for _, o, _ in quality_records:
            own[o] += 1
        line = f"{len(quality_records)} quality tests: {_counts(own)}\n" if quality_records else None
    else:
        line = f"{sum(counts.values())} harness tests: {_counts(counts)}\n"
    title = "# AudioLDM2 reconstruction quality\n" if quality_records or not speed else \
        "# AudioLDM2 reconstruction speed\n"
    head = [title] + ([line] if line else []) + _dependencies(records)
    for level, top in ((0, TOP), (1, TOP), (2, TOP), (2, 0)):
        quality = (_failures(quality_records, level) + _closest(quality_records, top) + _drift(quality_records, top)) \
            if quality_records else []
        text = "\n".join(head + _speed(speed) + quality) + "\n"
        if len(text.encode()) <= MAX_BYTES:
            return text
    return text  # every failure listed once: nothing left to summarise


def write(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`harness.atomic.write_text`)."""
    return atomic.write_text(path, text)
