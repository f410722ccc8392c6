"""Fix hints (:mod:`harness.judging.hints`): each shape of difference is named, on code-made differences (numpy
only) and on every slip of ``tests/user_variants/slips.py`` run at its golden stage against the correct call."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from harness.judging.hints import HAMMING_OFFSET_NATS, Hint, Kind, hint

SR = 16000


def _wave(seconds=1.0, seed=0):
    """A 0.5-peak test signal: three partials and a little broadband noise, ``[samples]`` at 16 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    x = sum(np.sin(2 * np.pi * f * t + p) / k for k, (f, p) in enumerate([(220, 0.0), (1375, 1.0), (5200, 2.0)], 1))
    x = x + 0.05 * rng.standard_normal(len(t))
    return 0.5 * x / np.abs(x).max()


def _mel(frames=200, seed=0):
    """A log-mel-like array ``[frames, 64]`` in nats: a smooth spectrum that falls with frequency, moving in time."""
    rng = np.random.default_rng(seed)
    bins = np.arange(64)
    t = np.arange(frames)[:, None]
    return -2.0 - 0.08 * bins + 1.5 * np.sin(0.07 * t + 0.2 * bins) + 0.3 * rng.standard_normal((frames, 64))


# --- code-made differences ---------------------------------------------------------------------------


def test_constant_offset_in_log_mel_is_an_offset_before_the_vae_and_a_scale_after_it():
    ref = _mel()
    h = hint("frontend", ref + np.log(2.0), ref)
    assert h.kind is Kind.OFFSET and h.measured["offset_nats"] == pytest.approx(np.log(2.0), abs=1e-9)
    assert "+0.693 nats" in h.sentence and "normalise" in h.sentence
    # the same shift after a VAE decode points at its scaling factor
    assert hint("decode", ref + 0.02, ref).kind is Kind.SCALE


def test_log_base_and_power_are_named_from_the_fitted_slope():
    ref = _mel()
    assert "log10 instead of ln" in hint("frontend", ref / np.log(10), ref).sentence
    assert "power mel" in hint("frontend", 2 * ref, ref).sentence
    assert hint("frontend", (ref - ref.mean()) / ref.std(), ref).kind is Kind.AFFINE


def test_a_tilt_across_bins_is_the_filterbank():
    ref = _mel()
    h = hint("frontend", ref + np.linspace(0, -0.6, 64) + 0.01 * np.random.default_rng(1).standard_normal(ref.shape),
             ref)
    assert h.kind is Kind.SLOPE and h.measured["tilt_nats"] == pytest.approx(-0.6, abs=0.02)


def test_lost_high_bins_are_band_loss():
    ref = _mel()
    out = ref.copy()
    out[:, 48:] -= 3.0
    h = hint("vocoder", out, ref)
    assert h.kind is Kind.BAND_LOSS and h.measured["first_lost_bin"] == 48


def test_a_frame_shift_is_a_lag_in_frames():
    ref = _mel()
    out = np.concatenate([ref[:2], ref[:-2]])
    h = hint("frontend", out, ref)
    assert h.kind is Kind.LAG and h.measured["lag_frames"] == 2 and "(320 samples) late" in h.sentence


def test_swapped_axes_and_other_frame_counts():
    ref = _mel(frames=100)
    assert hint("frontend", ref.T, ref).kind is Kind.LAYOUT
    h = hint("frontend", ref[::2], ref)  # half the frames: twice the hop
    assert h.kind is Kind.LENGTH and "hop of 320 samples" in h.sentence


def test_waveform_gain_is_named_in_db():
    ref = _wave()
    h = hint("vocoder", 0.5 * ref, ref)
    assert h.kind is Kind.GAIN and h.measured["gain_db"] == pytest.approx(-6.02, abs=0.01)


@pytest.mark.parametrize("lag", [40, -7, 300])
def test_waveform_lag_is_the_cross_correlation_peak(lag):
    ref = _wave()
    out = np.roll(ref, lag)
    if lag > 0:
        out[:lag] = 0
    else:
        out[lag:] = 0
    h = hint("vocoder", out, ref)
    assert h.kind is Kind.LAG and h.measured["lag_samples"] == lag


def test_waveform_band_loss_names_the_cutoff():
    ref = _wave()
    spec = np.fft.rfft(ref)
    spec[np.fft.rfftfreq(len(ref), 1 / SR) >= 4000] = 0
    h = hint("vocoder", np.fft.irfft(spec, len(ref)), ref)
    assert h.kind is Kind.BAND_LOSS and h.measured["cutoff_hz"] == 4000


def test_clipping_names_its_level():
    ref = _wave()
    h = hint("vocoder", np.clip(ref, -0.3, 0.3), ref)
    assert h.kind is Kind.CLIPPING and h.measured["clip_level"] == pytest.approx(0.3)
    assert "-4.4 dB below" in h.sentence  # 20 log10(0.3 / 0.5)


@pytest.mark.parametrize("snr_db", [20.0, 50.0])
def test_added_noise_is_named_with_its_snr(snr_db):
    ref = _wave()
    noise = np.random.default_rng(3).standard_normal(len(ref))
    noise *= np.sqrt(np.mean(ref ** 2) / np.mean(noise ** 2)) * 10 ** (-snr_db / 20)
    h = hint("vocoder", ref + noise, ref)
    assert h.kind is Kind.NOISE and h.measured["snr_db"] == pytest.approx(snr_db, abs=0.5)


def test_identical_arrays_have_no_hint_and_the_sentence_is_one_line():
    ref = _mel()
    assert hint("frontend", ref, ref).kind is Kind.NONE
    assert hint("vocoder", _wave(), _wave()).kind is Kind.NONE
    h = hint("frontend", ref[None, None] + 1.0, ref[None])  # [1, 1, T, 64] and [1, T, 64] are one mel
    assert isinstance(h, Hint) and "\n" not in h.sentence and str(h) == h.sentence


def test_arrays_that_cannot_be_compared_are_refused_by_name():
    with pytest.raises(ValueError, match="not the same kind of array"):
        hint("vocoder", _wave(), _mel())
    with pytest.raises(ValueError, match="output holds NaN"):
        hint("frontend", np.full((10, 64), np.nan), _mel(frames=10))
    with pytest.raises(ValueError, match="unknown stage 'mel'"):
        hint("mel", _mel(), _mel())
    with pytest.raises(ValueError, match="reference: expected a mel"):
        hint("frontend", _mel(), np.zeros((2, 3, 4, 5)))


def test_the_window_hint_is_not_a_constant_offset():
    ref = _mel()
    assert hint("frontend", ref + HAMMING_OFFSET_NATS, ref).kind is Kind.OFFSET


# --- the slips users make ------------------------------------------------------------------------------

#: each slip of tests/user_variants/slips.py -> (its golden stage, the kind of mistake it is)
SLIP_KINDS = {
    "slip-off-by-one": ("frontend", Kind.LAG), "slip-hamming": ("frontend", Kind.WINDOW),
    "slip-log-floor": ("frontend", Kind.FLOOR), "slip-no-normalize": ("frontend", Kind.OFFSET),
    "slip-no-mean-removal": ("frontend", Kind.DC), "slip-standardised": ("frontend", Kind.AFFINE),
    "slip-tts-db": ("frontend", Kind.AFFINE),
    "slip-scale": ("decode", Kind.SCALE), "slip-wrapper-decode": ("decode", Kind.SCALE),
    "slip-scale-low": ("decode", Kind.SCALE), "slip-encode-scale": ("roundtrip", Kind.SCALE),
    "slip-posterior-temperature": ("roundtrip", Kind.NOISE),
    "slip-lag": ("vocoder", Kind.LAG), "slip-band-limit": ("vocoder", Kind.BAND_LOSS),
    "slip-noise": ("vocoder", Kind.NOISE), "slip-truncated": ("vocoder", Kind.LENGTH),
    "slip-clipping": ("vocoder", Kind.CLIPPING), "slip-resample-8k": ("vocoder", Kind.BAND_LOSS),
    "slip-gain": ("vocoder", Kind.GAIN),
}
#: the matrix's known mistakes (harness list), each at its golden stage
KNOWN_MISTAKE_KINDS = {
    "power-mel": ("frontend", Kind.AFFINE), "log10-mel": ("frontend", Kind.AFFINE),
    "seed-librosa-db": ("frontend", Kind.AFFINE), "htk-mel": ("frontend", Kind.SLOPE),
    "no-decode-scale": ("decode", Kind.SCALE), "double-scale": ("decode", Kind.SCALE),
    "unscaled": ("decode", Kind.SCALE), "no-encode-scale": ("roundtrip", Kind.SCALE),
}

#: run in a child process: importing the slips registers them, which must not reach this run's matrix
SLIP_SCRIPT = """
import json, sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import slips  # noqa: F401  registers the slips
from harness.judging import golden
from harness.judging.hints import hint
from harness.model import variants
from harness.model.chain import Chain

chain = Chain.load(sys.argv[3], "cpu", "fp32")
cases = golden.load(sys.argv[2]).cases
latents, mel, wave = (torch.from_numpy(np.stack([getattr(c, k) for c in cases])) for k in ("latents", "mel", "audio"))
mel = mel[:, None]
# each slip's component called as the golden stage calls it, beside the correct call on the same input
# (called directly: a truncated vocoder output is measured as it is, where the stage would refuse its length)
pair = {
    "frontend": lambda name: (chain.front_end(wave, name), chain.front_end(wave, "audioldm2")),
    "decode": lambda name: (variants.get_vae(name).decode_latents(chain, latents), mel),
    "roundtrip": lambda name: (chain.vae_roundtrip(mel, name), chain.vae_roundtrip(mel, "scaled")),
    "vocoder": lambda name: (chain.vocoder_out(mel, name)[:, : wave.shape[-1]], wave),
}
found = {}
for name, stage in json.loads(sys.argv[4]).items():
    with torch.inference_mode():
        out, ref = pair[stage](name)
    found[name] = [(h.kind.value, h.sentence) for h in
                   (hint(stage, o, r) for o, r in zip(out.float().numpy(), ref.float().numpy()))]
print("HINTS " + json.dumps(found))
"""


def test_every_slip_and_known_mistake_is_named_by_its_hint(harness_options, tmp_path):
    """Each slip's (and each known mistake's) output at its golden stage against the correct call's: the hint names
    its kind on every golden case. The hit rates are printed; all of them is what this test holds."""
    golden = harness_options["golden_dir"].resolve()
    if not (golden / "manifest.json").exists():
        pytest.skip(f"no goldens in {golden}")
    script = tmp_path / "slip_hints.py"
    script.write_text(SLIP_SCRIPT)
    variants = pathlib.Path(__file__).parent / "user_variants"
    expected = {**SLIP_KINDS, **KNOWN_MISTAKE_KINDS}
    run = subprocess.run([sys.executable, str(script), str(variants), str(golden), harness_options["model"],
                          json.dumps({name: stage for name, (stage, _) in expected.items()})],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.split("HINTS ", 1)[1])
    assert set(found) == set(expected)
    missed = {name: [k for k, _ in hints] for name, hints in found.items()
              if {k for k, _ in hints} != {expected[name][1].value}}
    for group, names in (("slips", SLIP_KINDS), ("known mistakes", KNOWN_MISTAKE_KINDS)):
        print(f"hints name {len([n for n in names if n not in missed])}/{len(names)} {group} on every golden case")
    assert not missed, {n: (expected[n][1].value, k) for n, k in missed.items()}
    # the fitted slope names the convention
    assert all("power mel" in sentence for _, sentence in found["power-mel"])
    assert all("log10 instead of ln" in sentence for _, sentence in found["log10-mel"])
    assert all("HTK" in sentence for _, sentence in found["htk-mel"])
