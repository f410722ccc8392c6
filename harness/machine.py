"""What a measurement depends on besides the code: package versions and the kernel path of a device.

Low-precision figures (bf16, fp16) depend on which kernels compute them: on CPU, oneDNN picks native
bf16/fp16 instructions (AVX512-BF16, AMX, AVX512-FP16) where the processor has them and emulates them in
fp32 elsewhere, and ``ONEDNN_MAX_CPU_ISA`` caps the choice; on CUDA, the GPU's architecture decides.
Thresholds record :func:`kernel_path` when calibrated, and limits of another kernel path are refused
instead of failing correct chains (:func:`harness.judging.thresholds.check_kernel_path`).
"""
from __future__ import annotations

import ctypes
import os
import platform
import time
from importlib import metadata

#: CPU flags that select oneDNN's low-precision kernels
CPU_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "amx_fp16")


def version(package: str = "audioldm2-harness") -> str:
    """The installed version of ``package`` (default: this one), ``-`` when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _cpu_flags() -> list:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return []
    present = set(line.split(":", 1)[-1].split())
    return [flag for flag in CPU_FLAGS if flag in present]


def kernel_path(device: str = "cpu") -> str:
    """A short string naming the kernels low-precision figures come from on ``device``.

    CPU: ATen's vector capability, the low-precision CPU flags present and ``ONEDNN_MAX_CPU_ISA`` if set,
    e.g. ``"cpu:AVX512+avx512_bf16"``. CUDA: the GPU's name and compute capability,
    e.g. ``"cuda:NVIDIA H100 80GB HBM3:sm90"``.
    """
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        major, minor = torch.cuda.get_device_capability(dev)
        return f"cuda:{torch.cuda.get_device_name(dev)}:sm{major}{minor}"
    path = f"cpu:{torch.backends.cpu.get_cpu_capability()}" + "".join(f"+{f}" for f in _cpu_flags())
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return path + (f":ONEDNN_MAX_CPU_ISA={isa}" if isa else "")


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of unmapping it (process-wide; Linux only).

    glibc serves every allocation above 32 MB with a fresh ``mmap`` and unmaps it on free, so each
    large activation (the VAE's and HiFi-GAN's at 10.24 s, any at batch 4) is page-faulted in
    and zeroed by the kernel on *every* call (a large share of the CPU time at batch 4: see the
    measurements page of the docs).
    This serves all allocations from the heap (``M_MMAP_MAX = 0``) and never trims it
    (``M_TRIM_THRESHOLD = -1``): the process keeps its peak memory. Returns False where it does
    not apply (not glibc). ``LD_PRELOAD`` of jemalloc/tcmalloc is the alternative outside Python.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, -1))


def _cpu_jiffies() -> tuple:
    """``(busy, total)`` jiffies of every CPU together since boot (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _own_jiffies() -> int:
    """CPU jiffies this process (every thread: torch's may still spin after a parallel region) has used."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0


def busy_cores(seconds: float = 0.25) -> float:
    """How many of the cores this process may use are kept busy by *other* work, measured over ``seconds``.

    Reads ``/proc/stat`` before and after a sleep, less what this process's own threads used meanwhile.
    Returns 0.0 where it cannot be measured (not Linux).

    Returns
    -------
    float
        Busy cores, between 0 and ``os.cpu_count()``; a single CPU-bound process elsewhere gives about 1.0.
    """
    before, own = _cpu_jiffies(), _own_jiffies()
    if before is None:
        return 0.0
    time.sleep(seconds)
    after = _cpu_jiffies()
    busy, total = after[0] - before[0] - (_own_jiffies() - own), after[1] - before[1]
    return 0.0 if total <= 0 else max(0.0, (os.cpu_count() or 1) * busy / total)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where affinity is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: ``/proc/self/clear_refs``); False where the peak cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """This process's peak resident memory in bytes since :func:`reset_peak_rss` (``VmHWM``), 0 if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores() -> int:
    """Physical cores of this machine (distinct ``(physical id, core id)`` in Linux ``/proc/cpuinfo``): the number
    torch starts with as its default intra-op threads; ``os.cpu_count()`` where that cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return os.cpu_count() or 1
    cores, socket = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            socket = value.strip()
        elif key.strip() == "core id":
            cores.add((socket, value.strip()))
    return len(cores) or os.cpu_count() or 1


def threads_beside_other_work(default: int, usable: int, busy: float, workers: int = 1) -> tuple:
    """Torch threads for figures measured while other work may share the CPU, and why.

    Parameters
    ----------
    default : int
        Torch's default threads (the most ever chosen: more than it would pick by itself never helps).
    usable : int
        Cores this process may run on (:func:`usable_cores`).
    busy : float
        Cores kept busy by other work (:func:`busy_cores`); ignored with ``workers`` > 1, where the busy cores
        are mostly the sibling workers, already counted by the share.
    workers : int
        Processes of one pytest-xdist run sharing the cores.

    Returns
    -------
    tuple of (int, str)
        The threads, between 1 and ``default``, and a sentence saying how they were chosen.
    """
    if workers > 1:
        share = max(1, usable // workers)
        return min(default, share), f"{usable} usable cores shared by {workers} pytest-xdist workers"
    # a core counts as free when less than half of it is taken: one CPU-bound process elsewhere takes a whole core
    free = max(1, int(usable - busy + 0.5))
    why = (f"{busy:.1f} of {usable} usable cores busy with other work" if busy >= 0.5 else
           f"{usable} usable cores, none busy with other work")
    return max(1, min(default, free)), why


_THREADS_CHOSEN: list = []


def use_free_cores() -> str:
    """Set torch's CPU threads to the cores other work leaves free, once per process; say what was chosen.

    Measures :func:`busy_cores` once (a quarter of a second) and applies :func:`threads_beside_other_work`. An
    explicit choice is kept: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, or torch's threads already set to
    something other than its default (``torch.set_num_threads`` by the user), are left as they are, except that
    pytest-xdist workers always share the cores (at most the threads the process started with). Later calls
    return the first call's sentence without measuring again, so every figure of a process is made with the same
    threads.

    Returns
    -------
    str
        ``"torch threads: N (<why>)"``.
    """
    if _THREADS_CHOSEN:
        return _THREADS_CHOSEN[0]
    import torch

    current = torch.get_num_threads()
    env = [k for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if os.environ.get(k)]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if workers > 1:  # an explicit count is per process: N workers of it on fewer cores would thrash
        threads, why = threads_beside_other_work(current, usable_cores(), 0.0, workers)
        torch.set_num_threads(threads)
        line = f"torch threads: {threads} ({why}; at most the {current} this process started with)"
    elif env:
        line = f"torch threads: {current} (kept: {env[0]}={os.environ[env[0]]} set)"
    elif current != physical_cores():
        line = f"torch threads: {current} (kept: set before the harness started; torch's default is {physical_cores()})"
    else:
        threads, why = threads_beside_other_work(current, usable_cores(), busy_cores())
        torch.set_num_threads(threads)
        line = f"torch threads: {threads} ({why}; torch's default {current})"
    _THREADS_CHOSEN.append(line)
    return line
