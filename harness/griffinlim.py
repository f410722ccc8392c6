"""Griffin-Lim from an AudioLDM2 log-mel, batched in torch: the phase-free baseline vocoder."""
from __future__ import annotations

import torch

from . import frontend

#: the audioldm2 framing centres frame t on sample 160 t + 80; torch's ``center=True`` on 160 t.
_SHIFT = frontend.HOP // 2


def griffin_lim(magnitude: torch.Tensor, n_iter: int = 32, momentum: float = 0.99, seed: int = 0) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013, librosa's algorithm and defaults) on a batch.

    Parameters
    ----------
    magnitude : Tensor [batch, 513, frames]
        Linear STFT magnitude in the ``audioldm2`` framing (n_fft 1024, hop 160, Hann).
    n_iter : int, default 32
        Iterations (librosa's default).
    momentum : float, default 0.99
    seed : int
        Seed of the random initial phases (deterministic by default).

    Returns
    -------
    Tensor [batch, 160 * frames]
        Waveform aligned with the frames of the input (frame t centred on 160 t + 80).
    """
    b, _, frames = magnitude.shape
    n = frames * frontend.HOP
    # one extra frame so that center=True framing covers exactly n samples
    mag = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)
    window = frontend.hann_window(mag.device, mag.dtype)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(mag.shape, generator=gen, dtype=mag.dtype).to(mag.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(mag), phase)
    kw = dict(n_fft=frontend.N_FFT, hop_length=frontend.HOP, window=window, center=True)
    rebuilt = torch.zeros_like(angles)
    eps = torch.finfo(mag.dtype).tiny
    for _ in range(n_iter):
        tprev = rebuilt
        inverse = torch.istft(mag * angles, length=n, **kw)
        rebuilt = torch.stft(inverse, return_complex=True, pad_mode="constant", **kw)
        angles = rebuilt - (momentum / (1 + momentum)) * tprev
        angles = angles / (angles.abs() + eps)
    y = torch.istft(mag * angles, length=n, **kw)
    return torch.nn.functional.pad(y, (_SHIFT, 0))[..., :n]


def griffin_lim_from_mel(logmel: torch.Tensor, n_iter: int = 32, nnls_iter: int = 30, seed: int = 0) -> torch.Tensor:
    """Log-mel ``[batch, 1, frames, 64]`` -> waveform ``[batch, 160 * frames]`` by mel inversion + Griffin-Lim."""
    mag = frontend.mel_to_magnitude(logmel.float(), iterations=nnls_iter)
    return griffin_lim(mag, n_iter=n_iter, seed=seed)
