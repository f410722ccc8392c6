"""Measuring the matrix on a golden set, and the answer to one check (:class:`QualityJudge`, a :class:`CheckOutcome`),
which the pytest fixture's :class:`harness.surfaces.quality_check.QualityCheck` acts on (calibration:
:mod:`harness.judging.calibration`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from harness import machine
from harness.vocabulary import (
    CLIP_STAGES, COMPONENT_AT, COMPONENT_NAMES, COMPONENTS, DEFAULTS, GOLDEN_STAGES, PROPERTY_PREFIX,
)
from harness.signal import audio
from harness.signal import metrics as metric_defs
from harness.judging import golden as golden_mod
from harness.judging import matrix, thresholds, verdicts
from harness.judging import evidence, hints
from harness.judging.matrix import Combination
from harness.judging.stages import (
    GOLDEN_COMPARED_WITH, GOLDEN_REFERENCE, GoldenInputs, StageResult, golden_pair, golden_result,
    golden_variant_names, is_builtin,
)



def golden_clips(gset: golden_mod.GoldenSet) -> Dict[str, np.ndarray]:
    """Every clip of a golden set with a baseline: ``golden:<case>`` waveforms and ``clip:<name>`` clips."""
    return {**{f"golden:{c.name}": c.audio for c in gset.cases}, **{f"clip:{n}": x for n, x in gset.clips.items()}}


def on_grid(clips: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Each clip on its own frame grid (normalised, then padded: :func:`harness.signal.audio.pad_or_crop`), with the
    16-bit resolution of a WAV file (:func:`harness.signal.audio.quantize_16bit`): a project's code that reads or
    writes its audio as 16-bit integers then sees exactly the samples it would, and a clip carries a real
    recording's noise floor instead of float-precision near-silence. A clip of exactly 64 frames gets 4 more,
    so a transposed mel ``[b, 64, T]`` cannot pass the vocoder's shape check (:func:`harness.signal.audio.grid_frames`)."""
    return {name: audio.quantize_16bit(audio.pad_or_crop(x, audio.grid_frames(len(x)))) for name, x in clips.items()}


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
    keep_outputs : bool, optional
        Keep every combination's mels and waveform for :meth:`evidence` (default: unless ``judged_only``);
        records without evidence need not, and memory then stays flat in the number of combinations.
    """

    def __init__(self, chain, clips, seed: int = 0, judged_only: bool = False, keep_outputs: Optional[bool] = None):
        if isinstance(clips, golden_mod.GoldenSet):
            clips = golden_clips(clips)
        # one clip per evaluator: a clip's figures are then the same alone, in any set of clips, in any order
        # and in any process (batched kernels differ from unbatched ones by float round-off, which Griffin-Lim's
        # iterations amplify to ~1 %); random draws are seeded per item as well (:func:`harness.model.chain.item_generators`)
        self.evaluators = [matrix.Evaluator(chain, {name: x}, seed) for name, x in on_grid(clips).items()]
        self.clip_names = [n for e in self.evaluators for n in e.names]
        self.judged_only = judged_only
        self.keep_outputs = not judged_only if keep_outputs is None else keep_outputs
        self._cache: Dict[str, Tuple[int, Dict[str, StageResult]]] = {}  # id -> (depth computed, stages)
        self._golden: Dict[str, Dict[str, StageResult]] = {}
        self.seed, self._golden_set, self._inputs = seed, None, None

    def result(self, combo: Combination, upto: Optional[str] = None) -> Dict[str, StageResult]:
        """Every clip stage of ``combo`` up to ``upto`` (later ones :data:`harness.judging.stages.NOT_MEASURED`),
        the per-clip values of all clip groups concatenated in :attr:`clip_names` order. ``upto`` defaults
        to the chain, or under ``judged_only`` to a broken combination's culprit stage."""
        if upto is None:
            upto = combo.culprit() if self.judged_only and combo.culprit() else "chain"
        depth = CLIP_STAGES.index(upto)
        cached = self._cache.get(combo.id)
        if cached is None or cached[0] < depth:
            parts = [e.run(combo, keep_outputs=self.keep_outputs, upto=upto) for e in self.evaluators]
            merged = {}
            for stage in CLIP_STAGES:
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
        """A callable ``write(directory, clips=None, against="input")`` writing the input/output WAVs and the
        mel PNG of each clip named in ``clips`` (default: every clip) into ``directory``; the figure's
        differences are taken against the mel the failing comparison used: the stage's ``"input"``, or the
        ``"correct call"``'s output (a VAE variant judged by its distance to the correct round trip)."""
        def write(directory: Path, clips: Optional[Sequence[str]] = None, against: str = "input") -> Optional[str]:
            self.result(combo)
            failures = [f for f in (e.failure(combo) for e in self.evaluators) if f is not None]
            for e in self.evaluators:
                o = e.outputs.get(combo.id, {})
                failed = e.failure(combo)
                for i, name in enumerate(e.names):
                    if clips is not None and name not in clips:
                        continue
                    wave_out = o["wave_out"][i].cpu().numpy() if "wave_out" in o else None
                    mel_out = o["mel_out"][i, 0].cpu().numpy() if "mel_out" in o and \
                        not isinstance(o["mel_out"], Exception) else None
                    correct = o.get("mel_correct")
                    correct = None if correct is None or against != "correct call" else correct[i, 0].cpu().numpy()
                    failure = None if failed is None else \
                        (failed[0], f"{type(failed[1]).__name__}: {failed[1]}",
                         _item(getattr(failed[1], "output", None), i, len(e.names)))
                    evidence.write_evidence(directory, name.replace(":", "-"), e.reference_wave[i].cpu().numpy(),
                                            wave_out, e.reference_mel[i, 0].cpu().numpy(), mel_out, correct, failure)
            if not failures:
                return None
            stage, exc = failures[0]
            if getattr(exc, "output", None) is None:
                return f"input WAV, mel figure of the input: the {stage} stage raised before returning an output"
            return (f"input WAV, mel figure of the input and of the {stage} stage's output as it came "
                    "(its shape or values refused)")
        return write

    def golden_evidence(self, chain, gset, stage: str, name: str):
        """A callable ``write(directory, clips=None, against=None) -> str`` writing, for each golden case named in
        ``clips``, the mel figure of variant ``name``'s output at golden ``stage`` against what that stage
        compares it with (and the WAVs where the stage has audio); it returns what it wrote."""
        def write(directory: Path, clips: Optional[Sequence[str]] = None, against: Optional[str] = None) -> str:
            inputs = self._golden_inputs(chain, gset)
            error = None
            try:
                output, reference = golden_pair(chain, inputs, stage, name)
            except Exception as exc:  # noqa: BLE001  the stage raised: draw what the component returned, if anything
                error = f"{type(exc).__name__}: {exc}"
                output = getattr(exc, "output", None)
                try:
                    reference = inputs.reference(chain, stage)
                except Exception:  # noqa: BLE001  the figure then says there is no reference
                    reference = None
            n = len(gset.cases)
            chosen = [i for i, case in enumerate(gset.cases) if clips is None or f"golden:{case.name}" in clips]
            for i in chosen:
                evidence.write_golden_evidence(directory, f"golden-{gset.cases[i].name}", stage, _item(output, i, n),
                                               reference, i, gset.cases[i].audio, error, inputs.input(stage)[i])
            write.hint = _golden_hint(stage, output, reference, chosen[0], n) if error is None and chosen else None
            return evidence.golden_description(stage, GOLDEN_COMPARED_WITH[stage], error is not None,
                                               output is not None)
        return write

    def golden(self, chain, gset, stages: Sequence[str] = GOLDEN_STAGES,
               names: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, StageResult]]:
        """Golden stage isolation results of the named ``stages``: of every variant each runs on, or of ``names``
        only (each variant at each stage computed once)."""
        inputs, out = self._golden_inputs(chain, gset), {}
        for s in stages:
            done = self._golden.setdefault(s, {})
            wanted = [n for n in golden_variant_names(s) if names is None or n in names]
            for n in wanted:
                if n not in done:
                    done[n] = golden_result(chain, inputs, s, n)
            out[s] = {n: done[n] for n in wanted}
        return out

    def _golden_inputs(self, chain, gset) -> GoldenInputs:
        """The golden cases on the chain's device, with what the golden stages compare with, made once per set
        (another set starts the golden results afresh)."""
        if self._golden_set is not gset:
            self._golden_set, self._inputs = gset, GoldenInputs.of(chain, *golden_arrays(gset), self.seed)
            self._golden = {}
        return self._inputs


def _golden_hint(stage: str, output, reference, i: int, n: int) -> Optional[hints.Hint]:
    """What the difference of golden case ``i``'s output from its reference looks like (:func:`hints.hint`); for a
    front-end against the closer of AudioLDM2's two framings, as it is judged. None where no hint can be told."""
    def as_array(x):
        return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)

    out = _item(output, i, n)
    if not hasattr(out, "shape"):  # a tuple, a list: the stage's own check names it
        return None
    out = as_array(out)
    refs = reference if stage == "frontend" else [reference]
    candidates = [as_array(r[i]) for r in refs]
    same = [r for r in candidates if r.shape == out.shape] or candidates
    ref = min(same, key=lambda r: float(np.abs(out - r).mean()) if r.shape == out.shape else np.inf)
    try:
        return hints.hint(stage, out, ref)
    except ValueError:  # arrays the hints cannot compare (the stage's own check names the problem)
        return None


def _item(output, i: int, n: int):
    """Item ``i`` of a component's output for a batch of ``n``, as it came: the whole output when it has no
    batch of ``n`` to index (a wrong shape is evidence too)."""
    if output is None:
        return None
    if isinstance(output, (list, tuple)) and len(output) == n:
        return output[i]
    shape = getattr(output, "shape", None)
    if shape is not None and len(shape) > 1 and shape[0] == n:
        return output[i]
    return output


def golden_arrays(gset: golden_mod.GoldenSet):
    """The golden cases stacked: latents ``[n, 8, T/4, 16]``, mels ``[n, T, 64]``, waveforms ``[n, samples]``."""
    return (np.stack([c.latents for c in gset.cases]), np.stack([c.mel for c in gset.cases]),
            np.stack([c.audio for c in gset.cases]))


def precision(chain) -> str:
    """``fp32``, ``bf16`` or ``fp16``: the dtype the chain computes in (its vocoder's; the VAE may be upcast)."""
    return {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}[
        str(next(chain.vocoder.parameters()).dtype)]


def exact_key(chain) -> str:
    """``device-dtype`` of the chain (``cpu-fp32``, ``cuda-bf16``): the key of the sample-exact floors."""
    return f"{chain.device.type}-{precision(chain)}"


#: the dependencies whose change since the goldens or the thresholds a failure names: each can move a figure
DRIFT_PACKAGES = ("torch", "diffusers", "transformers", "librosa", "numpy")


def _parse_versions(recorded) -> Dict[str, str]:
    """``{package: version}`` of a provenance record: a manifest's dict, or a thresholds file's
    ``"torch==2.13.0 diffusers==0.42.1 ..."`` line."""
    if isinstance(recorded, dict):
        return {str(k): str(v) for k, v in recorded.items()}
    if isinstance(recorded, str):
        return dict(part.split("==", 1) for part in recorded.split() if "==" in part)
    return {}


def dependency_drift(thresholds_meta: Optional[Dict], manifest: Optional[Dict],
                     installed: Optional[Dict[str, str]] = None) -> List[str]:
    """The dependencies installed now at other versions than the goldens or the thresholds were made with.

    Parameters
    ----------
    thresholds_meta : dict, optional
        The thresholds file's ``[meta]`` table (its ``versions`` line).
    manifest : dict, optional
        The goldens' ``manifest.json`` (its ``versions`` dict).
    installed : dict, optional
        ``{package: version}`` installed now (default: :func:`harness.machine.version` of each).

    Returns
    -------
    list of str
        One entry per changed package of :data:`DRIFT_PACKAGES`, ``"diffusers 0.41.0 -> 0.42.1 (goldens)"``,
        ``(goldens, thresholds)`` when both recorded the same old version; empty when nothing changed or
        nothing was recorded.
    """
    if installed is None:
        installed = {p: machine.version(p) for p in DRIFT_PACKAGES}
    records = (("goldens", _parse_versions((manifest or {}).get("versions"))),
               ("thresholds", _parse_versions((thresholds_meta or {}).get("versions"))))
    out = []
    for package in DRIFT_PACKAGES:
        now = installed.get(package)
        changed: Dict[str, List[str]] = {}
        for source, recorded in records:
            if package in recorded and now is not None and recorded[package] != now:
                changed.setdefault(recorded[package], []).append(source)
        for before, sources in changed.items():
            out.append(f"{package} {before} -> {now} ({', '.join(sources)})")
    return out


def _verdict(expected: str, ok: bool, error: Optional[str]) -> str:
    if expected == "detect":
        return "detected" if ok else "MISSED"
    return "pass" if ok else "FAIL"


@dataclass(frozen=True)
class CheckOutcome:
    """The answer to one check (:meth:`QualityJudge.answer`), with no test framework in it: the pytest fixture's
    :class:`harness.surfaces.quality_check.QualityCheck` turns it into a skip, a failure or a pass.

    Attributes
    ----------
    skip_reason : str, optional
        Why the stage is not judged with this model (calibration found it unjudgeable); nothing else is set.
    missing_limits : str, optional
        No limits judge the stage: what is missing and the command that makes them; nothing else is set.
    ok : bool
        The stage behaved as expected: within its limits, or a known mistake detected.
    properties : tuple of (str, object)
        The check's JUnit record, ``("harness_<field>", value)`` pairs in order; empty when nothing was judged.
    message : str, optional
        The whole failure message when not ``ok``: the table, the failing clips, the culprit, the evidence
        written, the fix and the dependencies changed since the goldens or the thresholds.
    """

    skip_reason: Optional[str] = None
    missing_limits: Optional[str] = None
    ok: bool = False
    properties: Tuple[Tuple[str, object], ...] = ()
    message: Optional[str] = None


@dataclass(frozen=True)
class Blame:
    """Where a failure is laid: ``cause``, the earlier stage of the same combination it follows from (if any);
    ``culprit``, the component named; ``upstream_slip``, a project's component upstream whose own output differs
    from the built-in's, ``(its name as a culprit, why)`` (:func:`upstream_difference`)."""

    cause: Optional[str]
    culprit: str
    upstream_slip: Optional[Tuple[str, str]]


def missing_limits_message(combo, stage: str, source: str, golden_dir) -> str:
    """What a check says when no limits judge ``combo`` at ``stage`` (nor ``source``, whose limits it would take)."""
    return (f"no thresholds for {combo.id}:{stage} (nor for {source}, whose limits it would take); "
            f"run `harness thresholds --calibrate --golden-dir={golden_dir}`")


def failure_table(stage: str, result: StageResult, rows, judged) -> str:
    """A failed check's table: every judged figure against its limit (:func:`figure_row`), or the judge's own
    ``rows`` where no figure was judged; a stage that raised has one row, its error written whole below."""
    if result.error is not None or not judged:
        table = format_table(rows if result.error is None else
                             [("error", "the stage raised (below)", "-", rows[0][3] if rows else "FAIL")], stage)
    else:
        table = format_table([figure_row(f) for f in judged], stage)
    if result.error is not None:  # whole, below the table: a table cell would cut it
        table += f"\nerror: {result.error}"
    return table


def drift_note(drift: List[str]) -> Tuple[str, Dict[str, object]]:
    """The failure message's line on the dependencies changed since the goldens or the thresholds
    (:func:`dependency_drift`), and its JUnit property; ``("", {})`` when none changed."""
    if not drift:
        return "", {}
    return ("\ndependencies changed since the goldens or thresholds were made: " + "; ".join(drift)
            + " (a figure may have moved with them: check the change before changing code)",
            {PROPERTY_PREFIX + "drift": "; ".join(drift)})


def failure_message(combo, stage: str, expected: str, source: str, table: str, failing: List[str], blame: Blame,
                    where: str, fix: str, drift: str) -> str:
    """The whole message of a failed check: what failed where, under which limits; the table; the failing clips;
    the cause or culprit; the evidence written (``where``); the fix; the dependency drift."""
    what = "lost quality" if expected == "pass" else "was NOT detected (a known mistake now passes)"
    because = (f"\nthis follows from the failure of {combo.id} at stage '{blame.cause}' (culprit: {blame.culprit}): "
               "fix that first" if blame.cause else f"\nculprit: {blame.culprit}")
    clips = f"\nclip: {', '.join(failing)}" if failing else ""
    return (f"{combo.id} {what} at stage '{stage}' (limits from {source}):\n{table}{clips}"
            f"{because}{where}\n{fix}{drift}")


class QualityJudge:
    """Answers one check: one stage of one combination (or golden target) judged against the thresholds, its
    figures recorded; on failure the evidence written, the culprit, the fix and the dependency drift named.

    :meth:`answer` returns a :class:`CheckOutcome` instead of skipping or failing a test: the pytest fixture's
    :class:`harness.surfaces.quality_check.QualityCheck` turns it into a skip, a failure or a pass.

    Parameters
    ----------
    thresholds_data : dict
        A loaded thresholds file (:func:`harness.judging.thresholds.load`).
    report_dir : Path, optional
        Where a failure writes its evidence (``<report_dir>/<combination>-<stage>/``).
    golden_dir : Path, optional
        Named in the re-baseline hint; its ``manifest.json`` says what the goldens were made with.
    """

    def __init__(self, thresholds_data: Dict, report_dir: Optional[Path] = None, golden_dir: Optional[Path] = None):
        #: every question asked of the thresholds, answered by the one judge (made once: a check is a hot path)
        self.judge = verdicts.Judge(thresholds_data, golden_dir)
        self.thresholds = self.judge.thresholds
        self.golden_dir = golden_dir  # named in a failure: where to re-baseline after an intended change
        self.report_dir = Path(report_dir) if report_dir else None
        self._drift: Optional[List[str]] = None

    @property
    def drift(self) -> List[str]:
        """The dependencies changed since the goldens or the thresholds (:func:`dependency_drift`), read once."""
        if self._drift is None:
            manifest = None
            path = Path(self.golden_dir) / "manifest.json" if self.golden_dir is not None else None
            if path is not None and path.is_file():
                try:
                    manifest = json.loads(path.read_text())
                except (OSError, ValueError):  # a damaged manifest fails the integrity test, which names it
                    manifest = None
            self._drift = dependency_drift(self.thresholds.get("meta"), manifest)
        return self._drift

    def limits(self, combo, stage: str, expected: str):
        """The limits ``combo`` is judged by at ``stage`` for verdict ``expected``
        (:meth:`harness.judging.verdicts.Judge.limits`)."""
        return self.judge.limits(combo, stage, expected)

    def answer(self, combo, stage: str, result: StageResult, expected: str, clip_names=None,
               evidence=None, upstream: Optional[Dict[str, StageResult]] = None) -> CheckOutcome:
        """Whether ``result`` behaved as ``expected``, with its figures; on failure the whole message.

        Parameters
        ----------
        combo : Combination or GoldenTarget
        stage : str
            A clip stage (``frontend``, ``vae``, ``vocoder``, ``chain``) or a golden stage.
        result : StageResult
            The stage's per-clip values, in ``clip_names`` order.
        expected : str
            ``pass`` or ``detect`` (:meth:`harness.judging.verdicts.Judge.expected`).
        evidence : callable, optional
            ``evidence(dir, clips, against) -> str or None`` writes WAVs/PNGs of the failing ``clips`` (``None``:
            all), the differences against the failing comparison's mel (``"input"`` or ``"correct call"``), and
            may say what it wrote, e.g. :meth:`MatrixRun.evidence`, :meth:`MatrixRun.golden_evidence`.
        upstream : dict, optional
            The combination's results at the stages before ``stage`` (:meth:`MatrixRun.result`): a failure
            there is named as the cause of this one.
        """
        reason = self.judge.unjudgeable(combo.id, stage) if expected == "detect" else None
        if reason:
            return CheckOutcome(skip_reason=f"{combo.id} at {stage}: {reason}")
        limits, source = self.limits(combo, stage, expected)
        if limits is None:
            return CheckOutcome(missing_limits=missing_limits_message(combo, stage, source, self.golden_dir))
        ok, rows = thresholds.judge(result, limits, expected, clip_names)
        judged = [] if result.error is not None else thresholds.figures(result, limits, clip_names)
        record = self._record(combo, stage, expected, ok, result, judged, source, clip_names)
        if ok:
            return CheckOutcome(ok=True, properties=tuple(record.items()))
        return self._failure(combo, stage, expected, result, rows, judged, source, record, clip_names, evidence,
                             upstream)

    def _failure(self, combo, stage, expected, result, rows, judged, source, record, clip_names, evidence,
                 upstream) -> CheckOutcome:
        """A failed check's outcome: its message and its whole JUnit record, each part in the order it is told."""
        table = failure_table(stage, result, rows, judged)
        failing = sorted({f.clip for f in judged if not f.ok and f.clip})
        blame = self._blame(combo, stage, expected, upstream, clip_names)
        where, evidence_record = self._write_evidence(combo, stage, result, judged, failing, clip_names, evidence)
        fix, fix_record = self._fix_and_hint(combo, stage, expected, blame, evidence)
        drift, drift_record = drift_note(self.drift)
        message = failure_message(combo, stage, expected, source, table, failing, blame, where, fix, drift)
        properties = {**record, **evidence_record, **fix_record, **drift_record}
        return CheckOutcome(ok=False, properties=tuple(properties.items()), message=message)

    def _blame(self, combo, stage: str, expected: str, upstream, clip_names) -> Blame:
        """The earlier failing stage this failure follows from, else a project's component upstream whose output
        differs from the built-in's, and the culprit named accordingly."""
        cause = self._cause(combo, stage, upstream, clip_names) if expected == "pass" else None
        culprit = self.culprit(combo, cause or stage)
        upstream_slip = None if cause else upstream_difference(combo, stage, upstream, clip_names)
        if upstream_slip:
            culprit = f"{upstream_slip[0]}, likely; not {culprit}: {upstream_slip[1]}"
        return Blame(cause, culprit, upstream_slip)

    def _write_evidence(self, combo, stage: str, result: StageResult, judged, failing: List[str], clip_names,
                        evidence) -> Tuple[str, Dict[str, object]]:
        """Write a failure's evidence under :attr:`report_dir` (when there is one and an ``evidence`` writer):
        the message's ``evidence:`` line and the JUnit property, else ``("", {})``."""
        if self.report_dir is None or evidence is None:
            return "", {}
        d = self.report_dir / f"{combo.id}-{stage}"
        d.mkdir(parents=True, exist_ok=True)
        # the figure shows the comparison that failed: a VAE judged by its distance to the correct round
        # trip is drawn against that, not against its input (the VAE's own loss would hide the slip)
        against = "correct call" if any(not f.ok and f.metric.startswith("ref_") for f in judged) else "input"
        compared = "the correct call's output" if against == "correct call" else "the input"
        try:
            # a stage that raised fails alike on every clip: the first clip's evidence shows it (a figure per
            # clip would cost a second each and show the same thing)
            chosen = failing or (clip_names[:1] if result.error is not None and clip_names else None)
            what = evidence(d, chosen, against) or \
                f"input and output WAVs, mel figure with the difference from {compared}"
        except Exception as exc:  # noqa: BLE001  the failure is the finding: evidence that cannot be drawn
            what = f"evidence incomplete: drawing it raised {type(exc).__name__}: {exc}"  # must not hide it
        where = f"\nevidence: {d} ({what}" + (f"; of {chosen[0]}, the error being the same on every clip)"
                                                 if chosen and not failing else ")")
        return where, {PROPERTY_PREFIX + "evidence": str(d)}

    def _fix_and_hint(self, combo, stage: str, expected: str, blame: Blame,
                      evidence) -> Tuple[str, Dict[str, object]]:
        """The fix (:meth:`fix`), with what the difference looks like where the evidence told it and nothing
        upstream is blamed, or the upstream component to fix first; and their JUnit properties."""
        record: Dict[str, object] = {}
        fix = self.fix(combo, stage, expected, blame.cause)
        hint = getattr(evidence, "hint", None)
        if hint is not None and not blame.cause and not blame.upstream_slip and \
                hint.kind not in (hints.Kind.NONE, hints.Kind.OTHER):
            fix = f"{fix}\nwhat the difference looks like: {hint.sentence}"
            record[PROPERTY_PREFIX + "hint"] = hint.sentence
        if blame.upstream_slip:
            fix = (f"fix: {blame.upstream_slip[0]} first: its output should match the built-in's on the same input "
                   "(an exact rewrite does, to float round-off); this stage should then pass")
            record[PROPERTY_PREFIX + "likely_culprit"] = blame.upstream_slip[0]
        record.update({PROPERTY_PREFIX + "culprit": blame.culprit, PROPERTY_PREFIX + "fix": fix})
        if blame.cause:
            record[PROPERTY_PREFIX + "follows_from"] = blame.cause
        return fix, record

    def _record(self, combo, stage, expected, ok, result, judged, source, clip_names) -> Dict[str, object]:
        """The JUnit properties of one check: the verdict, the tightest figure, every figure as JSON."""
        table = self.thresholds.get(thresholds.table_key(source.split(" / ")[0], stage), {})  # the first sibling's
        rows = []
        for f in judged:
            base = table.get(f"measured_{f.metric}")
            i = clip_names.index(f.clip) if base and clip_names and f.clip in clip_names else None
            baseline = float(base[i]) if i is not None and i < len(base) else None
            # the share of the band between calibration's value and the limit that the value has used up
            used = (100.0 * (f.value - baseline) / (f.limit - baseline)
                    if baseline is not None and f.bound in ("max", "min") and f.limit != baseline else None)
            rows.append({"metric": f.metric, "clip": f.clip, "value": round(f.value, 6), "limit": f.limit,
                         "bound": f.bound, "headroom_pct": round(f.headroom_pct, 2), "baseline": baseline,
                         "margin_used_pct": None if used is None else round(used, 1), "ok": f.ok})
        record = {PROPERTY_PREFIX + "combination": combo.id, PROPERTY_PREFIX + "stage": stage, PROPERTY_PREFIX + "expected": expected,
                  PROPERTY_PREFIX + "verdict": _verdict(expected, ok, result.error), PROPERTY_PREFIX + "limits_from": source}
        if result.error is not None:
            record[PROPERTY_PREFIX + "error"] = result.error
        if rows:
            tight = min(rows, key=lambda r: r["headroom_pct"])
            record.update({PROPERTY_PREFIX + k: tight[k] for k in ("metric", "clip", "value", "limit", "headroom_pct")})
            for k in ("baseline", "margin_used_pct"):
                if tight[k] is not None:
                    record[PROPERTY_PREFIX + k] = tight[k]
            record[PROPERTY_PREFIX + "figures"] = json.dumps(rows)
        return record

    def _cause(self, combo, stage: str, upstream: Optional[Dict[str, StageResult]], clip_names) -> Optional[str]:
        """The first stage before ``stage`` at which ``combo`` itself fails, if any."""
        if not upstream or not isinstance(combo, Combination) or stage not in CLIP_STAGES:
            return None
        verdicts = combo.verdicts()
        for before in CLIP_STAGES[: CLIP_STAGES.index(stage)]:
            if before in upstream and verdicts[before] == "pass" and upstream[before].error is not None:
                return before  # the stage that raised: every stage after it carries its error
            if before not in upstream or verdicts[before] != "pass" or not upstream[before].metrics:
                continue
            limits, _ = self.limits(combo, before, "pass")
            if limits is not None and not thresholds.judge(upstream[before], limits, "pass", clip_names)[0]:
                return before
        return None

    @staticmethod
    def culprit(combo, stage: str) -> str:
        """The component to look at for a failure at ``stage``: ``front-end 'ours' (registered by this
        project)``; a chain failure with no failing stage before it names the project's components, if any."""
        if isinstance(combo, GoldenTarget):
            stage, name = COMPONENT_AT[combo.stage], combo.name
        elif stage in COMPONENTS:
            name = getattr(combo, stage)
        else:
            mine = combo.user_components()
            if not mine:
                return "the model's own chain (every component is the harness's)"
            return " or ".join(f"{COMPONENT_NAMES[s]} '{getattr(combo, s)}' (registered by this project)"
                               for s in mine)
        whose = "" if is_builtin(stage, name) else " (registered by this project)"
        return f"{COMPONENT_NAMES[stage]} '{name}'{whose}"

    def fix(self, combo, stage: str, expected: str, cause: Optional[str]) -> str:
        """What to do about a failure: fix the upstream cause, fix a project's own component, or (only where
        every component is the harness's own, so the model itself must have changed) re-baseline."""
        if cause:
            return f"fix: the failure at stage '{cause}' of the same combination; this one should then pass"
        if isinstance(combo, GoldenTarget):
            mine = [] if is_builtin(COMPONENT_AT[combo.stage], combo.name) else [combo.name]
        else:
            mine = [getattr(combo, s) for s in combo.user_components()]
        if mine:
            return (f"fix: {', '.join(repr(m) for m in mine)} (registered by this project) is judged by the "
                    "calibrated limits of the built-in it replaces; re-calibrating cannot change that: compare "
                    "its output with the evidence and correct it")
        if expected == "detect":
            return ("fix: a known mistake now passes, so the chain under test no longer tells it apart: check that "
                    "the model is the one the goldens were made with (harness golden) before re-calibrating")
        return ("the model itself changed on purpose? re-baseline: harness thresholds --calibrate "
                f"--golden-dir={self.golden_dir}")


#: how far (nats, log-mel L1 on some clip) a project's component may stray from the built-in it replaces, on the
#: same input, and still count as the same output: an exact rewrite (channels-last, multiplying by 1/s, float64)
#: moves it by float round-off (~1e-6), a scaling factor 0.2 % off by ~1e-3
SAME_OUTPUT_NATS = 1e-4
#: the figure of each clip stage that measures a component's distance to the built-in it replaces, on the same
#: input: the VAE's to the correct round trip, a front-end's to AudioLDM2's (closer framing)
DISTANCE_TO_BUILTIN = {"frontend": "mel_l1", "vae": "ref_mel_l1"}


def upstream_difference(combo, stage: str, upstream: Optional[Dict[str, StageResult]],
                        clip_names) -> Optional[Tuple[str, str]]:
    """A project's component before ``stage`` whose own output differs from the built-in it replaces, measured.

    A failure at a stage whose component is the harness's own, downstream of a project's variant that passed
    its own stage, is most likely the variant's: the built-in's limits were calibrated on the correct
    component's output, and the variant's output differs from it (by less than its own stage's limits). The
    difference is measured on the same input, never assumed: an exact rewrite stays within
    :data:`SAME_OUTPUT_NATS` and is not named.

    Parameters
    ----------
    combo : Combination or GoldenTarget
    stage : str
        The failing stage.
    upstream : dict, optional
        The combination's stage results (:meth:`MatrixRun.result`).
    clip_names : list of str, optional

    Returns
    -------
    (str, str) or None
        ``(the variant, named as a culprit; why, with the measured difference)``, or None.
    """
    if not upstream or not isinstance(combo, Combination) or stage not in CLIP_STAGES:
        return None
    if stage in COMPONENTS and not is_builtin(stage, getattr(combo, stage)):
        return None  # the failing stage's own component is the project's: it is the culprit named already
    for before in CLIP_STAGES[: CLIP_STAGES.index(stage)]:
        name = getattr(combo, before)
        metric = DISTANCE_TO_BUILTIN.get(before)
        result = upstream.get(before)
        if is_builtin(before, name) or metric is None or result is None or metric not in result.metrics:
            continue
        values = np.asarray(result.metrics[metric], dtype=float)
        if not len(values) or not np.nanmax(values) > SAME_OUTPUT_NATS:
            continue
        i = int(np.nanargmax(values))
        clip = f" on {clip_names[i]}" if clip_names and len(clip_names) == len(values) else ""
        builtin = DEFAULTS[before]
        what = (f"its output differs from that of the built-in {builtin!r} on the same input by {values[i]:.4g} "
                f"nats ({metric}{clip}; an exact rewrite differs by less than {SAME_OUTPUT_NATS:g} nats), and the "
                f"{stage} stage's limits were calibrated on the built-in's output")
        return f"{COMPONENT_NAMES[before]} {name!r} (registered by this project)", what
    return None


@dataclass(frozen=True)
class GoldenTarget:
    """A golden stage of one variant, keyed like a combination (``golden-vocoder-hifigan``): judged by the engine
    through the same interface as a combination (:class:`harness.judging.verdicts.Judged`)."""

    stage: str
    name: str

    @property
    def id(self) -> str:
        """``golden-<stage>-<variant>`` (:func:`harness.judging.thresholds.golden_target_id`)."""
        return thresholds.golden_target_id(self.stage, self.name)

    def siblings(self, stage: str) -> list:
        """The one golden target whose limits judge this one when it has no table: the stage's reference
        variant."""
        return [GoldenTarget(self.stage, GOLDEN_REFERENCE[self.stage])]


def figure_row(f) -> Tuple[str, str, str, str]:
    """``(metric [clip], value, limit, verdict)`` of one judged figure (:class:`harness.judging.thresholds.Figure`)
    for a failure's table. A failing figure says how it failed, with the direction and the margin
    (``FAIL: 0.1643 > limit 0.1458 (12.7 % over)``), never the condition it failed as if it held."""
    label = f.metric if f.clip is None else f"{f.metric} [{f.clip}]"
    unit = metric_unit(f.metric)
    name = {"max": "limit", "min": "floor", "detect_min": "detection limit", "detect_max": "detection limit"}[f.bound]
    limit = f"{name} {f.limit:.4g}{unit} ({'at most' if f.bound in ('max', 'detect_max') else 'at least'})"
    if f.ok:
        return label, f"{f.value:.4g}{unit}", limit, f"ok ({abs(f.headroom_pct):.1f} % to spare)"
    if not np.isfinite(f.value):
        return label, f"{f.value}", limit, f"FAIL: {f.value} is not a number the limit can judge"
    above = f.bound in ("max", "detect_max")
    margin = abs(f.value - f.limit)
    share = f"{100.0 * margin / abs(f.limit):.1f} % {'over' if above else 'under'}" if f.limit else \
        f"{margin:.4g}{unit} {'over' if above else 'under'}"
    if unit.strip() == "dB":  # a percentage of a dB figure means nothing: the margin in dB
        share = f"{margin:.2f} dB {'over' if above else 'under'}"
    return (label, f"{f.value:.4g}{unit}", limit,
            f"FAIL: {f.value:.4g}{unit} {'>' if above else '<'} {name} {f.limit:.4g}{unit} ({share})")


def metric_unit(name: str) -> str:
    """`` dB`` / `` nats`` / ``""``: the unit a table writes after a figure of metric ``name``."""
    unit = metric_defs.METRICS[name].unit if name in metric_defs.METRICS else \
        metric_defs.METRICS[name[4:]].unit if name.startswith("ref_") and name[4:] in metric_defs.METRICS else ""
    return f" {unit}" if unit in ("dB", "nats") else ""


def format_table(rows, stage: str) -> str:
    """A failure's table: ``(metric, worst value, threshold, verdict)`` rows, aligned, under the stage name.
    Cells are never cut: a long message goes below the table (the caller's ``error:`` line)."""
    head = ("metric", "worst value", "threshold", "verdict")
    rows = [head] + [tuple(str(x) for x in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"  stage {stage}"]
    for r in rows:
        lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(4)))
    return "\n".join(lines)
