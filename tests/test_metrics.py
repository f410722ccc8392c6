"""Properties of harness.signal.metrics: perfect scores, monotonicity, alignment, invariances,
agreement with auraloss, batching, and input validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from harness.signal import metrics as M
from harness.signal.audio import SAMPLE_RATE

SR = SAMPLE_RATE
N = SR  # 1 s signals
FAST = settings(max_examples=20, deadline=None)
seeds = st.integers(min_value=0, max_value=2**32 - 1)

WAVEFORM = [n for n, m in M.METRICS.items() if m.domain == "waveform"]
SPECTRAL = [n for n, m in M.METRICS.items() if m.domain == "spectral"]


def tonal(seed: int = 0, n: int = N) -> torch.Tensor:
    """Harmonic tone with vibrato-free partials, a slow envelope and a little noise: speech/music-like."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = rng.uniform(110, 330)
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(n)
    return torch.as_tensor(0.3 * x / np.abs(x).max())


def noise_burst(seed: int, margin: int = 900, n: int = N) -> torch.Tensor:
    """White noise with silent margins, so shifts up to ``margin`` samples lose nothing."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    x[margin:n - margin] = 0.2 * rng.standard_normal(n - 2 * margin)
    return torch.as_tensor(x)


def delayed(x: torch.Tensor, d: int) -> torch.Tensor:
    """``y[n] = x[n - d]``, zero-filled (d < 0 advances)."""
    y = torch.zeros_like(x)
    if d >= 0:
        y[..., d:] = x[..., : x.shape[-1] - d]
    else:
        y[..., :d] = x[..., -d:]
    return y


def white(seed: int, n: int = N) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).standard_normal(n))


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


# ---------------------------------------------------------------------------
# perfect reconstruction and known values
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, align=st.booleans(), gain=st.booleans())
def test_identical_signals_score_perfectly(seed, align, gain):
    ref = tonal(seed % 1000) + 0.05 * white(seed)
    out = M.compute(ref, ref.clone(), align=align, match_gain=gain)
    assert set(out) == set(M.METRICS)
    assert out["snr"].item() == M.DB_CAP
    assert out["si_sdr"].item() == M.DB_CAP
    assert out["mel_snr"].item() == M.DB_CAP
    assert out["correlation"].item() == pytest.approx(1.0, abs=1e-12)
    assert out["mse"].item() == 0.0
    assert out["mel_l1"].item() == 0.0
    assert out["lsd"].item() == 0.0
    assert out["mrstft"].item() == pytest.approx(0.0, abs=1e-12)


def test_known_values():
    ref = tonal(1)
    # est = 0.9 ref: error 0.1 ref -> exactly 20 dB, scale-invariant metrics perfect
    est = 0.9 * ref
    assert M.snr(est, ref).item() == pytest.approx(20.0, abs=1e-9)
    assert M.mse(est, ref).item() == pytest.approx(0.01 * float(ref.pow(2).mean()), rel=1e-9)
    assert M.si_sdr(est, ref).item() > 250
    assert M.correlation(est, ref).item() == pytest.approx(1.0, abs=1e-12)
    assert M.snr(est, ref, match_gain=True).item() > 250
    # LSD: on a broadband reference, every bin within LSD_RANGE_DB of the loudest, a gain is its dB
    broad = white(1)
    assert M.lsd(0.9 * broad, broad).item() == pytest.approx(-20 * math.log10(0.9), rel=1e-4)
    # inverted: error 2 ref -> -6.02 dB, correlation -1, gain matching flips it back
    assert M.snr(-ref, ref).item() == pytest.approx(-20 * math.log10(2), abs=1e-9)
    assert M.correlation(-ref, ref).item() == pytest.approx(-1.0, abs=1e-12)
    assert M.snr(-ref, ref, match_gain=True).item() > 250
    # silent estimate: documented values, not errors
    zero = torch.zeros_like(ref)
    assert M.snr(zero, ref).item() == pytest.approx(0.0, abs=1e-12)
    assert M.si_sdr(zero, ref).item() == -M.DB_CAP
    assert M.correlation(zero, ref).item() == 0.0
    assert M.snr(zero, ref, match_gain=True).item() == pytest.approx(0.0, abs=1e-12)


@FAST
@given(g=st.floats(0.5, 100.0))
def test_lsd_of_a_scaled_copy_is_the_gain_in_db(g):
    # broadband so that no bin of the reference, or of a copy at most 6 dB quieter, drops under the floor
    # LSD_RANGE_DB below the loudest bin, which would pull the distance below |20 log10 g|
    ref = tonal(2) + 0.3 * white(2)
    assert M.lsd(g * ref, ref).item() == pytest.approx(abs(20 * math.log10(g)), rel=1e-4, abs=1e-9)


def test_what_lies_under_a_16_bit_noise_floor_does_not_count():
    """A 16-bit round trip of a clip with float-precision near-silence moves neither mel L1 nor LSD
    beyond float noise, while a 1 dB gain on the part that holds sound still counts (in the half of the frames
    that hold it)."""
    quiet = torch.zeros(16000, dtype=torch.float64)
    quiet[4000:12000] = 0.5 * tonal(1)[:8000] / tonal(1)[:8000].abs().max() * torch.hann_window(8000, dtype=torch.float64)
    pcm16 = torch.round(quiet * 32767) / 32767
    assert M.mel_l1(pcm16, quiet).item() < 1e-3 and M.lsd(pcm16, quiet).item() < 0.05
    assert M.lsd(quiet * 10 ** (-1 / 20), quiet).item() > 0.3


def test_outputs_are_float64_per_item_and_accept_numpy_and_1d():
    ref = tonal(3)
    est = ref + 0.01 * white(3)
    for name in M.METRICS:
        a = M.get_metric(name)(est.float(), ref.float())  # float32 tensors, 1-D
        b = M.get_metric(name)(est.numpy(), ref.numpy())  # numpy arrays
        c = M.get_metric(name)(est[None].repeat(2, 1), ref[None].repeat(2, 1))
        assert a.dtype == b.dtype == c.dtype == torch.float64, name
        assert a.shape == b.shape == (1,) and c.shape == (2,), name
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


# ---------------------------------------------------------------------------
# monotonicity in added noise
# ---------------------------------------------------------------------------

NOISE_LEVELS = torch.tensor([0.003, 0.01, 0.03, 0.1, 0.3, 1.0], dtype=torch.float64)


@FAST
@given(seed=seeds)
def test_scores_worsen_monotonically_as_noise_rises(seed):
    ref = tonal(0)
    noise = white(seed)
    est = ref[None] + (NOISE_LEVELS * rms(ref))[:, None] * noise[None]
    refs = ref[None].expand_as(est)
    out = M.compute(est, refs, align=False, match_gain=False)
    for name, values in out.items():
        steps = values.diff()
        if M.METRICS[name].higher_is_better:
            assert (steps < 0).all(), (name, values)
        else:
            assert (steps > 0).all(), (name, values)
    # the waveform SNR follows the noise level exactly: 10 dB per decade of power
    expected = -20 * torch.log10(NOISE_LEVELS) - 10 * math.log10(float(noise.pow(2).mean()))
    assert torch.allclose(out["snr"], expected, atol=1e-9)


# ---------------------------------------------------------------------------
# alignment
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, d=st.integers(1, 800), sign=st.sampled_from([1, -1]))
def test_delayed_copy_is_perfect_once_aligned_and_bad_without(seed, d, sign):
    lag = sign * d
    ref = noise_burst(seed)
    est = delayed(ref, lag)
    aligned, lags = M.align(est, ref)
    assert lags.tolist() == [lag]
    assert torch.equal(aligned[0], ref)
    assert M.snr(est, ref, align=True).item() > 40
    assert M.correlation(est, ref, align=True).item() > 0.999
    assert M.si_sdr(est, ref, align=True).item() > 40
    # without alignment a broadband signal shifted by even one sample is uncorrelated
    assert M.snr(est, ref).item() < 0
    assert M.snr(est, ref, match_gain=True).item() < 1
    assert abs(M.correlation(est, ref).item()) < 0.1
    assert M.si_sdr(est, ref).item() < 1
    # compute() aligns and gain-matches waveform metrics by default
    out = M.compute(0.5 * est, ref, names=["snr", "correlation"])
    assert out["snr"].item() > 40 and out["correlation"].item() > 0.999


def test_align_zero_fills_and_respects_max_lag():
    ref = white(5)
    est = delayed(ref, 300)
    aligned, lags = M.align(est, ref, max_lag=1600)
    assert lags.item() == 300
    assert torch.equal(aligned[0, -300:], torch.zeros(300, dtype=torch.float64))  # not circular
    assert torch.equal(aligned[0, :-300], ref[:-300])
    _, lags = M.align(est, ref, max_lag=100)
    assert abs(lags.item()) <= 100
    aligned, lags = M.align(est, ref, max_lag=0)
    assert lags.item() == 0 and torch.equal(aligned[0], est)


def test_match_gain_is_least_squares():
    ref = tonal(6)
    est = -2.5 * ref + 0.01 * white(6)
    scaled, g = M.match_gain(est, ref)
    assert g.item() == pytest.approx(float(est @ ref / (est @ est)), rel=1e-12)
    # the residual is orthogonal to the estimate
    assert float((ref - scaled[0]) @ est) == pytest.approx(0.0, abs=1e-9)
    _, g0 = M.match_gain(torch.zeros_like(ref), ref)
    assert g0.item() == 0.0


# ---------------------------------------------------------------------------
# invariances
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, c=st.floats(0.01, 100.0), negative=st.booleans())
def test_scale_invariance_where_claimed(seed, c, negative):
    ref = tonal(seed % 1000)
    est = ref + 0.1 * rms(ref) * white(seed)
    k = -c if negative else c
    close = dict(rel=1e-9, abs=1e-9)
    assert M.si_sdr(k * est, ref).item() == pytest.approx(M.si_sdr(est, ref).item(), **close)
    assert M.snr(k * est, ref, match_gain=True).item() == pytest.approx(M.snr(est, ref, match_gain=True).item(), **close)
    corr = M.correlation(est, ref).item()
    assert M.correlation(k * est, ref).item() == pytest.approx(-corr if negative else corr, **close)
    # the spectral metrics built on the (normalising) audioldm2 front-end are level-invariant
    assert M.mel_l1(k * est, ref).item() == pytest.approx(M.mel_l1(est, ref).item(), rel=1e-4, abs=1e-5)
    assert M.mel_snr(k * est, ref).item() == pytest.approx(M.mel_snr(est, ref).item(), rel=1e-4, abs=1e-3)
    # ... and plain snr is not (unless gain-matched)
    if abs(math.log10(c)) > 0.1:
        assert M.snr(k * est, ref).item() != pytest.approx(M.snr(est, ref).item(), abs=0.5)


# ---------------------------------------------------------------------------
# agreement with auraloss
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, level=st.floats(0.001, 2.0), config=st.sampled_from(["auraloss-defaults", "fft/4"]))
def test_mrstft_matches_auraloss_for_batch_of_one(seed, level, config):
    auraloss = pytest.importorskip("auraloss")
    if config == "fft/4":
        kw = dict(fft_sizes=[512, 1024, 2048], hop_sizes=[128, 256, 512], win_lengths=[512, 1024, 2048])
    else:
        kw = {}
    ref = tonal(seed % 1000)
    est = ref + level * rms(ref) * white(seed)
    ours = M.mrstft(est, ref, **kw).item()

    loss = auraloss.freq.MultiResolutionSTFTLoss(**kw)
    theirs32 = loss(est[None, None].float(), ref[None, None].float()).item()
    assert ours == pytest.approx(theirs32, rel=1e-4)
    for f in loss.stft_losses:  # same computation in float64: agreement to round-off
        f.window = torch.hann_window(f.win_length, dtype=torch.float64)
    theirs64 = loss(est[None, None], ref[None, None]).item()
    assert ours == pytest.approx(theirs64, rel=1e-9)


# ---------------------------------------------------------------------------
# batching
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, lags=st.lists(st.integers(-400, 400), min_size=3, max_size=3),
       levels=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))
def test_batched_equals_per_item(seed, lags, levels):
    ref = torch.stack([tonal(seed % 1000 + i) for i in range(3)])
    est = torch.stack([
        delayed(ref[i] + lv * rms(ref[i]) * white(seed + i), lag) * (1 + i)
        for i, (lag, lv) in enumerate(zip(lags, levels))
    ])
    batched = M.compute(est, ref)
    _, batch_lags = M.align(est, ref)
    for i in range(3):
        single = M.compute(est[i], ref[i])
        assert M.align(est[i], ref[i])[1].item() == batch_lags[i].item()
        for name, values in batched.items():
            assert values.shape == (3,)
            assert values[i].item() == pytest.approx(single[name].item(), rel=1e-9, abs=1e-9), name


def test_compute_passes_options_to_waveform_metrics_only():
    ref = noise_burst(7)
    est = 0.5 * delayed(ref, 50)
    a = M.compute(est, ref, align=True, match_gain=True)
    b = M.compute(est, ref, align=False, match_gain=False)
    for name in SPECTRAL:
        assert a[name].item() == b[name].item(), name
    for name in WAVEFORM:
        assert a[name].item() != b[name].item(), name
        expected = M.get_metric(name)(est, ref, align=True, match_gain=True)
        assert a[name].item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-12), name
    assert list(M.compute(est, ref, names=["lsd", "snr"])) == ["lsd", "snr"]


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------


def test_registry():
    assert set(M.METRICS) == {"snr", "correlation", "mse", "si_sdr", "mel_l1", "mel_snr", "lsd", "mrstft"}
    for name, m in M.METRICS.items():
        assert m.name == name and M.get_metric(name) is m
        assert m.domain in ("waveform", "spectral") and m.description
    assert M.get_metric("snr").higher_is_better and not M.get_metric("lsd").higher_is_better
    with pytest.raises(ValueError, match="unknown metric 'pesq'"):
        M.get_metric("pesq")
    with pytest.raises(ValueError, match="unknown metric"):
        M.compute(tonal(), tonal(), names=["snr", "nope"])


def test_is_better():
    assert M.is_better("snr", 25.0, 20.0) is True
    assert M.is_better("snr", 15.0, 20.0) is False
    assert M.is_better("lsd", 1.0, 2.0) is True
    assert M.is_better("mrstft", 3.0, 2.0) is False
    assert M.is_better("snr", 20.0, 20.0) is True  # the threshold itself passes
    assert M.is_better("snr", float("nan"), 20.0) is False
    mask = M.is_better("mel_l1", torch.tensor([0.1, 0.5, 0.3]), 0.3)
    assert mask.tolist() == [True, False, True]


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(M.METRICS))
def test_length_mismatch_raises(name):
    with pytest.raises(ValueError, match="length mismatch: estimate has 16000 samples, reference has 15999"):
        M.get_metric(name)(tonal(), tonal()[:-1])


@pytest.mark.parametrize("name", list(M.METRICS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["estimate", "reference"])
def test_non_finite_raises(name, bad, where):
    ref, est = tonal(), tonal(1)
    x = torch.stack([ref, ref])
    x[1, 100] = bad
    args = (x, torch.stack([est, est])) if where == "estimate" else (torch.stack([est, est]), x)
    kind = "NaN" if math.isnan(bad) else "Inf"
    with pytest.raises(ValueError, match=rf"{where} contains {kind} samples \(batch items \[1\]\)"):
        M.get_metric(name)(*args)


@pytest.mark.parametrize("name", ["snr", "si_sdr", "correlation", "mel_snr"])
def test_silent_reference_raises(name):
    ref = torch.stack([tonal(), torch.zeros(N, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"reference is (silent|constant).*batch items \[1\]"):
        M.get_metric(name)(ref + 0.1, ref)


def test_other_bad_inputs():
    x = tonal()
    with pytest.raises(ValueError, match=r"must be \[batch, samples\]"):
        M.snr(x[None, None], x[None, None])
    with pytest.raises(ValueError, match="batch mismatch"):
        M.snr(torch.stack([x, x]), torch.stack([x, x, x]))
    for name in SPECTRAL:
        with pytest.raises(ValueError, match="at least"):
            M.get_metric(name)(x[:500], x[:500])
    with pytest.raises(ValueError, match="max_lag must be >= 0"):
        M.align(x, x, max_lag=-1)
    with pytest.raises(ValueError, match="equal length"):
        M.mrstft(x, x, fft_sizes=[512], hop_sizes=[128, 256], win_lengths=[512])


def _count_validations(monkeypatch) -> list:
    """The names :func:`harness.signal.audio.valid_audio` is called with, from the metrics and the front-ends."""
    from harness.signal import audio, frontend

    calls = []

    def counting(x, name=None, **options):
        calls.append(name)
        return audio.valid_audio(x, name, **options)

    monkeypatch.setattr(M, "valid_audio", counting)
    monkeypatch.setattr(frontend, "valid_audio", counting)
    return calls


def test_each_call_validates_its_waveforms_once(monkeypatch):
    """valid_audio is the boundary: a metric, compute() over every metric and a front-end check each waveform
    once, and nothing behind them checks it again."""
    from harness.signal.frontend import get_frontend

    calls = _count_validations(monkeypatch)
    est, ref = tonal(1), tonal()
    for call in (lambda: M.compute(est, ref), lambda: M.snr(est, ref, align=True, match_gain=True),
                 lambda: M.mel_l1(est, ref), lambda: M.lsd(est, ref), lambda: M.mrstft(est, ref)):
        calls.clear()
        call()
        assert calls == ["estimate", "reference"]
    calls.clear()
    get_frontend("audioldm2")(ref)
    assert calls == ["front-end input"]


def test_compute_refuses_a_pair_too_short_for_one_of_its_metrics_before_computing():
    x = tonal(n=500)
    assert set(M.compute(x, x, ["snr", "mse"])) == {"snr", "mse"}
    with pytest.raises(ValueError, match=r"estimate has 500 samples; at least 1025 are needed"):  # mrstft's
        M.compute(x, x)


# ---------------------------------------------------------------------------
# mel-domain metrics on mels (librosa's S= convention)
# ---------------------------------------------------------------------------


def test_mel_metrics_take_mels_as_well_as_waveforms():
    from harness.signal.frontend import get_frontend

    rng = np.random.default_rng(3)
    est, ref = rng.standard_normal((2, 4000)) * 0.1, rng.standard_normal((2, 4000)) * 0.1
    fe = get_frontend("audioldm2")
    m_est, m_ref = fe(torch.from_numpy(est)), fe(torch.from_numpy(ref))
    for fn in (M.mel_l1, M.mel_snr):
        torch.testing.assert_close(fn(mel_estimate=m_est, mel_reference=m_ref), fn(est, ref))
        # [b, T, 64] and a single [T, 64] mel are accepted too
        torch.testing.assert_close(fn(mel_estimate=m_est[:, 0], mel_reference=m_ref[:, 0]), fn(est, ref))
        assert fn(mel_estimate=m_est[0, 0], mel_reference=m_ref[0, 0]).shape == (1,)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give both waveforms"),
    ({"estimate": np.zeros(2048), "mel_reference": np.zeros((16, 64))}, "not a mix"),
    ({"mel_estimate": np.zeros((16, 64)), "mel_reference": np.zeros((17, 64))}, "mel shape mismatch"),
    ({"mel_estimate": np.full((16, 64), np.nan), "mel_reference": np.zeros((16, 64))}, "contains NaN or Inf"),
    ({"mel_estimate": np.zeros((2, 3, 16, 64)), "mel_reference": np.zeros((2, 3, 16, 64))}, "must be a log-mel"),
])
def test_mel_metrics_refuse_unclear_input(kwargs, message):
    from harness.errors import InputError

    with pytest.raises(InputError, match=message):
        M.mel_l1(**kwargs)


def test_mrstft_is_the_mean_of_single_resolution_distances():
    rng = np.random.default_rng(4)
    est, ref = torch.from_numpy(rng.standard_normal((2, 6000))), torch.from_numpy(rng.standard_normal((2, 6000)))
    singles = [M.stft_distance(M.magnitude_spectrogram(est, *r), M.magnitude_spectrogram(ref, *r))
               for r in zip(M.MRSTFT_FFT_SIZES, M.MRSTFT_HOP_SIZES, M.MRSTFT_WIN_LENGTHS)]
    torch.testing.assert_close(M.mrstft(est, ref), torch.stack(singles).mean(dim=0))
