"""Throughput benchmarks of every registered variant, shipped so a project times its own code with one import.

In your project, one test file::

    # tests/test_speed.py
    from harness.surfaces.bench.suite import *  # noqa: F401,F403

``test_bench_variant`` runs once per correct front-end, VAE variant and vocoder (yours and the built-in
ones, to compare with) on one 10.24 s clip through the model under test (``--harness-model``), with
pytest-benchmark and :class:`harness.surfaces.bench.timing.Bench`: warm-up rounds, then timed rounds each beside
the reference work, on the cores other work leaves free, the VAE's memo off. It records raw and normalised
figures, peak memory, ``audio_seconds_per_second``, ``realtime_factor`` and, where FLOPs are counted,
``peak_fraction``. Calibrate a baseline once, then every timed run is gated against it::

    harness bench --calibrate tests/test_speed.py      # writes .benchmarks/speed-baseline.json
    python -m pytest tests/test_speed.py --benchmark-enable
"""
from __future__ import annotations

import torch

from harness.signal import frontend as frontends
from harness.surfaces.bench.timing import make_clips

__all__ = ["test_bench_variant"]

#: the clip every variant is timed on (s): AudioLDM2's own length
CLIP_SECONDS = 10.24


def test_bench_variant(harness_bench, harness_chain, harness_variant):
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
    harness_bench(call, stage=kind, impl=name, batch=1, clip_seconds=CLIP_SECONDS, model_size=str(chain.source.spec
                  if chain.source else "-"), device=device, dtype=dtype, flops_key=("variant", kind, name, device),
                  chain=chain)
