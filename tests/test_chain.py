"""Loading, stage shapes and variants of the chain."""
import shutil
import time

import numpy as np
import pytest
import torch

from harness.errors import LayoutError, ModelNotAvailable
from harness.model import loading, variants
from harness.builders import realsize
from harness.model.chain import Chain


def test_real_size_shapes():
    """10.24 s -> latents 8x256x16 -> mel 1024x64 -> 163 840 samples, on the real architecture (meta device)."""
    chain = realsize.chain(device="meta")
    mel = torch.zeros(1, 1, 1024, 64, device="meta")
    z = chain.encode(mel)
    assert tuple(z.shape) == (1, 8, 256, 16)
    out = chain.decode(z)
    assert tuple(out.shape) == (1, 1, 1024, 64)
    assert tuple(chain.vocode(out).shape) == (1, 163840)
    assert chain.scaling_factor == pytest.approx(0.4110932946205139)


@pytest.mark.slow
def test_real_size_runs_on_cpu():
    chain = realsize.chain()
    mel = torch.randn(1, 1, 64, 64) - 5
    assert chain.vocode(chain.decode(chain.encode(mel))).shape == (1, 64 * 160)


def test_hub_id_offline_fails_fast_and_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.time()
    with pytest.raises(ModelNotAvailable, match="not available offline.*--model DIR"):
        Chain.load("cvssp/audioldm2")
    assert time.time() - t0 < 30


def test_hub_offline_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable, match="HF_HUB_OFFLINE"):
        loading.resolve_model("cvssp/audioldm-s-full-v2")


@pytest.mark.parametrize("spec,match", [("no/such/dir/x", "neither"), ("pyproject.toml", "is a file")])
def test_bad_model_specs(spec, match):
    with pytest.raises(ModelNotAvailable, match=match):
        loading.resolve_model(spec)


def test_local_directory_missing_parts(tmp_path):
    (tmp_path / "vae").mkdir()
    with pytest.raises(ModelNotAvailable, match="vocoder/config.json"):
        loading.resolve_model(str(tmp_path))


def test_local_real_size_directory_loads(tmp_path):
    path = realsize.build(tmp_path / "real", components=("vae", "vocoder"))
    chain = Chain.load(str(path))
    assert chain.source.kind == "local"
    assert chain.vae.config.block_out_channels == [128, 256, 512]


def test_load_pipeline_language_model_is_lm_head(harness_options):
    from transformers import GPT2LMHeadModel

    if harness_options["model"] not in loading.BUNDLED:
        pytest.skip("checked on the bundled model")
    pipe = loading.load_pipeline(loading.resolve_model("tiny", ("vae", "vocoder", "unet")))
    assert isinstance(pipe.language_model, GPT2LMHeadModel)


def test_fp16_keeps_vae_fp32():
    chain = Chain.load("tiny", dtype="fp16")
    assert next(chain.vae.parameters()).dtype == torch.float32
    assert next(chain.vocoder.parameters()).dtype == torch.float16


def test_stage_shapes_and_crop(harness_chain):
    mel = torch.full((2, 1, 16, 64), -5.0)
    z = harness_chain.encode(mel)
    assert z.shape == (2, 8, 4, 16)
    assert harness_chain.decode(z).shape == (2, 1, 16, 64)
    assert harness_chain.vocode(mel).shape == (2, 16 * 160)  # HiFi-GAN's extra samples cropped


def test_layout_errors(harness_chain):
    with pytest.raises(LayoutError, match="looks transposed"):
        harness_chain.vocode(torch.zeros(1, 64, 100))
    with pytest.raises(LayoutError, match="multiple of the VAE factor"):
        harness_chain.encode(torch.zeros(1, 1, 10, 64))
    with pytest.raises(LayoutError, match=r"\[batch, 1, frames, 64\]"):
        harness_chain.encode(torch.zeros(1, 10, 64))
    with pytest.raises(ValueError, match="NaN"):
        harness_chain.encode(torch.full((1, 1, 8, 64), float("nan")))


def test_transposed_vocoder_is_caught_even_when_square(harness_chain):
    """With 64 frames no shape check can tell [b, 64, T] from [b, T, 64]: the variant still runs, and
    the quality matrix must catch it by its output (compare with the right layout)."""
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.uniform(-9, -1, (1, 1, 64, 64)).astype(np.float32))
    right = variants.get_vocoder("hifigan")(harness_chain, mel)
    wrong = variants.get_vocoder("hifigan-transposed")(harness_chain, mel)
    assert right.shape == wrong.shape
    assert not torch.allclose(right, wrong)


def test_run_is_deterministic(harness_chain):
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(6400).astype(np.float32) * 0.1)
    a = harness_chain.run(x, "audioldm2", "sample", "hifigan", seed=3).wave_out
    b = harness_chain.run(x, "audioldm2", "sample", "hifigan", seed=3).wave_out
    assert torch.equal(a, b)
    assert a.shape == (1, 6400)


def test_run_checks_its_waveform_once_where_it_enters(harness_chain, monkeypatch):
    """The front-end is where a waveform enters the chain: valid_audio runs there once, the stages behind trust it."""
    from harness.signal import audio, frontend

    calls = []
    monkeypatch.setattr(frontend, "valid_audio", lambda x, name=None, **kw: calls.append(name) or
                        audio.valid_audio(x, name, **kw))
    harness_chain.run(np.full(6400, 0.1, np.float32), "audioldm2", "scaled", "hifigan")
    assert calls == ["front-end input"]
    with pytest.raises(ValueError, match=r"front-end input contains NaN samples \(batch items \[0\]\)"):
        harness_chain.run(np.full(6400, np.nan, np.float32))


def test_scaling_variants_on_latents(harness_chain):
    s = harness_chain.scaling_factor
    mel = torch.full((1, 1, 8, 64), -6.0)
    z_raw = harness_chain.encode(mel, scale=1.0)
    assert torch.allclose(harness_chain.encode(mel), z_raw * s)
    unscaled, no_encode_scale = variants.get_vae("unscaled"), variants.get_vae("no-encode-scale")
    assert (unscaled.expected_at("decode"), unscaled.expected_at("roundtrip")) == ("detect", "pass")
    assert (no_encode_scale.expected_at("decode"), no_encode_scale.expected_at("roundtrip")) == ("pass", "detect")


def test_optimize_keeps_values():
    """``Chain.optimize()`` and ``optimize(compile=True)`` (inductor with freezing on CPU) change speed,
    not results."""
    mel = torch.from_numpy(np.random.default_rng(2).uniform(-9, -1, (2, 1, 32, 64)).astype(np.float32))
    ref = Chain.load("tiny")
    want_z, want_wave = ref.encode(mel), ref.vocode(mel)
    fast = Chain.load("tiny").optimize(cpu_allocator=False)
    torch.testing.assert_close(fast.vocode(mel), want_wave, atol=1e-5 * float(want_wave.abs().max()), rtol=0)
    if shutil.which("c++") is None and shutil.which("g++") is None:  # inductor compiles C++ on CPU
        pytest.skip("torch.compile on CPU needs a C++ compiler (none on PATH)")
    compiled = Chain.load("tiny").optimize(compile=True, cpu_allocator=False)
    torch.testing.assert_close(compiled.encode(mel), want_z, atol=1e-4 * float(want_z.abs().max()), rtol=0)
    torch.testing.assert_close(compiled.vocode(mel), want_wave, atol=1e-4 * float(want_wave.abs().max()), rtol=0)


def test_variants_of_one_mel_share_one_encode_and_get_what_they_would_alone(harness_chain):
    """scaled, sample and unscaled start from the same posterior, and every variant dividing by s decodes the
    pipeline's latents alike: each is computed once, and each result equals a fresh chain's."""
    mel = torch.randn(2, 1, 64, 64) - 5
    fresh = {name: Chain(harness_chain.vae, harness_chain.vocoder).vae_roundtrip(mel.clone(), name)
             for name in ("scaled", "sample", "unscaled")}
    latents = harness_chain.encode(mel) * 1.1  # the pipeline's latents: not a round trip's
    chain = Chain(harness_chain.vae, harness_chain.vocoder)
    calls = {"encode": 0, "decode": 0}
    for what in calls:
        def counted(x, *a, _f=getattr(chain.vae, what), _w=what, **k):
            calls[_w] += 1
            return _f(x, *a, **k)
        setattr(chain.vae, what, counted)
    try:
        for name in ("scaled", "sample", "unscaled", "scaled"):
            assert torch.equal(chain.vae_roundtrip(mel.clone(), name), fresh[name]), name
        for name in ("scaled", "sample", "no-encode-scale"):
            variants.get_vae(name).decode_latents(chain, latents.clone())
    finally:
        for what in calls:
            del chain.vae.__dict__[what]
    assert calls == {"encode": 1, "decode": 4}  # 3 round trips' decodes, 1 decode of the latents


def test_memo_misses_on_other_input_or_changed_weights(harness_chain):
    import copy

    chain = Chain(copy.deepcopy(harness_chain.vae), harness_chain.vocoder)
    mel = torch.randn(1, 1, 64, 64) - 5
    first = chain.decode(chain.encode(mel))
    other = mel.clone()
    other[0, 0, 0, 0] += 1e-3
    assert not torch.equal(chain.encode(other), chain.encode(mel))
    with torch.no_grad():
        next(chain.vae.decoder.parameters()).mul_(1.5)  # in place, as an optimizer step does
    assert not torch.equal(chain.decode(chain.encode(mel)), first)
    with torch.inference_mode():
        returned = chain.decode(chain.encode(mel))
        returned.add_(1.0)  # a caller's in-place change never reaches the memo
    assert not torch.equal(chain.decode(chain.encode(mel)), returned)


def test_memo_keeps_to_its_byte_budget():
    from harness.model.chain import TensorMemo

    memo = TensorMemo(max_bytes=3 * 2 * 4 * 100)  # three entries of 100 float32 in and out
    xs = [torch.full((100,), float(i)) for i in range(5)]
    for i, x in enumerate(xs):
        memo.put(x, x * 2, key="k")
    assert memo.get(xs[0], "k") is None and memo.get(xs[1], "k") is None
    assert torch.equal(memo.get(xs[4], "k"), xs[4] * 2)
    assert memo.get(xs[4], "other key") is None
