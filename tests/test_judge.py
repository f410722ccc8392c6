"""The one judge (:func:`harness.judging.thresholds.judge`) and the two policies that give it limits, on small
hand-made tables: no model needed."""
import numpy as np
import pytest

from harness.judging import thresholds, verdicts
from harness.judging.matrix import Combination
from harness.judging.stages import StageResult


def result(**metrics):
    return StageResult({k: np.asarray(v, dtype=float) for k, v in metrics.items()})


# --- absolute (per-clip baselines) ------------------------------------------------------------------------


def test_absolute_pass_ceiling_per_clip():
    limits = thresholds.pass_limits({"mel_l1": [0.2, 0.5]}, ["mel_l1"])
    assert limits == {"mel_l1_max": [0.23, 0.56]}  # value * 1.10 + 0.01
    assert thresholds.judge(result(mel_l1=[0.23, 0.56]), limits, "pass")[0]
    ok, rows = thresholds.judge(result(mel_l1=[0.231, 0.1]), limits, "pass", ["a", "b"])
    assert not ok and rows[0][0] == "mel_l1 [a]" and rows[0][3] == "FAIL"


def test_absolute_detect_needs_factor_times_sibling_ceiling():
    limits = thresholds.detect_limit({"mel_l1_max": [0.23, 0.56]}, "mel_l1")
    assert limits == {"mel_l1_detect_min": [0.276, 0.672]}
    assert thresholds.judge(result(mel_l1=[0.3, 0.7]), limits, "detect")[0]
    assert not thresholds.judge(result(mel_l1=[0.3, 0.6]), limits, "detect")[0]


def test_an_error_is_a_detection_and_a_failure_of_a_correct_stage():
    stopped = StageResult({}, "LayoutError: [b, 64, T]")
    assert thresholds.judge(stopped, {}, "detect")[0]
    assert not thresholds.judge(stopped, {"mel_l1_max": [1.0]}, "pass")[0]


def test_a_mistake_without_its_metric_is_not_detected():
    assert not thresholds.judge(result(other=[5.0]), {"mel_l1_detect_min": [0.1]}, "detect")[0]
    assert not thresholds.judge(result(mel_l1=[5.0]), {}, "detect")[0]


def test_nan_never_passes():
    assert not thresholds.judge(result(mel_l1=[np.nan]), {"mel_l1_max": [1.0]}, "pass")[0]


def test_higher_is_better_metrics_get_floors():
    limits = thresholds.pass_limits({"mel_snr": [12.0]}, ["mel_snr"])
    assert limits == {"mel_snr_min": [11.0]}
    assert not thresholds.judge(result(mel_snr=[10.9]), limits, "pass")[0]


def test_select_clips_keeps_the_clips_asked_for():
    limits = {"mel_l1_max": [0.1, 0.2, 0.3], "snr_min": [60.0]}
    assert thresholds.select_clips(limits, [2]) == {"mel_l1_max": [0.3], "snr_min": [60.0]}


# --- relative (the reference combination on the same clip) ---------------------------------------------------


def test_fit_relative_is_the_smallest_envelope_above_every_clip():
    m = thresholds.fit_relative(np.array([0.2, 0.9, 0.5]), np.array([0.1, 0.6, 0.5]), "mel_l1")
    assert m == {"mel_l1_ratio": 2.0, "mel_l1_offset": 0.3}
    # a variant never worse than the reference keeps the reference's own margin
    assert thresholds.fit_relative(np.array([0.1]), np.array([0.3]), "mel_l1") == {"mel_l1_ratio": 1.0,
                                                                                     "mel_l1_offset": 0.0}
    # a dB figure: the largest deficit (2 dB) plus two standard deviations of the deficits (2, -1: 1.5 dB)
    assert thresholds.fit_relative(np.array([10.0, 14.0]), np.array([12.0, 13.0]), "mel_snr") == {
        "mel_snr_offset_db": 5.0}
    # never below the reference's own margin
    assert thresholds.fit_relative(np.array([13.0, 14.0]), np.array([12.0, 13.0]), "mel_snr") == {
        "mel_snr_offset_db": 0.0}


def test_relative_pass_ceiling_follows_the_reference_on_the_same_clip():
    margins = {"mel_l1_ratio": 2.0, "mel_l1_offset": 0.3}
    limits = thresholds.relative_limits(margins, {"mel_l1": np.array([0.1, 1.0])}, "pass", "mel_l1")
    # max(2 * r, r + 0.3) * 1.25 + 0.01
    np.testing.assert_allclose(limits["mel_l1_max"], [0.51, 2.51])
    assert thresholds.judge(result(mel_l1=[0.5, 2.5]), limits, "pass")[0]
    assert not thresholds.judge(result(mel_l1=[0.52, 0.1]), limits, "pass")[0]


def test_relative_detect_must_clear_the_loosest_correct_alternative():
    reference = {"ref_mel_l1": np.array([0.0, 0.0])}
    alone = thresholds.relative_limits({}, reference, "detect", "ref_mel_l1")
    np.testing.assert_allclose(alone["ref_mel_l1_detect_min"], [0.012, 0.012])  # 1.2 x (0 * 1.1 + 0.01)
    sample = {"ref_mel_l1_ratio": 1.0, "ref_mel_l1_offset": 0.08}  # a correct variant that strays 0.08
    limits = thresholds.relative_limits({}, reference, "detect", "ref_mel_l1", [sample])
    np.testing.assert_allclose(limits["ref_mel_l1_detect_min"], [0.132, 0.132])  # 1.2 x (0.08 * 1.25 + 0.01)
    assert not thresholds.judge(result(ref_mel_l1=[0.1, 1.0]), limits, "detect")[0]
    assert thresholds.judge(result(ref_mel_l1=[0.5, 1.0]), limits, "detect")[0]


def test_a_share_metric_scales_with_the_references_loss():
    """ref_mel_l1 (distance to the reference's output) is judged as a share of the reference's own loss."""
    margins = {"ref_mel_l1_share": 0.1}
    loss = {"ref_mel_l1": np.array([0.2, 1.0])}
    limits = thresholds.relative_limits(margins, loss, "pass", "ref_mel_l1", shares=["ref_mel_l1"])
    np.testing.assert_allclose(limits["ref_mel_l1_max"], [0.035, 0.135])  # 0.1 * loss * 1.25 + 0.01
    detect = thresholds.relative_limits({}, loss, "detect", "ref_mel_l1", [margins], shares=["ref_mel_l1"])
    np.testing.assert_allclose(detect["ref_mel_l1_detect_min"], [0.042, 0.162])
    assert thresholds.fit_relative(np.array([0.02, 0.05]), np.array([0.2, 1.0]), "ref_mel_l1", share=True) == {
        "ref_mel_l1_share": 0.1}


def test_relative_margins_of_a_users_variant_are_its_siblings():
    data = {thresholds.relative_key("audioldm2-sample-hifigan", "vae"): {"ref_mel_l1_offset": 0.08},
            thresholds.relative_key("audioldm2-scaled-hifigan", "vae"): {"ref_mel_l1_offset": 0.0}}
    reference = {"ref_mel_l1": np.array([0.1])}

    def limits(table, vae):
        return verdicts.Judge(table).relative_limits(Combination("audioldm2", vae, "hifigan"), "vae", "pass",
                                                     "ref_mel_l1", reference)

    ceiling, source = limits(data, "sample")
    assert source == "audioldm2-sample-hifigan"
    np.testing.assert_allclose(ceiling["ref_mel_l1_max"], [0.18 * 1.25 + 0.01])  # r + offset, with headroom
    # "my-vae" is not built in: it is judged as the scaled VAE it replaces
    assert limits(data, "my-vae")[1] == "audioldm2-scaled-hifigan"
    # no table at all: the reference's own margin
    ceiling, source = limits({}, "sample")
    assert source == "audioldm2-scaled-hifigan"
    np.testing.assert_allclose(ceiling["ref_mel_l1_max"], [0.1 * 1.25 + 0.01])


@pytest.mark.parametrize("stage,reference", [("frontend", "audioldm2-sample-griffin-lim"),
                                             ("vae", "audioldm2-tacotron-scaled-griffin-lim"),
                                             ("vocoder", "audioldm2-tacotron-sample-hifigan"),
                                             ("chain", "audioldm2-scaled-hifigan")])
def test_reference_replaces_the_stage_component(stage, reference):
    assert Combination("audioldm2-tacotron", "sample", "griffin-lim").reference(stage).id == reference


# --- the whole chain of a known mistake (asserted where calibration separates it) ---------------------------


def test_chain_detection_asserts_only_a_clear_separation_on_every_clip():
    corrected = {"mel_l1_max": [0.5, 1.0]}  # detection limit 0.6, 1.2; asserted from 0.63, 1.26
    found = thresholds.chain_detection(result(mel_l1=[0.7, 1.3]), corrected, ["a", "b"])
    assert found == {"expected": "detect", "mel_l1_detect_min": [0.6, 1.2], "detect_ratio_min": 1.0833}
    assert thresholds.judge(result(mel_l1=[0.7, 1.3]), {"mel_l1_detect_min": found["mel_l1_detect_min"]}, "detect")[0]
    # clears the limit on clip b, but by less than the headroom: reported, naming the clip and the ratio
    close = thresholds.chain_detection(result(mel_l1=[0.7, 1.24]), corrected, ["a", "b"])
    assert close["expected"] == "report" and "on b is 1.033x" in close["not_asserted"]
    assert "mel_l1_detect_min" not in close


def test_chain_detection_reports_a_stopped_chain_or_a_missing_ceiling():
    stopped = thresholds.chain_detection(StageResult({}, "LayoutError: [b, 64, T]"), {"mel_l1_max": [1.0]}, ["a"])
    assert stopped == {"expected": "report", "not_asserted": "the chain stopped: LayoutError: [b, 64, T]"}
    assert "no chain ceiling" in thresholds.chain_detection(result(mel_l1=[9.0]), None, ["a"])["not_asserted"]


@pytest.mark.parametrize("combo,corrected,judgeable", [
    (("seed-librosa-db", "scaled", "hifigan"), "audioldm2-scaled-hifigan", True),  # the original report's chain
    (("seed-librosa-db", "none", "griffin-lim"), "audioldm2-none-griffin-lim", False),  # not AudioLDM2's vocoder
    (("audioldm2", "double-scale", "hifigan"), "audioldm2-scaled-hifigan", True),
    (("power-mel", "no-decode-scale", "hifigan-transposed"), "audioldm2-scaled-hifigan", False),
    (("audioldm2", "scaled", "hifigan-transposed"), "audioldm2-scaled-hifigan", False),  # the vocoder is the culprit
    (("audioldm2-tacotron", "sample", "hifigan"), "audioldm2-tacotron-sample-hifigan", False),  # correct
])
def test_corrected_replaces_every_mistaken_component(combo, corrected, judgeable):
    c = Combination(*combo)
    assert c.corrected().id == corrected
    assert c.chain_judgeable() is judgeable


def test_quality_check_asserts_a_mistakes_chain_only_where_calibration_separated_it():
    from harness.surfaces.quality_check import QualityCheck

    asserted, near = Combination("htk-mel", "scaled", "hifigan"), Combination("power-mel", "scaled", "hifigan")
    check = QualityCheck({f"{asserted.id}:chain": {"expected": "detect", "mel_l1_detect_min": [0.6]},
                          f"{near.id}:chain": {"expected": "report", "not_asserted": "too close: 0.73x on clip:noise"}})
    assert check.expected(asserted, "chain") == "detect"
    assert check.expected(asserted, "frontend") == "detect"  # the culprit stage, structurally
    with pytest.raises(AssertionError, match="was NOT detected"):
        check.check(asserted, "chain", result(mel_l1=[0.5]), "detect")
    with pytest.raises(pytest.skip.Exception, match="not asserted \\(too close: 0.73x on clip:noise\\).*'frontend'"):
        check.expected(near, "chain")
    with pytest.raises(pytest.skip.Exception, match="no chain-stage decision"):  # thresholds from before
        QualityCheck({}).expected(near, "chain")


# --- the policy of one file's stage -----------------------------------------------------------------------


def test_a_file_stage_is_judged_unjudgeable_then_absolute_then_yardstick_then_relative():
    mistake = Combination("audioldm2", "no-decode-scale", "hifigan")
    correct = Combination("audioldm2", "scaled", "hifigan")
    table = {thresholds.table_key(mistake.id, "vae"): {"unjudgeable": "random weights"},
             thresholds.table_key(correct.id, "vocoder"): {"mel_l1_max": [0.3, 0.5]}}

    def never():
        raise AssertionError("the reference was computed where no relative verdict is made")

    v = verdicts.Judge(table).file_stage(mistake, "vae", result(mel_l1=[9.0]), 0, never)
    assert (v.ok, v.policy, v.source) == (False, "unjudgeable", "random weights")
    v = verdicts.Judge(table).file_stage(correct, "vocoder", result(mel_l1=[0.45]), 1, never)  # clip 1's ceiling
    assert (v.ok, v.policy, v.source, v.limits) == (True, "absolute", correct.id, {"mel_l1_max": [0.5]})
    v = verdicts.Judge(table).file_stage(correct, "vocoder", result(mel_l1=[0.45]), None, never)  # no baseline
    assert (v.ok, v.policy) == (True, "yardstick")  # the reference at its own stage is what the others are judged by
    baseline_free = Combination("audioldm2", "scaled", "griffin-lim")  # judged against hifigan on the same file
    v = verdicts.Judge(table).file_stage(baseline_free, "vocoder", result(mel_l1=[0.40]), None,
                                  lambda: result(mel_l1=[0.40]))
    assert (v.ok, v.policy, v.source) == (True, "relative", correct.id)  # no margins of its own: the reference's
    v = verdicts.Judge(table).file_stage(baseline_free, "vocoder", result(mel_l1=[2.0]), None,
                                  lambda: result(mel_l1=[0.40]))
    assert (v.ok, v.policy) == (False, "relative")
