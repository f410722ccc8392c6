"""Shared pieces of the throughput benchmarks (fixtures in ``conftest.py``): the chains and their inputs; the
timing itself is the package's (:mod:`harness.surfaces.bench.timing`, also behind the shipped :mod:`harness.surfaces.bench.suite`)."""
from __future__ import annotations

import functools

import torch

from harness.surfaces.bench.timing import make_clips


class Chains:
    """Chains and stage inputs, built once per session and configuration."""

    def __init__(self):
        #: round-trip outputs by ``(size, batch, seconds, device, dtype)``, kept for the overhead benchmark
        self.outputs = {}

    @functools.lru_cache(maxsize=None)
    def get(self, size: str, device: str = "cpu", dtype: str = "fp32", variant: str = ""):
        """``size``: ``tiny`` (bundled, trained) or ``real`` (cvssp/audioldm2 architecture, random weights).
        ``variant``: ``""``, ``channels_last`` or ``compile`` (see :meth:`Chain.optimize`)."""
        from harness.model import loading
        from harness.builders import realsize
        from harness.model.chain import Chain

        if size == "tiny":
            chain = Chain.load("tiny", device, dtype)
        else:
            chain = realsize.chain(device)
            dt = loading.resolve_dtype(dtype)
            if dt != torch.float32:
                chain.vae.to(dtype=loading.vae_dtype_for(dt, chain.vae.config))
                chain.vocoder.to(dtype=dt)
        return chain.optimize(channels_last=variant == "channels_last", compile=variant == "compile")

    @functools.lru_cache(maxsize=None)
    def wave(self, batch: int, seconds: float, device: str = "cpu") -> torch.Tensor:
        return make_clips(batch, seconds).to(device)

    @functools.lru_cache(maxsize=None)
    def mel(self, batch: int, seconds: float, device: str = "cpu") -> torch.Tensor:
        from harness.signal.frontend import get_frontend

        with torch.inference_mode():
            return get_frontend("audioldm2")(self.wave(batch, seconds, device))

    @functools.lru_cache(maxsize=None)
    def latents(self, size: str, batch: int, seconds: float, device: str = "cpu", dtype: str = "fp32"):
        return self.get(size, device, dtype).encode(self.mel(batch, seconds, device))
