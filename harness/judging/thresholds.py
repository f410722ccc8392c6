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
* the **whole chain** of a front-end or VAE mistake heard through HiFi-GAN is asserted
  detected too where calibration measured it at least ``1 + CHAIN_DETECT_HEADROOM`` x that limit on
  every clip (:func:`chain_detection`); elsewhere the table says why it is only reported;
* sample-exact golden stages (VAE decode, HiFi-GAN on the golden mel) get a waveform SNR floor
  that depends on device and dtype (:data:`EXACT_SNR_DB`).

Two policies produce the limits; :func:`judge` alone decides every verdict from them:

* **absolute** (:func:`absolute_limits`): per-clip ceilings/floors stored for clips that have a
  baseline (the golden cases, the reference clips, users' clips added with ``harness golden --clips``);
* **relative** (:func:`relative_limits`): on audio without a baseline, each combination is judged
  against the *reference combination's figure on the same clip* (:meth:`harness.judging.matrix.Combination.reference`).
  A correct combination must stay under ``max(ratio * r, r + offset) * 1.25 + abs_margin`` (floors:
  ``r - offset_db * 1.25 - 1 dB``, ``offset_db`` the largest deficit plus two standard deviations), with
  ``ratio``, ``offset`` and ``offset_db`` calibrated per combination and stage on a broad clip set
  (:func:`fit_relative`); a known mistake must reach ``DETECT_FACTOR`` x the
  reference's own ceiling ``r * 1.10 + abs_margin`` on its key metric, or stop with a clear error.
"""
from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from harness import atomic
from harness.errors import GoldenError
from harness.signal import metrics as metric_defs
from harness.vocabulary import Word

# The chain is deterministic on CPU (same numbers run to run), so the margins only have to absorb
# library/BLAS/device differences and equivalent re-implementations; wider margins would hide the
# subtler known mistakes (a 0.73 scaling factor shifts the tiny VAE's round trip by only ~40 %).
RELATIVE_MARGIN = 0.10
ABS_MARGIN = {"mel_l1": 0.01, "ref_mel_l1": 0.01, "lsd": 0.1, "mrstft": 0.02}
#: absolute log-mel margin (nats) of a deterministic golden stage (the pipeline's latents through the VAE
#: decode): float round-off is ~1e-5 nats in fp32, while a scaling factor 0.5 % off moves the mel 0.0025
EXACT_MEL_L1_MARGIN = 1e-3
DB_MARGIN = 1.0
DETECT_FACTOR = 1.2
#: headroom of the relative policy's envelopes (instead of RELATIVE_MARGIN): they extrapolate from the
#: calibration clips to any audio, and the largest ratio seen on ~50 clips underestimates the largest
#: one on the next thousand; mistakes sit 5-20x beyond the correct band, so this costs no detection
RELATIVE_HEADROOM = 0.25
#: a dB figure's relative floor reaches this many standard deviations of the calibration clips' deficits
#: beyond the largest one: a dB deficit is a log-ratio of two chains' error energies, and on sub-second
#: transients its tail is heavier than the ratio metrics' (held-out clips went to 1.5-1.9x the calibration
#: maximum where every ratio metric stayed inside RELATIVE_HEADROOM)
DB_TAIL_SPREADS = 2.0
#: a broken combination's whole chain is asserted *detected* only where calibration measured its key metric
#: at least this much beyond the detection limit on every clip: a separation that only just clears the limit
#: on this CPU would be a test that flips on another one
CHAIN_DETECT_HEADROOM = 0.05
#: waveform SNR floor (dB) of sample-exact stages by device type and dtype. fp32 has one floor on every device:
#: a chain loaded in fp32 on CUDA computes in IEEE fp32, TF32 off (:func:`harness.model.loading.disable_tf32`),
#: so its figures differ from a CPU's by BLAS round-off only, and fp32 limits travel between them
#: (:func:`check_kernel_path`)
EXACT_SNR_DB = {"cpu-fp32": 60.0, "cuda-fp32": 60.0, "cpu-bf16": 20.0, "cuda-bf16": 20.0,
                "cpu-fp16": 25.0, "cuda-fp16": 25.0}
EXACT_CORRELATION = {"fp32": 0.9999, "bf16": 0.99, "fp16": 0.995}


def _higher(name: str) -> bool:
    return metric_defs.get_metric(name).higher_is_better if name in metric_defs.METRICS else False


def pass_limits(values: Dict[str, np.ndarray], judged: List[str]) -> Dict[str, list]:
    """Per-clip ceilings (``<name>_max``) / floors (``<name>_min``) with the margin policy."""
    out = {}
    for name in (n for n in judged if n in values):
        v = np.asarray(values[name], dtype=float)
        if _higher(name):
            out[f"{name}_min"] = [round(float(x) - DB_MARGIN, 4) for x in v]
        else:
            out[f"{name}_max"] = [round(float(x) * (1 + RELATIVE_MARGIN) + ABS_MARGIN.get(name, 0.02), 4) for x in v]
    return out


def exact_limits(values) -> list:
    """Per-clip log-mel ceilings of a deterministic golden stage: ``value * 1.10 + EXACT_MEL_L1_MARGIN``
    (the measured value is the precision's own error: ~0 in fp32, a few hundredths of a nat in bf16)."""
    return [round(float(x) * (1 + RELATIVE_MARGIN) + EXACT_MEL_L1_MARGIN, 4) for x in np.asarray(values, dtype=float)]


def detect_limit(sibling_limits: Dict[str, list], key: str) -> Dict[str, list]:
    """Per clip, the key metric a detected stage must reach: ``DETECT_FACTOR`` x the sibling's ceiling."""
    if f"{key}_max" in sibling_limits:
        return {f"{key}_detect_min": [round(x * DETECT_FACTOR, 4) for x in _as_list(sibling_limits[f"{key}_max"])]}
    return {f"{key}_detect_max": [round(x - DB_MARGIN * DETECT_FACTOR, 4)
                                  for x in _as_list(sibling_limits[f"{key}_min"])]}


def chain_detection(result, corrected_limits: Optional[Dict[str, list]], clip_names: Sequence[str],
                    key: str = "mel_l1") -> Dict[str, object]:
    """Whether the whole chain of a broken combination is asserted *detected*, as threshold-table fields.

    The chain's ``key`` metric must reach :func:`detect_limit` of the corrected combination's chain ceiling
    (:meth:`harness.judging.matrix.Combination.corrected`) times ``1 + CHAIN_DETECT_HEADROOM`` on every clip.

    Parameters
    ----------
    result : StageResult
        The broken combination's chain stage on the calibration clips.
    corrected_limits : dict or None
        The corrected combination's chain table (its ``{key}_max`` ceilings), None if it has none.
    clip_names : sequence of str
        Names of the clips, in the order of the result's values (named in the reason).

    Returns
    -------
    dict
        ``{"expected": "detect", "{key}_detect_min": [...], "detect_ratio_min": r}`` (``r``: the smallest
        per-clip ratio of the metric to its limit), or ``{"expected": "report", "not_asserted": reason}``.
    """
    if result.error is not None:
        return {"expected": "report", "not_asserted": f"the chain stopped: {result.error[:120]}"}
    if not corrected_limits or f"{key}_max" not in corrected_limits:
        return {"expected": "report", "not_asserted": "the corrected combination has no chain ceiling"}
    limit = detect_limit(corrected_limits, key)
    v = np.asarray(result.metrics[key], dtype=float)
    ratio = v / np.asarray(limit[f"{key}_detect_min"], dtype=float)
    if np.all(ratio >= 1 + CHAIN_DETECT_HEADROOM):
        return {"expected": "detect", **limit, "detect_ratio_min": round(float(ratio.min()), 4)}
    i = int(np.argmin(ratio))
    return {"expected": "report",
            "not_asserted": f"too close to the correct chain: {key} {v[i]:.3f} on {clip_names[i]} is "
                            f"{ratio[i]:.3f}x its detection limit (needs {1 + CHAIN_DETECT_HEADROOM:.2f}x on every clip)"}


def fit_relative(values: np.ndarray, references: np.ndarray, name: str, share: bool = False) -> Dict[str, float]:
    """Relative margin of one correct combination, stage and metric, from calibration clips.

    Parameters
    ----------
    values, references : ndarray [n_clips]
        The combination's figure and the reference combination's figure on the same clips.
    name : str
        Metric name (its direction comes from :mod:`harness.signal.metrics`; unknown names are lower-is-better).
    share : bool
        ``name`` is a deviation *from the reference's output* (the reference's own is 0), and
        ``references`` the reference's loss it is measured against (``ref_mel_l1`` against the VAE's
        round-trip ``mel_l1``): the margin is a share of that loss.

    Returns
    -------
    dict
        ``{name}_ratio`` (>= 1) and ``{name}_offset`` (>= 0, in the metric's unit) for a
        lower-is-better metric: the smallest envelope ``max(ratio * r, r + offset)`` above every
        calibration clip; ``{name}_share`` (>= 0) for a share: the largest ``v / r``;
        ``{name}_offset_db`` (>= 0) for a higher-is-better one (dB below the reference: the largest
        deficit plus :data:`DB_TAIL_SPREADS` standard deviations of the deficits).
    """
    v, r = np.asarray(values, dtype=float), np.asarray(references, dtype=float)
    if share:
        return {f"{name}_share": round(float(np.max(np.where(r > 1e-9, v / np.maximum(r, 1e-9), 0.0))), 4)}
    if _higher(name):
        deficit = r - v
        return {f"{name}_offset_db": round(max(0.0, float(np.max(deficit) + DB_TAIL_SPREADS * np.std(deficit))), 4)}
    ratio = np.where(r > 1e-9, v / np.maximum(r, 1e-9), 1.0)
    return {f"{name}_ratio": round(max(1.0, float(np.max(ratio))), 4),
            f"{name}_offset": round(max(0.0, float(np.max(v - r))), 4)}


def _ceiling(margins: Dict[str, float], name: str, r: np.ndarray, share: bool = False) -> np.ndarray:
    if share:
        return margins.get(f"{name}_share", 0.0) * r * (1 + RELATIVE_HEADROOM) + ABS_MARGIN.get(name, 0.02)
    env = np.maximum(margins.get(f"{name}_ratio", 1.0) * r, r + margins.get(f"{name}_offset", 0.0))
    return env * (1 + RELATIVE_HEADROOM) + ABS_MARGIN.get(name, 0.02)


def _floor(margins: Dict[str, float], name: str, r: np.ndarray) -> np.ndarray:
    return r - margins.get(f"{name}_offset_db", 0.0) * (1 + RELATIVE_HEADROOM) - DB_MARGIN


def relative_limits(margins: Dict[str, float], reference: Dict[str, np.ndarray], expected: str, key: str,
                    correct_margins: Sequence[Dict[str, float]] = (), shares: Sequence[str] = ()) -> Dict[str, list]:
    """Per-clip limits from the reference combination's figures on the same clips.

    Parameters
    ----------
    margins : dict
        The combination's ``relative:`` table (:func:`fit_relative` keys); ``{}`` means the
        reference's own margin (ratio 1, offset 0).
    reference : dict metric -> ndarray [n_clips]
        The reference combination's figures at this stage.
    expected : {"pass", "detect"}
    key : str
        The key metric of the stage (detection is judged on it).
    correct_margins : sequence of dict
        ``detect`` only: the margins of the correct alternatives at this stage. A known mistake must
        reach ``DETECT_FACTOR`` x the loosest of their ceilings (and of the reference's own), so it is
        clearly outside the band where correct variants live.
    shares : sequence of str
        Metrics judged as a share of the reference figure given for them (``fit_relative(share=True)``).

    Returns
    -------
    dict
        Limits in :func:`judge`'s format: ``{m}_max`` / ``{m}_min`` for ``pass``,
        ``{key}_detect_min`` / ``{key}_detect_max`` for ``detect``.
    """
    if expected == "detect":
        r = np.asarray(reference[key], dtype=float)
        if _higher(key):
            floor = np.min([_floor(m, key, r) for m in [{}, *correct_margins]], axis=0)
            return {f"{key}_detect_max": list(floor - DB_MARGIN * DETECT_FACTOR)}
        ceiling = np.max([_ceiling(m, key, r, key in shares) for m in [{}, *correct_margins]], axis=0)
        return {f"{key}_detect_min": list(ceiling * DETECT_FACTOR)}
    out = {}
    for name, r in reference.items():
        r = np.asarray(r, dtype=float)
        if _higher(name):
            out[f"{name}_min"] = list(_floor(margins, name, r))
        else:
            out[f"{name}_max"] = list(_ceiling(margins, name, r, name in shares))
    return out


#: the endings of a relative table's margin fields (:func:`fit_relative`)
MARGIN_SUFFIXES = ("_ratio", "_offset", "_share", "_offset_db")


def relative_key(combo_id: str, stage: str) -> str:
    """Table name of a combination's relative margins: ``relative:<combination>:<stage>``."""
    return f"relative:{combo_id}:{stage}"


def select_clips(limits: Dict[str, list], index: List[int]) -> Dict[str, list]:
    """Per-clip limits of the clips at ``index`` (a general limit, one value, stays as it is)."""
    return {k: ([_as_list(v)[i] for i in index] if len(_as_list(v)) > 1 else v) for k, v in limits.items()}


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


class Bound(Word):
    """How a limit bounds its metric; the suffix of its field name in a table (``mel_l1_max``, ``snr_min``,
    ``mel_l1_detect_min``). ``max``/``min``: a correct stage's ceiling / floor; ``detect_min``/``detect_max``:
    what a known mistake must reach."""

    MAX = "max"
    MIN = "min"
    DETECT_MIN = "detect_min"
    DETECT_MAX = "detect_max"

    @property
    def sign(self) -> str:
        """``<=`` or ``>=``: how a value must compare with a limit of this bound."""
        return "<=" if self in (Bound.MAX, Bound.DETECT_MAX) else ">="

    @property
    def detects(self) -> bool:
        """A known mistake's detection limit (not a correct stage's)."""
        return self in (Bound.DETECT_MIN, Bound.DETECT_MAX)


#: fields that end like a limit but are not one (the chain detection's measured separation)
NOT_LIMITS = frozenset({"detect_ratio_min"})


def parse_limit(key: str) -> Optional[Tuple[str, Bound]]:
    """``(metric, bound)`` of a limit field of a threshold table, or None for any other field.

    ``"mel_l1_max"`` -> ``("mel_l1", Bound.MAX)``; ``"mel_l1_detect_min"`` -> ``("mel_l1", Bound.DETECT_MIN)``;
    ``"measured_mel_l1"``, ``"expected"``, ``"mel_l1_ratio"``, ``"detect_ratio_min"`` -> None.
    """
    if key in NOT_LIMITS or key.startswith("measured_"):
        return None
    for bound in (Bound.DETECT_MIN, Bound.DETECT_MAX, Bound.MAX, Bound.MIN):
        if key.endswith("_" + bound.value):
            return key[: -len(bound.value) - 1], bound
    return None


def limit_field(metric: str, bound: Bound) -> str:
    """The field name of a limit: ``limit_field("mel_l1", Bound.MAX) == "mel_l1_max"``."""
    return f"{metric}_{Bound(bound).value}"


def limits_of(entry: Dict, detection: bool = True) -> Dict[str, list]:
    """The limit fields of a threshold table (:func:`parse_limit`); without ``detection``, a correct stage's only."""
    out = {}
    for key, value in entry.items():
        parsed = parse_limit(key)
        if parsed is not None and (detection or not parsed[1].detects):
            out[key] = value
    return out


def _broadcast(limit, kind: str, n: int) -> np.ndarray:
    """Per-clip limits apply clip by clip; on other clips (a user's files) the most demanding general
    limit applies: the loosest ceiling/floor a correct clip needed, the strictest detection margin."""
    lim = np.asarray(_as_list(limit), dtype=float)
    if len(lim) == n:
        return lim
    pick = {"max": lim.max, "min": lim.min, "detect_min": lim.max, "detect_max": lim.min}[kind]
    return np.full(n, pick())


@dataclass(frozen=True)
class Figure:
    """One judged metric of one stage: its value on the clip closest to (or first over) its limit.

    ``bound`` (:class:`Bound`) is ``max`` / ``min`` (a correct stage's ceiling / floor) or ``detect_min`` /
    ``detect_max`` (what a known mistake must reach). ``headroom_pct`` is the room left before the verdict
    flips, in % of the limit: 30 means 30 % to spare, a negative value a breach.
    """

    metric: str
    clip: Optional[str]
    value: float
    limit: float
    bound: Bound
    ok: bool

    @property
    def sign(self) -> str:
        """``<=`` or ``>=``: how the value must compare with the limit."""
        return Bound(self.bound).sign

    @property
    def headroom_pct(self) -> float:
        """Room before the verdict flips, in % of the limit (negative: over it)."""
        room = self.limit - self.value if self.sign == "<=" else self.value - self.limit
        return float(100.0 * room / abs(self.limit)) if self.limit else float("inf") if room > 0 else -float("inf")

    def row(self) -> Tuple[str, str, str, str]:
        """``(metric [clip], value, threshold, verdict)``: a line of the failure table."""
        label = self.metric if self.clip is None else f"{self.metric} [{self.clip}]"
        return label, f"{self.value:.4g}", f"{self.sign} {self.limit:.4g}", "ok" if self.ok else "FAIL"


def figures(stage_result, limits: Dict[str, list], clip_names: Optional[List[str]] = None) -> List[Figure]:
    """The :class:`Figure` of each metric of ``stage_result`` that ``limits`` judge.

    Parameters
    ----------
    stage_result : StageResult
        Per-clip values ``metrics[name] : ndarray [n_clips]`` (no error).
    limits : dict
        ``<metric>_max`` / ``_min`` / ``_detect_min`` / ``_detect_max`` -> per-clip list or one value.
    clip_names : list of str, optional
        Names of the clips, in the values' order (named in each figure).

    Returns
    -------
    list of Figure
        One per judged metric, on its first failing clip, else on the clip with the least headroom.
        A non-finite value fails.
    """
    out = []
    for key, limit in limits.items():
        parsed = parse_limit(key)
        if parsed is None or parsed[0] not in stage_result.metrics:
            continue
        name, kind = parsed
        v = np.asarray(stage_result.metrics[name], dtype=float)
        lim = _broadcast(limit, kind.value, len(v))
        below = kind.sign == "<="
        bad = ~(v <= lim) if below else ~(v >= lim)
        i = int(np.argmax(bad)) if bad.any() else int(np.argmax(v - lim if below else lim - v))
        clip = clip_names[i] if clip_names is not None and len(clip_names) == len(v) else None
        out.append(Figure(name, clip, float(v[i]), float(lim[i]), kind, bool(not bad.any() and np.all(np.isfinite(v)))))
    return out


def judge(stage_result, limits: Dict[str, list], expected: str,
          clip_names: Optional[List[str]] = None) -> Tuple[bool, List[Tuple[str, str, str, str]]]:
    """Compare a stage result with its limits.

    Returns ``(ok, rows)``; rows are ``(metric [clip], worst value, threshold, verdict)`` for the table,
    the worst clip of each metric (the first failing one, if any): :meth:`Figure.row` of :func:`figures`.
    ``ok`` means the stage behaved as expected: passed every limit (``pass``), or missed the detect
    limit on every clip / raised an error (``detect``). ``report`` stages are always ok.
    """
    if expected == "report":
        return True, []
    if stage_result.error is not None:
        return expected == "detect", [("error", stage_result.error[:90], "-",
                                       "detected" if expected == "detect" else "FAIL")]
    judged = figures(stage_result, limits, clip_names)
    rows = [f.row() for f in judged]
    if expected == "detect" and not judged:  # a mistake is never "detected" by default
        return False, [("no metric", "-", ", ".join(limits) or "no limits", "FAIL")]
    return all(f.ok for f in judged), rows


def chain_detections(thresholds: Dict) -> List[str]:
    """The combination ids whose whole chain calibration asserts *detected* (:func:`chain_detection`)."""
    return [key[: -len(":chain")] for key, entry in thresholds.items()
            if key.endswith(":chain") and isinstance(entry, dict) and "detect_ratio_min" in entry
            and entry.get("expected") == "detect"]


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
    """``{table: {key: value}}`` as TOML text (scalars and flat lists), ``header`` as leading comments."""
    lines = [f"# {line}" for line in header.splitlines()]
    for table, body in data.items():
        lines.append("")
        lines.append(f"[{table}]" if table.replace("_", "").isalnum() else f"[{json.dumps(table)}]")
        for k, v in body.items():
            key = k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)
            lines.append(f"{key} = {_fmt(v)}")
    return "\n".join(lines) + "\n"


def file_name(dtype: str = "fp32") -> str:
    """Name of the thresholds file of a precision, beside the others in a golden directory.

    ``fp32`` -> ``thresholds.toml``; ``bf16`` -> ``thresholds-bf16.toml``; ``fp16`` -> ``thresholds-fp16.toml``.
    Limits calibrated in one precision are never applied to another: a bf16 run has its own.
    """
    return "thresholds.toml" if dtype in ("fp32", "float32") else f"thresholds-{dtype}.toml"


#: the thresholds file's format (``[meta] format``; a file without it is format 1): docs/thresholds-format.md
FORMAT = 1
#: the tables every file has besides the judged ones
FIXED_TABLES = ("meta", "policy", "exact_snr_db")


class ThresholdTable(dict):
    """A thresholds file: its tables by name (``{"meta": {...}, "audioldm2-scaled-hifigan:vae": {...}, ...}``), as
    :func:`load` reads it or as calibration builds it, with the lookups by what a table is for.

    It is the dict the TOML file holds (the ``harness_thresholds`` fixture's, read as in the file); the methods
    below build the table names (:func:`table_key`, :func:`relative_key`) so that no caller spells them.

    Usage::

        table = thresholds.load("golden/tiny/thresholds.toml")
        table.scope                                         # "all"
        table.limits_table("audioldm2-scaled-hifigan", "vae")["mel_l1_max"]
        table.relative_table("audioldm2-sample-hifigan", "vae")   # margins, or None
    """

    @property
    def meta(self) -> Dict:
        """``[meta]``: provenance (model, scope, dtype, device, kernel path, weights hash, clips, ...)."""
        return self.get("meta", {})

    @property
    def scope(self) -> Optional[str]:
        """What the calibration measured (:data:`harness.vocabulary.SCOPES`), None where it is not recorded."""
        return self.meta.get("scope")

    def limits_table(self, target_id: str, stage: str) -> Optional[Dict]:
        """The table of a combination or golden target at ``stage`` (``"<id>:<stage>"``), None without one."""
        return self.get(table_key(target_id, stage))

    def relative_table(self, target_id: str, stage: str) -> Optional[Dict]:
        """The relative table of a combination at ``stage`` (``"relative:<id>:<stage>"``), None without one."""
        return self.get(relative_key(target_id, stage))

    def unjudgeable(self, target_id: str, stage: str) -> Optional[str]:
        """Why ``target_id`` (a combination or golden-target id) cannot be judged at ``stage`` with this model, if
        calibration found so (random weights: a known mistake that only trained weights reveal); else None."""
        entry = self.limits_table(target_id, stage) or self.relative_table(target_id, stage) or {}
        return entry.get("unjudgeable")

    def judged_tables(self) -> Dict[str, Dict]:
        """Every table but :data:`FIXED_TABLES`."""
        return {k: v for k, v in self.items() if k not in FIXED_TABLES}

    @classmethod
    def of(cls, tables: Dict[str, Dict]) -> "ThresholdTable":
        """``tables`` as a :class:`ThresholdTable`: itself when it is one, else a (shallow) copy, e.g. of the tables
        calibration is building."""
        return tables if isinstance(tables, cls) else cls(tables)


def load(path: str | Path) -> ThresholdTable:
    """Read a thresholds file (``tomllib``); a file of a newer :data:`FORMAT` is refused (:class:`GoldenError`)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no thresholds; run `harness thresholds --calibrate --golden-dir "
                                f"{path.parent}`")
    data = tomllib.loads(path.read_text())
    written = data.get("meta", {}).get("format", 1)
    if not isinstance(written, int) or written > FORMAT:
        raise GoldenError(f"{path}: thresholds format {written!r}, but this harness reads format {FORMAT} and "
                          f"older: upgrade audioldm2-harness, or re-calibrate with `harness thresholds --calibrate "
                          f"--golden-dir {path.parent}`")
    return ThresholdTable(data)


def check_weights(data: Dict[str, Dict], manifest: Dict, path: str | Path) -> None:
    """Raise :class:`harness.errors.GoldenError` when the thresholds ``data`` (read from ``path``) were
    calibrated on other weights than those the goldens' ``manifest`` was made with: their limits describe
    another model. Files without a recorded hash are not checked."""
    calibrated, made = data.get("meta", {}).get("weights_sha256"), manifest.get("weights_sha256")
    if calibrated and made and calibrated != made:
        meta = data["meta"]
        raise GoldenError(f"{path}: calibrated on weights {calibrated[:12]}, but the goldens beside it were made "
                          f"with {made[:12]}: re-calibrate with `harness thresholds --calibrate --model "
                          f"{meta.get('model', 'MODEL')} --dtype {meta.get('dtype', 'fp32')} --golden-dir "
                          f"{Path(path).parent}`")


def check_kernel_path(data: Dict[str, Dict], current: str, path: str | Path) -> None:
    """Raise :class:`harness.errors.GoldenError` when low-precision thresholds ``data`` (read from ``path``)
    were calibrated on another kernel path than ``current`` (:func:`harness.machine.kernel_path`).

    bf16 and fp16 figures move between kernel paths by more than any margin that would still catch the
    subtler mistakes (32 Griffin-Lim iterations amplify it), so such limits are refused with the command
    that calibrates this machine's, never applied as quality failures. fp32 limits travel, between CPUs and
    from a CPU to a GPU and back (their margins absorb BLAS differences): a chain loaded in fp32 on CUDA
    computes in IEEE fp32 with TF32 off (:func:`harness.model.loading.disable_tf32`), and the sample-exact
    floor is the same on both (:data:`EXACT_SNR_DB`). Files without a recorded kernel path are not checked.
    """
    meta = data.get("meta", {})
    recorded = meta.get("kernel_path")
    if meta.get("dtype", "fp32") == "fp32" or not recorded or recorded == current:
        return

    raise GoldenError(f"{path}: {meta['dtype']} limits calibrated on kernel path {recorded!r}, but this run computes "
                      f"on {current!r}, whose {meta['dtype']} figures differ: calibrate this machine's with "
                      f"`harness thresholds --calibrate --model {meta.get('model', 'MODEL')} --dtype {meta['dtype']} "
                      f"--device {meta.get('device', 'cpu')} --golden-dir {Path(path).parent}` "
                      "(or run in fp32, whose limits hold across machines)")


def table_key(combo_id: str, stage: str) -> str:
    """The threshold table of a combination's stage: ``"<combo id>:<stage>"``."""
    return f"{combo_id}:{stage}"


def golden_target_id(stage: str, name: str) -> str:
    """The id a golden stage of one variant is tabled under, like a combination's: ``golden-<stage>-<variant>``
    (its table is then ``table_key(golden_target_id(stage, name), stage)``)."""
    return f"golden-{stage}-{name}"


def write(path: str | Path, tables: Dict[str, Dict], meta: Dict) -> Path:
    """Write calibrated ``tables`` with ``meta`` (provenance) and the policy constants to ``path``; returns it."""
    header = ("Quality thresholds of the reconstruction chain. Written by `harness thresholds --calibrate`;\n"
              "do not edit by hand: re-calibrate, and review the diff like code.")
    policy = {"relative_margin": RELATIVE_MARGIN, "abs_margin_mel_l1": ABS_MARGIN["mel_l1"],
              "exact_mel_l1_margin": EXACT_MEL_L1_MARGIN,
              "abs_margin_lsd": ABS_MARGIN["lsd"], "abs_margin_mrstft": ABS_MARGIN["mrstft"],
              "db_margin": DB_MARGIN, "detect_factor": DETECT_FACTOR, "relative_headroom": RELATIVE_HEADROOM,
              "db_tail_spreads": DB_TAIL_SPREADS,
              "chain_detect_headroom": CHAIN_DETECT_HEADROOM}
    meta = {**meta, "calibrated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "format": FORMAT}
    exact = {k: v for k, v in EXACT_SNR_DB.items()}
    # atomically: a calibration killed while writing leaves the previous file, never half a table
    return atomic.write_text(path, dump_toml({"meta": meta, "policy": policy, "exact_snr_db": exact, **tables}, header))


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
        for bound in (Bound.MAX, Bound.DETECT_MIN):
            k = limit_field("mel_l1", bound)
            if k in entry:
                lim = np.asarray(_as_list(entry[k]), dtype=float)
                limit = f"{bound.sign} {lim.min():.3f}..{lim.max():.3f}"
        lines.append(f"{key:58s} {entry['expected']:8s} {value:>28s}  {limit}")
    return "\n".join(lines)


