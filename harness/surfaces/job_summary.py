"""A Markdown summary of a run's quality tests for a CI page (``pytest --harness-summary FILE``).

Built from the figures each check records as JUnit properties (:meth:`harness.judging.quality.QualityCheck.check`),
so it works the same under pytest-xdist. Three sections, in the order a reader needs them:

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


def _failure_line(nodeid: str, props: Dict[str, object]) -> str:
    figs = [f for f in _figures(props) if not f["ok"]]
    if props.get("harness_error"):
        what = f"error: {str(props['harness_error'])[:120]}"
    elif figs:
        what = "; ".join(f"{f['metric']} {f['value']:.4g} {'<=' if f['bound'] in ('max', 'detect_max') else '>='} "
                         f"{f['limit']:.4g} on `{f['clip']}`" for f in figs)
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
        lines += [f"> {f}\n" for f in fixes]
        if own and level >= 2:
            stages = defaultdict(list)
            for _, p in own:
                stages[p.get("harness_stage")].append(f"`{p.get('harness_combination')}`")
            lines += [f"- at stage '{stage}' ({len(names)}): " + ", ".join(names) for stage, names in stages.items()]
            lines.append("\nEvidence: `<report dir>/<combination>-<stage>/`.\n")
        elif own:
            lines += ["| combination | stage | verdict | value vs limit |", "|---|---|---|---|"]
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


def _closest(records, top: int) -> List[str]:
    """The passing figures with the least room: by the share of the calibrated margin they have used up
    (0 % at calibration's value, 100 % at the limit), else by headroom in % of the limit."""
    rows = []
    for _, o, p in records:
        for f in _figures(p) if o == "passed" else []:
            used = f.get("margin_used_pct")
            rows.append((-(used if used is not None else 100.0 - f["headroom_pct"]), p, f))
    if not rows:
        return []
    rows.sort(key=lambda r: r[0])
    lines = ["## Closest to their limits\n",
             "| combination | stage | metric | clip | value | limit | margin used | headroom |",
             "|---|---|---|---|---|---|---|---|"]
    for _, p, f in rows[:top]:
        used = "-" if f.get("margin_used_pct") is None else f"{f['margin_used_pct']:.0f} %"
        lines.append(f"| `{p['harness_combination']}` | {p['harness_stage']} | {f['metric']} | `{f['clip']}` | "
                     f"{f['value']:.4g} | {f['limit']:.4g} | {used} | {f['headroom_pct']:.1f} % |")
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


def markdown(records: Sequence[Tuple[str, str, Dict[str, object]]]) -> str:
    """The summary of ``records``: ``(node id, outcome, {harness_* property: value})`` per quality test or timed
    benchmark (those carry :data:`SPEED_KEY`).

    Returns
    -------
    str
        Markdown, at most :data:`MAX_BYTES` bytes in UTF-8 whatever the number of records; every failure is
        named in it.
    """
    speed = [r for r in records if SPEED_KEY in r[2]]
    records = [r for r in records if SPEED_KEY not in r[2]]
    outcomes = defaultdict(int)
    for _, o, _ in records:
        outcomes[o] += 1
    head = ["# AudioLDM2 reconstruction quality\n",
            f"{len(records)} quality tests: " + ", ".join(f"{c} {o}" for o, c in sorted(outcomes.items())) + "\n"]
    if not records:
        head = ["# AudioLDM2 reconstruction speed\n"]
    for level, top in ((0, TOP), (1, TOP), (2, TOP), (2, 0)):
        quality = (_failures(records, level) + _closest(records, top) + _drift(records, top)) if records else []
        text = "\n".join(head + _speed(speed) + quality) + "\n"
        if len(text.encode()) <= MAX_BYTES:
            return text
    return text  # every failure listed once: nothing left to summarise


def write(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`harness.atomic.write_text`)."""
    return atomic.write_text(path, text)
