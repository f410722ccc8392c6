"""The GPU and half-precision paths, checked on a CPU: each component of the pipeline gets its input in its
own dtype, fp32 on CUDA computes without TF32, posterior draws do not depend on the device, numpy code of a
project is handed data it can read, and running out of memory stops the run instead of counting as a
finding. The ``gpu`` tests repeat the device checks where CUDA is present."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness import errors, vocabulary
from harness.judging import golden, matrix, quality, stages, thresholds
from harness.model import loading, variants
from harness.model.chain import Chain, item_generators
from harness.signal import audio, frontend


class NumpyCannotRead(torch.Tensor):
    """A tensor numpy cannot read until ``.cpu()`` is called: a GPU tensor as numpy code meets it, on a CPU."""

    def __array__(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
                        "host memory first.")

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


def on_gpu_as_numpy_sees_it(x: torch.Tensor) -> torch.Tensor:
    return x.as_subclass(NumpyCannotRead)


def raises(exc):
    """A component (any arguments) that raises ``exc``."""
    def component(*args):
        raise exc
    return component


@pytest.fixture(scope="module")
def tone() -> torch.Tensor:
    """Two 1-second clips on the frame grid (a multiple of 640 samples), [2, 16000]."""
    t = torch.arange(audio.grid_frames(16000) * audio.HOP) / audio.SAMPLE_RATE
    return torch.stack([0.3 * torch.sin(2 * torch.pi * 440 * t), 0.2 * torch.sin(2 * torch.pi * 1250 * t)])


# --- each pipeline component in its own dtype ------------------------------------------------------------


def test_latents_reach_the_vae_and_the_mel_the_vocoder_in_their_own_dtypes():
    """Under fp16 the VAE stays fp32 while the UNet's latents and the vocoder are fp16."""
    vae, vocoder = loading.load_components(loading.resolve_model("tiny"), "cpu", "fp32")
    pipe = SimpleNamespace(vae=vae, vocoder=vocoder.half())
    latents = torch.randn(1, vae.config.latent_channels, 8, 16, generator=torch.Generator().manual_seed(0)).half()
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="should be the same|same dtype"):  # what the pipeline met
            pipe.vae.decode(latents)
        handles = loading.cast_at_boundaries(pipe)
        mel = pipe.vae.decode(latents).sample
        wave = pipe.vocoder(mel[:, 0])
        assert mel.dtype == torch.float32 and wave.dtype == torch.float16 and torch.isfinite(wave).all()
        for handle in handles:
            handle.remove()
        with pytest.raises(RuntimeError, match="should be the same|same dtype"):
            pipe.vocoder(mel[:, 0])


@pytest.mark.parametrize("dtype, vae_dtype", [("fp16", torch.float32), ("bf16", torch.bfloat16)])
def test_the_full_pipeline_is_loaded_in_the_asked_dtype_but_an_fp16_vae(dtype, vae_dtype):
    pipe = loading.load_pipeline(loading.resolve_model("tiny", ("vae", "vocoder", "unet")), "cpu", dtype)
    asked = loading.resolve_dtype(dtype)
    # the language model is given to from_pretrained ready-made, which does not convert it
    assert pipe.language_model.dtype == asked
    assert pipe.unet.dtype == asked and pipe.vocoder.dtype == asked and pipe.vae.dtype == vae_dtype


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_goldens_are_regenerated_in_half_precision(tmp_path, dtype):
    shipped = golden.sha256(golden.BUNDLED_DIR / "tiny" / "manifest.json")
    out = golden.generate("tiny", tmp_path / dtype, "cpu", dtype, steps=2, progress=False)
    manifest = golden.check(out)
    assert manifest["dtype"] == dtype and len(manifest["cases"]) == len(golden.PROMPTS)
    assert golden.sha256(golden.BUNDLED_DIR / "tiny" / "manifest.json") == shipped


# --- fp32 on CUDA is IEEE fp32 --------------------------------------------------------------------------


def tf32_flags():
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


@pytest.fixture
def tf32_on():
    """TF32 allowed for convolutions and matmuls (torch's default for cuDNN), as they were after the test.

    Set and restored by hand: the matmul flag lives behind ``__getattr__``, which monkeypatch cannot restore.
    """
    before = tf32_flags()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.usefixtures("tf32_on")
@pytest.mark.parametrize("device, dtype", [("cuda", "fp32"), ("cuda:1", torch.float32)])
def test_fp32_on_cuda_turns_tf32_off(device, dtype):
    assert loading.disable_tf32(device, dtype) is True
    assert tf32_flags() == (False, False)


@pytest.mark.usefixtures("tf32_on")
@pytest.mark.parametrize("device, dtype", [("cuda", "bf16"), ("cuda", "fp16"), ("cpu", "fp32")])
def test_other_precisions_and_the_cpu_leave_tf32_as_it_is(device, dtype):
    assert loading.disable_tf32(device, dtype) is False
    assert tf32_flags() == (True, True)


def test_fp32_limits_are_the_same_on_a_gpu_as_on_a_cpu():
    # a CPU-calibrated fp32 file (its sample-exact floor written at calibration) judges a GPU run, and a GPU's
    # calibration writes the same floor: one fp32 on both, TF32 off
    assert thresholds.EXACT_SNR_DB["cuda-fp32"] == thresholds.EXACT_SNR_DB["cpu-fp32"]
    meta = {"meta": {"dtype": "fp32", "kernel_path": "cpu:AVX512+avx512_bf16", "device": "cpu"}}
    thresholds.check_kernel_path(meta, "cuda:NVIDIA H100 80GB HBM3:sm90", "thresholds.toml")


@pytest.mark.gpu
def test_a_chain_in_fp32_on_cuda_reproduces_the_golden_waveform_like_a_cpu(golden_set, tf32_on):
    chain = Chain.load("tiny", "cuda", "fp32")
    assert tf32_flags() == (False, False)
    mel = torch.from_numpy(np.stack([c.mel for c in golden_set.cases]))[:, None]
    wave = torch.from_numpy(np.stack([c.audio for c in golden_set.cases]))
    snr = stages.compare("vocoder", chain.vocoder_out(mel.cuda(), "hifigan", wave.shape[-1]).cpu(), wave)["snr"]
    assert (snr >= thresholds.EXACT_SNR_DB["cuda-fp32"]).all(), snr


# --- posterior draws ------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cpu"), None])
def test_posterior_generators_are_cpu_ones_whatever_the_device(device):
    gens = item_generators(3, 7, device)
    assert len(gens) == 3 and all(g.device.type == "cpu" for g in gens)
    assert all(g.initial_seed() == 7 for g in gens)


def test_a_posterior_sample_draws_what_a_cpu_generator_draws(harness_chain, tone):
    mel = harness_chain.front_end(tone)
    seeded = [torch.Generator(device="cpu").manual_seed(3) for _ in range(2)]
    expected = harness_chain.encode(mel, sample=True, generator=seeded)
    got = harness_chain.encode(mel, sample=True, generator=item_generators(2, 3, "cuda"))
    assert torch.equal(got, expected) and not torch.equal(got, harness_chain.encode(mel))


@pytest.mark.gpu
def test_a_posterior_sample_on_cuda_matches_the_cpu_one(tone):
    cpu, gpu = Chain.load("tiny", "cpu"), Chain.load("tiny", "cuda")
    mel = cpu.front_end(tone)
    on_cpu = cpu.encode(mel, sample=True, generator=item_generators(2, 0, cpu.device))
    on_gpu = gpu.encode(mel.cuda(), sample=True, generator=item_generators(2, 0, gpu.device)).cpu()
    assert torch.allclose(on_gpu, on_cpu, atol=1e-4), (on_gpu - on_cpu).abs().max()


# --- projects' numpy code --------------------------------------------------------------------------------


def numpy_frontend(waveform):
    """One clip through numpy, as librosa-style code reads it."""
    y = np.asarray(waveform, dtype=np.float32)
    return frontend.audioldm2(torch.from_numpy(y)[None])[0, 0].numpy()


def test_an_unbatched_front_end_is_handed_cpu_data_numpy_can_read(tone):
    fe = frontend.Frontend("numpy-clips", numpy_frontend, True, "numpy, clip by clip", batched=False)
    mel = fe(on_gpu_as_numpy_sees_it(tone))
    assert torch.allclose(mel, frontend.audioldm2(tone), atol=1e-5)


def test_an_unbatched_vocoder_is_handed_cpu_data_numpy_can_read():
    def numpy_vocoder(chain, mel):
        m = np.asarray(mel)  # [1, 1, T, 64]
        return np.repeat(m[:, 0, :, 0], audio.HOP, axis=-1)

    voc = variants.VocoderVariant("numpy-mels", numpy_vocoder, batched=False)
    mel = torch.arange(2 * 5 * 64, dtype=torch.float32).reshape(2, 1, 5, 64)
    wave = voc(SimpleNamespace(device=torch.device("cpu")), on_gpu_as_numpy_sees_it(mel))
    assert wave.shape == (2, 5 * audio.HOP) and type(wave) is torch.Tensor
    assert torch.equal(wave[:, :: audio.HOP], mel[:, 0, :, 0])


def test_a_type_error_of_a_project_component_is_its_stage_result_naming_it(harness_chain, golden_set, tone,
                                                                              monkeypatch):
    def batched_numpy(waveform):
        return np.asarray(on_gpu_as_numpy_sees_it(waveform))

    def numpy_vocoder(chain, mel):
        return np.asarray(on_gpu_as_numpy_sees_it(mel))

    def numpy_decode(chain, latents):
        return np.asarray(on_gpu_as_numpy_sees_it(latents))

    monkeypatch.setitem(frontend._REGISTRY, "numpy-batch", frontend.Frontend("numpy-batch", batched_numpy, False, ""))
    monkeypatch.setitem(variants._VOCODERS, "numpy-voc", variants.VocoderVariant("numpy-voc", numpy_vocoder, False))
    monkeypatch.setitem(variants._VAES, "numpy-vae", variants.VaeVariant("numpy-vae", decode_fn=numpy_decode,
                                                                         expected={"decode": "detect"}))
    inputs = stages.GoldenInputs.of(harness_chain, *quality.golden_arrays(golden_set))
    for stage, name, named in [("vocoder", "numpy-voc", "vocoder 'numpy-voc'"),
                               ("decode", "numpy-vae", "VAE variant 'numpy-vae' (decode)"),
                               ("frontend", "numpy-batch", "front-end 'numpy-batch'")]:
        result = stages.golden_result(harness_chain, inputs, stage, name)
        assert result.error.startswith(f"ComponentError: {named} raised TypeError: can't convert cuda:0"), result
        assert "it was handed a Tensor [" in result.error
    # in the clip matrix too: a front-end that raises stops its combination at the front-end, as a finding
    found = matrix.Evaluator(harness_chain, {"tone": tone[0].numpy()}).run(
        matrix.Combination("numpy-batch", "scaled", "hifigan"))
    assert {s: r.error.split(":")[0] for s, r in found.items()} == dict.fromkeys(vocabulary.CLIP_STAGES,
                                                                                "ComponentError")
    assert thresholds.judge(found["frontend"], {}, "detect")[0]


def test_a_type_error_on_gpu_data_says_how_to_hand_numpy_code_cpu_data():
    given = SimpleNamespace(shape=(2, 16000), dtype=torch.float32, device=torch.device("cuda:0"))
    exc = errors.component_error("front-end 'ours'", TypeError("can't convert cuda:0 device type tensor"), given)
    assert isinstance(exc, errors.InputError) and isinstance(exc, stages.STAGE_ERRORS)
    assert str(exc) == ("front-end 'ours' raised TypeError: can't convert cuda:0 device type tensor (it was handed a "
                        "SimpleNamespace [2, 16000] torch.float32 on cuda:0; a batched component gets its input on "
                        "the chain's device: call .cpu() before numpy, or register it with batched=False to be handed "
                        "CPU data one clip at a time)")


def test_a_type_error_of_the_harness_own_components_is_still_raised(tone, monkeypatch):
    # one of the built-in components raising it is a bug of the harness, not a finding about a component
    monkeypatch.setattr(frontend, "log_mel", raises(TypeError("a bug of the harness")))
    with pytest.raises(TypeError, match="a bug of the harness"):
        frontend.get_frontend("audioldm2")(tone)
    chain = SimpleNamespace(device=torch.device("cpu"), vocode=raises(TypeError("a bug of the harness")))
    with pytest.raises(TypeError, match="a bug of the harness"):
        variants.get_vocoder("hifigan")(chain, torch.zeros(1, 1, 8, 64))


# --- out of memory --------------------------------------------------------------------------------------


CUDA_OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity; 1.20 GiB free)"


@pytest.mark.parametrize("exc", [torch.cuda.OutOfMemoryError(CUDA_OOM), RuntimeError("CUDA error: out of memory"),
                                 RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                                              "allocate memory: you tried to allocate 2147483648 bytes")],
                         ids=["torch.OutOfMemoryError", "cuda-runtime-error", "cpu-allocator"])
def test_running_out_of_memory_is_an_error_of_the_run_never_a_detection(harness_chain, golden_set, tone, exc,
                                                                          monkeypatch):
    # a known mistake that runs out of memory would otherwise count as detected: a RuntimeError is a stage's result
    assert thresholds.judge(stages.StageResult({}, f"{type(exc).__name__}: {exc}"), {}, "detect")[0]
    monkeypatch.setitem(variants._VOCODERS, "oom-voc", variants.VocoderVariant("oom-voc", raises(exc), False))
    inputs = stages.GoldenInputs.of(harness_chain, *quality.golden_arrays(golden_set))
    said = r"out of memory running vocoder 'oom-voc' at stage 'vocoder' on cpu \(.*\): this is not a finding.*" \
           r"--harness-device cpu"
    with pytest.raises(errors.ResourceError, match=said) as caught:
        stages.golden_result(harness_chain, inputs, "vocoder", "oom-voc")
    assert caught.value.__cause__ is exc
    with pytest.raises(errors.ResourceError, match="vocoder 'oom-voc'"):
        matrix.Evaluator(harness_chain, {"tone": tone[0].numpy()}).run(matrix.Combination("audioldm2", "scaled",
                                                                                          "oom-voc"))
    # harness diagnose takes every exception as a row's result, but not this one
    with pytest.raises(errors.ResourceError, match="a stage's measurement"):
        stages.measure(raises(exc), errors=(Exception,))


def test_other_errors_stay_stage_results_and_a_resource_error_is_no_stage_error():
    assert not issubclass(errors.ResourceError, stages.STAGE_ERRORS)
    assert issubclass(errors.ResourceError, errors.HarnessError) and issubclass(errors.ResourceError, MemoryError)
    with pytest.raises(errors.ResourceError):
        stages.measure(raises(MemoryError()), errors=(Exception,))
    shape = RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x100 and 80x256)")
    assert stages.measure(raises(shape)).error == f"RuntimeError: {shape}"
