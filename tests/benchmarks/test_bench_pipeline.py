"""Generation with the full tiny ``AudioLDM2Pipeline``: time per denoising step.

``extra_info``: ``seconds_per_step`` (the whole call over the steps: text encoders, language model, VAE
decode and vocoder included) and ``denoise_seconds_per_step`` (between the step callbacks of the last
round: the UNet steps alone), plus the usual throughput fields. Group ``pipeline``.
"""
from __future__ import annotations

import functools
import time

import pytest
import numpy as np
import torch

from harness.judging import golden
from harness.model import loading

STEPS = 10


@functools.lru_cache(maxsize=1)
def pipeline():
    return loading.load_pipeline(loading.resolve_model("tiny", ("vae", "vocoder", "unet")))


@pytest.mark.benchmark(group="pipeline")
@pytest.mark.parametrize("batch", [1, 4])
def test_bench_pipeline_per_step(bench, batch):
    pipe = pipeline()
    seconds = pipe.unet.config.sample_size * pipe.vae_scale_factor * 0.01
    prompts = [p for _, p, _ in golden.PROMPTS][:batch]
    prompts += prompts[:1] * (batch - len(prompts))
    stamps = []

    def run():
        stamps.clear()
        gen = torch.Generator(device="cpu").manual_seed(0)
        with torch.inference_mode():
            return pipe(prompts, num_inference_steps=STEPS, guidance_scale=golden.GUIDANCE,
                        audio_length_in_s=seconds, generator=gen, output_type="np",
                        callback=lambda i, t, latents: stamps.append(time.perf_counter()), callback_steps=1).audios

    audios = bench(run, stage="pipeline", impl="diffusers", model_size="tiny", batch=batch, clip_seconds=seconds,
                   rounds=3, flops_key=("pipeline", batch), steps=STEPS)
    assert audios.shape[0] == batch and len(stamps) == STEPS
    info = bench.benchmark.extra_info
    if bench.timing is not None:  # per call: a round may hold several calls
        info["seconds_per_step"] = float(np.mean(bench.timing.seconds)) / STEPS
        info["denoise_seconds_per_step"] = (stamps[-1] - stamps[0]) / (STEPS - 1)
