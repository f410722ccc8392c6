"""Calibration: measuring what the thresholds are made of, and the false-alarm / miss rates.

:func:`calibrate` writes a golden directory's thresholds (absolute per-clip limits from the goldens,
relative margins from :func:`calibrate_relative` on a broad code-made set); the false alarms and misses
of judged records are counted by :meth:`harness.judging.verdicts.Judge.rates`. The measuring itself is :class:`harness.judging.quality.MatrixRun`'s; the judging :func:`harness.judging.thresholds.judge`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm.auto import tqdm

from harness import machine
from harness.errors import CalibrationError
from harness.vocabulary import GOLDEN_STAGES, SCOPES, versions_line
from harness.signal import synth
from harness.judging import golden as golden_mod
from harness.judging import matrix, thresholds
from harness.judging.quality import MatrixRun, exact_key, precision
from harness.judging.stages import GOLDEN_REFERENCE, JUDGED, SHARE_OF, StageResult, golden_variant_names
from harness.judging.verdicts import Judge


def calibrate_relative(chain, clips: Dict[str, np.ndarray], progress: bool = True,
                       absolute: Optional[Dict[str, Dict]] = None) -> Tuple[Dict[str, Dict], List[str]]:
    """Fit the relative margins of every correct combination and stage on ``clips``.

    Returns ``(tables, problems)``: ``relative:<combination>:<stage>`` tables of
    :func:`harness.judging.thresholds.fit_relative` keys, and a line per known mistake that the resulting
    limits do not detect on some clip (calibration must then fail, not write a blind threshold). A mistake
    that ``absolute`` (the tables of this calibration's golden set) asserts detected at the same stage is no
    problem: it is caught wherever a stored baseline exists, and on other audio it is *not separable* on some
    clips, a fact about this model (MusicLDM's scaling factor of 1.0753 makes a forgotten factor a 7.5 %
    change) recorded in its relative table as ``not_separable``, with the figures.
    """
    run = MatrixRun(chain, clips, judged_only=True)
    random_weights = _random(chain)
    combos = matrix.combinations()
    tables: Dict[str, Dict] = {}
    problems: List[str] = []
    for combo in tqdm(combos, desc="calibrate (relative)", disable=not progress):
        for stage, exp in combo.verdicts().items():
            if exp != "pass":
                continue
            res, ref = run.result(combo)[stage], run.result(combo.reference(stage))[stage]
            if res.error or ref.error:
                problems.append(f"{combo.id} {stage}: a correct combination failed: {res.error or ref.error}")
                continue
            table: Dict[str, float] = {}
            for name, r in Judge.references(stage, ref).items():
                if name in res.metrics:
                    table.update(thresholds.fit_relative(res.metrics[name], r, name, name in SHARE_OF))
            tables[thresholds.relative_key(combo.id, stage)] = table
    # the correct combinations' margins judge the mistakes (a mistake's own table, added below, holds none)
    judge = Judge(tables)
    for combo in combos:
        for stage, exp in combo.verdicts().items():
            if exp != "detect":
                continue
            verdict = judge.relative(combo, stage, run.result(combo)[stage],
                                     run.result(combo.reference(stage))[stage], run.clip_names)
            if not verdict.ok:
                problem = (f"{combo.id} {stage}: known mistake NOT detected relative to "
                           f"{combo.reference(stage).id}: {verdict.rows}")
                fields, missed = _undetected(random_weights, problem)
                if missed and _asserted_with_baseline(absolute, combo.id, stage):
                    fields, missed = {"not_separable": _not_separable(verdict, run.clip_names)}, []
                    if progress:
                        print(f"note: {combo.id}:{stage}: not separable on files without a stored baseline: "
                              f"{fields['not_separable']}", file=sys.stderr)
                # a known mistake has no margins of its own: its table exists only to say why it is not judged
                tables.setdefault(thresholds.relative_key(combo.id, stage), {}).update(fields)
                problems += missed
    return tables, problems


def _asserted_with_baseline(absolute: Optional[Dict[str, Dict]], combo_id: str, stage: str) -> bool:
    """Whether the golden set's tables assert ``combo_id`` detected at ``stage`` (a detection limit, judgeable)."""
    entry = (absolute or {}).get(thresholds.table_key(combo_id, stage), {})
    return (entry.get("expected") == "detect" and "unjudgeable" not in entry
            and any(parsed is not None and parsed[1].detects for parsed in map(thresholds.parse_limit, entry)))


def _not_separable(verdict, clip_names: List[str]) -> str:
    """The reason a known mistake is not judged on audio without a baseline: its figure on the calibration clip
    where it came closest to the correct band."""
    worst = next((row for row in verdict.rows if row[-1] == "FAIL"), verdict.rows[0] if verdict.rows else None)
    figure = f" ({worst[0]} {worst[1]}, needs {worst[2]})" if worst else ""
    return (f"within the correct band on some of the {len(clip_names)} calibration clips{figure}: on this model "
            "the mistake changes some audio too little to tell without a stored baseline; asserted detected "
            "on the golden set")


#: why a known mistake may be invisible on a model of random weights
RANDOM_REASON = ("random weights: this known mistake changes nothing a random VAE/vocoder responds to (only a "
                 "trained model reveals it); judge it on trained weights")


def _random(chain) -> bool:
    return chain.source is not None and chain.source.random_weights


def _undetected(random_weights: bool, problem: str) -> Tuple[Dict[str, str], List[str]]:
    """A known mistake calibration cannot detect: on random weights a fact about the model, recorded in its
    table as ``unjudgeable`` (the test skips with the reason); on trained weights a calibration problem.

    Returns
    -------
    (dict, list of str)
        The fields to add to the mistake's table (``{"unjudgeable": RANDOM_REASON}`` on random weights, else
        none), and the problems (``[problem]`` on trained weights, else none).
    """
    if random_weights:
        return {"unjudgeable": RANDOM_REASON}, []
    return {}, [problem]


def calibrate(chain, golden_dir: str | Path, out: Optional[str | Path] = None, progress: bool = True,
              relative_clips: Optional[Dict[str, np.ndarray]] = None, scope: str = "all") -> Path:
    """Measure the combinations and golden stages and write the thresholds of the chain's precision
    (``thresholds.toml`` for fp32, ``thresholds-bf16.toml`` ...: :func:`harness.judging.thresholds.file_name`).

    Per-clip (absolute) limits come from the golden set; the relative margins from ``relative_clips``
    (default: ``harness.signal.synth.judging_set("calibration")``, a broad set the validation split never sees).
    Only what is judged is computed: a broken combination up to its culprit stage, and its whole chain
    when HiFi-GAN follows the mistake (:func:`harness.judging.thresholds.chain_detection` decides there).

    ``scope="golden"`` measures the golden stages only (seconds instead of minutes; the matrix tests then
    fail for want of limits, naming the full calibration); ``scope="absolute"`` every combination on the
    golden set (what ``pytest`` judges; no whole-chain tests of known mistakes are then generated, and
    ``harness matrix`` on files without a baseline refuses, naming the full calibration); ``"chain"`` adds
    the whole chains of the known front-end/VAE mistakes heard through HiFi-GAN; ``"all"`` the relative
    margins too (:data:`harness.vocabulary.SCOPES`). What it will compute is printed first; the progress bars time it.

    Returns
    -------
    Path
        The thresholds file written. The problems found (a correct stage that failed, a known mistake not
        detected on trained weights) are written to its ``[meta].problems``, then raised: CalibrationError.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    # 1. the golden set, and what the scope measures on it (printed first)
    gset = golden_mod.load(golden_dir)
    random_weights = _random(chain)
    run = MatrixRun(chain, gset, judged_only=True)
    combos, chains = _scope_combinations(scope)
    if progress:
        print(plan(len(combos), len(chains), len(run.clip_names), scope), file=sys.stderr)
    # 2. the clip matrix: pass limits first, so that the detection limits can refer to their siblings
    results = _measure_combinations(run, combos, progress)
    tables, problems = _pass_limits(combos, results)
    tables.update(_chain_of_mistakes(run, chains, tables, progress))
    detected, missed = _detection_limits(combos, results, tables, random_weights)
    tables.update(detected)
    problems += missed
    # 3. the golden stages: the correct variants' pass limits, then the known mistakes' detection limits
    golden = _measure_golden_stages(chain, run, gset, scope)
    golden_tables = _golden_pass_limits(chain, golden)
    detected, missed = _golden_detection_limits(golden, golden_tables, random_weights)
    tables.update({**golden_tables, **detected})
    problems += missed
    # 4. the relative margins, which judge audio without a stored baseline
    if scope == "all":
        relative_clips = _relative_clips(progress) if relative_clips is None else relative_clips
        relative, missed = calibrate_relative(chain, relative_clips, progress, absolute=tables)
        tables.update(relative)
        problems += missed
    # 5. the thresholds file, with what it was measured on; the problems are raised once written
    meta = _provenance(chain, gset, golden_dir, scope, run.clip_names, relative_clips, problems)
    path = Path(out or Path(golden_dir) / thresholds.file_name(meta["dtype"]))
    thresholds.write(path, tables, meta)
    if problems:
        raise CalibrationError("calibration found problems (also written to [meta].problems):\n  "
                               + "\n  ".join(problems))
    return path


def _scope_combinations(scope: str) -> Tuple[List[matrix.Combination], List[matrix.Combination]]:
    """What a calibration of ``scope`` measures on the clip matrix.

    Returns
    -------
    (list of Combination, list of Combination)
        The combinations measured (none for ``golden``, the correct ones for ``reference``, every one
        otherwise), and those whose whole chain is decided too (``chain`` and ``all`` only).
    """
    combos = {"golden": [], "reference": [c for c in matrix.combinations() if c.culprit() is None]}.get(
        scope, matrix.combinations())
    chains = [c for c in combos if c.chain_judgeable()] if scope in ("chain", "all") else []
    return combos, chains


def _measure_combinations(run: MatrixRun, combos: List[matrix.Combination],
                          progress: bool) -> Dict[str, Dict[str, StageResult]]:
    """Each combination on the golden clips, up to what is judged (a broken one up to its culprit stage),
    under the ``calibrate`` progress bar; the first one's time is printed as a bound on the rest.

    Returns
    -------
    dict
        ``{combination id: {clip stage: StageResult}}``.
    """
    results = {}
    for i, c in enumerate(tqdm(combos, desc="calibrate", disable=not progress)):
        started = time.perf_counter()
        results[c.id] = run.result(c)
        if i == 0 and progress and len(combos) > 1:  # the first one also computes what the others share: an upper bound
            took = time.perf_counter() - started
            print(f"\nthe first combination took {took:.0f} s: the {len(combos)} take at most about "
                  f"{took * len(combos) / 60:.0f} min", file=sys.stderr)
    return results


def _measured(metrics: Dict[str, np.ndarray], judged: Optional[Sequence[str]] = None) -> Dict[str, list]:
    """The ``measured_<metric>`` fields of a table: per-clip values to 4 decimals, of ``judged`` metrics only
    when given."""
    return {f"measured_{k}": [round(float(x), 4) for x in v] for k, v in metrics.items()
            if judged is None or k in judged}


def _pass_limits(combos: List[matrix.Combination],
                 results: Dict[str, Dict[str, StageResult]]) -> Tuple[Dict[str, Dict], List[str]]:
    """Each combination's table at each clip stage: what it measured, and the pass limits where it is correct.

    Returns
    -------
    (dict, list of str)
        ``<combination>:<stage>`` tables (``expected``, ``measured_<metric>``, the ``<metric>_max`` /
        ``<metric>_min`` limits of a stage expected to pass, ``error`` of another stage that raised), and a line
        per stage expected to pass that failed (its table then left out).
    """
    tables: Dict[str, Dict] = {}
    problems: List[str] = []
    for combo in combos:
        for stage, exp in combo.verdicts().items():
            r = results[combo.id][stage]
            entry = {"expected": exp, **_measured(r.metrics, JUDGED[stage])}
            if exp == "pass":
                if r.error:
                    problems.append(f"{combo.id} {stage}: expected to pass but failed: {r.error}")
                    continue
                entry.update(thresholds.pass_limits(r.metrics, JUDGED[stage]))
            if r.error:
                entry["error"] = r.error[:200]
            tables[thresholds.table_key(combo.id, stage)] = entry
    return tables, problems


def _chain_of_mistakes(run: MatrixRun, chains: List[matrix.Combination], tables: Dict[str, Dict],
                       progress: bool) -> Dict[str, Dict]:
    """The whole chain of each upstream mistake heard through HiFi-GAN, asserted detected where clearly separated
    from its corrected combination's chain (:func:`harness.judging.thresholds.chain_detection`).

    Returns
    -------
    dict
        The ``<combination>:chain`` table of each of ``chains``: its table in ``tables`` with the chain's
        ``measured_<metric>`` and the decision (``expected`` and the detection limit, or ``not_asserted``).
    """
    found: Dict[str, Dict] = {}
    for combo in tqdm(chains, desc="calibrate (chain of mistakes)", disable=not progress):
        r = run.result(combo, upto="chain")["chain"]
        key = thresholds.table_key(combo.id, "chain")
        corrected = tables.get(thresholds.table_key(combo.corrected().id, "chain"))
        found[key] = {**tables[key], **_measured(r.metrics, JUDGED["chain"]),
                      **thresholds.chain_detection(r, corrected, run.clip_names)}
    return found


def _detection_limits(combos: List[matrix.Combination], results: Dict[str, Dict[str, StageResult]],
                      tables: Dict[str, Dict], random_weights: bool) -> Tuple[Dict[str, Dict], List[str]]:
    """The limit each known mistake must reach at its culprit stage: its sibling's pass limit times the detect
    factor (:func:`harness.judging.thresholds.detect_limit`), checked against what the mistake measured.

    Returns
    -------
    (dict, list of str)
        The ``<combination>:<stage>`` table of each stage expected to detect: its table in ``tables`` with the
        ``<metric>_detect_min`` / ``_detect_max`` limit (and ``unjudgeable`` where random weights hide the
        mistake), and a line per mistake the limit does not detect on trained weights.
    """
    found: Dict[str, Dict] = {}
    problems: List[str] = []
    for combo in combos:
        for stage, exp in combo.verdicts().items():
            if exp != "detect":
                continue
            key = JUDGED[stage][0]
            sib = tables.get(thresholds.table_key(combo.siblings(stage)[0].id, stage), {})
            lim = thresholds.detect_limit(sib, key)
            entry = {**tables[thresholds.table_key(combo.id, stage)], **lim}
            r = results[combo.id][stage]
            if r.error is None and not thresholds.judge(r, lim, "detect")[0]:
                fields, missed = _undetected(random_weights, f"{combo.id} {stage}: known mistake NOT detectable: "
                                             f"{key} {np.round(r.metrics[key], 3).tolist()} vs detect limit {lim}")
                entry.update(fields)
                problems += missed
            found[thresholds.table_key(combo.id, stage)] = entry
    return found, problems


def _measure_golden_stages(chain, run: MatrixRun, gset, scope: str) -> Dict[str, Dict[str, StageResult]]:
    """Each variant's golden stages (:data:`GOLDEN_STAGES`); the ``reference`` scope leaves the known mistakes
    out: at real size their decodes and round trips cost minutes (their tests then skip, naming
    ``--scope absolute``).

    Returns
    -------
    dict
        ``{golden stage: {variant name: StageResult}}``.
    """
    def calibrated(stage: str) -> List[str]:
        return [n for n in golden_variant_names(stage)
                if scope != "reference" or matrix.golden_expected(stage, n) != "detect"]

    return {stage: run.golden(chain, gset, [stage], calibrated(stage))[stage] for stage in GOLDEN_STAGES}


def _golden_key(stage: str, name: str) -> str:
    """The threshold table of variant ``name`` at golden ``stage``."""
    return thresholds.table_key(thresholds.golden_target_id(stage, name), stage)


def _golden_pass_limits(chain, golden: Dict[str, Dict[str, StageResult]]) -> Dict[str, Dict]:
    """Each variant's table at each golden stage: what it measured, and the limits of a correct variant.

    A correct variant's ``mel_l1`` ceiling is the margin policy's, except at the deterministic decode (only float
    noise and the precision's own error: :func:`harness.judging.thresholds.exact_limits`); HiFi-GAN's vocoder
    stage, sample-exact, adds the SNR and correlation floors of the chain's device and precision.

    Returns
    -------
    dict
        ``golden-<stage>-<variant>:<stage>`` tables (``expected``, ``measured_<metric>``, ``error`` where the
        stage raised, the limits of a variant expected to pass).
    """
    ek = exact_key(chain)
    tables: Dict[str, Dict] = {}
    for stage, by_name in golden.items():
        for name, r in by_name.items():
            exp = matrix.golden_expected(stage, name)
            entry = {"expected": exp, **_measured(r.metrics)}
            if r.error:
                entry["error"] = r.error[:200]
            if exp == "pass" and not r.error:
                entry.update(thresholds.pass_limits(r.metrics, ["mel_l1"]))
                if stage == "vocoder" and name == "hifigan":  # sample-exact: phase is reproduced here
                    entry["snr_min"] = [thresholds.EXACT_SNR_DB[ek]] * len(r.metrics["snr"])
                    entry["correlation_min"] = [thresholds.EXACT_CORRELATION[precision(chain)]] * len(r.metrics["snr"])
                if stage == "decode":  # deterministic: only float noise (and the precision's own error) is allowed
                    entry["mel_l1_max"] = thresholds.exact_limits(r.metrics["mel_l1"])
            tables[_golden_key(stage, name)] = entry
    return tables


def _golden_detection_limits(golden: Dict[str, Dict[str, StageResult]], tables: Dict[str, Dict],
                             random_weights: bool) -> Tuple[Dict[str, Dict], List[str]]:
    """The ``mel_l1`` each known mistake must reach at a golden stage: the stage's reference variant's ceiling
    (:data:`harness.judging.stages.GOLDEN_REFERENCE`, in ``tables``) times the detect factor.

    Returns
    -------
    (dict, list of str)
        The golden table of each variant expected to detect: its table in ``tables`` with the
        ``mel_l1_detect_min`` limit (and ``unjudgeable`` where random weights hide the mistake), and a line per
        mistake the limit does not detect on trained weights.
    """
    found: Dict[str, Dict] = {}
    problems: List[str] = []
    for stage, by_name in golden.items():
        for name, r in by_name.items():
            if tables[_golden_key(stage, name)]["expected"] != "detect":
                continue
            lim = thresholds.detect_limit(tables[_golden_key(stage, GOLDEN_REFERENCE[stage])], "mel_l1")
            entry = {**tables[_golden_key(stage, name)], **lim}
            if r.error is None and not thresholds.judge(r, lim, "detect")[0]:
                fields, missed = _undetected(random_weights, f"golden {stage} {name}: known mistake NOT "
                                             f"detectable: {np.round(r.metrics['mel_l1'], 3).tolist()} vs {lim}")
                entry.update(fields)
                problems += missed
            found[_golden_key(stage, name)] = entry
    return found, problems


def _relative_clips(progress: bool) -> Dict[str, np.ndarray]:
    """The calibration clip set of the relative margins (:func:`harness.signal.synth.judging_set`).

    Returns
    -------
    dict
        ``{clip name: float32 waveform}``. Raises :class:`harness.errors.CalibrationError` without espeak-ng:
        without speech the set is another one, and the margins would silently describe other audio.
    """
    if not synth.have_espeak():
        raise CalibrationError(
            "calibration --scope all speaks its speech clips with espeak-ng, which is not installed "
            "(Debian/Ubuntu: apt-get install espeak-ng); or calibrate --scope absolute")
    return dict(synth.judging_set("calibration", progress=progress))


def _provenance(chain, gset, golden_dir: str | Path, scope: str, clip_names: List[str],
                relative_clips: Optional[Dict[str, np.ndarray]], problems: List[str]) -> Dict[str, object]:
    """What the thresholds were measured on and with, and the problems found.

    Returns
    -------
    dict
        The ``[meta]`` table: model, golden directory, scope, whether the weights are random, the clips (golden
        and relative), the weights' hash, the exact key, the problems, device, dtype, kernel path and versions.
    """
    meta = {"model": chain.source.spec if chain.source else "?", "golden_dir": str(golden_dir), "scope": scope,
            "random_weights": _random(chain),
            "relative_clips": sorted(relative_clips or {}),
            "weights_sha256": gset.manifest["weights_sha256"], "exact_key": exact_key(chain),
            "clips": clip_names, "problems": problems}
    meta.update(device=chain.device.type, dtype=precision(chain), kernel_path=machine.kernel_path(str(chain.device)),
                versions=versions_line())
    return meta


def plan(n_combos: int, n_chains: int, n_clips: int, scope: str) -> str:
    """What a calibration of ``scope`` computes, and what it leaves to a wider scope, in one paragraph."""
    will = ["the golden stages of the correct variants" if scope == "reference" else
            "the golden stages of every variant"]
    if n_combos:
        will.append(f"{n_combos} combinations on {n_clips} golden clips (each up to its culprit stage)")
    if n_chains:
        will.append(f"the whole chain of {n_chains} known mistakes heard through HiFi-GAN")
    if scope == "all":
        will.append("the relative margins on the calibration clip set, speech made with espeak-ng (the longest part)")
    wider = {"golden": "--scope reference: the correct combinations' limits, which judge your own variants",
             "reference": "--scope absolute: also the known mistakes (110 combinations and those of the golden "
                          "stages), asserted detected (about 8x the combinations)",
             "absolute": "--scope chain: also the whole chains of the known mistakes (about a quarter more)",
             "chain": "--scope all: also the relative margins for audio without a stored baseline "
                      "(`harness matrix` on your files; the longest part)"}.get(scope)
    return (f"calibrating ({scope}): " + "; ".join(will) + "."
            + (f" Not computed: {wider}." if wider else ""))


