"""Tests of harness/signal/frontend.py: the waveform -> log-mel front-ends.

The ``audioldm2`` front-end (float32 torch) is checked against an independent float64
NumPy/librosa re-implementation of AudioLDM2's training front-end written below
(``AUDIOLDM2_REFERENCE.md`` section 1), on the shipped reference clips, a harmonic tone
and hypothesis-generated signals. The other front-ends are checked against what they
claim to be: the tacotron framing is the same mel shifted by 80 samples, ``seed-librosa-db``
is the original report's librosa expression, and the mistakes are measurably wrong.

Runs in well under 30 s on one core (``OMP_NUM_THREADS=1``).
"""
from __future__ import annotations

import functools

import librosa
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.signal.audio import normalize_waveform
from harness.signal.frontend import LOG_FLOOR_NATS, get_frontend, list_frontends, log_mel, mel_to_magnitude
from harness.signal.synth import have_espeak, iter_reference_clips

SR = 16000
HOP = 160
N_FFT = 1024
N_MELS = 64
#: reference mel values above this (ln 1e-3) must match to 1e-4 nats; below it, float32 FFT
#: rounding noise (relative to the loudest bin of the frame) dominates the bins near the 1e-5 floor.
LOUD = float(np.log(1e-3))
CLIP_NAMES = ["speech", "music", "effects", "noise", "tone"]
MISTAKES = ["power-mel", "log10-mel", "htk-mel"]


# ---------------------------------------------------------------------------
# independent float64 reference implementations
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _slaney_basis64() -> np.ndarray:
    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=8000.0, dtype=np.float64)


def reference_logmel(audio: np.ndarray) -> np.ndarray:
    """AudioLDM2's training front-end in float64 NumPy/librosa: ``[frames, 64]`` natural-log mel."""
    x = np.asarray(audio, dtype=np.float64)
    x = x - x.mean()
    x = x / (np.abs(x).max() + 1e-8)
    x = 0.5 * x
    pad = (N_FFT - HOP) // 2  # 432
    x = np.pad(x, (pad, pad), mode="reflect")
    spec = librosa.stft(x, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, window="hann", center=False)
    magnitude = np.abs(spec)  # magnitude, not power
    mel = _slaney_basis64() @ magnitude
    return np.log(np.maximum(mel, 1e-5)).T


def seed_expression(audio: np.ndarray) -> np.ndarray:
    """The original report's expression, transposed and cropped to ``samples // 160`` frames."""
    audio = np.asarray(audio, dtype=np.float64)
    mel = librosa.power_to_db(
        librosa.feature.melspectrogram(y=audio, sr=16000, n_mels=64, hop_length=160, n_fft=1024), ref=np.max
    ) / 20.0
    return mel.T[: len(audio) // HOP]


def run(name: str, audio) -> np.ndarray:
    """Front-end ``name`` on one float32 waveform -> ``[frames, 64]`` float64 NumPy."""
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))[None]
    out = get_frontend(name)(x)
    assert out.dtype == torch.float32
    return out[0, 0].double().numpy()


def assert_matches_reference(ours: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    """float32 front-end output vs the float64 reference, with float32-sized tolerances.

    The float32 FFT's rounding error in a bin scales with the energy of the whole frame, not with
    the bin, so the log-domain error grows as a bin falls below the loudest bin of its frame.
    Measured on 400 random signals (the strategy below): max 1.1e-5 where mel > 1e-2, 1.5e-4
    where mel > 1e-3 (a 20 Hz sine: >100 dB between its own bin and the Hann sidelobes),
    mean 7.8e-6 over mel > 1e-3, mean 1.2e-4 and max 7.5e-3 over all bins (bins just above the
    1e-5 floor in loud frames). An algorithmic slip (window, padding, power, log base, mel
    basis, normalisation) costs > 1e-2 almost everywhere; the exactness of the algorithm itself
    is checked separately with float64 input (``assert_exact``).
    """
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    diff = np.abs(ours - ref)
    for level, tol in ((1e-2, 1e-4), (1e-3, 1e-3)):
        mask = ref > np.log(level)
        if mask.any():
            assert diff[mask].max() < tol, f"{what}: max |diff| {diff[mask].max():.3g} where mel > {level:g}"
    loud = ref > LOUD
    if loud.any():
        assert diff[loud].mean() < 1e-4, f"{what}: mean |diff| {diff[loud].mean():.3g} where mel > 1e-3"
    assert diff.mean() < 1e-3, f"{what}: mean |diff| {diff.mean():.3g}"
    assert diff.max() < 2e-2, f"{what}: max |diff| {diff.max():.3g} (near the floor)"


def assert_exact(name: str, audio: np.ndarray, ref: np.ndarray, atol: float) -> None:
    """Front-end ``name`` fed float64 equals the float64 reference (same algorithm, no float32 rounding)."""
    ours = get_frontend(name)(torch.from_numpy(np.asarray(audio, dtype=np.float64))[None])[0, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=atol, rtol=0)


def assert_matches_seed(ours: np.ndarray, ref: np.ndarray) -> None:
    """seed-librosa-db (dB/20, max 0, floor -4) vs the librosa expression.

    float32 rounding is relative to the loudest bin, so values near the top_db floor (-80 dB, -4)
    are the least precise: measured max 1.9e-5 above -3 and 1.2e-4 overall on random signals in a fresh
    process, but up to 2.4e-4 above -3, 1.02e-3 overall and a mean of 1.37e-5 on derandomized signals in a
    process whose earlier imports had moved its allocations (the float32 kernels MKL picks depend on the
    operands' alignment). Bounds with a factor ~2 to spare over both; the float64 path is held to 1e-9
    (``assert_exact``).
    """
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    assert diff[ref > -3.0].max() < 5e-4
    assert diff.max() < 3e-3
    assert diff.mean() < 3e-5


# ---------------------------------------------------------------------------
# audio
# ---------------------------------------------------------------------------


def harmonic_440(n: int = 256 * HOP) -> np.ndarray:
    """A 440 Hz tone with 6 harmonics (1/k amplitudes) and a short fade in/out, peak ~0.3."""
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * 440.0 * k * t + 0.3 * k) / k for k in range(1, 7))
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / 800.0)
    return (0.3 * x / np.abs(x).max() * fade).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _all_clips() -> dict:
    clips = dict(iter_reference_clips())  # speech only if espeak-ng is installed
    clips["tone"] = harmonic_440()
    return clips


@pytest.fixture(scope="module")
def clips() -> dict:
    return _all_clips()


def clip(name: str) -> np.ndarray:
    if name == "speech" and not have_espeak():
        pytest.skip("espeak-ng is not installed: no speech reference clip")
    return _all_clips()[name]


@st.composite
def signals(draw) -> np.ndarray:
    """1024..20000 samples: a random mixture of sines, noise and impulses with silence gaps."""
    n = draw(st.integers(N_FFT, 20000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    amp = st.floats(1e-3, 1.0)
    t = np.arange(n) / SR
    x = np.zeros(n)
    kinds = draw(st.lists(st.sampled_from(["sine", "noise", "impulse"]), min_size=1, max_size=5))
    for kind in kinds:
        a = draw(amp)
        if kind == "sine":
            x += a * np.sin(2 * np.pi * draw(st.floats(20.0, 7990.0)) * t + draw(st.floats(0.0, 6.3)))
        elif kind == "noise":
            start = draw(st.integers(0, n - 1))
            x[start:] += a * rng.standard_normal(n - start)
        else:
            x[draw(st.integers(0, n - 1))] += a * draw(st.sampled_from([-1.0, 1.0]))
    for _ in range(draw(st.integers(0, 3))):  # silence gaps
        start = draw(st.integers(0, n - 1))
        x[start:start + draw(st.integers(1, n))] = 0.0
    if not np.any(x):  # everything gapped out: keep one impulse so the clip is not pure silence
        x[n // 2] = draw(amp)
    return x.astype(np.float32)


# ---------------------------------------------------------------------------
# 1. audioldm2 == the float64 reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_audioldm2_matches_float64_reference_on_clips(name):
    x = clip(name)
    ours = run("audioldm2", x)
    assert len(x) % HOP == 0 and ours.shape == (len(x) // HOP, N_MELS)
    ref = reference_logmel(x)
    assert_matches_reference(ours, ref, name)
    # float64 in: the module's float32 mel basis (~6e-8 relative) is the only difference left
    assert_exact("audioldm2", x, ref, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(signals())
def test_audioldm2_matches_float64_reference_on_random_signals(x):
    ours = run("audioldm2", x)
    assert ours.shape[0] == len(x) // HOP
    ref = reference_logmel(x)
    assert_matches_reference(ours, ref, f"{len(x)} samples")
    assert_exact("audioldm2", x, ref, atol=1e-6)


@pytest.mark.parametrize("samples", [1024, 1119, 1120, 16000, 16159, 16160, 163840])
@pytest.mark.parametrize("name", [f.name for f in list_frontends()])
def test_frame_count_and_layout(name, samples):
    x = np.sin(2 * np.pi * 440.0 * np.arange(samples) / SR).astype(np.float32)
    out = get_frontend(name)(torch.from_numpy(np.stack([x, 0.5 * x[::-1].copy()])))
    assert out.shape == (2, 1, samples // HOP, N_MELS)
    if samples % HOP == 0:
        assert out.shape[2] == samples / HOP
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["audioldm2", "audioldm2-tacotron", "seed-librosa-db"] + MISTAKES)
def test_batch_equals_per_item(name, clips):
    n = 128 * HOP
    batch = np.stack([clips["music"][:n], clips["effects"][n:2 * n], clips["noise"][:n], clips["tone"][:n],
                      1e-3 * clips["tone"][n:2 * n]])
    together = get_frontend(name)(torch.from_numpy(batch))
    for i, x in enumerate(batch):
        alone = get_frontend(name)(torch.from_numpy(x)[None])
        torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# 2. tacotron framing == audioldm2 framing shifted by 80 samples
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_tacotron_is_audioldm2_delayed_by_80_samples(name):
    # audioldm2 frame t covers original samples [160t - 432, 160t + 592) (centre 160t + 80);
    # tacotron frame t covers [160t - 512, 160t + 512) (centre 160t). So tacotron(x)[t] ==
    # audioldm2(y)[t] with y = x delayed by 80 samples. To keep the waveform normalisation out of
    # the comparison we delay the already-normalised wave (mean 0, peak 0.5) by prepending 80 zeros:
    # this keeps mean and peak, so the front-end's own normalisation is (almost) the identity on both.
    # The two framings only see different samples in the reflect padding: frames t < 4 (whose window
    # starts before sample 0: 160t < 512) differ at the start. At the end y's reflect padding maps to
    # the same samples as x's, so all later frames agree. What remains is float32 rounding, which
    # matters only near the 1e-5 floor, hence the same loud/quiet split as the reference test.
    x = clip(name)
    xn = normalize_waveform(torch.from_numpy(x)[None])
    y = torch.cat([torch.zeros(1, 80), xn], dim=1)
    taco = get_frontend("audioldm2-tacotron")(xn)[0, 0].double().numpy()
    shifted = get_frontend("audioldm2")(y)[0, 0].double().numpy()
    assert taco.shape == (len(x) // HOP, N_MELS) == run("audioldm2", x).shape
    interior = slice(4, taco.shape[0])
    a, b = taco[interior], shifted[interior]
    diff = np.abs(a - b)
    loud = b > LOUD
    assert diff[loud].max() < 1e-4
    assert diff.mean() < 1e-4
    assert diff.max() < 1e-2
    # and the shift is real: without it, the interior frames disagree clearly (not on steady noise/tones)
    if name in ("speech", "music", "effects"):
        unshifted = run("audioldm2", x)[interior]
        assert np.abs(unshifted - a)[loud].mean() > 1e-2


# ---------------------------------------------------------------------------
# 3. seed-librosa-db == the original report's expression
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_seed_librosa_db_matches_report_expression_on_clips(name):
    x = clip(name)
    ref = seed_expression(x)
    assert_matches_seed(run("seed-librosa-db", x), ref)
    assert_exact("seed-librosa-db", x, ref, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(signals())
def test_seed_librosa_db_matches_report_expression_on_random_signals(x):
    ref = seed_expression(x)
    assert_matches_seed(run("seed-librosa-db", x), ref)
    assert_exact("seed-librosa-db", x, ref, atol=1e-9)


def test_seed_librosa_db_reference_includes_the_dropped_frame():
    rng = np.random.default_rng(7)
    x = (0.01 * rng.standard_normal(SR)).astype(np.float32)
    x[-40] = 1.0  # loudest event in librosa's last (dropped) frame, centred on sample 16000
    # currently off by 0.032 (0.63 dB) on every bin; random signals showed up to 0.22 (4.4 dB)
    assert_exact("seed-librosa-db", x, seed_expression(x), atol=1e-9)


# ---------------------------------------------------------------------------
# 4. the seed mel is nowhere near the distribution the VAE was trained on
# ---------------------------------------------------------------------------


def _stats(m: np.ndarray) -> dict:
    return {"min": float(m.min()), "max": float(m.max()), "mean": float(m.mean()), "std": float(m.std())}


def test_seed_librosa_db_is_out_of_the_audioldm2_range(clips, record_property):
    print()
    print(f"{'clip':8s} {'front-end':16s} {'min':>8s} {'max':>8s} {'mean':>8s} {'std':>8s}")
    rows = {}
    for name, x in clips.items():
        for fe in ("audioldm2", "seed-librosa-db"):
            s = rows[name, fe] = _stats(run(fe, x))
            print(f"{name:8s} {fe:16s} {s['min']:8.3f} {s['max']:8.3f} {s['mean']:8.3f} {s['std']:8.3f}")
            for k, v in s.items():
                record_property(f"{name}.{fe}.{k}", round(v, 4))
        a, s = rows[name, "audioldm2"], rows[name, "seed-librosa-db"]
        d_mean, std_ratio = a["mean"] - s["mean"], a["std"] / s["std"]
        print(f"{name:8s} {'difference':16s} mean offset {d_mean:.3f} nats, std ratio {std_ratio:.2f}")
        record_property(f"{name}.mean_offset", round(d_mean, 4))
        record_property(f"{name}.std_ratio", round(std_ratio, 4))
    for name in clips:
        a, s = rows[name, "audioldm2"], rows[name, "seed-librosa-db"]
        # per-clip reference: the seed mel's maximum is exactly 0 dB on every clip, and top_db=80 -> >= -4
        assert s["max"] == 0.0, name
        assert s["min"] >= -4.0 - 1e-6, name
        # measured (2.56 s clips): offsets 1.1 (noise) .. 5.0 (effects) nats, std ratios 2.3 .. 3.0
        # (~ln 10: dB/20 is log10 of a magnitude, audioldm2 is ln of one)
        assert abs(a["mean"] - s["mean"]) > 0.75, f"{name}: mean offset only {a['mean'] - s['mean']:.3f} nats"
        assert a["std"] > 2.0 * s["std"], f"{name}: std ratio only {a['std'] / s['std']:.2f}"
    offsets = [rows[n, "audioldm2"]["mean"] - rows[n, "seed-librosa-db"]["mean"] for n in clips]
    assert np.mean(np.abs(offsets)) > 2.0
    # clips with silence or quiet bands reach the audioldm2 floor; the seed mel never goes below -4
    assert sum(rows[n, "audioldm2"]["min"] < -10.0 for n in clips) >= 2


# ---------------------------------------------------------------------------
# 5. the mistakes are measurably wrong, every front-end is well formed, bad input is refused
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mistake", MISTAKES)
def test_mistake_frontends_differ_clearly(mistake, clips):
    assert not get_frontend(mistake).correct
    print()
    for name, x in clips.items():
        mad = float(np.abs(run(mistake, x) - run("audioldm2", x)).mean())
        print(f"{mistake:10s} {name:8s} mean |diff| vs audioldm2 {mad:.3f} nats")
        # measured: >= 0.77 nats on every clip (power-mel on the steady noise clip is the smallest)
        assert mad > 0.5, f"{mistake} on {name}: mean |diff| only {mad:.3f} nats"


def test_registry_flags():
    names = {f.name: f for f in list_frontends()}
    assert names["audioldm2"].correct and names["audioldm2-tacotron"].correct
    assert not names["seed-librosa-db"].correct
    assert names["audioldm2"].expected_at("frontend") == "pass"
    assert names["power-mel"].expected_at("frontend") == "detect"
    with pytest.raises(ValueError, match="unknown front-end 'nope'; known: .*audioldm2"):
        get_frontend("nope")


@pytest.mark.parametrize("name", [f.name for f in list_frontends()])
def test_all_frontends_shape_dtype_finite(name, clips):
    batch = torch.from_numpy(np.stack([clips["music"], clips["noise"], np.zeros_like(clips["music"])]))
    out = get_frontend(name)(batch)
    assert out.shape == (3, 1, batch.shape[1] // HOP, N_MELS)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all(), "silent input must give the floor, not -inf/NaN"


@pytest.mark.parametrize("name", [f.name for f in list_frontends()])
@pytest.mark.parametrize("bad, message", [
    (np.array([0.1] * 100 + [np.nan] + [0.1] * 2000, dtype=np.float32)[None], r"contains NaN samples \(batch items \[0\]"),
    (np.array([0.1] * 100 + [np.inf] + [0.1] * 2000, dtype=np.float32)[None], r"contains Inf samples \(batch items \[0\]"),
    (np.zeros((1, 1023), dtype=np.float32), r"1023 samples; at least 1024"),
    (np.zeros((1, 1, 2048), dtype=np.float32), r"\[batch, samples\] or \[samples\], got shape \(1, 1, 2048\)"),
], ids=["nan", "inf", "too-short", "3d"])
def test_bad_input_raises(name, bad, message):
    from harness.errors import InputError

    with pytest.raises(InputError, match=message):
        get_frontend(name)(torch.from_numpy(bad))


def test_silence_is_the_floor():
    out = get_frontend("audioldm2")(torch.zeros(1, 16 * HOP))
    assert torch.all(out == LOG_FLOOR_NATS)


# ---------------------------------------------------------------------------
# 6. mel_to_magnitude inverts the mel
# ---------------------------------------------------------------------------


def test_mel_to_magnitude_inverts_log_mel(clips):
    mel = get_frontend("audioldm2")(torch.from_numpy(clips["music"])[None])
    mag = mel_to_magnitude(mel, iterations=100)
    assert mag.shape == (1, 513, mel.shape[2])
    assert (mag >= 0).all()
    err = (log_mel(mag) - mel).abs()
    assert err.mean() < 0.2, f"mean |log_mel(mel_to_magnitude(m)) - m| = {err.mean():.3f} nats"
    # the multiplicative updates only ever help
    assert err.mean() < (log_mel(mel_to_magnitude(mel, iterations=0)) - mel).abs().mean()
