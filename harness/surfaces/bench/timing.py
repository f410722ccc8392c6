"""Timing a stage with pytest-benchmark: clips, CUDA synchronisation, FLOP counting, the machine's matmul peak,
and the ``extra_info`` every benchmark records (:class:`Bench`).

``Bench`` syncs CUDA inside the timed call, counts the model FLOPs once per configuration with
``FlopCounterMode`` (that run is the warm-up) and records ``stage``, ``impl``, ``model_size``, ``batch``,
``clip_seconds``, ``device``, ``dtype``, ``threads``, ``flops`` and, when timed, ``audio_seconds_per_second``,
``realtime_factor`` and ``peak_fraction`` (achieved FLOP/s over the fp32 2048x2048 matmul FLOP/s measured in
the same run). Under ``--benchmark-disable`` each body runs once, untimed, with no FLOP count.
"""
from __future__ import annotations

import functools
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch

SR = 16000
SHORT = 1.28   # real-size default clip: 128 frames
LONG = 10.24   # AudioLDM2's clip: 1024 frames
PEAK_N = 2048

FLOPS_CACHE: Dict[tuple, int] = {}


def make_clips(batch: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """``[batch, 16000 * seconds]`` deterministic clips: a harmonic tone (one pitch per clip) plus noise."""
    n = int(round(seconds * SR))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    out = []
    for i in range(batch):
        f0 = 110.0 * 2 ** (i / 4)
        tone = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 6))
        out.append(0.3 * tone / np.abs(tone).max() + 0.05 * rng.standard_normal(n))
    return torch.from_numpy(np.stack(out).astype(np.float32))


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _best_seconds(fn, device, reps: int = 10, warmup: int = 3) -> float:
    best = float("inf")
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        if i >= warmup:
            best = min(best, time.perf_counter() - t0)
    return best


@functools.lru_cache(maxsize=None)
def matmul_peaks(device: str = "cpu", dtype: torch.dtype = torch.float32) -> Dict[str, float]:
    """FLOP/s of a ``2048 x 2048`` matmul (best of 10 after 3 warm-ups), by library.

    ``torch.mm`` on CPU is MKL's sgemm, which takes its AVX2 path on AMD CPUs (half the
    machine on an AVX-512 core); the convolutions run in oneDNN, whose GEMM uses AVX-512. So on
    CPU the same product is also timed through oneDNN (``mkldnn_linear``).
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(PEAK_N, PEAK_N, generator=gen).to(device, dtype)
    b = torch.randn(PEAK_N, PEAK_N, generator=gen).to(device, dtype)
    c = torch.empty_like(a)
    flop = 2 * PEAK_N ** 3
    peaks = {"torch.mm": flop / _best_seconds(lambda: torch.mm(a, b, out=c), device)}
    if torch.device(device).type == "cpu" and torch.backends.mkldnn.is_available():
        try:
            am, bm = a.to_mkldnn(), b.to_mkldnn()
            with torch.inference_mode():
                peaks["onednn"] = flop / _best_seconds(lambda: torch._C._nn.mkldnn_linear(am, bm, None), device)
        except (RuntimeError, AttributeError):
            pass
    return peaks


def matmul_peak(device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """The machine's matmul peak: the fastest library's FLOP/s of :func:`matmul_peaks`."""
    return max(matmul_peaks(device, dtype).values())


def count_flops(fn: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


class Bench:
    """``bench(fn, stage=..., impl=..., ...)``: time ``fn()`` with pytest-benchmark and fill ``extra_info``."""

    def __init__(self, benchmark):
        self.benchmark = benchmark

    @property
    def timed(self) -> bool:
        return not self.benchmark.disabled

    def __call__(self, fn: Callable[[], object], *, stage: str, impl: str, batch: int, clip_seconds: float,
                 model_size: str = "-", device: str = "cpu", dtype: str = "fp32", rounds: int = 3,
                 flops_key: Optional[tuple] = None, flops: Optional[int] = None, **extra):
        """``flops_key``: count FLOPs once per key (the counting run doubles as the warm-up);
        ``flops``: a known count (e.g. of the eager model, for a compiled one)."""
        def call():
            out = fn()
            _sync(device)
            return out

        warmup = 1 if self.timed else 0
        if self.timed and flops is None and flops_key is not None:
            if flops_key not in FLOPS_CACHE:
                FLOPS_CACHE[flops_key] = count_flops(call)
                warmup = 0
            flops = FLOPS_CACHE[flops_key]
        info = self.benchmark.extra_info
        info.update(stage=stage, impl=impl, model_size=model_size, batch=batch, clip_seconds=clip_seconds,
                    device=str(device), dtype=dtype, threads=torch.get_num_threads(), **extra)
        if flops is not None:
            info["flops"] = flops
        out = self.benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=warmup)
        if self.benchmark.stats is None:  # --benchmark-disable: ran once for correctness, nothing timed
            return out
        mean = self.benchmark.stats.stats.mean
        info["audio_seconds_per_second"] = batch * clip_seconds / mean
        info["realtime_factor"] = clip_seconds / mean
        if flops:
            peak = matmul_peak(str(device), torch.float32 if dtype == "fp32" else _DTYPES[dtype])
            info["flop_per_second"] = flops / mean
            info["peak_flop_per_second"] = peak
            info["peak_by_library"] = matmul_peaks(str(device), torch.float32 if dtype == "fp32" else _DTYPES[dtype])
            info["peak_fraction"] = flops / mean / peak
        return out


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
