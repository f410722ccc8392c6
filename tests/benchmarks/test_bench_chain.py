"""Throughput of every chain stage and of the whole chain, two model sizes, batch 1 and 4.

Groups:

* ``stages``: front-end, VAE encode, VAE decode, vocoder and the full round trip
  (front-end + encode + decode + vocoder, ``Chain.run``) on the ``--harness-device``/``--harness-dtype`` of the run;
* ``overhead``: what the harness adds around the model when it judges a reconstruction
  (front-end of the input + ``metrics.compute`` of the output against it);
  ``harness bench`` sets it against encode + decode + vocode of the same configuration;
* ``batched-vs-naive``: the harness's chain (batched, ``inference_mode``) against the way people
  usually run it: clip by clip, calling ``vae.encode``/``vae.decode``/``vocoder`` per item like
  ``AudioLDM2Pipeline`` does, with autograd on and parameters requiring grad (as ``from_pretrained``
  leaves them);
* ``gpu``: fp16 / bf16 (the VAE stays fp32 under fp16), ``torch.compile`` and channels_last, CUDA only.

Model sizes: ``tiny`` (the bundled trained model) and ``real`` (cvssp/audioldm2's architecture with
random weights: same shapes and FLOPs). Real-size cases use 1.28 s clips by default; real-size
10.24 s cases are ``slow`` (``--run-slow``), and so is every real-size ``batched-vs-naive`` case (the
naive way is slow by design: 17 s of the default suite for one figure).
"""
from __future__ import annotations

import contextlib

import pytest
import torch

from harness.signal import metrics
from harness.surfaces import plugin
from harness.signal.audio import HOP
from harness.signal.frontend import get_frontend
from harness.surfaces.bench.timing import FLOPS_CACHE, LONG, SHORT, count_flops

CASES = [
    pytest.param("tiny", LONG, id="tiny-10.24s"),
    pytest.param("real", SHORT, id="real-1.28s"),
    pytest.param("real", LONG, id="real-10.24s", marks=pytest.mark.slow),
]
BATCHES = [1, 4]
STAGES = ["encode", "decode", "vocode", "roundtrip"]
ROUNDS = {("tiny", LONG): 5, ("real", SHORT): 3, ("real", LONG): 2}
NAIVE_CASES = [pytest.param(*c.values, id=c.id, marks=[*c.marks, *([pytest.mark.slow] if c.values[0] == "real" else [])])
               for c in CASES]


@pytest.fixture
def target(request):
    """``(device, dtype)`` of the run (``--harness-device``, ``--harness-dtype``)."""
    from harness.model.loading import resolve_device

    return str(resolve_device(plugin.setting(request.config, "device"))), plugin.setting(request.config, "dtype")


def stage_call(chains, stage, size, batch, seconds, device, dtype, variant=""):
    """A no-argument callable running ``stage`` on prepared inputs, and the expected output shape."""
    chain = chains.get(size, device, dtype, variant)
    frames = int(round(seconds * 100))
    if stage == "encode":
        mel = chains.mel(batch, seconds, device)
        return (lambda: chain.encode(mel)), (batch, 8, frames // 4, 16)
    if stage == "decode":
        z = chains.latents(size, batch, seconds, device, dtype)
        return (lambda: chain.decode(z)), (batch, 1, frames, 64)
    if stage == "vocode":
        mel = chains.mel(batch, seconds, device)
        return (lambda: chain.vocode(mel)), (batch, frames * HOP)
    if stage == "roundtrip":
        wave = chains.wave(batch, seconds, device)
        return (lambda: chain.run(wave, "audioldm2", "scaled", "hifigan").wave_out), (batch, frames * HOP)
    raise ValueError(stage)


def _shape(out):
    return tuple(out.shape)


def skip_untimed_real_batch(bench, size, batch):
    """Untimed (``--benchmark-disable``, the default suite) a case only checks that its code runs: batching is
    checked at tiny size, the real-size architecture at batch 1, so real size at batch > 1 adds seconds, no check."""
    if not bench.timed and size == "real" and batch > 1:
        pytest.skip("untimed: real size is checked at batch 1 and batching at tiny size; timed with --benchmark-enable")


@pytest.mark.benchmark(group="stages")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("seconds", [SHORT, LONG], ids=["1.28s", "10.24s"])
def test_bench_frontend_stage(bench, chains, target, seconds, batch):
    device, _ = target
    wave = chains.wave(batch, seconds, device)
    fe = get_frontend("audioldm2")

    def run():
        with torch.inference_mode():
            return fe(wave)

    out = bench(run, stage="frontend", impl="harness", batch=batch, clip_seconds=seconds, device=device,
                rounds=10)
    assert _shape(out) == (batch, 1, int(round(seconds * 100)), 64)


@pytest.mark.benchmark(group="stages")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("size,seconds", CASES)
@pytest.mark.parametrize("stage", STAGES)
def test_bench_stage(bench, chains, target, stage, size, seconds, batch):
    skip_untimed_real_batch(bench, size, batch)
    device, dtype = target
    fn, shape = stage_call(chains, stage, size, batch, seconds, device, dtype)
    out = bench(fn, stage=stage, impl="harness", model_size=size, batch=batch, clip_seconds=seconds, device=device,
                dtype=dtype, rounds=ROUNDS[(size, seconds)], flops_key=(stage, size, batch, seconds, device, dtype),
                chain=chains.get(size, device, dtype))
    assert _shape(out) == shape
    assert torch.isfinite(out).all()
    if stage == "roundtrip":
        chains.outputs[(size, batch, seconds, device, dtype)] = out


@pytest.mark.benchmark(group="overhead")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("size,seconds", CASES)
def test_bench_harness_overhead(bench, chains, target, size, seconds, batch):
    """Front-end of the input + every metric of ``metrics.compute`` on the chain's output (no Griffin-Lim)."""
    skip_untimed_real_batch(bench, size, batch)
    device, dtype = target
    wave = chains.wave(batch, seconds, device)
    key = (size, batch, seconds, device, dtype)
    out = chains.outputs.get(key)
    if out is None:
        out = chains.get(size, device, dtype).run(wave).wave_out
    fe = get_frontend("audioldm2")

    def run():
        with torch.inference_mode():
            fe(wave)
            return metrics.compute(out, wave)

    scores = bench(run, stage="harness-overhead", impl="harness", model_size=size, batch=batch,
                   clip_seconds=seconds, device=device, dtype=dtype, rounds=5)
    assert set(scores) == set(metrics.METRICS) and all(v.shape == (batch,) for v in scores.values())


# --- batched vs naive ----------------------------------------------------------------------------


NAIVE_REAL_LONG_GB = 48


def _ram_gb() -> float:
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30


@contextlib.contextmanager
def params_require_grad(chain):
    """As ``from_pretrained`` leaves a model: parameters requiring grad (the harness turns that off)."""
    mods = (chain.vae, chain.vocoder)
    for m in mods:
        m.requires_grad_(True)
    try:
        yield
    finally:
        for m in mods:
            m.requires_grad_(False)


def naive_roundtrip(chain, waves: torch.Tensor) -> torch.Tensor:
    """The usual user script: one clip at a time, no ``inference_mode``/``no_grad``, the pipeline's calls."""
    fe = get_frontend("audioldm2")
    s = chain.vae.config.scaling_factor
    vae_dtype, voc_dtype = chain.vae.dtype, chain.vocoder.dtype

    def one(w):  # a function per clip, so one clip's autograd graph (GBs at real size, 10.24 s) lives at a time
        mel = fe(w[None]).to(vae_dtype)
        z = chain.vae.encode(mel).latent_dist.mode() * s
        mel_out = chain.vae.decode(z / s).sample                      # AudioLDM2Pipeline: vae.decode(latents / s)
        wave = chain.vocoder(mel_out.squeeze(1).to(voc_dtype))        # mel_spectrogram_to_waveform
        return wave[0, : w.shape[-1]].detach().cpu().float()

    return torch.stack([one(w) for w in waves])


@pytest.mark.benchmark(group="batched-vs-naive")
@pytest.mark.parametrize("size,seconds", NAIVE_CASES)
@pytest.mark.parametrize("impl", ["batched", "naive"])
def test_bench_batched_vs_naive(bench, chains, target, impl, size, seconds):
    device, dtype = target
    batch = 4
    if impl == "naive" and size == "real" and seconds == LONG and device == "cpu" and _ram_gb() < NAIVE_REAL_LONG_GB:
        pytest.skip(f"naive real-size 10.24 s builds an autograd graph of ~6.6 GB per clip (0.65 GB per second of "
                    f"audio) and was OOM-killed at 24 GB: needs >= {NAIVE_REAL_LONG_GB} GB RAM, this machine has "
                    f"{_ram_gb():.0f} GB")
    chain = chains.get(size, device, dtype)
    wave = chains.wave(batch, seconds, device)
    kw = dict(stage="roundtrip", impl=impl, model_size=size, batch=batch, clip_seconds=seconds, device=device,
              dtype=dtype, rounds=ROUNDS[(size, seconds)], chain=chain, flops_key=("roundtrip", impl, size, batch, seconds, device,
                                                                       dtype))
    if impl == "batched":
        out = bench(lambda: chain.run(wave, "audioldm2", "scaled", "hifigan").wave_out.cpu(), **kw)
    else:
        with params_require_grad(chain):
            out = bench(lambda: naive_roundtrip(chain, wave), **kw)
    assert out.shape == wave.shape
    # same numbers either way: only batching and autograd differ
    ref = chain.run(wave[:1]).wave_out.cpu()
    scale = float(ref.abs().max()) + 1e-12
    tol = 1e-3 if dtype == "fp32" else 5e-2
    torch.testing.assert_close(out[:1] / scale, ref / scale, atol=tol, rtol=0)


# --- CPU: torch.compile -----------------------------------------------------------------------------


def eager_flops(bench, chains, stage, batch, device):
    """The eager fp32 real-size 10.24 s ``stage`` callable and its FLOP count (counted once, only when
    timed): compiled and half-precision variants are measured against these FLOPs, since
    ``FlopCounterMode`` does not see through ``torch.compile``."""
    eager, _ = stage_call(chains, stage, "real", batch, LONG, device, "fp32")
    key = (stage, "real", batch, LONG, device, "fp32")
    if key not in FLOPS_CACHE and bench.timed:
        FLOPS_CACHE[key] = count_flops(eager)
    return eager, FLOPS_CACHE.get(key)


@pytest.mark.slow
@pytest.mark.benchmark(group="cpu-compile")
@pytest.mark.parametrize("stage", ["encode", "decode", "vocode"])
def test_bench_cpu_compile(bench, chains, target, stage):
    """Real size, one 10.24 s clip, ``Chain.optimize(compile=True)`` (inductor with freezing) on CPU.

    Batch 1 is where eager mode leaves the most on the table (per-layer overhead, unfused
    GroupNorm/SiLU/adds, attention); each module compiles once (10-20 s, in the warm-up).
    """
    device, dtype = target
    if device != "cpu" or dtype != "fp32":
        pytest.skip("CPU fp32 case; CUDA compile variants are in test_bench_gpu_variant")
    eager, flops = eager_flops(bench, chains, stage, 1, device)
    fn, shape = stage_call(chains, stage, "real", 1, LONG, device, dtype, "compile")
    out = bench(fn, stage=stage, impl="compile", model_size="real", batch=1, clip_seconds=LONG, device=device,
                dtype=dtype, rounds=3, flops=flops, variant="compile", chain=chains.get("real", device, dtype, "compile"))
    assert _shape(out) == shape
    ref = eager()
    torch.testing.assert_close(out, ref, atol=1e-3 * float(ref.abs().max()), rtol=0)


# --- CUDA variants ---------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.benchmark(group="gpu")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("variant", ["fp16", "bf16", "compile", "channels_last"])
def test_bench_gpu_variant(bench, chains, variant, stage, batch):
    """Real size, 10.24 s, on CUDA: half precision (VAE fp32 under fp16), torch.compile, channels_last."""
    device = "cuda"
    dtype = variant if variant in ("fp16", "bf16") else "fp32"
    opt = variant if variant in ("compile", "channels_last") else ""
    _, flops = eager_flops(bench, chains, stage, batch, device)
    fn, shape = stage_call(chains, stage, "real", batch, LONG, device, dtype, opt)
    out = bench(fn, stage=stage, impl=variant, model_size="real", batch=batch, clip_seconds=LONG, device=device,
                dtype=dtype, rounds=5, flops=flops, variant=variant, chain=chains.get("real", device, dtype, opt))
    assert _shape(out) == shape
