"""Waveform -> log-mel front-ends, batched in torch.

Every front-end maps a batch of 16 kHz mono waveforms ``[batch, samples]`` to a
log-mel ``[batch, 1, frames, 64]`` (time is the height axis, mel the width axis:
the layout AudioLDM2's VAE takes). ``audioldm2`` is the exact training front-end
(``docs/AUDIOLDM2_REFERENCE.md`` section 1); the others reproduce mistakes people make
so the harness can show what each one costs and prove it catches them.

Register your own with :func:`register_frontend`; it then joins the quality matrix.

Calling a front-end is a boundary: its waveforms are checked there, once, by
:func:`harness.signal.audio.valid_audio`; :meth:`Frontend.mel` takes waveforms that already passed it, and the
building blocks below (:func:`stft_magnitude`, :func:`log_mel`, ...) trust their inputs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import InputError, component_error
from harness.signal.audio import HOP, N_MELS, SAMPLE_RATE, normalize_waveform, valid_audio

N_FFT = 1024
FMIN = 0.0
FMAX = 8000.0
LOG_FLOOR = 1e-5
#: ``ln(1e-5)``: the value of a silent mel bin in the ``audioldm2`` front-end.
LOG_FLOOR_NATS = float(np.log(LOG_FLOOR))
#: reflect padding of the training front-end: ``(n_fft - hop) / 2``.
PAD = (N_FFT - HOP) // 2


@dataclass(frozen=True)
class Frontend:
    """A named waveform -> log-mel front-end.

    Attributes
    ----------
    name : str
        Registry key, used in test ids (``audioldm2-scaled-hifigan``).
    fn : callable
        ``fn(waveform [batch, samples] float tensor) -> [batch, 1, frames, 64]`` (or ``[batch, frames, 64]``),
        a tensor or a numpy array; with ``batched=False``, ``fn(waveform [samples]) -> [frames, 64]``,
        called clip by clip with a CPU tensor (``np.asarray`` reads it) whatever the chain's device.
    correct : bool
        True if the output is what AudioLDM2's VAE and vocoder were trained on.
    description : str
        One line saying what it is (and what is wrong with it, if anything).
    batched : bool
        Whether ``fn`` takes a batch (default) or one clip at a time.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    correct: bool
    description: str
    batched: bool = True

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        """The log-mel ``[batch, 1, frames, 64]`` of ``waveform`` (``[batch, samples]`` or ``[samples]``, a tensor
        or an array), checked first by :func:`harness.signal.audio.valid_audio` (at least 1024 samples; silence
        is allowed: it maps to the log floor). An :class:`~harness.errors.InputError` says what is wrong."""
        return self.mel(valid_audio(waveform, "front-end input", batch=True, min_samples=N_FFT, allow_silence=True))

    def mel(self, x: torch.Tensor) -> torch.Tensor:
        """The log-mel ``[batch, 1, frames, 64]`` of waveforms that already passed
        :func:`harness.signal.audio.valid_audio` (a tensor ``[batch, samples]``, at least 1024 samples): nothing
        is checked again. Code inside the harness that validated its input calls this; a user calls the
        front-end itself."""
        if self.batched:
            return self._as_mel(self._run(x), x.shape[0], x.device)
        # clip by clip is how numpy/librosa code is written, and numpy cannot read a GPU tensor: each clip is
        # handed over on the CPU and its mel goes back to the batch's device
        return torch.cat([self._as_mel(self._run(row), 1, x.device) for row in x.cpu()])

    def _run(self, x: torch.Tensor):
        """``fn(x)``; a ``TypeError`` of a project's front-end becomes a :class:`~harness.errors.ComponentError`
        naming it (a stage's result), while one of the harness's own front-ends is a bug and stays one."""
        try:
            return self.fn(x)
        except TypeError as exc:
            if getattr(self.fn, "__module__", None) == __name__:
                raise
            raise component_error(f"front-end {self.name!r}", exc, x) from exc

    def _as_mel(self, out, batch: int, device) -> torch.Tensor:
        """A front-end's output as a tensor ``[batch, 1, frames, 64]`` on ``device`` (numpy arrays and
        ``[batch, frames, 64]`` / ``[frames, 64]`` accepted), or an InputError saying what came back."""
        out = torch.as_tensor(out).to(device)
        if out.ndim == 2:
            out = out[None, None]
        elif out.ndim == 3:
            out = out[:, None]
        if out.ndim != 4 or out.shape[0] != batch or out.shape[1] != 1 or out.shape[-1] != N_MELS:
            hint = " (it looks transposed: frames first, then the 64 mel bands)" if out.ndim == 4 and \
                out.shape[-2] == N_MELS else ""
            raise InputError(f"front-end {self.name!r} returned shape {tuple(out.shape)}, expected a log-mel "
                             f"[{batch}, 1, frames, {N_MELS}]{hint}")
        return out

    def expected_at(self, stage: Optional[str] = None) -> str:
        """The verdict expected at ``stage``, as every component spells it: ``"pass"`` for a correct front-end,
        ``"detect"`` for a known mistake (a front-end has one verdict at every stage)."""
        return "pass" if self.correct else "detect"


_REGISTRY: Dict[str, Frontend] = {}


def register_frontend(name: str, *, correct: bool = True, description: str = "", batched: bool = True):
    """Decorator adding a front-end to the registry (and so to the quality matrix).

    Parameters
    ----------
    name : str
    correct : bool, default True
        False declares a known mistake (expected to be detected).
    description : str
    batched : bool, default True
        False: the function takes one clip ``[samples]`` and returns ``[frames, 64]``, as code written
        around librosa often does; the harness calls it clip by clip, with the clip on the CPU (a batched
        front-end gets the batch on the chain's device). Either way it may return numpy; a ``TypeError``
        it raises is its stage's result (:class:`~harness.errors.ComponentError`), naming it.

    Examples
    --------
    >>> @register_frontend("my-frontend", description="our production preprocessing")
    ... def my_frontend(waveform):
    ...     return log_mel(normalize_waveform(waveform))
    """

    def wrap(fn):
        _REGISTRY[name] = Frontend(name, fn, correct, description or (fn.__doc__ or "").strip().split("\n")[0],
                                   batched)
        return fn

    return wrap


def get_frontend(name: str) -> Frontend:
    """Return the registered front-end called ``name`` (ValueError listing the known ones)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown front-end {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def list_frontends() -> List[Frontend]:
    """All registered front-ends, correct ones first, in registration order."""
    items = list(_REGISTRY.values())
    return [f for f in items if f.correct] + [f for f in items if not f.correct]


# ---------------------------------------------------------------------------
# building blocks (pure functions)
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _mel_basis_np(htk: bool) -> np.ndarray:
    import librosa

    # htk=True also drops the Slaney area norm: torchaudio's MelScale defaults (mel_scale="htk", norm=None)
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX, htk=htk,
                               norm=None if htk else "slaney")


def mel_basis(device=None, dtype=torch.float32, htk: bool = False) -> torch.Tensor:
    """Mel filterbank ``[64, 513]``: librosa's Slaney scale and area norm, or HTK without norm if ``htk``."""
    return torch.as_tensor(_mel_basis_np(htk), dtype=dtype, device=device)


def hann_window(device=None, dtype=torch.float32) -> torch.Tensor:
    """Periodic Hann window of 1024 samples (``torch.hann_window`` default, = scipy ``hann(sym=False)``)."""
    return torch.hann_window(N_FFT, periodic=True, device=device, dtype=dtype)


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad, pad), mode="reflect")`` of ``[batch, samples]`` (``pad < samples``).

    Written as a copy and two flipped edges: ~6x faster on CPU than ``F.pad``'s reflect kernel.
    """
    n = x.shape[-1]
    if pad >= n:
        raise InputError(f"reflect padding of {pad} needs more than {pad} samples, got {n}")
    out = x.new_empty(x.shape[:-1] + (n + 2 * pad,))
    out[..., pad:pad + n] = x
    out[..., :pad] = x[..., 1:pad + 1].flip(-1)
    out[..., pad + n:] = x[..., n - pad - 1:n - 1].flip(-1)
    return out


#: frames per FFT block on CPU. A whole batch in one block is ~4x slower: a batch of 8 clips of 10.24 s
#: makes a 34 MB complex spectrum, above glibc's 32 MB mmap threshold, so every call maps and
#: page-faults it in anew; blocks of 1024 frames (one 10.24 s clip) keep each temporary at ~4 MB, reused from the heap
#: and warm in cache.
BLOCK_FRAMES = 1024


def _frame_magnitude(x: torch.Tensor, start: int, stop: int, window: torch.Tensor,
                     out: Optional[torch.Tensor] = None, eps: float = 0.0) -> torch.Tensor:
    """``|rfft(window * frame)|`` of frames ``[start, stop)`` of the padded ``x [b, n]`` -> ``[b, stop - start, 513]``."""
    frames = x[:, start * HOP: (stop - 1) * HOP + N_FFT].unfold(-1, N_FFT, HOP)  # a view, no copy
    # sqrt(re^2 + im^2), squaring the interleaved pairs in place: one contiguous pass, then one
    # strided add (complex abs() and hypot() are ~2.5x slower on CPU, re*re + im*im ~15 %)
    sq = torch.view_as_real(torch.fft.rfft(frames * window)).square_()
    if out is None:
        power = torch.add(sq[..., 0], sq[..., 1])
        return (power.clamp_min_(eps) if eps else power).sqrt_()
    return torch.add(sq[..., 0], sq[..., 1], out=out).sqrt_()


def stft_magnitude(waveform: torch.Tensor, framing: str = "audioldm2", eps: float = 0.0) -> torch.Tensor:
    """Linear STFT magnitude ``[batch, 513, frames]`` with AudioLDM2's framing.

    Parameters
    ----------
    waveform : Tensor [batch, samples]
    framing : {"audioldm2", "tacotron"}
        ``audioldm2``: reflect-pad 432 both sides, ``center=False``: ``samples // 160``
        frames, frame t centred on sample 160 t + 80. ``tacotron``: reflect-pad 512
        (as ``center=True``), last frame dropped, frame t centred on sample 160 t.
    eps : float, default 0
        Power floor before the square root (``|X| >= sqrt(eps)``). Training sets it (e.g. 1e-14):
        the gradient of ``sqrt`` at an exactly-zero bin is infinite and turns the step into NaN.

    Returns
    -------
    Tensor [batch, 513, frames]
        The values of ``|torch.stft(..., center=False)|`` (periodic Hann, n_fft 1024, hop 160),
        computed as a real FFT of strided frames, block by block on CPU (:data:`BLOCK_FRAMES`).
        The result is a transposed view of a ``[batch, frames, 513]`` tensor.
    """
    pad = PAD if framing == "audioldm2" else N_FFT // 2
    x = reflect_pad(waveform, pad)
    batch, frames = x.shape[0], waveform.shape[-1] // HOP
    window = hann_window(x.device, x.dtype)
    if eps or x.device.type != "cpu" or batch * frames <= BLOCK_FRAMES or (torch.is_grad_enabled() and x.requires_grad):
        return _frame_magnitude(x, 0, frames, window, eps=eps).transpose(1, 2)
    out = torch.empty(batch, frames, N_FFT // 2 + 1, dtype=x.dtype, device=x.device)
    clips = max(1, BLOCK_FRAMES // frames)
    step = min(frames, BLOCK_FRAMES)
    for i in range(0, batch, clips):
        for t in range(0, frames, step):
            stop = min(frames, t + step)
            _frame_magnitude(x[i:i + clips], t, stop, window, out=out[i:i + clips, t:stop])
    return out.transpose(1, 2)


@functools.lru_cache(maxsize=4)
def _mel_bands(htk: bool, group: int = 16):
    """``(first mel, last mel + 1, first bin, last bin + 1)`` of each group of ``group`` mel filters:
    the filters are triangles, so each group only touches a band of the 513 bins (3 % of the basis is
    non-zero; four groups of 16 do 26 % of the dense product's work)."""
    nz = _mel_basis_np(htk) > 0
    bands = []
    for m in range(0, N_MELS, group):
        cols = np.flatnonzero(nz[m:m + group].any(axis=0))
        lo, hi = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 1)
        bands.append((m, min(m + group, N_MELS), lo, hi))
    return tuple(bands)


def log_mel(magnitude: torch.Tensor, htk: bool = False, log=torch.log) -> torch.Tensor:
    """Linear magnitude ``[batch, 513, frames]`` -> log-mel ``[batch, 1, frames, 64]``.

    Natural log with the ``1e-5`` clamp of AudioLDM2 (floor ``-11.513`` nats). The mel product is
    done band by band (the basis is zero outside each filter group's bins), in the output layout
    ``[batch, frames, 64]``: the same sums as ``basis @ magnitude`` without the zero terms.
    """
    mag = magnitude.transpose(1, 2)  # [b, frames, 513]: contiguous for stft_magnitude's output
    basis = mel_basis(magnitude.device, magnitude.dtype, htk)
    mel = torch.cat([torch.matmul(mag[..., lo:hi], basis[m0:m1, lo:hi].T) for m0, m1, lo, hi in _mel_bands(htk)],
                    dim=-1)
    return log(torch.clamp(mel, min=LOG_FLOOR))[:, None]


def mel_to_magnitude(logmel: torch.Tensor, iterations: int = 0) -> torch.Tensor:
    """Invert the ``audioldm2`` log-mel to a linear magnitude ``[batch, 513, frames]``.

    ``exp`` then a non-negative least-squares fit of the mel basis: the pseudo-inverse as
    a start, refined by ``iterations`` multiplicative (NMF-style) updates that keep it
    non-negative. Input ``[batch, 1, frames, 64]`` or ``[batch, frames, 64]``.
    """
    if logmel.ndim == 4:
        logmel = logmel[:, 0]
    mel = torch.exp(logmel.transpose(1, 2))  # [batch, 64, frames]
    basis = mel_basis(mel.device, mel.dtype)
    mag = torch.clamp(torch.linalg.pinv(basis) @ mel, min=0.0) + 1e-8
    bt_mel = basis.T @ mel
    gram = basis.T @ basis
    for _ in range(iterations):
        mag = mag * bt_mel / (gram @ mag + 1e-10)
    return mag


def log_mel_to_layout(mel_db: torch.Tensor) -> torch.Tensor:
    """``[batch, 64, frames]`` -> ``[batch, 1, frames, 64]``."""
    return mel_db.transpose(1, 2)[:, None]


# ---------------------------------------------------------------------------
# the registered front-ends
# ---------------------------------------------------------------------------


@register_frontend("audioldm2", correct=True)
def audioldm2(waveform: torch.Tensor) -> torch.Tensor:
    """The exact AudioLDM2 training front-end: normalised wave, ``|STFT|``, Slaney mel, ``ln(clamp 1e-5)``."""
    return log_mel(stft_magnitude(normalize_waveform(waveform)))


@register_frontend("audioldm2-tacotron", correct=True)
def audioldm2_tacotron(waveform: torch.Tensor) -> torch.Tensor:
    """AudioLDM2's inference-code framing (TacotronSTFT): same values, frames shifted by 80 samples."""
    return log_mel(stft_magnitude(normalize_waveform(waveform), framing="tacotron"))


@register_frontend("seed-librosa-db", correct=False)
def seed_librosa_db(waveform: torch.Tensor) -> torch.Tensor:
    """The original report's bug: power_to_db(melspectrogram(power=2), ref=max, top_db=80) / 20."""
    # librosa's melspectrogram defaults: center=True with zero ("constant") padding, power 2.
    x = F.pad(waveform[:, None], (N_FFT // 2, N_FFT // 2), mode="constant")[:, 0]
    spec = torch.stft(x, N_FFT, hop_length=HOP, window=hann_window(x.device, x.dtype), center=False,
                      return_complex=True)
    power = spec.real.square() + spec.imag.square()
    # ref=np.max and top_db see librosa's extra last frame too: crop only at the end
    mel = torch.matmul(mel_basis(x.device, x.dtype), power)
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    db = db - 10.0 * torch.log10(torch.clamp(mel.amax(dim=(1, 2), keepdim=True), min=1e-10))
    db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0)
    return log_mel_to_layout(db[..., : waveform.shape[-1] // HOP] / 20.0)


@register_frontend("power-mel", correct=False)
def power_mel(waveform: torch.Tensor) -> torch.Tensor:
    """Mistake: mel of the power spectrum ``|STFT|^2`` instead of the magnitude (values doubled in log)."""
    return log_mel(stft_magnitude(normalize_waveform(waveform)) ** 2)


@register_frontend("log10-mel", correct=False)
def log10_mel(waveform: torch.Tensor) -> torch.Tensor:
    """Mistake: log10 instead of the natural log (values shrunk by 2.30)."""
    return log_mel(stft_magnitude(normalize_waveform(waveform)), log=torch.log10)


@register_frontend("htk-mel", correct=False)
def htk_mel(waveform: torch.Tensor) -> torch.Tensor:
    """Mistake: torchaudio's MelScale defaults, HTK scale without Slaney area norm: other bins, other levels."""
    return log_mel(stft_magnitude(normalize_waveform(waveform)), htk=True)


def no_normalize(waveform: torch.Tensor) -> torch.Tensor:
    """Mistake (not in the matrix): skips the 0.5-peak waveform normalisation.

    The error is ``ln(peak / 0.5)`` nats, so it vanishes for a clip that happens to peak at 0.5
    and no fixed threshold can catch it on every clip; ``harness diagnose`` flags it by level.
    """
    return log_mel(stft_magnitude(waveform))


#: the harness's own front-ends (correct ones and known mistakes); any other name was registered by a project
BUILTIN_NAMES = frozenset(_REGISTRY)
