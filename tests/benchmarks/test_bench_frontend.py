"""Speed of the ``audioldm2`` front-end (batched torch) against the same log-mel done with librosa.

Both benchmarks are in group ``frontend`` and record ``audio_seconds_per_second``: seconds of 16 kHz
audio turned into log-mel per second of wall time, and ``realtime_factor`` (one clip's duration over the
batch's wall time), with the fields ``harness bench`` shows. All three run on one torch thread: librosa computes
on one, so the ratios compare like with like, and one thread keeps its core beside other work (the ratios
measured idle and beside a CPU-bound process agree: see the measurements page). Run with::

    python -m pytest tests/benchmarks/test_bench_frontend.py --benchmark-enable --benchmark-only

Few rounds on purpose: a batch is 8 clips of 10.24 s, and the suite must stay light.

``test_bench_fft_floor`` times the part no front-end can skip: the real FFT of the windowed
frames alone (``torch.fft.rfft``, MKL, clip by clip as the front-end does). librosa's time over it
is the most any front-end built on this FFT could gain; ``harness bench`` prints it as the ceiling.
"""
from __future__ import annotations

import functools

import librosa
import numpy as np
import pytest
import torch

from harness.signal.audio import HOP, normalize_waveform
from harness.signal.frontend import N_FFT, get_frontend, hann_window, reflect_pad
from harness.surfaces.bench.timing import make_clips

SR = 16000
N_CLIPS = 8
SAMPLES = 163840  # 10.24 s = 1024 frames
PAD = (1024 - 160) // 2


@functools.lru_cache(maxsize=1)
def batch() -> np.ndarray:
    """8 deterministic clips: a harmonic tone (different pitch per clip) plus white noise."""
    return make_clips(N_CLIPS, SAMPLES / SR, seed=1234).numpy()


@functools.lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    return librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64, fmin=0.0, fmax=8000.0)  # float32


def librosa_frontend(clips: np.ndarray) -> np.ndarray:
    """The same log-mel with librosa, one clip at a time -> ``[batch, 1, frames, 64]``."""
    basis = mel_basis()
    out = []
    for x in clips:
        x = x - x.mean()
        x = x / (np.abs(x).max() + 1e-8)
        x = 0.5 * x
        x = np.pad(x, (PAD, PAD), mode="reflect")
        mag = np.abs(librosa.stft(x, n_fft=1024, hop_length=160, win_length=1024, window="hann", center=False))
        out.append(np.log(np.maximum(basis @ mag, 1e-5)).T)
    return np.stack(out)[:, None]


def ours_frontend(clips: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return get_frontend("audioldm2")(clips)


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape == (N_CLIPS, 1, SAMPLES // 160, 64)
    loud = theirs > np.log(1e-3)  # above the floor, out of float32 rounding noise
    assert loud.mean() > 0.5
    np.testing.assert_allclose(ours[loud], theirs[loud], atol=1e-3, rtol=0)


@pytest.fixture
def bench(harness_bench):
    """``harness_bench`` on one torch thread (see the module docstring)."""
    harness_bench.threads = 1
    return harness_bench


def timed(bench, fn, impl: str):
    return bench(fn, stage="frontend", impl=impl, batch=N_CLIPS, clip_seconds=SAMPLES / SR, rounds=5, warmup=1)


@pytest.mark.benchmark(group="frontend")
def test_bench_audioldm2_torch(bench):
    clips = torch.from_numpy(batch())
    out = timed(bench, lambda: ours_frontend(clips), "torch")
    assert_same(out.numpy(), librosa_frontend(batch()))


@pytest.mark.benchmark(group="frontend")
def test_bench_audioldm2_librosa(bench):
    clips = batch()
    out = timed(bench, lambda: librosa_frontend(clips), "librosa")
    assert_same(ours_frontend(torch.from_numpy(batch())).numpy(), out)


def fft_only(clips: torch.Tensor) -> torch.Tensor:
    """Normalise, pad, then only ``rfft(window * frame)`` of every frame, clip by clip (each spectrum is
    dropped once made, as the front-end drops it after its magnitude): the floor under any front-end.
    Returns the last clip's spectrum ``[frames, 513]``."""
    x = reflect_pad(normalize_waveform(clips), PAD)
    window = hann_window()
    spec = None
    with torch.no_grad():
        for row in x:
            spec = torch.fft.rfft(row.unfold(-1, N_FFT, HOP) * window)
    return spec


@pytest.mark.benchmark(group="frontend")
def test_bench_fft_floor(bench):
    clips = torch.from_numpy(batch())
    out = timed(bench, lambda: fft_only(clips), "fft-only")
    # the spectra the front-end takes the magnitude of
    x = reflect_pad(normalize_waveform(clips[-1:]), PAD)[0]
    ref = torch.stft(x, N_FFT, HOP, window=hann_window(), center=False, return_complex=True).T
    assert out.shape == ref.shape == (SAMPLES // HOP, N_FFT // 2 + 1)
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-4)
