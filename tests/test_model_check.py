"""The model check: a pipeline whose configs disagree with what the harness judges is refused from its configs
alone, by every command that takes --model and by the pytest plugin, with one line naming both numbers and the
files they come from; every member of the family passes it."""
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from harness.builders import family
from harness.builders.bundled import tiny
from harness.errors import IncompatibleModel, ModelNotAvailable
from harness.model import loading
from harness.model.settings import check_settings, read_settings, settings_problems

EIGHT_MELS = ("vocoder/config.json model_in_dim 8 != the front-end's 64 mel bins",
              "vocoder/config.json upsample_rates multiply to 4 != the front-end's hop of 160 samples")
FOUR_LATENTS = "vae/config.json latent_channels 4 != unet/config.json in_channels 8"


def _without_weights(model_dir):
    """Weights removed: a refusal that still names the mismatch was decided from the configs alone."""
    for f in list(model_dir.rglob("*.safetensors")) + list(model_dir.rglob("*.bin")):
        f.unlink()
    return model_dir


@pytest.fixture(scope="module")
def eight_mel_model(tmp_path_factory):
    """The bundled pipeline with the vocoder of diffusers' own AudioLDM2 pipeline tests: 8 mel bins, hop 4."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    out = tmp_path_factory.mktemp("models") / "eight-mels"
    shutil.copytree(loading.BUNDLED["tiny"], out)
    shutil.rmtree(out / "vocoder")
    SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        normalize_before=False)).save_pretrained(out / "vocoder")
    return _without_weights(out)


@pytest.fixture(scope="module")
def four_latent_model(tmp_path_factory):
    """The bundled pipeline with a VAE of 4 latent channels under its UNet of 8."""
    from diffusers import AutoencoderKL

    out = tmp_path_factory.mktemp("models") / "four-latents"
    shutil.copytree(loading.BUNDLED["tiny"], out)
    shutil.rmtree(out / "vae")
    AutoencoderKL(**{**tiny.VAE_CONFIG, "latent_channels": 4}).save_pretrained(out / "vae")
    return _without_weights(out)


def _harness(*args, cwd):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_every_family_member_passes_the_check(tmp_path):
    for variant in family.VARIANTS:
        model_dir = family.build_tiny(variant, tmp_path / variant) if variant != "audioldm2" else loading.BUNDLED["tiny"]
        settings = read_settings(model_dir)
        assert settings_problems(settings, pipeline_needed=True) == [], variant
        assert (settings.sample_rate, settings.hop, settings.n_mels) == (16000, 160, 64)
    assert read_settings(tmp_path / "musicldm").scaling_factor == pytest.approx(family.MUSICLDM_SCALING_FACTOR)
    assert read_settings(tmp_path / "musicldm").pipeline == "MusicLDMPipeline"


@pytest.mark.parametrize("command", [["golden", "--out", "G"], ["matrix", "clip.wav"], ["diagnose", "clip.wav"]])
def test_commands_refuse_the_eight_mel_model_from_its_configs(eight_mel_model, tmp_path, command):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "clip.wav", np.zeros(16000, np.float32) + 0.1 * np.sin(np.arange(16000) / 5.0), 16000)
    done = _harness(*command, "--model", str(eight_mel_model), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"harness: error: {eight_mel_model}: cannot be judged"), done.stderr
    for part in EIGHT_MELS:
        assert part in lines[0]
    assert "docs/models.md" in lines[0]
    assert not (tmp_path / "G").exists()  # nothing generated, nothing written


def test_golden_refuses_the_four_latent_model(four_latent_model, tmp_path):
    done = _harness("golden", "--model", str(four_latent_model), "--out", "G", cwd=tmp_path)
    assert done.returncode == 2 and FOUR_LATENTS in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "G").exists()


@pytest.mark.parametrize("which", ["eight_mel_model", "four_latent_model"])
def test_pytest_plugin_stops_the_run_at_once(request, tmp_path, which):
    model = request.getfixturevalue(which)
    (tmp_path / "test_ours.py").write_text(textwrap.dedent("""
        def test_one(harness_chain):
            pass

        def test_two(harness_chain):
            pass
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--harness-model={model}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, out
    expected = EIGHT_MELS[0] if which == "eight_mel_model" else FOUR_LATENTS
    assert out.count(expected) == 1, out  # once for the run, not per test
    assert "passed" not in out and "failed" not in out


def test_other_mel_settings_are_refused_with_their_numbers(tmp_path):
    """haoheliu/audioldm_48k's settings: 48 kHz, hop 480, 256 mel bins, a VAE of factor 8 with 16 latent channels."""
    (tmp_path / "vae").mkdir()
    (tmp_path / "vocoder").mkdir()
    (tmp_path / "unet").mkdir()
    (tmp_path / "vae" / "config.json").write_text(json.dumps({
        "in_channels": 1, "out_channels": 1, "latent_channels": 16, "block_out_channels": [128, 256, 512, 1024],
        "scaling_factor": 1.0}))
    (tmp_path / "vocoder" / "config.json").write_text(json.dumps({
        "model_in_dim": 256, "sampling_rate": 48000, "upsample_rates": [6, 5, 4, 2, 2]}))
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"in_channels": 16, "out_channels": 16}))
    with pytest.raises(IncompatibleModel) as info:
        loading.resolve_model(str(tmp_path))
    message = str(info.value)
    for part in ("model_in_dim 256 != the front-end's 64 mel bins", "multiply to 480 != the front-end's hop of 160",
                 "sampling_rate 48000 != the front-end's 16000 Hz", "VAE scale factor of 8 != the front-end's frame "
                 "grid of 4"):
        assert part in message
    assert "\n" not in message


def test_an_unknown_pipeline_class_is_refused_only_where_the_pipeline_runs(tmp_path):
    model = tmp_path / "m"
    shutil.copytree(loading.BUNDLED["tiny"], model, ignore=shutil.ignore_patterns("*.safetensors"))
    index = json.loads((model / "model_index.json").read_text())
    (model / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableAudioPipeline"}))
    settings = read_settings(model)
    assert check_settings(settings, "m") is settings  # the VAE and vocoder alone can be judged
    with pytest.raises(IncompatibleModel, match="_class_name 'StableAudioPipeline' is none of AudioLDM2Pipeline"):
        check_settings(settings, "m", pipeline_needed=True)


def test_a_config_field_of_the_wrong_type_is_named_not_a_traceback(tmp_path):
    model = tmp_path / "m"
    shutil.copytree(loading.BUNDLED["tiny"], model, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((model / "vocoder" / "config.json").read_text())
    (model / "vocoder" / "config.json").write_text(json.dumps({**config, "upsample_rates": 160}))
    with pytest.raises(ModelNotAvailable, match=r"vocoder/config.json: has 160 as 'upsample_rates', not a list"):
        read_settings(model)
