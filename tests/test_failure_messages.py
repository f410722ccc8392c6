"""What a failing quality check says, on hand-made tables (no model): messages whole, a failing figure written as
the value against its limit with the direction and the margin, the dependencies changed since the goldens or the
thresholds named, and a project's variant upstream whose output differs from the built-in's named as the culprit."""
import json

import numpy as np
import pytest

from harness import machine
from harness.judging import thresholds
from harness.judging.matrix import Combination
from harness.judging.quality import DRIFT_PACKAGES, GoldenTarget, dependency_drift, upstream_difference
from harness.judging.stages import StageResult
from harness.surfaces.quality_check import QualityCheck

CLIPS = ["golden:a", "golden:b"]
INSTALLED = {p: machine.version(p) for p in DRIFT_PACKAGES}


def table(meta_versions=None):
    data = {thresholds.table_key("golden-decode-scaled", "decode"): {"expected": "pass", "mel_l1_max": [0.1458, 0.2]}}
    if meta_versions is not None:
        data["meta"] = {"versions": " ".join(f"{k}=={v}" for k, v in meta_versions.items())}
    return data


def failure(check: QualityCheck, result: StageResult) -> str:
    with pytest.raises(AssertionError) as info:
        check.check(GoldenTarget("decode", "ours"), "decode", result, "pass", clip_names=CLIPS)
    return str(info.value)


def test_a_failing_figure_is_written_as_value_over_limit_with_the_margin():
    message = failure(QualityCheck(table(INSTALLED)), StageResult({"mel_l1": np.array([0.1643, 0.1])}))
    assert "FAIL: 0.1643 nats > limit 0.1458 nats (12.7 % over)" in message, message
    assert "<= 0.1458" not in message  # the condition it failed is never written as if it held


def test_a_long_error_is_printed_whole():
    error = "LayoutError: vocoder 'ours-short' returned 32768 samples for 256 frames, fewer than the 40960 of " \
            "the input (160 per frame; 128 per frame came back) " + "and more words " * 20 + "THE END"
    check = QualityCheck(table(INSTALLED))
    message = failure(check, StageResult({}, error))
    assert f"\nerror: {error}\n" in message, message
    assert dict(check.properties)["harness_error"] == error


def test_the_dependencies_changed_since_the_goldens_are_named(tmp_path):
    old = "0.30.0" if INSTALLED["diffusers"] != "0.30.0" else "0.29.0"
    (tmp_path / "manifest.json").write_text(json.dumps({"versions": {**INSTALLED, "diffusers": old}}))
    check = QualityCheck(table(INSTALLED), golden_dir=tmp_path)
    message = failure(check, StageResult({"mel_l1": np.array([0.1643, 0.1])}))
    changed = f"diffusers {old} -> {INSTALLED['diffusers']} (goldens)"
    assert changed in message and "torch" not in message.split("dependencies changed", 1)[1], message
    assert dict(check.properties)["harness_drift"] == changed


def test_no_drift_is_named_when_the_versions_match(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"versions": INSTALLED}))
    check = QualityCheck(table(INSTALLED), golden_dir=tmp_path)
    assert "dependencies changed" not in failure(check, StageResult({"mel_l1": np.array([0.1643, 0.1])}))
    assert "harness_drift" not in dict(check.properties)


def test_drift_from_both_records_and_from_the_thresholds_alone():
    now = {"torch": "2.13.0", "numpy": "2.4.6"}
    assert dependency_drift({"versions": "torch==2.12.0 numpy==2.4.6"}, {"versions": {"torch": "2.12.0"}}, now) == \
        ["torch 2.12.0 -> 2.13.0 (goldens, thresholds)"]
    assert dependency_drift({"versions": "numpy==2.3.0"}, None, now) == ["numpy 2.3.0 -> 2.4.6 (thresholds)"]
    assert dependency_drift(None, None, now) == []


def stage_results(ref_mel_l1):
    return {"frontend": StageResult({"mel_l1": np.zeros(2)}),
            "vae": StageResult({"mel_l1": np.array([0.3, 0.3]), "ref_mel_l1": np.asarray(ref_mel_l1)})}


def test_a_variant_upstream_that_differs_from_the_builtin_is_named():
    combo = Combination("audioldm2", "ours-vae", "griffin-lim")
    named = upstream_difference(combo, "vocoder", stage_results([0.0032, 0.001]), CLIPS)
    assert named[0] == "VAE variant 'ours-vae' (registered by this project)"
    assert "differs from that of the built-in 'scaled' on the same input by 0.0032 nats" in named[1]
    assert "golden:a" in named[1]


def test_an_exact_rewrite_upstream_is_not_named():
    combo = Combination("audioldm2", "ours-vae", "griffin-lim")
    assert upstream_difference(combo, "vocoder", stage_results([2e-6, 1e-6]), CLIPS) is None
    # nor is anything named when the failing stage's own component is the project's
    mine = Combination("audioldm2", "ours-vae", "ours-vocoder")
    assert upstream_difference(mine, "vocoder", stage_results([0.0032, 0.001]), CLIPS) is None


def test_the_matrix_table_prints_each_error_whole_below_it():
    from harness.judging import report

    error = "LayoutError: vocoder 'ours-short' returned 32768 samples for 256 frames, fewer than the 40960 " \
            "of the input (160 per frame; 128 per frame came back) THE END"
    from dataclasses import replace

    from harness.judging.records import Record, StageRecord

    def stage(error=None):
        return StageRecord("pass", error is None, error, "relative", None, None, None)

    record = Record("a.wav", "audioldm2", "scaled", "ours-short", "pass", False, "FAIL", None, {"frontend.mel_l1": 0.0},
                    {"frontend": stage(), "vae": stage(), "vocoder": stage(error), "chain": stage(error)})
    text = report.matrix_table([record, replace(record, file="b.wav")])
    assert text.endswith(f"\n[1] {error}") and text.count(error) == 1, text
    assert "LayoutError [1]" in text.splitlines()[1]
