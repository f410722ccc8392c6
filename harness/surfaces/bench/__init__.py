"""Throughput benchmark results: read pytest-benchmark JSON, print a table, run the timed suite.

The benchmarks live in ``tests/benchmarks`` (pytest-benchmark). Each records in ``extra_info``:
``stage``, ``impl``, ``model_size``, ``batch``, ``clip_seconds``, ``device``, ``dtype``, ``threads``,
``audio_seconds_per_second`` (throughput: seconds of audio per wall second), ``realtime_factor``
(one clip's duration / the call's wall time: how many times faster than real time each clip of the
batch is done) and, where FLOPs are counted, ``flops`` and ``peak_fraction`` (achieved FLOP/s over
the machine's fp32 matmul FLOP/s measured in the same run).

``harness bench`` prints the newest saved run (``.benchmarks/``) as a table, followed by the
ratios that matter (torch vs librosa, batched vs naive, harness overhead vs model time). Running,
calibrating and gating live in :mod:`harness.surfaces.bench.runner` and :mod:`harness.surfaces.bench.gate`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_STORAGE = ".benchmarks"
# (group, faster-impl, baseline-impl, label): ratio = baseline time / impl time (x times faster)
SPEEDUPS = (
    ("frontend", "torch", "librosa", "front-end torch vs librosa"),
    ("frontend", "fft-only", "librosa", "ceiling: the FFT of the frames alone vs librosa's whole front-end"),
    ("griffinlim", "torch", "librosa", "Griffin-Lim torch vs librosa"),
    ("batched-vs-naive", "batched", "naive", "harness chain vs naive clip-by-clip"),
)
#: the model calls of :class:`harness.model.chain.Chain` whose time the benchmark group ``stages`` records
#: (``Chain.encode``, ``Chain.decode``, ``Chain.vocode``): the model's share of a reconstruction
MODEL_CALLS = ("encode", "decode", "vocode")


# ---------------------------------------------------------------------------
# reading results
# ---------------------------------------------------------------------------


def is_run(path: Path) -> bool:
    """Whether ``path`` holds a pytest-benchmark run (not, say, a speed baseline kept beside the runs)."""
    try:
        return isinstance(json.loads(Path(path).read_text()).get("benchmarks"), list)
    except (OSError, ValueError, AttributeError):
        return False


def newest_json(path: Optional[str] = None) -> Path:
    """The JSON file ``path``, or the newest pytest-benchmark run under the directory ``path`` (default
    ``.benchmarks``)."""
    p = Path(path or DEFAULT_STORAGE)
    if p.is_file():
        return p
    files = sorted(p.rglob("*.json"), key=lambda f: f.stat().st_mtime) if p.is_dir() else []
    newest = next((f for f in reversed(files) if is_run(f)), None)
    if newest is None:
        raise FileNotFoundError(f"{p}: no pytest-benchmark JSON found (run `harness bench --run` or "
                                "`pytest tests/benchmarks --benchmark-enable --benchmark-autosave` first)")
    return newest


def _impl_from_name(name: str) -> str:
    for word in ("librosa", "torch", "naive", "batched"):
        if word in name:
            return word
    return ""


def rows(data: dict) -> List[Dict]:
    """One flat record per benchmark of a pytest-benchmark JSON document (missing fields are ``None``)."""
    out = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        stats = b.get("stats") or {}
        out.append({
            "name": b.get("name", "?"),
            "group": b.get("group") or "",
            "stage": info.get("stage") or b.get("group") or b.get("name", "?"),
            "impl": info.get("impl") or _impl_from_name(b.get("name", "")),
            "model_size": info.get("model_size"),
            "batch": info.get("batch"),
            "clip_seconds": info.get("clip_seconds"),
            "device": info.get("device"),
            "dtype": info.get("dtype"),
            "threads": info.get("threads"),
            "mean": stats.get("mean"),
            "min": stats.get("min"),
            "rounds": stats.get("rounds"),
            "audio_seconds_per_second": info.get("audio_seconds_per_second"),
            "realtime_factor": info.get("realtime_factor"),
            "peak_fraction": info.get("peak_fraction"),
            "seconds_per_step": info.get("seconds_per_step"),
        })
    return out


def _key(r: Dict) -> Tuple:
    return (r["model_size"], r["batch"], r["clip_seconds"], r["device"], r["dtype"])


def speedups(records: Sequence[Dict]) -> List[Tuple[str, Tuple, float]]:
    """``(label, key, ratio)`` for every pair of :data:`SPEEDUPS` found with the same configuration;
    ratio = baseline mean time / impl mean time (> 1: the impl is faster)."""
    out = []
    for group, impl, base, label in SPEEDUPS:
        fast = {_key(r): r for r in records if r["group"] == group and r["impl"] == impl and r["mean"]}
        slow = {_key(r): r for r in records if r["group"] == group and r["impl"] == base and r["mean"]}
        for k in fast:
            if k in slow:
                out.append((label, k, slow[k]["mean"] / fast[k]["mean"]))
    return out


def overheads(records: Sequence[Dict]) -> List[Tuple[Tuple, float, float]]:
    """``(key, harness_seconds, model_seconds)``: front-end + metrics time (group ``overhead``) against
    encode + decode + vocode time of the same configuration (group ``stages``)."""
    out = []
    for r in records:
        if r["group"] != "overhead" or not r["mean"]:
            continue
        calls = {s["stage"]: s["mean"] for s in records
                 if s["group"] == "stages" and _key(s) == _key(r) and s["impl"] in ("", "harness", None) and s["mean"]}
        if all(c in calls for c in MODEL_CALLS):
            out.append((_key(r), r["mean"], sum(calls[c] for c in MODEL_CALLS)))
    return out


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------


def _fmt(x, spec: str, none: str = "-") -> str:
    return none if x is None else format(x, spec)


def _describe(key: Tuple) -> str:
    size, batch, clip, device, dtype = key
    parts = [str(size) if size not in (None, "-") else "", f"b{batch}" if batch is not None else "",
             f"{clip:g}s" if clip is not None else "", str(device or ""), str(dtype or "")]
    return " ".join(p for p in parts if p)


def format_table(records: Sequence[Dict]) -> str:
    """A fixed-width table, one line per benchmark, sorted by group then name."""
    head = ("stage", "impl", "model", "batch", "clip s", "device", "dtype", "thr", "mean s", "audio-s/s",
            "x realtime", "% peak")
    lines = []
    for r in sorted(records, key=lambda r: (r["group"], r["stage"], str(r["model_size"]), r["batch"] or 0,
                                             r["clip_seconds"] or 0, r["impl"] or "", r["name"])):
        lines.append((
            r["stage"], r["impl"] or "", str(r["model_size"] if r["model_size"] is not None else "-"),
            _fmt(r["batch"], "d"), _fmt(r["clip_seconds"], "g"), r["device"] or "-", r["dtype"] or "-",
            _fmt(r["threads"], "d"), _fmt(r["mean"], ".4g"),
            _fmt(r["audio_seconds_per_second"], ".1f"), _fmt(r["realtime_factor"], ".1f"),
            _fmt(None if r["peak_fraction"] is None else 100 * r["peak_fraction"], ".1f"),
        ))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    numeric = set(range(3, len(head))) - {5, 6}

    def fmt_line(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [fmt_line(head), fmt_line(["-" * w for w in widths])]
    out += [fmt_line(line) for line in lines]
    return "\n".join(line.rstrip() for line in out)


def format_ratios(records: Sequence[Dict]) -> str:
    """The speed-ups and harness overheads of a run's records (:func:`speedups`, :func:`overheads`), one per line."""
    def where(k):
        d = _describe(k)
        return f" ({d})" if d else ""

    lines = [f"{label}{where(k)}: {ratio:.2f}x" for label, k, ratio in speedups(records)]
    for k, harness_s, model_s in overheads(records):
        lines.append(f"harness overhead, front-end + metrics vs encode+decode+vocode{where(k)}: "
                     f"{100 * harness_s / model_s:.1f}% of model time ({harness_s:.3g} s vs {model_s:.3g} s)")
    for r in records:
        if r["seconds_per_step"]:
            lines.append(f"{r['stage']}{where(_key(r))}: {r['seconds_per_step']:.4g} s per denoising step "
                         "(whole call / steps)")
    return "\n".join(lines)


def summarize(data: dict, source: str = "") -> str:
    """The table and the ratios of one pytest-benchmark JSON document."""
    recs = rows(data)
    if not recs:
        return f"{source}: no benchmarks (was the run made with --benchmark-disable?)"
    machine = data.get("machine_info") or {}
    cpu = (machine.get("cpu") or {}).get("brand_raw", machine.get("processor", ""))
    head = f"{source}  {data.get('datetime', '')}  {machine.get('node', '')} {cpu}".strip()
    ratios = format_ratios(recs)
    return head + "\n\n" + format_table(recs) + ("\n\n" + ratios if ratios else "")
