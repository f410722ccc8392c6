"""Reference work: a fixed set of the kernels the chain's stages are made of, timed beside every benchmark round.

A benchmark's round time divided by the reference work's time measured next to it (just before and just after
the round, on the same device and threads) is a figure in *reference units*: load that slows every kernel alike
divides out, and so does much of the difference between two machines. The kernels:

========  =====================================================  ==========================
kernel    what                                                   the stage it stands for
========  =====================================================  ==========================
conv2d    3x3 convolution, GroupNorm, SiLU, 3x3 convolution      the VAE's resnet blocks
conv1d    kernel-7 convolution, LeakyReLU, kernel-7 convolution  HiFi-GAN's residual blocks
fft       real FFT of 1,280 frames of 1,024 samples, magnitude   the front-end's STFT
matmul    a 512 x 512 matrix product                             attention, linear layers
========  =====================================================  ==========================

Each kernel's own time is kept too (:attr:`ReferenceWork.profile`): how fast a machine is at one kernel
relative to the others. Two machines whose profiles differ cannot share a normalised figure, and the speed gate
says so instead of judging (:mod:`harness.surfaces.bench.gate`).
"""
from __future__ import annotations

import time
from typing import Callable, Dict

import torch

#: the kernels of the reference work, in the order they run
KERNELS = ("conv2d", "conv1d", "fft", "matmul")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ReferenceWork:
    """The reference kernels with their inputs, built once per device and dtype.

    Parameters
    ----------
    device : str or torch.device
        Where the kernels run (the benchmark's device).
    dtype : torch.dtype
        The convolutions' and the product's precision (the FFT stays fp32, as every front-end's does).

    Examples
    --------
    >>> ref = ReferenceWork("cpu")
    >>> seconds = ref.time()                 # one run of every kernel, in seconds
    >>> sorted(ref.profile) == sorted(KERNELS)
    True
    """

    def __init__(self, device="cpu", dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(0)

        def rand(*shape, dt=dtype):
            return torch.randn(*shape, generator=gen).to(self.device, dt)

        conv2d = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.GroupNorm(32, 64),
                                     torch.nn.SiLU(), torch.nn.Conv2d(64, 64, 3, padding=1))
        conv1d = torch.nn.Sequential(torch.nn.Conv1d(64, 64, 7, padding=3), torch.nn.LeakyReLU(0.1),
                                     torch.nn.Conv1d(64, 64, 7, padding=3))
        conv2d.eval().requires_grad_(False).to(self.device, dtype)
        conv1d.eval().requires_grad_(False).to(self.device, dtype)
        image, signal, frames = rand(1, 64, 64, 64), rand(1, 64, 4096), rand(1280, 1024, dt=torch.float32)
        a, b = rand(512, 512), rand(512, 512)
        self.kernels: Dict[str, Callable[[], object]] = {
            "conv2d": lambda: conv2d(image),
            "conv1d": lambda: conv1d(signal),
            "fft": lambda: torch.fft.rfft(frames).abs(),
            "matmul": lambda: torch.mm(a, b),
        }
        #: the seconds of each kernel in the last :meth:`time`
        self.profile: Dict[str, float] = {}
        self.time()  # a first run allocates and picks the kernels' algorithms

    def time(self) -> float:
        """Run every kernel once, synchronised on the device; returns the total seconds (each in :attr:`profile`)."""
        total = 0.0
        with torch.inference_mode():
            for name, kernel in self.kernels.items():
                t0 = time.perf_counter()
                kernel()
                _sync(self.device)
                self.profile[name] = time.perf_counter() - t0
                total += self.profile[name]
        return total
