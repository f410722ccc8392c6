"""The judging engine: which limits judge a combination or golden target, the reference figure on audio
without a baseline, the verdict each is expected to reach, a record's status and the false-alarm and miss
rates. pytest (:class:`harness.judging.quality.QualityJudge`), ``harness matrix`` and datasets
(:mod:`harness.judging.report`), ``harness diagnose`` and calibration all call it; the limits themselves are
data (:mod:`harness.judging.thresholds`, whose :func:`~harness.judging.thresholds.judge` compares figures
with them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from harness.judging import matrix
from harness.judging.matrix import Combination
from harness.judging.records import Expected, Policy, Record, StageRecord, Status
from harness.judging.stages import JUDGED, SHARE_OF, StageResult
from harness.judging.thresholds import (
    MARGIN_SUFFIXES, Bound, ThresholdTable, _as_list, detect_limit, golden_target_id, judge, limits_of, parse_limit,
    relative_limits, select_clips,
)


class Judged(Protocol):
    """What the engine judges: a :class:`~harness.judging.matrix.Combination` or a
    :class:`~harness.judging.quality.GoldenTarget`. ``id`` names its threshold tables; ``siblings(stage)`` are
    the built-ins whose limits judge it when it has none of its own (a project's variant), the first of them the
    one named when none has limits."""

    @property
    def id(self) -> str: ...

    def siblings(self, stage: str) -> list: ...


@dataclass
class Verdict:
    """How one combination behaved at one stage on some clips, and under which policy."""

    ok: bool
    rows: list
    #: "absolute" (per-clip baseline), "relative" (to the reference on the same clip), "yardstick" (the
    #: reference itself, not judged), "unjudgeable" (a known mistake random weights cannot show), "none"
    policy: str
    source: Optional[str]   # whose limits or margins judged it (why, when unjudgeable)
    limits: Optional[Dict] = None  # the limits applied


def _limits_for(thresholds: Dict, combo: Judged, stage: str) -> Tuple[Optional[Dict], str]:
    """Limits of ``combo`` (a combination or golden target) at ``stage``, plus where they came from.

    A combination without its own table (a user's variant) is judged against its siblings
    (``combo.siblings(stage)``: the built-ins it stands for), per clip the loosest of their limits.
    """
    thresholds = ThresholdTable.of(thresholds)
    own = thresholds.limits_table(combo.id, stage)
    if own is not None:
        return limits_of(own), combo.id
    sibs = [s for s in combo.siblings(stage) if thresholds.limits_table(s.id, stage) is not None]
    if not sibs:
        return None, combo.siblings(stage)[0].id
    limits = limits_of(thresholds.limits_table(sibs[0].id, stage), detection=False)
    for other in sibs[1:]:
        table = thresholds.limits_table(other.id, stage)
        for k, v in limits.items():
            if k in table:
                loosest = np.maximum if parse_limit(k)[1] is Bound.MAX else np.minimum
                limits[k] = [float(x) for x in loosest(np.asarray(_as_list(v), float), np.asarray(_as_list(table[k]), float))]
    return limits, " / ".join(s.id for s in sibs)


def _limits_for_verdict(thresholds: Dict, combo: Judged, stage: str, expected: str, key: str):
    """The limits that judge ``combo`` at ``stage`` for an ``expected`` verdict, plus their source.

    ``pass``: the ceilings/floors; ``detect``: the detection limits, derived from the pass limits
    with :func:`~harness.judging.thresholds.detect_limit` (on ``key``) when the table has none of its own (a user's variant).
    """
    limits, source = _limits_for(thresholds, combo, stage)
    if limits is None:
        return None, source
    if expected == "detect":
        own = {k: v for k, v in limits.items() if parse_limit(k)[1].detects}
        return own or detect_limit(limits, key), source
    return limits_of(limits, detection=False), source


def _relative_margins(thresholds: Dict, combo, stage: str) -> Tuple[Dict[str, float], str]:
    """The relative margins that judge ``combo`` at ``stage``, and whose they are.

    A combination without a table of its own (a user's variant) gets its sibling's (the built-in
    component it replaces); without either, the reference's own margin (``{}``: ratio 1, offset 0). A known
    mistake's table holds no margins, only why it is not judged (``unjudgeable``, ``not_separable``): it is
    not one.
    """
    for c in (combo, combo.siblings(stage)[0]):
        table = ThresholdTable.of(thresholds).relative_table(c.id, stage)
        if table is not None and any(k.endswith(MARGIN_SUFFIXES) for k in table):
            return dict(table), c.id
    return {}, combo.reference(stage).id


def _relative_stage_limits(thresholds: Dict, combo, stage: str, expected: str, key: str,
                          reference: Dict[str, np.ndarray], shares: Sequence[str] = ()) -> Tuple[Dict[str, list], str]:
    """The relative limits that judge ``combo`` at ``stage`` on clips without a baseline, and whose
    margins they use. ``reference``: the reference combination's figures on the same clips
    (metric -> ndarray [n_clips]); the detect band is that of :meth:`Combination.correct_alternatives`."""
    margins, source = _relative_margins(thresholds, combo, stage)
    correct = [_relative_margins(thresholds, c, stage)[0] for c in combo.correct_alternatives(stage)] \
        if expected == "detect" else ()
    return relative_limits(margins, reference, expected, key, correct, shares), source


def _relative_references(stage: str, reference: StageResult) -> Dict[str, np.ndarray]:
    """The reference's figure each judged metric of ``stage`` is compared with: its own value, or for
    a share metric (:data:`harness.judging.stages.SHARE_OF`) the reference's loss it is a share of."""
    return {name: reference.metrics[SHARE_OF.get(name, name)] for name in JUDGED[stage]
            if SHARE_OF.get(name, name) in reference.metrics}


def _judge_relative(thresholds_data: Dict, combo: Combination, stage: str, result: StageResult,
                   reference: StageResult, clip_names: Optional[List[str]] = None) -> Verdict:
    """Judge ``combo`` at ``stage`` against the reference combination's figures on the same clips.

    ``result`` and ``reference`` hold the same clips (``combo`` and ``combo.reference(stage)`` at
    ``stage``). The limits come from :func:`_relative_stage_limits`; the verdict
    from :func:`harness.judging.thresholds.judge`.
    """
    expected = combo.verdicts()[stage]
    if expected == "report":
        return Verdict(True, [], "none", "")
    if reference.error is not None and result.error is None:
        return Verdict(expected == "pass", [("reference failed", reference.error, "-", "not judged")],
                       "none", combo.reference(stage).id)
    judged = _relative_references(stage, reference)
    key = next(name for name in JUDGED[stage] if name in judged)
    limits, source = _relative_stage_limits(thresholds_data, combo, stage, expected, key, judged, list(SHARE_OF))
    ok, rows = judge(result, limits, expected, clip_names)
    return Verdict(ok, rows, "relative", source, limits)


def _judge_file_stage(thresholds_data: Dict, combo: Combination, stage: str, result: StageResult,
                     baseline: Optional[int], reference: Callable[[], StageResult]) -> Verdict:
    """Judge one file's figures of ``combo`` at ``stage`` (``result``: one clip), choosing the policy.

    In order: a known mistake the thresholds cannot judge (random weights) is ``unjudgeable``; a file with a
    stored baseline (``baseline``: its clip index in the thresholds' tables) is judged by that clip's limits
    (``absolute``); the reference combination at its own stage is the ``yardstick`` the others are judged by
    (judging it against itself tells nothing); anything else is judged against the reference on the same
    file (``relative``, :func:`_judge_relative`; ``reference()`` gives its figures, computed only then).
    """
    expected = combo.verdicts()[stage]
    why = ThresholdTable.of(thresholds_data).unjudgeable(combo.id, stage) if expected == "detect" else None
    if why:  # e.g. random weights: nothing to judge this mistake by
        return Verdict(False, [], "unjudgeable", why)
    if baseline is not None and expected != "report":
        limits, source = _limits_for_verdict(thresholds_data, combo, stage, expected, JUDGED[stage][0])
        if limits is not None:
            limits = select_clips(limits, [baseline])
            ok, rows = judge(result, limits, expected)
            return Verdict(ok, rows, "absolute", source, limits)
    if expected == "pass" and combo.reference(stage) == combo:
        return Verdict(True, [], "yardstick", None)
    return _judge_relative(thresholds_data, combo, stage, result, reference())


def _not_calibrated(thresholds: Dict, table_id: str, stage: str, golden_dir: Optional[str],
                    shown: Optional[str] = None) -> Optional[str]:
    """Why a known mistake (its limits in table ``table_id``; named ``shown``, default ``table_id``) is not judged
    where calibration left the known mistakes out (``--scope reference``), else None."""
    table = ThresholdTable.of(thresholds)
    if table.scope != "reference" or table.limits_table(table_id, stage) is not None:
        return None
    return (f"{shown or table_id} at {stage}: not asserted: the thresholds hold the correct variants only "
            f"(calibrated with --scope reference); `harness thresholds --calibrate --scope absolute"
            + (f" --golden-dir={golden_dir}" if golden_dir else "") + "` adds the known mistakes")


def _golden_expected_verdict(thresholds: Dict, stage: str, name: str,
                            golden_dir: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """The verdict variant ``name`` is judged by at golden ``stage`` (:func:`harness.judging.matrix.golden_expected`),
    and why it is not judged at all (else None): a known mistake where the thresholds hold the correct variants
    only."""
    verdict = matrix.golden_expected(stage, name)
    why = _not_calibrated(thresholds, golden_target_id(stage, name), stage, golden_dir) if verdict == "detect" else None
    return verdict, why


def _expected_verdict(thresholds: Dict, combo: Combination, stage: str,
                     golden_dir: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """The verdict ``combo`` is judged by at ``stage``, and why it is not judged at all (else None).

    :meth:`harness.judging.matrix.Combination.verdicts`, except at the chain stage of a broken combination, which
    is ``detect`` where calibration found it (or, for a combination with a project's variants, the built-in
    combination it stands for: :meth:`~harness.judging.matrix.Combination.stand_in`) clearly separated
    (:func:`harness.judging.thresholds.chain_detection`), otherwise not judged with the reason calibration
    recorded (the mistake is asserted at its culprit stage either way); and a known mistake is not judged where
    the thresholds hold the correct combinations only (``--scope reference``).
    """
    verdict = combo.verdicts()[stage]
    stand_in = combo.stand_in()
    why = _not_calibrated(thresholds, stand_in.id, stage, golden_dir, combo.id) if stand_in.culprit() else None
    if why:
        return verdict, why
    if verdict != "report":
        return verdict, None
    entry = ThresholdTable.of(thresholds).limits_table(stand_in.id, stage) or {}
    if entry.get("expected") == "detect":
        return "detect", None
    why = entry.get("not_asserted", f"these thresholds hold no chain-stage decision for {stand_in.id}")
    return verdict, (f"{combo.id} at chain: not asserted ({why}); the mistake is asserted at stage "
                     f"'{combo.culprit()}'")


#: record statuses that make ``harness matrix`` exit non-zero
FAILING = (Status.FAIL, Status.MISSED)


def _record_status(expected: str, ok: bool, stages: Dict[str, StageRecord]) -> Status:
    """``pass``/``FAIL`` for a correct combination; ``detected``/``MISSED`` for a known mistake, or ``not
    separable`` when it was judged relative to the reference on a clip without a stored baseline: the
    mistake changes the sound too little on *this* clip to tell, which is a fact about the clip, not a
    failure of the chain (on a golden clip, whose baseline says it was separable, it is ``MISSED``)."""
    if expected == Expected.PASS:
        if ok and all(st.policy in (Policy.YARDSTICK, Policy.NONE) for st in stages.values()):
            return Status.YARDSTICK  # the reference combination on a file without a stored baseline
        return Status.PASS if ok else Status.FAIL
    if ok:
        return Status.DETECTED
    culprit = [st for st in stages.values() if st.expected == Expected.DETECT and not st.ok]
    relative = all(st.policy in (Policy.RELATIVE, Policy.UNJUDGEABLE) for st in culprit)
    return Status.NOT_SEPARABLE if relative else Status.MISSED


def _verdict_rates(records: Sequence[Record]) -> Dict[str, object]:
    """False alarms and misses of :func:`harness.judging.report.matrix_records` output.

    A false alarm is a correct combination (expected ``pass`` everywhere) that is not ok; a miss is a
    broken combination whose culprit stage did not detect it. Returns counts, rates and the wrong records'
    ``file``/``combination``/failing stages.
    """
    correct = [r for r in records if r.expected == Expected.PASS]
    broken = [r for r in records if r.expected == Expected.DETECT]

    def wrong(rs):
        return [{"file": r.file, "combination": r.combination, "stages": list(r.failed_stages)}
                for r in rs if not r.ok]

    fa, miss = wrong(correct), wrong(broken)
    return {"records": len(records), "correct": len(correct), "broken": len(broken),
            "false_alarms": len(fa), "misses": len(miss),
            "false_alarm_rate": len(fa) / max(1, len(correct)), "miss_rate": len(miss) / max(1, len(broken)),
            "wrong": fa + miss}


class Judge:
    """Every question asked of one threshold table, answered in one place: pytest's quality checks
    (:class:`harness.surfaces.quality_check.QualityCheck`), ``harness matrix`` and datasets
    (:class:`harness.judging.report.RecordJudge`), ``harness diagnose`` and calibration all ask it.

    Parameters
    ----------
    thresholds : ThresholdTable or dict
        A loaded thresholds file (:func:`harness.judging.thresholds.load`), or the tables calibration is
        building (taken as a :class:`~harness.judging.thresholds.ThresholdTable`).
    golden_dir : str or Path, optional
        Named in the reason a known mistake is not judged (the command that adds it).

    Examples
    --------
    >>> from harness.judging import thresholds
    >>> from harness.judging.matrix import Combination
    >>> from harness.judging.verdicts import Judge
    >>> judge = Judge(thresholds.load("harness/goldens/tiny/thresholds.toml"))        # doctest: +SKIP
    >>> judge.expected(Combination("audioldm2", "unscaled", "hifigan"), "vae")        # doctest: +SKIP
    ('pass', None)
    >>> limits, source = judge.limits(Combination("audioldm2", "scaled", "hifigan"), "vae", "pass")  # doctest: +SKIP
    """

    def __init__(self, thresholds: Dict, golden_dir=None):
        self.thresholds = ThresholdTable.of(thresholds)
        self.golden_dir = golden_dir

    # 1. which verdict is expected, or why the target is not judged
    def expected(self, combo: Combination, stage: str) -> Tuple[str, Optional[str]]:
        """``(verdict, why_not_judged)`` of ``combo`` at ``stage``: ``pass``, ``detect`` or ``report``, and the
        reason it is not judged at all (else None): a known mistake the thresholds leave out (``--scope
        reference``), or a chain of a mistake calibration did not assert."""
        return _expected_verdict(self.thresholds, combo, stage, self.golden_dir)

    def golden_expected(self, stage: str, name: str) -> Tuple[str, Optional[str]]:
        """``(verdict, why_not_judged)`` of variant ``name`` at golden ``stage``."""
        return _golden_expected_verdict(self.thresholds, stage, name, self.golden_dir)

    def unjudgeable(self, target_id: str, stage: str) -> Optional[str]:
        """Why calibration found ``target_id`` cannot be judged at ``stage`` on this model (random weights)."""
        return self.thresholds.unjudgeable(target_id, stage)

    # 2. which limits judge it
    def limits(self, target: Judged, stage: str, expected: str) -> Tuple[Optional[Dict], str]:
        """``(limits, source)``: the limits judging ``target`` (a combination or golden target) at ``stage`` for
        verdict ``expected``, and whose table they come from (its own, or its built-in siblings' for a project's
        variant); ``(None, source)`` when there are none."""
        return _limits_for_verdict(self.thresholds, target, stage, expected, JUDGED[stage][0])

    def relative_limits(self, combo: Combination, stage: str, expected: str, key: str,
                        reference: Dict[str, np.ndarray], shares: Sequence[str] = ()) -> Tuple[Dict[str, list], str]:
        """``(limits, source)`` on audio without a baseline: from the reference combination's figures on the same
        clips (``reference``: metric -> ndarray [n_clips]) and ``combo``'s calibrated margins."""
        return _relative_stage_limits(self.thresholds, combo, stage, expected, key, reference, shares)

    # 3. the outcome
    @staticmethod
    def outcome(result: StageResult, limits: Dict, expected: str,
                clip_names: Optional[List[str]] = None) -> Tuple[bool, list]:
        """``(ok, rows)``: whether ``result`` behaved as ``expected`` under ``limits``
        (:func:`harness.judging.thresholds.judge`)."""
        return judge(result, limits, expected, clip_names)

    def relative(self, combo: Combination, stage: str, result: StageResult, reference: StageResult,
                 clip_names: Optional[List[str]] = None) -> Verdict:
        """:class:`Verdict` of ``combo`` at ``stage`` against the reference combination on the same clips."""
        return _judge_relative(self.thresholds, combo, stage, result, reference, clip_names)

    def file_stage(self, combo: Combination, stage: str, result: StageResult, baseline: Optional[int],
                   reference: Callable[[], StageResult]) -> Verdict:
        """:class:`Verdict` of one file's figures, the policy chosen: ``unjudgeable``, ``absolute`` (a stored
        baseline: ``baseline`` is its clip index), ``yardstick`` or ``relative`` (``reference()`` computed only
        then)."""
        return _judge_file_stage(self.thresholds, combo, stage, result, baseline, reference)

    # 4. a record's status, and the rates over records
    @staticmethod
    def status(expected: str, ok: bool, stages: Dict[str, StageRecord]) -> Status:
        """A record's :class:`~harness.judging.records.Status` from its ``expected`` verdict, whether it is ``ok``
        and its stages' :class:`~harness.judging.records.StageRecord`: ``pass``/``FAIL``/``yardstick`` for a
        correct combination, ``detected``/``MISSED``/``not separable`` for a known mistake."""
        return _record_status(expected, ok, stages)

    @staticmethod
    def rates(records: Sequence[Record]) -> Dict[str, object]:
        """False alarms and misses over matrix records (:class:`~harness.judging.records.Record`): counts,
        rates and the wrong records."""
        return _verdict_rates(records)

    @staticmethod
    def references(stage: str, reference: StageResult) -> Dict[str, np.ndarray]:
        """The reference's figure each judged metric of ``stage`` is compared with (share metrics: the loss
        they are a share of)."""
        return _relative_references(stage, reference)
