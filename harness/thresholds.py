"""Thresholds as data: calibrated from the current chain, stored in ``golden/<model>/thresholds.toml``.

Margin policy (applied by :func:`calibrate`, documented in the file's ``[policy]`` table):

* a stage expected to **pass** gets, per clip and judged metric, a ceiling of ``value * 1.10 + abs_margin``
  for lower-is-better metrics, or a floor of ``value - 1 dB`` for dB metrics;
* a stage expected to be **detected** must be worse than its *sibling* (the same combination with
  the mistaken component replaced by the correct default) by a clear margin: its key metric must
  be at least ``DETECT_FACTOR`` (1.2) x the sibling's pass ceiling on every clip (so at least ~32 %
  worse than the correct chain), or the stage must stop
  with a clear error (a layout error is a detection). Calibration fails loudly if a known mistake
  is not detectable, rather than writing a threshold that cannot catch it;
* sample-exact golden stages (VAE decode, HiFi-GAN on the golden mel) get a waveform SNR floor
  that depends on device and dtype (:data:`EXACT_SNR_DB`).
"""
from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import metrics as metric_defs

# The chain is deterministic on CPU (same numbers run to run), so the margins only have to absorb
# library/BLAS/device differences and equivalent re-implementations; wider margins would hide the
# subtler known mistakes (a 0.73 scaling factor shifts the tiny VAE's round trip by only ~40 %).
RELATIVE_MARGIN = 0.10
ABS_MARGIN = {"mel_l1": 0.01, "lsd": 0.1, "mrstft": 0.02}
DB_MARGIN = 1.0
DETECT_FACTOR = 1.2
#: waveform SNR floor (dB) of sample-exact stages by device type and dtype
EXACT_SNR_DB = {"cpu-fp32": 60.0, "cuda-fp32": 40.0, "cpu-bf16": 20.0, "cuda-bf16": 20.0,
                "cpu-fp16": 25.0, "cuda-fp16": 25.0}
EXACT_CORRELATION = {"fp32": 0.9999, "bf16": 0.99, "fp16": 0.995}


class CalibrationError(RuntimeError):
    """A known mistake could not be told apart from the correct chain on some clip."""


def _higher(name: str) -> bool:
    return metric_defs.get_metric(name).higher_is_better if name in metric_defs.METRICS else False


def pass_limits(values: Dict[str, np.ndarray], judged: List[str]) -> Dict[str, list]:
    """Per-clip ceilings (``<name>_max``) / floors (``<name>_min``) with the margin policy."""
    out = {}
    for name in judged:
        v = np.asarray(values[name], dtype=float)
        if _higher(name):
            out[f"{name}_min"] = [round(float(x) - DB_MARGIN, 4) for x in v]
        else:
            out[f"{name}_max"] = [round(float(x) * (1 + RELATIVE_MARGIN) + ABS_MARGIN.get(name, 0.02), 4) for x in v]
    return out


def detect_limit(sibling_limits: Dict[str, list], key: str) -> Dict[str, list]:
    """Per clip, the key metric a detected stage must reach: ``DETECT_FACTOR`` x the sibling's ceiling."""
    if f"{key}_max" in sibling_limits:
        return {f"{key}_detect_min": [round(x * DETECT_FACTOR, 4) for x in _as_list(sibling_limits[f"{key}_max"])]}
    return {f"{key}_detect_max": [round(x - DB_MARGIN * DETECT_FACTOR, 4)
                                  for x in _as_list(sibling_limits[f"{key}_min"])]}


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


def _broadcast(limit, kind: str, n: int) -> np.ndarray:
    """Per-clip limits apply clip by clip; on other clips (a user's files) the most demanding general
    limit applies: the loosest ceiling/floor a correct clip needed, the strictest detection margin."""
    lim = np.asarray(_as_list(limit), dtype=float)
    if len(lim) == n:
        return lim
    pick = {"max": lim.max, "min": lim.min, "detect_min": lim.max, "detect_max": lim.min}[kind]
    return np.full(n, pick())


def judge(stage_result, limits: Dict[str, list], expected: str,
          clip_names: Optional[List[str]] = None) -> Tuple[bool, List[Tuple[str, str, str, str]]]:
    """Compare a stage result with its limits.

    Returns ``(ok, rows)``; rows are ``(metric [clip], worst value, threshold, verdict)`` for the table,
    the worst clip of each metric (the first failing one, if any).
    ``ok`` means the stage behaved as expected: passed every limit (``pass``), or missed the detect
    limit on every clip / raised an error (``detect``). ``report`` stages are always ok.
    """
    rows = []
    if expected == "report":
        return True, rows
    if stage_result.error is not None:
        rows.append(("error", stage_result.error[:90], "-", "detected" if expected == "detect" else "FAIL"))
        return expected == "detect", rows
    ok = True
    for key, limit in limits.items():
        name, _, kind = key.rpartition("_")
        if name.endswith("_detect"):
            name, kind = name[: -len("_detect")], "detect_" + kind
        if name not in stage_result.metrics:
            continue
        v = np.asarray(stage_result.metrics[name], dtype=float)
        lim = _broadcast(limit, kind, len(v))
        if kind in ("max", "detect_max"):
            bad = ~(v <= lim)
            sign = "<="
        else:
            bad = ~(v >= lim)
            sign = ">="
        good = not bad.any()
        i = int(np.argmax(bad)) if bad.any() else int(np.argmax(v - lim if sign == "<=" else lim - v))
        worst, limit_shown = float(v[i]), float(lim[i])
        if not np.all(np.isfinite(v)):
            good = False
        ok &= good
        label = name if clip_names is None or len(clip_names) != len(v) else f"{name} [{clip_names[i]}]"
        rows.append((label, f"{worst:.4g}", f"{sign} {limit_shown:.4g}", "ok" if good else "FAIL"))
    return ok, rows


# ---------------------------------------------------------------------------
# TOML (a writer for the flat two-level tables used here: no third-party dependency)
# ---------------------------------------------------------------------------


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return json.dumps(str(v))


def dump_toml(data: Dict[str, Dict], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for table, body in data.items():
        lines.append("")
        lines.append(f"[{table}]" if table.replace("_", "").isalnum() else f"[{json.dumps(table)}]")
        for k, v in body.items():
            key = k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)
            lines.append(f"{key} = {_fmt(v)}")
    return "\n".join(lines) + "\n"


def load(path: str | Path) -> Dict[str, Dict]:
    """Read a thresholds file (``tomllib``)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no thresholds; run `harness thresholds --calibrate --golden-dir "
                                f"{path.parent}`")
    return tomllib.loads(path.read_text())


def table_key(combo_id: str, stage: str) -> str:
    return f"{combo_id}:{stage}"


def write(path: str | Path, tables: Dict[str, Dict], meta: Dict) -> Path:
    header = ("Quality thresholds of the reconstruction chain. Written by `harness thresholds --calibrate`;\n"
              "do not edit by hand: re-calibrate, and review the diff like code.")
    policy = {"relative_margin": RELATIVE_MARGIN, "abs_margin_mel_l1": ABS_MARGIN["mel_l1"],
              "abs_margin_lsd": ABS_MARGIN["lsd"], "abs_margin_mrstft": ABS_MARGIN["mrstft"],
              "db_margin": DB_MARGIN, "detect_factor": DETECT_FACTOR}
    meta = {**meta, "calibrated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    exact = {k: v for k, v in EXACT_SNR_DB.items()}
    path = Path(path)
    path.write_text(dump_toml({"meta": meta, "policy": policy, "exact_snr_db": exact, **tables}, header))
    return path


def limits_for(thresholds: Dict, combo, stage: str) -> Tuple[Optional[Dict], str]:
    """Limits of ``combo`` (a :class:`harness.matrix.Combination`) at ``stage``, plus where they came from.

    A combination without its own table (a user's variant) is judged against its sibling.
    """
    own = thresholds.get(table_key(combo.id, stage))
    if own is not None:
        return {k: v for k, v in own.items() if k.endswith(("_max", "_min"))}, combo.id
    sib = combo.sibling(stage)
    base = thresholds.get(table_key(sib.id, stage))
    if base is None:
        return None, sib.id
    limits = {k: v for k, v in base.items() if k.endswith(("_max", "_min")) and "_detect_" not in k}
    return limits, sib.id


def summary_table(data: Dict[str, Dict]) -> str:
    """One line per combination and stage: expected verdict, key metric (worst clip) and its limit."""
    meta = data.get("meta", {})
    lines = [f"model {meta.get('model')}  clips {len(meta.get('clips', []))}  calibrated {meta.get('calibrated_at')}",
             f"{'combination:stage':58s} {'expected':8s} {'key metric (mean / worst)':>28s}  limit"]
    for key, entry in data.items():
        if ":" not in key or not isinstance(entry, dict) or "expected" not in entry:
            continue
        measured = [k for k in entry if k.startswith("measured_")]
        name = "measured_mel_l1" if "measured_mel_l1" in entry else (measured[0] if measured else None)
        if entry.get("error"):
            value = "error: " + entry["error"].split(":")[0]
        elif name:
            v = np.asarray(entry[name], dtype=float)
            value = f"{name[9:]} {v.mean():.3f} / {v.max():.3f}"
        else:
            value = "-"
        limit = ""
        for k in ("mel_l1_max", "mel_l1_detect_min"):
            if k in entry:
                lim = np.asarray(_as_list(entry[k]), dtype=float)
                limit = f"{'<=' if k.endswith('max') else '>='} {lim.min():.3f}..{lim.max():.3f}"
        lines.append(f"{key:58s} {entry['expected']:8s} {value:>28s}  {limit}")
    return "\n".join(lines)


def limits_for_verdict(thresholds: Dict, combo, stage: str, expected: str, key: str):
    """The limits that judge ``combo`` at ``stage`` for an ``expected`` verdict, plus their source.

    ``pass``: the ceilings/floors; ``detect``: the detection limits, derived from the pass limits
    with :func:`detect_limit` (on ``key``) when the table has none of its own (a user's variant).
    """
    limits, source = limits_for(thresholds, combo, stage)
    if limits is None:
        return None, source
    if expected == "detect":
        own = {k: v for k, v in limits.items() if "_detect_" in k}
        return own or detect_limit(limits, key), source
    return {k: v for k, v in limits.items() if "_detect_" not in k}, source
