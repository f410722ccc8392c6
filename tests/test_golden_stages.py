"""Stage isolation on the full-pipeline goldens.

* decode:    golden latents -> VAE decode         vs golden mel      (sample-exact for a correct variant)
* roundtrip: golden mel -> VAE encode/decode       vs the correct round trip (scaled, mode) of it
* vocoder:   golden mel -> vocoder                 vs golden waveform (HiFi-GAN reproduces the phase here,
                                                                       so waveform SNR/correlation are judged)
* frontend:  golden waveform -> front-end          vs the AudioLDM2 front-end of it (closer framing)

Every golden stage can fail: each is shown failing on a known mistake below.
"""
import pytest

from harness.surfaces.plugin import GOLDEN_GROUP
from harness.surfaces.suite import test_golden_stage  # noqa: F401  (the shipped suite, as users import it)


@pytest.mark.xdist_group(GOLDEN_GROUP["decode"])  # under pytest -n, on the worker that computes these stages
def test_unscaled_cancels_in_roundtrip_but_not_on_pipeline_latents(harness_matrix, harness_chain, golden_set):
    """Forgetting the scaling factor on both sides is invisible in a round trip, visible on pipeline latents."""
    if harness_chain.source is not None and harness_chain.source.random_weights:
        pytest.skip("random weights: a random VAE's decode of pipeline latents shows no scaling mistake it was "
                    "never trained to avoid")
    res = harness_matrix.golden(harness_chain, golden_set, ["decode", "roundtrip"])
    rt_scaled = res["roundtrip"]["scaled"].metrics["mel_l1"]
    rt_unscaled = res["roundtrip"]["unscaled"].metrics["mel_l1"]
    dec_scaled = res["decode"]["scaled"].metrics["mel_l1"]
    dec_unscaled = res["decode"]["unscaled"].metrics["mel_l1"]
    assert (abs(rt_unscaled - rt_scaled) < 0.05).all(), (rt_scaled, rt_unscaled)
    assert (dec_unscaled > dec_scaled + 0.1).all(), (dec_scaled, dec_unscaled)


@pytest.mark.xdist_group(GOLDEN_GROUP["frontend"])
def test_the_original_reports_front_end_fails_the_golden_front_end_stage(harness_quality, harness_matrix,
                                                                        harness_chain, golden_set):
    """``power_to_db(...)/20`` is far from AudioLDM2's mel of the same golden waveform; a correct rewrite is not."""
    res = harness_matrix.golden(harness_chain, golden_set, ["frontend"])["frontend"]
    limit = harness_quality.thresholds["golden-frontend-audioldm2:frontend"]["mel_l1_max"]
    assert (res["seed-librosa-db"].metrics["mel_l1"] > limit).all(), (res["seed-librosa-db"].metrics, limit)
    assert (res["audioldm2-tacotron"].metrics["mel_l1"] <= limit).all()


@pytest.mark.parametrize("stage, mistake", [("decode", "double-scale"), ("roundtrip", "no-encode-scale"),
                                            ("frontend", "htk-mel")])
def test_each_golden_stage_fails_on_a_known_mistake(harness_quality, harness_matrix, harness_chain, golden_set,
                                                   stage, mistake, tmp_path):
    """A known mistake's figures, judged by the limits its correct counterpart passes, fail that golden stage;
    its evidence draws the output against what the stage compared it with."""
    from harness.judging.stages import GOLDEN_COMPARED_WITH, GOLDEN_REFERENCE
    from harness.judging.quality import GoldenTarget

    result = harness_matrix.golden(harness_chain, golden_set, [stage])[stage][mistake]
    with pytest.raises(AssertionError, match="lost quality"):
        harness_quality.check(GoldenTarget(stage, GOLDEN_REFERENCE[stage]), stage, result, "pass",
                              clip_names=[c.name for c in golden_set.cases])
    case = golden_set.cases[0].name
    said = harness_matrix.golden_evidence(harness_chain, golden_set, stage, mistake)(tmp_path, [f"golden:{case}"])
    assert GOLDEN_COMPARED_WITH[stage] in said
    written = sorted(p.name for p in tmp_path.iterdir())
    assert f"golden-{case}-mel.png" in written and len(written) == (2 if stage == "frontend" else 1), written
