"""The quality check as pytest sees it: the ``harness_quality`` fixture's object (:mod:`harness.surfaces.plugin`).

The judging layer answers a check without any test framework (:class:`harness.judging.quality.QualityJudge`, a
:class:`harness.judging.quality.CheckOutcome`); here the answer becomes a skip, a failure with its whole message,
and the check's figures as the test's JUnit properties.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import pytest

from harness.judging.quality import QualityJudge


class QualityCheck(QualityJudge):
    """Judges one stage of one combination (or golden target) against the thresholds; records its figures;
    writes evidence and names the culprit on failure.

    The ``harness_quality`` fixture (see :mod:`harness.surfaces.plugin`); the judging itself is
    :meth:`harness.judging.quality.QualityJudge.answer`'s, whose members (``limits``, ``culprit``, ``fix``,
    ``drift``) it has too. A failure shows the test that checked, not the harness's frames.

    Parameters
    ----------
    thresholds_data : dict
        A loaded thresholds file (:func:`harness.judging.thresholds.load`).
    report_dir : Path, optional
        Where a failure writes its evidence (``<report_dir>/<combination>-<stage>/``).
    allow_missing : bool
        Skip instead of fail when limits are missing.
    golden_dir : Path, optional
        Named in the re-baseline hint.
    properties : list, optional
        A test's ``user_properties``: each check appends its figures as ``("harness_<field>", value)``
        pairs, which ``pytest --junitxml`` writes as JUnit properties.

    Examples
    --------
    A test of the reference chain on a golden directory (``harness golden``) and its thresholds::

        from harness.judging import golden, thresholds
        from harness.judging.matrix import Combination
        from harness.judging.quality import MatrixRun
        from harness.model.chain import Chain
        from harness.surfaces.quality_check import QualityCheck

        def test_reference_chain():
            check = QualityCheck(thresholds.load("golden/tiny/thresholds.toml"), report_dir="reports",
                                 golden_dir="golden/tiny")
            run = MatrixRun(Chain.load("tiny"), golden.load("golden/tiny"))
            combo = Combination("audioldm2", "scaled", "hifigan")
            upstream = run.result(combo)
            check.check(combo, "chain", upstream["chain"], check.expected(combo, "chain"),
                        clip_names=run.clip_names, evidence=run.evidence(combo), upstream=upstream)
    """

    def __init__(self, thresholds_data: Dict, report_dir: Optional[Path] = None, allow_missing: bool = False,
                 golden_dir: Optional[Path] = None, properties: Optional[list] = None):
        super().__init__(thresholds_data, report_dir, golden_dir)
        self.allow_missing = allow_missing
        self.properties = properties if properties is not None else []

    def expected(self, combo, stage: str) -> str:
        """The verdict ``combo`` is judged by at ``stage`` (:meth:`harness.judging.verdicts.Judge.expected`);
        skips the test where it is not judged, with the reason. The plugin generates chain tests of broken
        combinations only where calibration asserts them."""
        __tracebackhide__ = True  # a skip shows the user's test, not this frame
        verdict, not_judged = self.judge.expected(combo, stage)
        if not_judged:
            pytest.skip(not_judged)
        return verdict

    def golden_expected(self, stage: str, name: str) -> str:
        """The verdict variant ``name`` is judged by at golden ``stage``
        (:meth:`harness.judging.verdicts.Judge.golden_expected`); skips the test where it is not judged."""
        __tracebackhide__ = True  # a skip shows the user's test, not this frame
        verdict, not_judged = self.judge.golden_expected(stage, name)
        if not_judged:
            pytest.skip(not_judged)
        return verdict

    def check(self, combo, stage: str, result, expected: str, clip_names=None, evidence=None,
              upstream: Optional[Dict] = None) -> None:
        """Assert ``result`` behaved as ``expected``; record its figures; on failure raise AssertionError
        with a table, the culprit and the fix (:meth:`harness.judging.quality.QualityJudge.answer`, whose
        parameters these are). A stage not judged with this model skips; missing limits fail naming the command
        that makes them, or skip under ``allow_missing``."""
        __tracebackhide__ = True  # a failure shows the user's test, not this frame
        outcome = self.answer(combo, stage, result, expected, clip_names, evidence, upstream)
        if outcome.skip_reason:
            pytest.skip(outcome.skip_reason)
        if outcome.missing_limits:
            if self.allow_missing:
                pytest.skip(outcome.missing_limits)
            pytest.fail(outcome.missing_limits + " (or pass --harness-allow-missing-goldens to skip)", pytrace=False)
        self.properties.extend(outcome.properties)
        if not outcome.ok:
            raise AssertionError(outcome.message)
