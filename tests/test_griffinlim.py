"""Griffin-Lim (``harness.signal.griffinlim``): its STFT pair against torch's, and the algorithm against librosa's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.signal import frontend, metrics
from harness.signal.audio import normalize_waveform
from harness.signal.griffinlim import _Stft, griffin_lim, griffin_lim_from_mel, librosa_griffin_lim, phase_draws

SR = 16000


def clips(batch: int = 2, seconds: float = 1.0) -> torch.Tensor:
    """Harmonic tones (one pitch per clip) plus a little noise, ``[batch, samples]``."""
    n = int(seconds * SR)
    t = torch.arange(n) / SR
    gen = torch.Generator().manual_seed(7)
    rows = [sum(torch.sin(2 * torch.pi * 150 * (i + 1) * k * t) / k for k in range(1, 5)) for i in range(batch)]
    return 0.3 * torch.stack(rows) + 0.01 * torch.randn(batch, n, generator=gen)


def torch_stft(y: torch.Tensor) -> torch.Tensor:
    return torch.stft(y, 1024, 160, window=torch.hann_window(1024), center=True, pad_mode="constant",
                      return_complex=True).transpose(1, 2)


def test_forward_is_torch_stft():
    y = clips()
    got = _Stft(y.shape[-1], "cpu", torch.float32).forward(y)
    ref = torch_stft(y)
    assert got.shape == ref.shape == (2, y.shape[-1] // 160 + 1, 513)
    assert (got - ref).abs().max() < 1e-5 * ref.abs().max()


def test_inverse_is_torch_istft_and_inverts_forward():
    y = clips()
    n = y.shape[-1]
    stft = _Stft(n, "cpu", torch.float32)
    spec = torch_stft(y)
    ref = torch.istft(spec.transpose(1, 2), 1024, 160, window=torch.hann_window(1024), center=True, length=n)
    got = stft.inverse(spec)
    assert (got - ref).abs().max() < 1e-5
    assert (got - y).abs().max() < 1e-5
    # project() reuses one buffer between calls: a second call must not see the first one's signal
    assert (stft.project(spec) - spec).abs().max() < 1e-4 * spec.abs().max()
    assert (stft.project(torch.zeros_like(spec))).abs().max() == 0


@pytest.mark.parametrize("n_iter", [1, 4])
def test_matches_librosa_from_the_same_phases(n_iter):
    mag = frontend.stft_magnitude(normalize_waveform(clips()))
    ours = griffin_lim(mag, n_iter=n_iter).numpy()
    theirs = librosa_griffin_lim(mag, n_iter)
    assert ours.shape == theirs.shape == (2, 16000)
    # both float32, different FFT libraries and summation orders, over a few iterations
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()


def test_iterations_improve_consistency_and_batch_equals_clips():
    wave = normalize_waveform(clips())
    mag = frontend.stft_magnitude(wave)
    # spectral convergence ||  |STFT(y)| - mag || / || mag ||: what Griffin-Lim minimises
    sc = [float((frontend.stft_magnitude(griffin_lim(mag, n_iter=k)) - mag).norm() / mag.norm()) for k in (0, 8, 32)]
    assert sc[0] > sc[1] > sc[2], sc
    assert sc[2] < 0.5 * sc[0]
    batch = griffin_lim(mag, n_iter=4)
    for i in range(2):
        one = griffin_lim_phases_of(mag, i, n_iter=4)
        assert torch.allclose(batch[i], one, atol=1e-6)
    assert torch.equal(griffin_lim(mag, n_iter=4), batch)  # deterministic


def griffin_lim_phases_of(mag: torch.Tensor, index: int, n_iter: int) -> torch.Tensor:
    """Clip ``index`` alone through the iterations, with the initial phases it gets inside the batch."""
    import harness.signal.griffinlim as gl

    n = mag.shape[-1] * 160
    m = torch.cat([mag, mag[..., -1:]], dim=-1).transpose(1, 2).contiguous()
    phase = (phase_draws(mag) * (2 * torch.pi)).transpose(1, 2).contiguous()
    y = gl._fast_griffin_lim(m[index:index + 1], phase[index:index + 1], n, n_iter, 0.99)
    return torch.nn.functional.pad(y, (80, 0))[0, :n]


def test_silent_magnitude_gives_silence_not_nan():
    mag = torch.zeros(1, 513, 50)
    mag[..., 20:30] = 1.0  # silence around a short burst
    y = griffin_lim(mag, n_iter=8)
    assert torch.isfinite(y).all()
    assert y[..., : 5 * 160].abs().max() < 1e-3 * y.abs().max()


def test_from_mel_reconstructs_the_mel():
    wave = normalize_waveform(clips(1))
    y = griffin_lim_from_mel(frontend.get_frontend("audioldm2")(wave))
    assert y.shape == wave.shape
    assert float(metrics.mel_l1(y, wave).mean()) < 0.6
