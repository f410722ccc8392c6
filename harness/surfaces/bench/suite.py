"""Throughput benchmarks of every registered variant, shipped so a project times its own code with one import.

In your project, one test file::

    # tests/test_audioldm2_speed.py
    from harness.surfaces.bench.suite import (  # noqa: F401,F403  times your registered front-ends, VAEs and vocoders
        *,
    )

``test_bench_variant`` runs once per correct front-end, VAE variant and vocoder (yours and the built-in
ones, to compare with) on one 10.24 s clip through the model under test (``--harness-model``), with
pytest-benchmark. It records ``audio_seconds_per_second``, ``realtime_factor`` and, where FLOPs are counted,
``peak_fraction`` (:class:`harness.surfaces.bench.timing.Bench`); on CUDA each call is synchronised. Save a baseline
and gate later runs against it with pytest-benchmark's own options::

    pytest tests/test_audioldm2_speed.py --benchmark-enable --benchmark-autosave
    pytest tests/test_audioldm2_speed.py --benchmark-enable --benchmark-compare --benchmark-compare-fail=min:25%
"""
from __future__ import annotations

import torch

from harness.signal import frontend as frontends
from harness.surfaces.bench.timing import Bench, make_clips

__all__ = ["test_bench_variant"]

#: the clip every variant is timed on (s): AudioLDM2's own length
CLIP_SECONDS = 10.24


def test_bench_variant(benchmark, harness_chain, harness_variant):
    """One variant's stage on one 10.24 s clip: a front-end on the waveform, a VAE variant's round trip or a
    vocoder on the ``audioldm2`` mel."""
    kind, name = harness_variant
    chain = harness_chain
    wave = make_clips(1, CLIP_SECONDS).to(chain.device)
    with torch.inference_mode():
        mel = frontends.get_frontend("audioldm2")(wave)
    call = {"frontend": lambda: chain.front_end(wave, name),
            "vae": lambda: chain.vae_roundtrip(mel, name),
            "vocoder": lambda: chain.vocoder_out(mel, name)}[kind]
    device = str(chain.device)
    dtype = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[next(chain.vocoder.parameters()).dtype]
    Bench(benchmark)(call, stage=kind, impl=name, batch=1, clip_seconds=CLIP_SECONDS, model_size=str(chain.source.spec
                     if chain.source else "-"), device=device, dtype=dtype, flops_key=("variant", kind, name, device))
