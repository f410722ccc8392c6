"""Calibration: measuring what the thresholds are made of, and the false-alarm / miss rates.

:func:`calibrate` writes a golden directory's thresholds (absolute per-clip limits from the goldens,
relative margins from :func:`calibrate_relative` on a broad code-made set); the false alarms and misses
of judged records are counted by :func:`harness.judging.verdicts.verdict_rates`. The measuring itself is :class:`harness.judging.quality.MatrixRun`'s; the judging :func:`harness.judging.thresholds.judge`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm.auto import tqdm

from harness import machine
from harness.errors import CalibrationError
from harness.vocabulary import GOLDEN_STAGES, SCOPES, versions_line
from harness.signal import synth
from harness.judging import golden as golden_mod
from harness.judging import matrix, thresholds
from harness.judging.quality import MatrixRun, exact_key, precision
from harness.judging.stages import GOLDEN_REFERENCE, JUDGED, SHARE_OF, golden_variant_names
from harness.judging.verdicts import judge_relative, relative_references


def calibrate_relative(chain, clips: Dict[str, np.ndarray], progress: bool = True) -> Tuple[Dict[str, Dict], List[str]]:
    """Fit the relative margins of every correct combination and stage on ``clips``.

    Returns ``(tables, problems)``: ``relative:<combination>:<stage>`` tables of
    :func:`harness.judging.thresholds.fit_relative` keys, and a line per known mistake that the resulting
    limits do not detect on some clip (calibration must then fail, not write a blind threshold).
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
            for name, r in relative_references(stage, ref).items():
                if name in res.metrics:
                    table.update(thresholds.fit_relative(res.metrics[name], r, name, name in SHARE_OF))
            tables[thresholds.relative_key(combo.id, stage)] = table
    for combo in combos:
        for stage, exp in combo.verdicts().items():
            if exp != "detect":
                continue
            verdict = judge_relative(tables, combo, stage, run.result(combo)[stage],
                                     run.result(combo.reference(stage))[stage], run.clip_names)
            if not verdict.ok:
                _not_detected(tables[thresholds.relative_key(combo.id, stage)], random_weights, problems,
                              f"{combo.id} {stage}: known mistake NOT detected relative to "
                              f"{combo.reference(stage).id}: {verdict.rows}")
    return tables, problems


#: why a known mistake may be invisible on a model of random weights
RANDOM_REASON = ("random weights: this known mistake changes nothing a random VAE/vocoder responds to (only a "
                 "trained model reveals it); judge it on trained weights")


def _random(chain) -> bool:
    return chain.source is not None and chain.source.random_weights


def _not_detected(entry: Dict, random_weights: bool, problems: List[str], problem: str) -> None:
    """A known mistake calibration cannot detect: on random weights a fact about the model, recorded in its
    table as ``unjudgeable`` (the test skips with the reason); on trained weights a calibration problem."""
    if random_weights:
        entry["unjudgeable"] = RANDOM_REASON
    else:
        problems.append(problem)


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
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    gset = golden_mod.load(golden_dir)
    random_weights = _random(chain)
    run = MatrixRun(chain, gset, judged_only=True)
    combos = {"golden": [], "reference": [c for c in matrix.combinations() if c.culprit() is None]}.get(
        scope, matrix.combinations())
    chains = [c for c in combos if c.chain_judgeable()] if scope in ("chain", "all") else []
    if progress:
        print(plan(len(combos), len(chains), len(run.clip_names), scope), file=sys.stderr)
    tables: Dict[str, Dict] = {}
    problems = []
    results = {}
    for i, c in enumerate(tqdm(combos, desc="calibrate", disable=not progress)):
        started = time.perf_counter()
        results[c.id] = run.result(c)
        if i == 0 and progress and len(combos) > 1:  # the first one also computes what the others share: an upper bound
            took = time.perf_counter() - started
            print(f"\nthe first combination took {took:.0f} s: the {len(combos)} take at most about "
                  f"{took * len(combos) / 60:.0f} min", file=sys.stderr)
    # pass limits first, so detect limits can refer to their siblings
    for combo in combos:
        for stage, exp in combo.verdicts().items():
            r = results[combo.id][stage]
            entry = {"expected": exp, **{f"measured_{k}": [round(float(x), 4) for x in v]
                                         for k, v in r.metrics.items() if k in JUDGED[stage]}}
            if exp == "pass":
                if r.error:
                    problems.append(f"{combo.id} {stage}: expected to pass but failed: {r.error}")
                    continue
                entry.update(thresholds.pass_limits(r.metrics, JUDGED[stage]))
            if r.error:
                entry["error"] = r.error[:200]
            tables[thresholds.table_key(combo.id, stage)] = entry
    # the whole chain of an upstream mistake heard through HiFi-GAN: asserted where clearly separated
    for combo in tqdm(chains, desc="calibrate (chain of mistakes)", disable=not progress):
        r = run.result(combo, upto="chain")["chain"]
        entry = tables[thresholds.table_key(combo.id, "chain")]
        entry.update({f"measured_{k}": [round(float(x), 4) for x in v] for k, v in r.metrics.items()
                      if k in JUDGED["chain"]})
        entry.update(thresholds.chain_detection(r, tables.get(thresholds.table_key(combo.corrected().id, "chain")),
                                                run.clip_names))
    for combo in combos:
        for stage, exp in combo.verdicts().items():
            if exp != "detect":
                continue
            entry = tables[thresholds.table_key(combo.id, stage)]
            sib = tables.get(thresholds.table_key(combo.sibling(stage).id, stage), {})
            key = JUDGED[stage][0]
            lim = thresholds.detect_limit(sib, key)
            entry.update(lim)
            r = results[combo.id][stage]
            if r.error is None:
                ok, _ = thresholds.judge(r, lim, "detect")
                if not ok:
                    _not_detected(entry, random_weights, problems, f"{combo.id} {stage}: known mistake NOT "
                                  f"detectable: {key} {np.round(r.metrics[key], 3).tolist()} vs detect limit {lim}")
    def calibrated(stage: str) -> List[str]:
        # the reference scope leaves the known mistakes out of the golden stages too: at real size their decodes
        # and round trips cost minutes (their tests then skip, naming --scope absolute)
        return [n for n in golden_variant_names(stage)
                if scope != "reference" or matrix.golden_expected(stage, n) != "detect"]

    gres = {stage: run.golden(chain, gset, [stage], calibrated(stage))[stage] for stage in GOLDEN_STAGES}
    ek = exact_key(chain)
    for stage, by_name in gres.items():
        for name, r in by_name.items():
            exp = matrix.golden_expected(stage, name)
            judged = ["mel_l1"]
            entry = {"expected": exp, **{f"measured_{k}": [round(float(x), 4) for x in v]
                                         for k, v in r.metrics.items()}}
            if r.error:
                entry["error"] = r.error[:200]
            if exp == "pass" and not r.error:
                entry.update(thresholds.pass_limits(r.metrics, judged))
                if stage == "vocoder" and name == "hifigan":  # sample-exact: phase is reproduced here
                    entry["snr_min"] = [thresholds.EXACT_SNR_DB[ek]] * len(r.metrics["snr"])
                    entry["correlation_min"] = [thresholds.EXACT_CORRELATION[precision(chain)]] * len(r.metrics["snr"])
                if stage == "decode":  # deterministic: only float noise (and the precision's own error) is allowed
                    entry["mel_l1_max"] = thresholds.exact_limits(r.metrics["mel_l1"])
            tables[thresholds.table_key(thresholds.golden_target_id(stage, name), stage)] = entry
    for stage, by_name in gres.items():
        for name, r in by_name.items():
            entry = tables[thresholds.table_key(thresholds.golden_target_id(stage, name), stage)]
            if entry["expected"] != "detect":
                continue
            ref = GOLDEN_REFERENCE[stage]
            lim = thresholds.detect_limit(tables[thresholds.table_key(thresholds.golden_target_id(stage, ref), stage)], "mel_l1")
            entry.update(lim)
            if r.error is None and not thresholds.judge(r, lim, "detect")[0]:
                _not_detected(entry, random_weights, problems, f"golden {stage} {name}: known mistake NOT "
                              f"detectable: {np.round(r.metrics['mel_l1'], 3).tolist()} vs {lim}")
    if scope == "all":
        if relative_clips is None:
            if not synth.have_espeak():
                # without speech the set is another one, and the margins would silently describe other audio
                raise CalibrationError(
                    "calibration --scope all speaks its speech clips with espeak-ng, which is not installed "
                    "(Debian/Ubuntu: apt-get install espeak-ng); or calibrate --scope absolute")
            relative_clips = dict(synth.judging_set("calibration", progress=progress))
        rel_tables, rel_problems = calibrate_relative(chain, relative_clips, progress)
        tables.update(rel_tables)
        problems += rel_problems
    meta = {"model": chain.source.spec if chain.source else "?", "golden_dir": str(golden_dir), "scope": scope,
            "random_weights": random_weights,
            "relative_clips": sorted(relative_clips or {}),
            "weights_sha256": gset.manifest["weights_sha256"], "exact_key": ek,
            "clips": run.clip_names, "problems": problems}
    meta.update(device=chain.device.type, dtype=precision(chain), kernel_path=machine.kernel_path(str(chain.device)),
                versions=versions_line())
    path = Path(out or Path(golden_dir) / thresholds.file_name(meta["dtype"]))
    thresholds.write(path, tables, meta)
    if problems:
        raise CalibrationError("calibration found problems (also written to [meta].problems):\n  "
                               + "\n  ".join(problems))
    return path


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


