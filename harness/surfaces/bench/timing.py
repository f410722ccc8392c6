"""Timing a stage with pytest-benchmark: the rounds, the reference work beside them, the threads the run gets,
peak memory, CUDA synchronisation, FLOP counting and the machine's matmul peak (:class:`Bench`).

``Bench`` runs untimed warm-up rounds, then ``rounds`` timed ones, each preceded by the reference work
(:mod:`harness.surfaces.bench.reference`); on CPU it times on the cores other work leaves free
(:func:`bench_threads`); a chain's memo is off in every round, so each round runs the model. It records in
``extra_info``: ``stage``, ``impl``, ``model_size``, ``batch``, ``clip_seconds``, ``device``, ``dtype``,
``threads``, ``busy_cores``, the raw and normalised rounds (:class:`Timing`), ``peak_memory_bytes``,
``audio_seconds_per_second``, ``realtime_factor`` and, where FLOPs are counted, ``flops`` and ``peak_fraction``
(achieved FLOP/s over the 2048x2048 matmul FLOP/s measured in the same run). Under ``--benchmark-disable`` each
body runs once, untimed.
"""
from __future__ import annotations

import contextlib
import functools
import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from harness import machine
from harness.surfaces.bench.gate import SpeedOutcome
from harness.surfaces.bench.reference import ReferenceWork

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


def sync(device) -> None:
    """Wait for ``device``'s queued work (CUDA: that very device, not the current one); nothing on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device, reps: int = 10, warmup: int = 3, calls: int = 1) -> float:
    """The fastest of ``reps`` timings of ``calls`` back-to-back calls (per call), after ``warmup`` timings.

    On CUDA each timing queues ``calls`` products before one synchronisation, so a large GPU is timed on its
    kernels, not on the launch latency of one call."""
    best = float("inf")
    for i in range(warmup + reps):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        if i >= warmup:
            best = min(best, (time.perf_counter() - t0) / calls)
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
    cuda = torch.device(device).type == "cuda"
    peaks = {"torch.mm": flop / _best_seconds(lambda: torch.mm(a, b, out=c), device, calls=20 if cuda else 1)}
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


def bench_threads(setting: Optional[int] = None, busy: Optional[float] = None) -> int:
    """The torch threads a CPU benchmark runs with: ``setting`` when given, else the threads the run really gets.

    torch's threads wait for each other at the end of every parallel operation, so one thread sharing its core
    with another process holds up all of them: beside one CPU-bound process a 2-thread model call on 2 cores
    took 1.5-3x its idle time, with wide swings. Timing on the cores left free (measured with
    :func:`harness.machine.busy_cores`) gives a stable figure; the reference work
    (:mod:`harness.surfaces.bench.reference`) runs on the same threads, so the normalised figure stays comparable.

    Parameters
    ----------
    setting : int, optional
        A fixed thread count (``--harness-speed-threads``).
    busy : float, optional
        Cores busy with other work, if already measured (:func:`harness.machine.busy_cores`).

    Returns
    -------
    int
        Between 1 and the threads torch was started with.
    """
    if setting:
        return int(setting)
    busy = machine.busy_cores() if busy is None else busy
    return machine.threads_beside_other_work(STARTED_THREADS, machine.usable_cores(), busy)[0]


#: the shortest timed round (s): a faster callable is called several times per round
MIN_ROUND_SECONDS = 0.05
#: a round is disturbed when the reference work beside it ran this many times slower than its quietest run
DISTURBED = 1.5
#: torch's threads when this module was imported (``OMP_NUM_THREADS`` or the cores): the most a benchmark uses
STARTED_THREADS = torch.get_num_threads()


@dataclass
class Timing:
    """What one benchmark measured: its rounds, the reference work beside each, the threads, load and memory.

    Attributes
    ----------
    seconds : list of float
        Wall time per call of each timed round.
    reference : list of float
        Seconds of the reference work beside each round (the mean of the runs just before and just after, on the
        round's threads).
    round_threads : list of int
        torch threads of each round.
    disturbed : list of bool
        Rounds whose reference work ran more than :data:`DISTURBED` times slower than the quietest reference on
        the same threads: other work arrived during them. They are named and left out of :attr:`normalised`.
    profile : dict
        Seconds of each reference kernel (:data:`harness.surfaces.bench.reference.KERNELS`), medians over the run.
    busy_cores : float
        Cores kept busy by other processes just before the benchmark.
    peak_memory : int
        Peak memory in bytes while the rounds ran: the process's resident set on CPU (``VmHWM``),
        ``torch.cuda.max_memory_allocated`` on CUDA; 0 where it cannot be measured.
    memory_kind : str
        ``"rss"`` or ``"cuda"``.
    calls_per_round : int
        Calls of the benchmarked callable in each round: as many as make a round last
        :data:`MIN_ROUND_SECONDS` (a millisecond call alone is mostly timer and scheduler jitter).
    """

    seconds: List[float]
    reference: List[float]
    round_threads: List[int]
    disturbed: List[bool]
    profile: Dict[str, float]
    busy_cores: float
    peak_memory: int
    memory_kind: str
    calls_per_round: int = 1

    @property
    def kept(self) -> List[int]:
        """Indices of the rounds the figure is made of: the undisturbed ones on the threads most of them had
        (every round when all were disturbed)."""
        quiet = [i for i, d in enumerate(self.disturbed) if not d] or list(range(len(self.seconds)))
        threads = statistics.mode(self.round_threads[i] for i in quiet)
        return [i for i in quiet if self.round_threads[i] == threads]

    @property
    def threads(self) -> int:
        """The threads of the kept rounds."""
        return self.round_threads[self.kept[0]]

    @property
    def normalised(self) -> List[float]:
        """Each kept round's time per call in reference units (seconds per call / reference seconds beside it)."""
        return [self.seconds[i] / self.reference[i] for i in self.kept]

    def as_info(self) -> dict:
        """The fields a benchmark records in ``extra_info`` (read back by :func:`harness.surfaces.bench.gate.observed`)."""
        return {"round_seconds": [self.seconds[i] for i in self.kept], "all_round_seconds": self.seconds,
                "reference_seconds": self.reference, "round_threads": self.round_threads,
                "disturbed_rounds": sum(self.disturbed), "normalised_rounds": self.normalised,
                "normalised": float(np.median(self.normalised)), "reference_profile": self.profile,
                "threads": self.threads, "busy_cores": round(self.busy_cores, 2),
                "peak_memory_bytes": self.peak_memory, "memory_kind": self.memory_kind,
                "calls_per_round": self.calls_per_round}


class Bench:
    """``bench(fn, stage=..., impl=..., ...)``: time ``fn()`` with pytest-benchmark and fill ``extra_info``.

    Every round is preceded by the reference work (:class:`harness.surfaces.bench.reference.ReferenceWork`) on
    the same device and threads, so each round also has a figure in reference units (:class:`Timing`). With a
    ``gate`` (:class:`harness.surfaces.bench.gate.SpeedGate`), the timed benchmark is then judged against its
    calibrated baseline and fails, naming the benchmark and the slowdown with its interval, when it is
    significantly slower.

    Parameters
    ----------
    benchmark
        pytest-benchmark's fixture.
    gate : SpeedGate, optional
        The calibrated baseline to judge against (``--harness-speed-baseline``).
    threads : int, optional
        torch threads of the timed rounds on CPU; default: the cores left free by other work (:func:`bench_threads`).
    properties : list, optional
        The test's ``user_properties``: the speed verdict is added as JUnit properties (``harness_speed_*``).

    Examples
    --------
    >>> def test_my_vocoder_speed(harness_bench, harness_chain, mel):   # doctest: +SKIP
    ...     harness_bench(lambda: harness_chain.vocode(mel), stage="vocoder", impl="mine", batch=1,
    ...                   clip_seconds=10.24, chain=harness_chain)
    """

    def __init__(self, benchmark, gate=None, threads: Optional[int] = None, properties: Optional[list] = None):
        self.benchmark = benchmark
        self.gate = gate
        self.threads = threads
        self.properties = properties
        #: what the last timed call measured (None untimed)
        self.timing: Optional[Timing] = None

    @property
    def timed(self) -> bool:
        return not self.benchmark.disabled

    def __call__(self, fn: Callable[[], object], *, stage: str, impl: str, batch: int, clip_seconds: float,
                 model_size: str = "-", device: str = "cpu", dtype: str = "fp32", rounds: int = 7, warmup: int = 2,
                 flops_key: Optional[tuple] = None, flops: Optional[int] = None, chain=None, **extra):
        """Time ``fn()`` for ``rounds`` rounds after ``warmup`` untimed calls (a round calls it as often as makes
        it last :data:`MIN_ROUND_SECONDS`).

        ``chain``: the :class:`harness.model.chain.Chain` ``fn`` calls; its memo is off in every round, so each
        round runs the model (:meth:`~harness.model.chain.Chain.no_memo`). ``flops_key``: count FLOPs once per key;
        ``flops``: a known count (e.g. of the eager model, for a compiled one).
        """
        dev = torch.device(device)

        def call():
            with chain.no_memo() if chain is not None else contextlib.nullcontext():
                out = fn()
            sync(dev)
            return out

        info = self.benchmark.extra_info
        info.update(stage=stage, impl=impl, model_size=model_size, batch=batch, clip_seconds=clip_seconds,
                    device=str(device), dtype=dtype, **extra)
        if not self.timed:  # --benchmark-disable: run once for correctness, nothing timed
            info["threads"] = torch.get_num_threads()
            return self.benchmark.pedantic(call, rounds=1, iterations=1)
        if flops is None and flops_key is not None:
            if flops_key not in FLOPS_CACHE:
                FLOPS_CACHE[flops_key] = count_flops(call)
            flops = FLOPS_CACHE[flops_key]
        before = torch.get_num_threads()
        busy = machine.busy_cores() if dev.type == "cpu" else 0.0
        threads = bench_threads(self.threads, busy) if dev.type == "cpu" else before
        torch.set_num_threads(threads)
        try:
            # numpy's BLAS (a project's numpy code, librosa) on the same threads as torch: its threads wait for
            # each other beside other work just as torch's do
            with threadpool_limits(limits=threads, user_api="blas") if dev.type == "cpu" else contextlib.nullcontext():
                out, self.timing = self._timed(call, dev, _DTYPES.get(dtype, torch.float32), rounds, warmup, threads,
                                               busy)
        finally:
            torch.set_num_threads(before)
        info.update(self.timing.as_info())
        mean = float(np.mean(self.timing.seconds))
        info["audio_seconds_per_second"] = batch * clip_seconds / mean
        info["realtime_factor"] = clip_seconds / mean
        if flops:
            peaks = matmul_peaks(str(device), torch.float32 if dtype == "fp32" else _DTYPES[dtype])
            info.update(flops=flops, flop_per_second=flops / mean, peak_flop_per_second=max(peaks.values()),
                        peak_by_library=peaks, peak_fraction=flops / mean / max(peaks.values()))
        if self.gate is not None:
            self._judge()
        return out

    def _timed(self, call, dev, dtype, rounds, warmup, threads, busy):
        reference = _reference_work(dev, dtype)
        adapt = dev.type == "cpu" and not self.threads  # a fixed thread count is kept whatever happens
        quietest: Dict[int, float] = {}

        def reference_time() -> float:
            t = reference.time()
            quietest[threads] = min(quietest.get(threads, t), t)
            return t

        # 1. warm-up, untimed by pytest-benchmark; the fastest call sets the calls per round
        fastest = float("inf")
        for _ in range(max(1, warmup)):
            reference_time()
            t0 = time.perf_counter()
            call()
            fastest = min(fastest, time.perf_counter() - t0)
        calls = max(1, math.ceil(MIN_ROUND_SECONDS / max(fastest, 1e-9)))

        def rounds_call():
            for _ in range(calls):
                result = call()
            return result

        # 2. the timed rounds, each preceded by the reference work and a fresh memory peak; when the reference
        #    shows other work arriving, the rounds after it run on the cores left free
        refs, profiles, peaks, round_threads = [], [], [], []

        def setup():
            nonlocal threads
            t = reference_time()
            if adapt and threads > 1 and t > DISTURBED * quietest[threads]:
                fewer = bench_threads(None, machine.busy_cores(0.1))
                if fewer < threads:
                    threads = fewer
                    torch.set_num_threads(threads)
                    threadpool_limits(limits=threads, user_api="blas")  # undone with the limits of __call__
                    t = reference_time()
            refs.append(t)
            round_threads.append(threads)
            profiles.append(dict(reference.profile))
            _reset_peak_memory(dev)

        def teardown(*_):
            peaks.append(_peak_memory(dev))

        out = self.benchmark.pedantic(rounds_call, setup=setup, teardown=teardown, rounds=rounds, iterations=1)
        refs.append(reference_time())  # the reference just after the last round
        round_threads.append(threads)
        # 3. per call, in reference units beside each round, disturbed rounds named
        seconds = [t / calls for t in self.benchmark.stats.stats.data]
        beside = [(refs[i] + refs[i + 1]) / 2 if round_threads[i + 1] == round_threads[i] else refs[i]
                  for i in range(len(seconds))]
        disturbed = [max(refs[i], beside[i]) > DISTURBED * quietest[round_threads[i]] for i in range(len(seconds))]
        profile = {k: float(np.median([p[k] for p in profiles])) for k in profiles[-1]}
        return out, Timing(seconds, beside, round_threads[:-1], disturbed, profile, busy, max(peaks, default=0),
                           "cuda" if dev.type == "cuda" else "rss", calls)

    def _judge(self) -> None:
        """Judge the timing against the gate's baseline; a significant slowdown fails the test here."""
        __tracebackhide__ = True
        verdict = self.gate.judge(self.benchmark.fullname, self.benchmark.extra_info)
        self.benchmark.extra_info["speed_verdict"] = verdict.as_info()
        if self.properties is not None:
            self.properties.extend(verdict.properties())
        if verdict.fails:
            import pytest

            pytest.fail(verdict.message(), pytrace=False)
        if verdict.outcome in (SpeedOutcome.INCOMPARABLE, SpeedOutcome.NEW):  # not judged: said, not hidden
            warnings.warn(SpeedGateWarning(f"{verdict.benchmark} not judged: {verdict.reason}"
                                           + (f"; re-baseline: {verdict.rebaseline}" if verdict.rebaseline else "")))


class SpeedGateWarning(UserWarning):
    """A timed benchmark the speed gate could not judge (not in the baseline, or another device or machine)."""


@functools.lru_cache(maxsize=None)
def _reference_work(device: torch.device, dtype: torch.dtype) -> ReferenceWork:
    return ReferenceWork(device, dtype)


def _reset_peak_memory(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        machine.reset_peak_rss()


def _peak_memory(dev: torch.device) -> int:
    return int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else machine.peak_rss()


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
