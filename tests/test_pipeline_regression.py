"""Re-running the full pipeline with the manifest's seeds reproduces the golden latents and waveform."""
import numpy as np
import pytest
import torch

from harness import golden as golden_mod
from harness import loading, metrics, thresholds
from harness.quality import exact_key


@pytest.fixture(scope="module")
def pipeline(harness_options, harness_chain):
    try:
        source = loading.resolve_model(harness_options["model"], subfolders=("vae", "vocoder", "unet"))
        return loading.load_pipeline(source, harness_options["device"], harness_options["dtype"])
    except loading.ModelNotAvailable as exc:
        pytest.skip(f"full pipeline not available: {exc}")


def test_pipeline_reproduces_goldens(pipeline, golden_set, harness_chain):
    m = golden_set.manifest
    floor = thresholds.EXACT_SNR_DB[exact_key(harness_chain)]
    captured = {}
    for case in golden_set.cases:
        gen = torch.Generator(device="cpu").manual_seed(case.seed)
        with torch.inference_mode():
            wave = pipeline(case.prompt, num_inference_steps=m["steps"], guidance_scale=m["guidance_scale"],
                            audio_length_in_s=m["audio_length_in_s"], generator=gen, output_type="np",
                            callback=lambda s, t, z: captured.__setitem__("z", z.clone()), callback_steps=1).audios[0]
        z = captured["z"][0].float().cpu().numpy()
        lat_snr = float(metrics.snr(z.reshape(1, -1), case.latents.reshape(1, -1))[0])
        wav_snr = float(metrics.snr(wave[None].astype(np.float32), case.audio[None])[0])
        assert lat_snr >= floor, f"{case.name}: latents SNR {lat_snr:.1f} dB < {floor} dB"
        assert wav_snr >= floor, f"{case.name}: waveform SNR {wav_snr:.1f} dB < {floor} dB"


def test_manifest_matches_model(golden_set, harness_options):
    source = loading.resolve_model(harness_options["model"], subfolders=("vae", "vocoder", "unet"))
    assert golden_set.manifest["weights_sha256"] == source.weights_hash(("vae", "vocoder", "unet")), (
        "the goldens were made with other weights: regenerate them (harness golden / pytest --regen-golden)")
    assert golden_mod.check(golden_set.root)
