"""Re-running the full pipeline with the manifest's seeds reproduces the golden latents and waveform."""
import pytest

from harness.judging import golden as golden_mod
from harness.model import loading
from harness.errors import ModelNotAvailable
from harness.signal import metrics
from harness.judging import thresholds
from harness.judging.quality import exact_key


@pytest.fixture(scope="module")
def pipeline(harness_options, harness_chain):
    try:
        source = loading.resolve_model(harness_options["model"], subfolders=("vae", "vocoder", "unet"))
        return loading.load_pipeline(source, harness_options["device"], harness_options["dtype"])
    except ModelNotAvailable as exc:
        pytest.skip(f"full pipeline not available: {exc}")


def test_pipeline_reproduces_goldens(pipeline, golden_set, harness_chain):
    m = golden_set.manifest
    floor = thresholds.EXACT_SNR_DB[exact_key(harness_chain)]
    for case in golden_set.cases:
        z, wave = golden_mod.run_case(pipeline, case.prompt, case.seed, m["steps"], m["guidance_scale"],
                                      m["audio_length_in_s"])
        lat_snr = float(metrics.snr(z.reshape(1, -1), case.latents.reshape(1, -1))[0])
        wav_snr = float(metrics.snr(wave[None], case.audio[None])[0])
        assert lat_snr >= floor, f"{case.name}: latents SNR {lat_snr:.1f} dB < {floor} dB"
        assert wav_snr >= floor, f"{case.name}: waveform SNR {wav_snr:.1f} dB < {floor} dB"


def test_manifest_matches_model(golden_set, harness_options):
    source = loading.resolve_model(harness_options["model"], subfolders=("vae", "vocoder", "unet"))
    assert golden_set.manifest["weights_sha256"] == source.weights_hash(("vae", "vocoder", "unet")), (
        "the goldens were made with other weights: regenerate them (harness golden / pytest --harness-regen-golden)")
    assert golden_mod.check(golden_set.root)
