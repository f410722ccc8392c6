"""Measuring the matrix on a golden set, calibrating thresholds, and the ``check()`` behind the fixture."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import golden as golden_mod
from . import matrix, thresholds
from .matrix import Combination, StageResult


def golden_clips(gset: golden_mod.GoldenSet) -> Dict[str, np.ndarray]:
    """Every clip of a golden set with a baseline: ``golden:<case>`` waveforms and ``clip:<name>`` clips."""
    return {**{f"golden:{c.name}": c.audio for c in gset.cases}, **{f"clip:{n}": x for n, x in gset.clips.items()}}


def clip_groups(clips: Dict[str, np.ndarray]) -> List[Dict[str, np.ndarray]]:
    """Clips on the frame grid (normalised, then padded: :func:`harness.audio.pad_or_crop`), grouped by
    length, one batch per group. A clip of exactly 64 frames gets 4 more, so a transposed mel
    ``[b, 64, T]`` cannot pass the vocoder's shape check (:func:`harness.matrix.grid_frames`)."""
    from . import audio

    groups: Dict[int, Dict[str, np.ndarray]] = defaultdict(dict)
    for name, x in clips.items():
        x = audio.pad_or_crop(x, matrix.grid_frames(len(x)))
        groups[len(x)][name] = x
    return list(groups.values())


class MatrixRun:
    """Lazily evaluates combinations over every clip group and merges the per-clip values.

    Parameters
    ----------
    chain : Chain
    clips : GoldenSet or dict name -> float32 [samples]
        A golden set (its cases' waveforms and reference clips) or any named clips at 16 kHz.
    judged_only : bool
        Stop each broken combination at its culprit stage (:meth:`harness.matrix.Evaluator.run`).
    """

    def __init__(self, chain, clips, seed: int = 0, judged_only: bool = False):
        if isinstance(clips, golden_mod.GoldenSet):
            clips = golden_clips(clips)
        self.evaluators = [matrix.Evaluator(chain, g, seed) for g in clip_groups(clips)]
        self.clip_names = [n for e in self.evaluators for n in e.names]
        self.judged_only = judged_only
        self._cache: Dict[str, Tuple[int, Dict[str, StageResult]]] = {}  # id -> (depth computed, stages)
        self._golden: Dict[str, Dict[str, StageResult]] = {}

    def result(self, combo: Combination, upto: str = "chain") -> Dict[str, StageResult]:
        """Every clip stage of ``combo`` up to ``upto`` (later ones :data:`harness.matrix.NOT_MEASURED`),
        the per-clip values of all clip groups concatenated in :attr:`clip_names` order."""
        depth = matrix.CLIP_STAGES.index(upto)
        cached = self._cache.get(combo.id)
        if cached is None or cached[0] < depth:
            parts = [e.run(combo, keep_outputs=not self.judged_only, judged_only=self.judged_only, upto=upto)
                     for e in self.evaluators]
            merged = {}
            for stage in matrix.CLIP_STAGES:
                errs = [p[stage].error for p in parts if p[stage].error]
                if errs:
                    merged[stage] = StageResult({}, errs[0])
                else:
                    keys = set.intersection(*[set(p[stage].metrics) for p in parts])
                    merged[stage] = StageResult({k: np.concatenate([p[stage].metrics[k] for p in parts])
                                                 for k in sorted(keys)})
            self._cache[combo.id] = cached = (depth, merged)
        return cached[1]

    def evidence(self, combo: Combination):
        """A callable ``write(directory, clips=None)`` writing the input/output WAVs and the mel PNG of each
        clip named in ``clips`` (default: every clip) into ``directory``."""
        from . import report

        def write(directory: Path, clips: Optional[Sequence[str]] = None) -> None:
            self.result(combo)
            for e in self.evaluators:
                o = e.outputs.get(combo.id, {})
                for i, name in enumerate(e.names):
                    if clips is not None and name not in clips:
                        continue
                    wave_out = o["wave_out"][i].cpu().numpy() if "wave_out" in o else None
                    mel_out = o["mel_out"][i, 0].cpu().numpy() if "mel_out" in o and \
                        not isinstance(o["mel_out"], Exception) else None
                    report.write_evidence(directory, name.replace(":", "-"), e.reference_wave[i].cpu().numpy(),
                                          wave_out, e.reference_mel[i, 0].cpu().numpy(), mel_out)
        return write

    def golden(self, chain, gset, stages: Sequence[str] = matrix.GOLDEN_STAGES) -> Dict[str, Dict[str, StageResult]]:
        """Golden stage isolation results of the named ``stages`` (each computed once)."""
        missing = [s for s in stages if s not in self._golden]
        if missing:
            self._golden.update(golden_results(chain, gset, stages=missing))
        return {s: self._golden[s] for s in stages}


@dataclass
class Verdict:
    """How one combination behaved at one stage on some clips, and under which policy."""

    ok: bool
    rows: list
    policy: str   # "absolute" (per-clip baseline), "relative" (to the reference on the same clip), "none"
    source: str   # whose limits or margins judged it


def relative_references(stage: str, reference: StageResult) -> Dict[str, np.ndarray]:
    """The reference's figure each judged metric of ``stage`` is compared with: its own value, or for
    a share metric (:data:`harness.matrix.SHARE_OF`) the reference's loss it is a share of."""
    return {name: reference.metrics[matrix.SHARE_OF.get(name, name)] for name in matrix.JUDGED[stage]
            if matrix.SHARE_OF.get(name, name) in reference.metrics}


def judge_relative(thresholds_data: Dict, combo: Combination, stage: str, result: StageResult,
                   reference: StageResult, clip_names: Optional[List[str]] = None) -> Verdict:
    """Judge ``combo`` at ``stage`` against the reference combination's figures on the same clips.

    ``result`` and ``reference`` hold the same clips (``combo`` and ``combo.reference(stage)`` at
    ``stage``). The limits come from :func:`harness.thresholds.relative_stage_limits`; the verdict
    from :func:`harness.thresholds.judge`.
    """
    expected = combo.expected()[stage]
    if expected == "report":
        return Verdict(True, [], "none", "")
    if reference.error is not None and result.error is None:
        return Verdict(expected == "pass", [("reference failed", reference.error[:90], "-", "not judged")],
                       "none", combo.reference(stage).id)
    judged = relative_references(stage, reference)
    key = next(name for name in matrix.JUDGED[stage] if name in judged)
    limits, source = thresholds.relative_stage_limits(thresholds_data, combo, stage, expected, key, judged,
                                                      list(matrix.SHARE_OF))
    ok, rows = thresholds.judge(result, limits, expected, clip_names)
    return Verdict(ok, rows, "relative", source)


def calibrate_relative(chain, clips: Dict[str, np.ndarray], progress: bool = True) -> Tuple[Dict[str, Dict], List[str]]:
    """Fit the relative margins of every correct combination and stage on ``clips``.

    Returns ``(tables, problems)``: ``relative:<combination>:<stage>`` tables of
    :func:`harness.thresholds.fit_relative` keys, and a line per known mistake that the resulting
    limits do not detect on some clip (calibration must then fail, not write a blind threshold).
    """
    from tqdm.auto import tqdm

    run = MatrixRun(chain, clips, judged_only=True)
    random_weights = _random(chain)
    combos = matrix.combinations()
    tables: Dict[str, Dict] = {}
    problems: List[str] = []
    for combo in tqdm(combos, desc="calibrate (relative)", disable=not progress):
        for stage, exp in combo.expected().items():
            if exp != "pass":
                continue
            res, ref = run.result(combo)[stage], run.result(combo.reference(stage))[stage]
            if res.error or ref.error:
                problems.append(f"{combo.id} {stage}: a correct combination failed: {res.error or ref.error}")
                continue
            table: Dict[str, float] = {}
            for name, r in relative_references(stage, ref).items():
                if name in res.metrics:
                    table.update(thresholds.fit_relative(res.metrics[name], r, name, name in matrix.SHARE_OF))
            tables[thresholds.relative_key(combo.id, stage)] = table
    for combo in combos:
        for stage, exp in combo.expected().items():
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


def golden_results(chain, gset: golden_mod.GoldenSet, seed: int = 0, stages: Sequence[str] = matrix.GOLDEN_STAGES):
    """The golden stages (:func:`harness.matrix.golden_stages`) of every case of ``gset``, batched over the cases."""
    lat = np.stack([c.latents for c in gset.cases])
    mel = np.stack([c.mel for c in gset.cases])
    wav = np.stack([c.audio for c in gset.cases])
    return matrix.golden_stages(chain, lat, mel, wav, seed, stages)


def exact_key(chain) -> str:
    """``device-dtype`` of the chain (``cpu-fp32``, ``cuda-bf16``): the key of the sample-exact floors."""
    dev = chain.device.type
    dt = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}[
        str(next(chain.vocoder.parameters()).dtype)]
    return f"{dev}-{dt}"


#: what a calibration measures (see :func:`calibrate`)
SCOPES = ("all", "absolute", "golden")


def calibrate(chain, golden_dir: str | Path, out: Optional[str | Path] = None, progress: bool = True,
              relative_clips: Optional[Dict[str, np.ndarray]] = None, scope: str = "all") -> Path:
    """Measure the combinations and golden stages and write the thresholds of the chain's precision
    (``thresholds.toml`` for fp32, ``thresholds-bf16.toml`` ...: :func:`harness.thresholds.file_name`).

    Per-clip (absolute) limits come from the golden set; the relative margins from ``relative_clips``
    (default: ``harness.synth.judging_set("calibration")``, a broad set the validation split never sees).
    Only what is judged is computed: a broken combination up to its culprit stage.

    ``scope="golden"`` measures the golden stages only (seconds instead of minutes; the matrix tests then
    fail for want of limits, naming the full calibration); ``scope="absolute"`` every combination on the
    golden set but no relative margins (what ``pytest`` judges; ``harness matrix`` on files without a
    baseline then refuses, naming the full calibration).
    """
    from tqdm.auto import tqdm

    from . import synth

    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    gset = golden_mod.load(golden_dir)
    random_weights = _random(chain)
    run = MatrixRun(chain, gset, judged_only=True)
    combos = matrix.combinations() if scope != "golden" else []
    tables: Dict[str, Dict] = {}
    problems = []
    results = {c.id: run.result(c) for c in tqdm(combos, desc="calibrate", disable=not progress)}
    # pass limits first, so detect limits can refer to their siblings
    for combo in combos:
        for stage, exp in combo.expected().items():
            r = results[combo.id][stage]
            entry = {"expected": exp, **{f"measured_{k}": [round(float(x), 4) for x in v]
                                         for k, v in r.metrics.items() if k in matrix.JUDGED[stage]}}
            if exp == "pass":
                if r.error:
                    problems.append(f"{combo.id} {stage}: expected to pass but failed: {r.error}")
                    continue
                entry.update(thresholds.pass_limits(r.metrics, matrix.JUDGED[stage]))
            if r.error:
                entry["error"] = r.error[:200]
            tables[thresholds.table_key(combo.id, stage)] = entry
    for combo in combos:
        for stage, exp in combo.expected().items():
            if exp != "detect":
                continue
            entry = tables[thresholds.table_key(combo.id, stage)]
            sib = tables.get(thresholds.table_key(combo.sibling(stage).id, stage), {})
            key = matrix.JUDGED[stage][0]
            lim = thresholds.detect_limit(sib, key)
            entry.update(lim)
            r = results[combo.id][stage]
            if r.error is None:
                ok, _ = thresholds.judge(r, lim, "detect")
                if not ok:
                    _not_detected(entry, random_weights, problems, f"{combo.id} {stage}: known mistake NOT "
                                  f"detectable: {key} {np.round(r.metrics[key], 3).tolist()} vs detect limit {lim}")
    gres = golden_results(chain, gset)
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
                    entry["correlation_min"] = [thresholds.EXACT_CORRELATION[ek.split("-")[1]]] * len(r.metrics["snr"])
                if stage == "decode":  # deterministic: only float noise is allowed
                    entry["mel_l1_max"] = [max(x, 1e-3) for x in entry["mel_l1_max"]]
            tables[thresholds.table_key(f"golden-{stage}-{name}", stage)] = entry
    for stage, by_name in gres.items():
        for name, r in by_name.items():
            entry = tables[thresholds.table_key(f"golden-{stage}-{name}", stage)]
            if entry["expected"] != "detect":
                continue
            ref = {"decode": "scaled", "roundtrip": "scaled", "vocoder": "hifigan", "frontend": "audioldm2"}[stage]
            lim = thresholds.detect_limit(tables[thresholds.table_key(f"golden-{stage}-{ref}", stage)], "mel_l1")
            entry.update(lim)
            if r.error is None and not thresholds.judge(r, lim, "detect")[0]:
                _not_detected(entry, random_weights, problems, f"golden {stage} {name}: known mistake NOT "
                              f"detectable: {np.round(r.metrics['mel_l1'], 3).tolist()} vs {lim}")
    if scope == "all":
        if relative_clips is None:
            relative_clips = dict(synth.judging_set("calibration", progress=progress))
        rel_tables, rel_problems = calibrate_relative(chain, relative_clips, progress)
        tables.update(rel_tables)
        problems += rel_problems
    meta = {"model": chain.source.spec if chain.source else "?", "golden_dir": str(golden_dir), "scope": scope,
            "random_weights": random_weights,
            "relative_clips": sorted(relative_clips or {}),
            "weights_sha256": gset.manifest["weights_sha256"], "exact_key": ek,
            "clips": run.clip_names, "problems": problems}
    meta.update(device=ek.split("-")[0], dtype=ek.split("-")[1])
    path = Path(out or Path(golden_dir) / thresholds.file_name(meta["dtype"]))
    thresholds.write(path, tables, meta)
    if problems:
        raise thresholds.CalibrationError("calibration found problems (also written to [meta].problems):\n  "
                                          + "\n  ".join(problems))
    return path


class QualityCheck:
    """Judges one stage of one combination against the thresholds; writes evidence on failure.

    The logic behind the ``harness_quality`` fixture (see :mod:`harness.plugin`).
    """

    def __init__(self, thresholds_data: Dict, report_dir: Optional[Path] = None, allow_missing: bool = False,
                 golden_dir: Optional[Path] = None):
        self.thresholds = thresholds_data
        self.golden_dir = golden_dir  # named in a failure: where to re-baseline after an intended change
        self.report_dir = Path(report_dir) if report_dir else None
        self.allow_missing = allow_missing

    def limits(self, combo, stage: str, expected: str):
        """The limits ``combo`` is judged by at ``stage`` for verdict ``expected`` (:func:`harness.thresholds.limits_for_verdict`)."""
        return thresholds.limits_for_verdict(self.thresholds, combo, stage, expected, matrix.JUDGED[stage][0])

    def check(self, combo: Combination, stage: str, result: StageResult, expected: str, clip_names=None,
              evidence=None) -> None:
        """Assert ``result`` behaved as ``expected``; on failure raise AssertionError with a table.

        ``evidence`` is an optional callable ``evidence(dir, clips) -> None`` that writes WAVs/PNGs of the
        failing ``clips`` (``None``: all), e.g. :meth:`MatrixRun.evidence`.
        """
        __tracebackhide__ = True  # a failure shows the user's test, not this frame
        import pytest

        reason = thresholds.unjudgeable(self.thresholds, combo.id, stage) if expected == "detect" else None
        if reason:
            pytest.skip(f"{combo.id} at {stage}: {reason}")
        limits, source = self.limits(combo, stage, expected)
        if limits is None:
            message = (f"no thresholds for {combo.id}:{stage} (nor its sibling {source}); "
                       "run `harness thresholds --calibrate`")
            if self.allow_missing:
                pytest.skip(message)
            pytest.fail(message + " (or pass --allow-missing-goldens to skip)", pytrace=False)
        ok, rows = thresholds.judge(result, limits, expected, clip_names)
        if ok:
            return
        table = format_table(rows, stage)
        failing = sorted({r[0].split(" [", 1)[1].rstrip("]") for r in rows if r[-1] == "FAIL" and " [" in r[0]})
        where = ""
        if self.report_dir is not None and evidence is not None:
            d = self.report_dir / f"{combo.id}-{stage}"
            d.mkdir(parents=True, exist_ok=True)
            evidence(d, failing or None)
            where = f"\nevidence: {d} (input and output WAVs, mel figure with the difference)"
        what = "lost quality" if expected == "pass" else "was NOT detected (a known mistake now passes)"
        clips = f"\nclip: {', '.join(failing)}" if failing else ""
        fix = ("\nthe model itself changed on purpose? re-baseline: harness thresholds --calibrate --golden-dir="
               f"{self.golden_dir}" if self.golden_dir is not None else "")
        raise AssertionError(f"{combo.id} {what} at stage '{stage}' (limits from {source}):\n{table}{clips}{where}"
                             f"{fix}")


@dataclass(frozen=True)
class GoldenTarget:
    """A golden stage of one variant, keyed like a combination (``golden-vocoder-hifigan``)."""

    stage: str
    name: str

    @property
    def id(self) -> str:
        """``golden-<stage>-<variant>``: the threshold table's name."""
        return f"golden-{self.stage}-{self.name}"

    def sibling(self, stage: str) -> "GoldenTarget":
        """The reference variant of this golden stage (judged when this one has no table)."""
        return GoldenTarget(self.stage, matrix.GOLDEN_REFERENCE[self.stage])


def format_table(rows, stage: str) -> str:
    """A failure's table: ``(metric, worst value, threshold, verdict)`` rows, aligned, under the stage name."""
    head = ("metric", "worst value", "threshold", "verdict")
    rows = [head] + [tuple(str(x) for x in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"  stage {stage}"]
    for r in rows:
        lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(4)))
    return "\n".join(lines)


def verdict_rates(records: List[dict]) -> Dict[str, object]:
    """False alarms and misses of :func:`harness.report.matrix_records` output.

    A false alarm is a correct combination (expected ``pass`` everywhere) that is not ok; a miss is a
    broken combination whose culprit stage did not detect it. Returns counts, rates and the wrong records'
    ``file``/``combination``/failing stages.
    """
    correct = [r for r in records if r["expected"] == "pass"]
    broken = [r for r in records if r["expected"] == "detect"]

    def wrong(rs):
        return [{"file": r["file"], "combination": f"{r['frontend']}-{r['vae']}-{r['vocoder']}",
                 "stages": [s for s, v in r["stages"].items() if not v["ok"]]} for r in rs if not r["ok"]]

    fa, miss = wrong(correct), wrong(broken)
    return {"records": len(records), "correct": len(correct), "broken": len(broken),
            "false_alarms": len(fa), "misses": len(miss),
            "false_alarm_rate": len(fa) / max(1, len(correct)), "miss_rate": len(miss) / max(1, len(broken)),
            "wrong": fa + miss}
