"""The stage engine (``harness.judging.stages``): one way to run a component at a stage and to compare its
output, used alike by the matrix, the golden stages and ``harness diagnose``."""
import numpy as np
import pytest
import torch

from harness import vocabulary
from harness.judging import stages
from harness.signal import audio
from harness.surfaces.diagnose import stages as diagnose_stages


def test_the_vocabulary_names_each_stage_once_with_its_component():
    assert vocabulary.CLIP_STAGES == vocabulary.COMPONENTS + ("chain",)
    assert set(vocabulary.GOLDEN_STAGES) | set(vocabulary.COMPONENTS) == set(vocabulary.COMPONENT_AT)
    assert set(stages.JUDGED) == set(vocabulary.CLIP_STAGES) | set(vocabulary.GOLDEN_STAGES)
    # the golden stages are judged by their component's correct default
    assert stages.GOLDEN_REFERENCE == {"decode": "scaled", "roundtrip": "scaled", "vocoder": "hifigan",
                                       "frontend": "audioldm2"}
    # diagnose's rows are clip stages of the vocabulary
    assert set(diagnose_stages.ROW_STAGE.values()) <= set(vocabulary.CLIP_STAGES)


@pytest.fixture(scope="module")
def wave():
    t = np.arange(audio.grid_frames(8000) * audio.HOP) / audio.SAMPLE_RATE
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 1700 * t)).astype(np.float32)
    return audio.normalize_waveform(torch.from_numpy(x)[None])


def test_each_stage_runs_its_component_with_the_documented_shapes(harness_chain, wave):
    frames = wave.shape[-1] // audio.HOP
    mel = stages.output(harness_chain, "frontend", "audioldm2", wave)
    assert mel.shape == (1, 1, frames, 64)
    assert stages.output(harness_chain, "vae", "scaled", mel).shape == mel.shape
    latents = harness_chain.encode(mel)
    assert stages.output(harness_chain, "decode", "scaled", latents).shape == mel.shape
    assert stages.output(harness_chain, "vocoder", "hifigan", mel, samples=wave.shape[-1]).shape == wave.shape
    # a stage that runs no single component, or a misspelt one, is the caller's bug: it is raised, not measured
    with pytest.raises(KeyError, match="stage 'chain' is not one of: frontend, vae, roundtrip, decode, vocoder"):
        stages.output(harness_chain, "chain", "scaled", mel)
    with pytest.raises(KeyError, match="stage 'round-trip' is not one of"):
        stages.golden_stages(harness_chain, latents.numpy(), mel[:, 0].numpy(), wave.numpy(), stages=["round-trip"])
    with pytest.raises(ValueError, match="closer framing by mel_l1 only"):
        stages.compare("frontend", mel, stages.framing_mels(wave), names=["mel_snr"])


def test_a_vocoder_is_compared_with_a_mel_by_reanalysis_and_with_a_waveform_sample_by_sample(harness_chain, wave):
    mel = stages.output(harness_chain, "frontend", "audioldm2", wave)
    # the input waveform re-analysed against its own mel: 0 nats; against itself, sample-exact: capped SNR
    assert stages.compare("vocoder", wave, mel)["mel_l1"][0] == pytest.approx(0.0, abs=1e-6)
    exact = stages.compare("vocoder", wave, wave)
    assert set(exact) == set(stages.GOLDEN_VOCODER_METRICS) and exact["snr"][0] >= 299
    # the chain aligns and gain-matches: half the level is still a perfect waveform match there
    chain = stages.compare("chain", 0.5 * wave, wave)
    assert set(chain) == set(stages.JUDGED["chain"] + stages.REPORTED) and chain["snr"][0] >= 299
    assert stages.compare("vocoder", 0.5 * wave, wave)["snr"][0] == pytest.approx(6.02, abs=0.01)


def test_a_front_end_is_compared_with_the_closer_framing(harness_chain, wave):
    framings = stages.framing_mels(wave)
    tacotron = stages.output(harness_chain, "frontend", "audioldm2-tacotron", wave)
    assert stages.compare("frontend", tacotron, framings)["mel_l1"][0] == pytest.approx(0.0, abs=1e-6)
    assert stages.compare("frontend", tacotron, framings[0])["mel_l1"][0] > 0.01  # against one framing alone


def test_a_non_finite_vocoder_output_is_a_stage_error_not_a_number(harness_chain, wave):
    from harness.model import variants

    @variants.register_vocoder("nan-vocoder-for-stage-test", correct=False)
    def nan_vocoder(chain, mel):
        return torch.full((mel.shape[0], mel.shape[2] * audio.HOP), float("nan"))

    try:
        mel = stages.output(harness_chain, "frontend", "audioldm2", wave)
        result = stages.measure(lambda: stages.compare(
            "vocoder", stages.output(harness_chain, "vocoder", "nan-vocoder-for-stage-test", mel), mel))
        assert result.metrics == {}
        assert result.error.startswith("StageOutputError: vocoder 'nan-vocoder-for-stage-test' returned a Tensor")
        assert result.error.endswith("the waveform contains NaN or Inf"), result.error
    finally:
        variants._VOCODERS.pop("nan-vocoder-for-stage-test")
