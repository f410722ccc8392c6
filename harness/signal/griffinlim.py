"""Griffin-Lim from an AudioLDM2 log-mel, batched in torch: the phase-free baseline vocoder."""
from __future__ import annotations

import numpy as np
import torch

from harness.signal import frontend
from harness.signal.audio import HOP

#: the audioldm2 framing centres frame t on sample 160 t + 80; torch's ``center=True`` on 160 t.
_SHIFT = HOP // 2
#: frames overlapping one hop: ceil(1024 / 160)
_OVERLAP = -(-frontend.N_FFT // HOP)


class _Stft:
    """``center=True`` STFT / inverse STFT (n_fft 1024, hop 160, Hann) of ``n``-sample signals, frames-major.

    The same values as ``torch.stft(..., center=True, pad_mode="constant")`` and ``torch.istft`` (up to
    float round-off), with spectra kept as ``[batch, frames, 513]`` (no transposes), the window
    envelope of the inverse computed once, and the windowed overlap-add done as seven shifted
    multiply-adds of hop-sized blocks into one reused buffer, which is laid out as the signal with
    its 512 samples of ``center=True`` padding on both sides: the forward transform of an inverse
    then frames that buffer directly. On CPU this loop is memory-bound (a 10.24 s spectrum is 4 MB),
    so every pass and temporary saved counts.
    """

    def __init__(self, n: int, device, dtype):
        self.n, self.hop, self.n_fft = n, HOP, frontend.N_FFT
        self.frames = n // self.hop + 1
        self.window = frontend.hann_window(device, dtype)
        self._buffer = None
        ones = torch.ones(1, 1, self.n_fft, dtype=dtype, device=device).expand(1, self.frames, self.n_fft)
        env = self._overlap_add(ones, self.window.square())
        self.inv_envelope = 1.0 / env[:, self.n_fft // 2: self.n_fft // 2 + n]

    def _overlap_add(self, frames: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """Sum of ``frames [b, frames, 1024]`` times ``window`` at hop 160 -> padded signal ``[b, (frames + 6) * 160]``.

        Index ``i`` of the result is sample ``i - 512`` of the signal. The result is a buffer reused
        by the next call with the same batch size.
        """
        b, f, _ = frames.shape
        if self._buffer is None or self._buffer.shape[0] != b:
            self._buffer = torch.empty(b, (f + _OVERLAP - 1) * self.hop, dtype=frames.dtype, device=frames.device)
        blocks = self._buffer.view(b, -1, self.hop)
        blocks.zero_()
        for j in range(_OVERLAP):
            lo, hi = j * self.hop, min(self.n_fft, (j + 1) * self.hop)
            blocks[:, j:j + f, : hi - lo].addcmul_(frames[:, :, lo:hi], window[lo:hi])
        return self._buffer

    def _inverse_padded(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex ``[b, frames, 513]`` -> the signal with 512 zeros on both sides, ``[b, >= n + 1024]``."""
        padded = self._overlap_add(torch.fft.irfft(spec, n=self.n_fft), self.window)
        pad = self.n_fft // 2
        padded[:, pad: pad + self.n].mul_(self.inv_envelope)
        padded[:, :pad].zero_()
        padded[:, pad + self.n:].zero_()
        return padded

    def inverse(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex ``[b, frames, 513]`` -> real ``[b, n]``."""
        pad = self.n_fft // 2
        return self._inverse_padded(spec)[:, pad: pad + self.n].clone()

    def _frames(self, padded: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(padded[:, : self.n + self.n_fft].unfold(-1, self.n_fft, self.hop) * self.window)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Real ``[b, n]`` -> complex ``[b, frames, 513]`` (zero padding of 512 at both ends)."""
        pad = self.n_fft // 2
        return self._frames(torch.nn.functional.pad(y, (pad, pad)))

    def project(self, spec: torch.Tensor) -> torch.Tensor:
        """``forward(inverse(spec))``: the spectrum of the signal closest to ``spec``."""
        return self._frames(self._inverse_padded(spec))


def _fast_griffin_lim(mag: torch.Tensor, phase: torch.Tensor, n: int, n_iter: int, momentum: float) -> torch.Tensor:
    """The iterations on frames-major ``mag``/``phase`` ``[b, frames + 1, 513]`` -> ``[b, n]``."""
    stft = _Stft(n, mag.device, mag.dtype)
    spec = torch.polar(mag, phase)
    keep = momentum / (1 + momentum)
    prev = None
    for _ in range(n_iter):
        rebuilt = stft.project(spec)
        a = rebuilt if prev is None else torch.add(rebuilt, prev, alpha=-keep)
        prev = rebuilt
        # unit phasors times the target magnitude; sgn(0) = 0 where librosa's a / max(|a|, tiny) is 0 too.
        # One complex pass: real-arithmetic versions (|a|^2, rsqrt, scale) make 4-5 passes over 4 MB.
        spec = torch.sgn(a).mul_(mag)
    return stft.inverse(spec)


def phase_draws(magnitude: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The uniform draws ``u`` in ``[0, 1)`` behind :func:`griffin_lim`'s initial phases ``2 pi u``.

    Shape ``[batch, 513, frames + 1]`` (the input's frames plus the one extra frame Griffin-Lim
    adds), the input's dtype, on CPU. Each item draws from its own CPU ``torch.Generator`` seeded
    with ``seed``: an item's phases depend only on its length, never on the other items of its
    batch or its place there, and are the same on every device.
    """
    b, bins, frames = magnitude.shape
    return torch.stack([torch.rand((bins, frames + 1), generator=torch.Generator(device="cpu").manual_seed(seed),
                                   dtype=magnitude.dtype) for _ in range(b)])


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
        Seed of the random initial phases (deterministic by default; see :func:`phase_draws`).

    Returns
    -------
    Tensor [batch, 160 * frames]
        Waveform aligned with the frames of the input (frame t centred on 160 t + 80).

    Notes
    -----
    On CPU the clips of a batch are done one after another: the iteration is memory-bound, and
    one 10.24 s clip's buffers (~25 MB) stay in cache where a batch's do not (batch 4 at once is
    ~25 % slower per clip). On a GPU the batch runs at once.
    """
    b, _, frames = magnitude.shape
    n = frames * HOP
    # one extra frame so that center=True framing covers exactly n samples
    mag = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)
    phase = phase_draws(magnitude, seed).to(mag.device) * (2 * torch.pi)
    # frames-major from here on: [b, frames + 1, 513]
    mag, phase = mag.transpose(1, 2).contiguous(), phase.transpose(1, 2).contiguous()
    step = 1 if mag.device.type == "cpu" else b
    y = torch.cat([_fast_griffin_lim(mag[i:i + step], phase[i:i + step], n, n_iter, momentum)
                   for i in range(0, b, step)])
    return torch.nn.functional.pad(y, (_SHIFT, 0))[..., :n]


def librosa_griffin_lim(magnitude: torch.Tensor, n_iter: int = 32, momentum: float = 0.99, seed: int = 0):
    """The same reconstruction with ``librosa.griffinlim``, clip by clip, in the input's precision (NumPy).

    Same framing, extra frame, alignment and initial phases (:func:`phase_draws`, handed to
    librosa through ``random_state``) as :func:`griffin_lim`, so the two agree to float round-off
    for a few iterations; after many, Griffin-Lim's sensitivity to round-off makes them differ by
    as much as two seeds do, at equal quality. Returns ``[batch, 160 * frames]``.
    """
    import librosa

    n = magnitude.shape[-1] * HOP
    mag = torch.cat([magnitude, magnitude[..., -1:]], dim=-1).cpu().numpy()  # float32 stays float32: a fair timing
    # librosa draws its initial phases as 2 pi random(): hand it the harness's draws instead
    draws = phase_draws(magnitude.cpu(), seed).double().numpy()

    class Given(np.random.RandomState):
        def __init__(self, u):
            super().__init__(0)
            self.u = u

        def random(self, size=None):
            assert tuple(size) == self.u.shape
            return self.u

    out = []
    for m, u in zip(mag, draws):
        y = librosa.griffinlim(m, n_iter=n_iter, hop_length=HOP, win_length=frontend.N_FFT,
                               n_fft=frontend.N_FFT, window="hann", center=True, momentum=momentum, init="random",
                               random_state=Given(u), length=n)
        out.append(np.pad(y, (_SHIFT, 0))[:n])
    return np.stack(out)


def griffin_lim_from_mel(logmel: torch.Tensor, n_iter: int = 32, nnls_iter: int = 30, seed: int = 0) -> torch.Tensor:
    """Log-mel ``[batch, 1, frames, 64]`` -> waveform ``[batch, 160 * frames]`` by mel inversion + Griffin-Lim."""
    mag = frontend.mel_to_magnitude(logmel.float(), iterations=nnls_iter)
    return griffin_lim(mag, n_iter=n_iter, seed=seed)
