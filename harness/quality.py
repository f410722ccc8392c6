"""Measuring the matrix on a golden set and the ``check()`` behind the fixture (calibration: :mod:`harness.calibration`)."""
from __future__ import annotations

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


def on_grid(clips: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Each clip on its own frame grid (normalised, then padded: :func:`harness.audio.pad_or_crop`). A clip of
    exactly 64 frames gets 4 more, so a transposed mel ``[b, 64, T]`` cannot pass the vocoder's shape check
    (:func:`harness.matrix.grid_frames`)."""
    from . import audio

    return {name: audio.pad_or_crop(x, matrix.grid_frames(len(x))) for name, x in clips.items()}


class MatrixRun:
    """Lazily evaluates combinations over every clip group and merges the per-clip values.

    Parameters
    ----------
    chain : Chain
    clips : GoldenSet or dict name -> float32 [samples]
        A golden set (its cases' waveforms and reference clips) or any named clips at 16 kHz.
    judged_only : bool
        By default, stop each broken combination at its culprit stage (the stages after it are only
        reported): most of the vocoder work is saved. A stage asked for by name is still computed.
    """

    def __init__(self, chain, clips, seed: int = 0, judged_only: bool = False):
        if isinstance(clips, golden_mod.GoldenSet):
            clips = golden_clips(clips)
        # one clip per evaluator: a clip's figures are then the same alone, in any set of clips, in any order
        # and in any process (batched kernels differ from unbatched ones by float round-off, which Griffin-Lim's
        # iterations amplify to ~1 %); random draws are seeded per item as well (:func:`harness.chain.item_generators`)
        self.evaluators = [matrix.Evaluator(chain, {name: x}, seed) for name, x in on_grid(clips).items()]
        self.clip_names = [n for e in self.evaluators for n in e.names]
        self.judged_only = judged_only
        self._cache: Dict[str, Tuple[int, Dict[str, StageResult]]] = {}  # id -> (depth computed, stages)
        self._golden: Dict[str, Dict[str, StageResult]] = {}

    def result(self, combo: Combination, upto: Optional[str] = None) -> Dict[str, StageResult]:
        """Every clip stage of ``combo`` up to ``upto`` (later ones :data:`harness.matrix.NOT_MEASURED`),
        the per-clip values of all clip groups concatenated in :attr:`clip_names` order. ``upto`` defaults
        to the chain, or under ``judged_only`` to a broken combination's culprit stage."""
        if upto is None:
            upto = combo.culprit() if self.judged_only and combo.culprit() else "chain"
        depth = matrix.CLIP_STAGES.index(upto)
        cached = self._cache.get(combo.id)
        if cached is None or cached[0] < depth:
            parts = [e.run(combo, keep_outputs=not self.judged_only, upto=upto) for e in self.evaluators]
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
        from . import evidence

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
                    evidence.write_evidence(directory, name.replace(":", "-"), e.reference_wave[i].cpu().numpy(),
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
    expected = combo.verdicts()[stage]
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

    def expected(self, combo: Combination, stage: str) -> str:
        """The verdict ``combo`` is judged by at ``stage``: :meth:`harness.matrix.Combination.verdicts`, except
        at the chain stage of a broken combination, which is ``detect`` where calibration found it clearly
        separated (:func:`harness.thresholds.chain_detection`) and otherwise skips the test with the reason
        calibration recorded (the mistake is asserted at its culprit stage either way)."""
        import pytest

        verdict = combo.verdicts()[stage]
        if verdict != "report":
            return verdict
        entry = self.thresholds.get(thresholds.table_key(combo.id, stage), {})
        if entry.get("expected") == "detect":
            return "detect"
        why = entry.get("not_asserted", "these thresholds hold no chain-stage decision for it: re-run "
                                        "`harness thresholds --calibrate`")
        pytest.skip(f"{combo.id} at chain: not asserted ({why}); the mistake is asserted at stage "
                    f"'{combo.culprit()}'")

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
