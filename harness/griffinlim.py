"""Griffin-Lim from an AudioLDM2 log-mel, batched in torch: the phase-free baseline vocoder."""
from __future__ import annotations

import torch

from . import frontend

#: the audioldm2 framing centres frame t on sample 160 t + 80; torch's ``center=True`` on 160 t.
_SHIFT = frontend.HOP // 2
#: frames overlapping one hop: ceil(1024 / 160)
_OVERLAP = -(-frontend.N_FFT // frontend.HOP)


class _Stft:
    """``center=True`` STFT / inverse STFT (n_fft 1024, hop 160, Hann) of ``n``-sample signals, frames-major.

    The same values as ``torch.stft(..., center=True, pad_mode="constant")`` and ``torch.istft`` (up to
    float round-off), with spectra kept as ``[batch, frames, 513]`` (no transposes), the window
    envelope of the inverse computed once instead of on every call, and the overlap-add done as
    seven shifted adds of hop-sized blocks.
    """

    def __init__(self, n: int, device, dtype):
        self.n, self.hop, self.n_fft = n, frontend.HOP, frontend.N_FFT
        self.frames = n // self.hop + 1
        self.window = frontend.hann_window(device, dtype)
        self._buffer = None
        env = self.window.square().expand(1, self.frames, self.n_fft)
        env = self._overlap_add(torch.nn.functional.pad(env, (0, _OVERLAP * self.hop - self.n_fft)))
        self.inv_envelope = 1.0 / env[:, self.n_fft // 2: self.n_fft // 2 + n]

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """``[b, frames, 1120]`` (1024 samples + zeros to 7 hops) -> ``[b, (frames + 6) * 160]``."""
        b, f, _ = frames.shape
        blocks = frames.view(b, f, _OVERLAP, self.hop)
        out = torch.empty(b, f + _OVERLAP - 1, self.hop, dtype=frames.dtype, device=frames.device)
        out[:, :f] = blocks[:, :, 0]
        out[:, f:].zero_()
        for j in range(1, _OVERLAP):
            out[:, j:j + f] += blocks[:, :, j]
        return out.view(b, -1)

    def _padded(self, b: int) -> torch.Tensor:
        """A ``[b, frames, 1120]`` frame buffer whose last 96 samples per frame stay zero."""
        if self._buffer is None or self._buffer.shape[0] != b:
            self._buffer = torch.zeros(b, self.frames, _OVERLAP * self.hop, dtype=self.window.dtype,
                                       device=self.window.device)
        return self._buffer

    def inverse(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex ``[b, frames, 513]`` -> real ``[b, n]``."""
        buf = self._padded(spec.shape[0])
        torch.mul(torch.fft.irfft(spec, n=self.n_fft), self.window, out=buf[..., : self.n_fft])
        y = self._overlap_add(buf)
        return y[:, self.n_fft // 2: self.n_fft // 2 + self.n] * self.inv_envelope

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Real ``[b, n]`` -> complex ``[b, frames, 513]`` (zero padding of 512 at both ends)."""
        pad = self.n_fft // 2
        x = torch.nn.functional.pad(y, (pad, pad))
        return torch.fft.rfft(x.unfold(-1, self.n_fft, self.hop) * self.window)


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
    gen = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(mag.shape, generator=gen, dtype=mag.dtype).to(mag.device) * (2 * torch.pi)
    # frames-major from here on: [b, frames + 1, 513]
    mag, phase = mag.transpose(1, 2).contiguous(), phase.transpose(1, 2)
    spec = mag * torch.polar(torch.ones_like(mag), phase)
    stft = _Stft(n, mag.device, mag.dtype)
    # |a| below sqrt(tiny) would have its square underflow: such (silent) bins get a phasor shorter
    # than 1 instead of an overflowing mag / |a| (0 * inf = NaN)
    floor = torch.finfo(mag.dtype).tiny ** 0.5
    keep = momentum / (1 + momentum)
    prev = None
    for _ in range(n_iter):
        rebuilt = torch.view_as_real(stft.forward(stft.inverse(spec)))
        # momentum step, then unit phasors times the target magnitude, in real arithmetic
        # (complex mul/div/abs are several times slower on CPU)
        a = rebuilt if prev is None else torch.add(rebuilt, prev, alpha=-keep)
        prev = rebuilt
        re, im = a[..., 0], a[..., 1]
        scale = mag / torch.sqrt(re * re + im * im).clamp_(min=floor)
        spec = torch.view_as_complex(a * scale[..., None])
    y = stft.inverse(spec)
    return torch.nn.functional.pad(y, (_SHIFT, 0))[..., :n]


def griffin_lim_from_mel(logmel: torch.Tensor, n_iter: int = 32, nnls_iter: int = 30, seed: int = 0) -> torch.Tensor:
    """Log-mel ``[batch, 1, frames, 64]`` -> waveform ``[batch, 160 * frames]`` by mel inversion + Griffin-Lim."""
    mag = frontend.mel_to_magnitude(logmel.float(), iterations=nnls_iter)
    return griffin_lim(mag, n_iter=n_iter, seed=seed)
