"""Finding and loading AudioLDM(2) checkpoints: bundled name, local directory or hub id.

Only what a stage needs is loaded: :func:`load_components` reads the VAE and vocoder for
reconstruction; :func:`load_pipeline` reads the full pipeline for golden generation.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from harness.errors import ModelNotAvailable
from harness.model.settings import ModelSettings, check_settings, is_hub_id, read_settings

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the package data sits beside the layers
BUNDLED = {"tiny": PACKAGE_DIR / "models" / "tiny"}
REAL_CONFIGS = PACKAGE_DIR / "configs" / "audioldm2"

TORCH_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                "fp16": torch.float16, "float16": torch.float16}



@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are.

    Attributes
    ----------
    spec : str       what the user asked for (``tiny``, a hub id or a path)
    path : Path      local directory in the diffusers layout
    kind : str       ``bundled``, ``local`` or ``hub``
    """

    spec: str
    path: Path
    kind: str

    @property
    def slug(self) -> str:
        """Filesystem-safe name used for golden directories (``tiny``, ``cvssp--audioldm2``)."""
        return self.spec.strip("/").replace("/", "--") if self.kind != "local" else self.path.name

    @property
    def random_weights(self) -> bool:
        """Built with random weights (``harness build-real-size``): checks that need trained behaviour
        (a scaling mistake the VAE would notice) cannot be judged on it."""
        info = self.path / "training.json"
        try:
            return json.loads(info.read_text()).get("weights") == "random" if info.exists() else False
        except ValueError:
            return False

    @functools.cached_property
    def settings(self) -> ModelSettings:
        """What the model's configs say about its chain (:func:`harness.model.settings.read_settings`), read once."""
        return read_settings(self.path)

    def weights_hash(self, subfolders=("vae", "vocoder")) -> str:
        """sha256 over the weight files of ``subfolders`` (names and bytes, sorted)."""
        h = hashlib.sha256()
        for sub in subfolders:
            for f in sorted((self.path / sub).glob("*")):
                if f.suffix in (".safetensors", ".bin", ".json"):
                    h.update(f"{sub}/{f.name}".encode())
                    h.update(f.read_bytes())
        return h.hexdigest()


def model_slug(spec: str) -> str:
    """Filesystem-safe name of a model, without loading it: the same as :attr:`ModelSource.slug`.

    ``tiny`` -> ``tiny``; ``cvssp/audioldm2`` -> ``cvssp--audioldm2``; an existing directory -> its name.
    """
    path = Path(spec).expanduser()
    if spec not in BUNDLED and path.is_dir():
        return path.resolve().name
    return spec.strip("/").replace("/", "--")


def resolve_model(spec: str, subfolders=("vae", "vocoder"), local_only: bool = False) -> ModelSource:
    """Turn ``tiny``, a local directory or a hub id into a local directory, and check the model's configs.

    A hub id is looked up in the local Hugging Face cache first, then downloaded (only the
    ``subfolders`` asked for, and the UNet's config) with short timeouts. Without network or cache this
    raises :class:`ModelNotAvailable` within seconds, with what to do instead; so does a hub id that is not in
    the cache with ``local_only`` (no download tried).

    Before returning, the model check (:mod:`harness.model.settings`) reads the configs: a model whose
    vocoder, VAE or UNet disagree with what the harness judges raises :class:`~harness.errors.IncompatibleModel`
    naming the numbers and files, before any weight is loaded. With ``"unet"`` among ``subfolders`` (golden
    generation) the pipeline class must be one the harness runs.
    """
    source = _locate(spec, subfolders, local_only)
    check_settings(source.settings, spec, pipeline_needed="unet" in subfolders)
    return source


def _locate(spec: str, subfolders, local_only: bool) -> ModelSource:
    if spec in BUNDLED:
        path = BUNDLED[spec]
        if not (path / "model_index.json").exists():
            raise ModelNotAvailable(f"bundled model {spec!r} is missing from {path} (a broken install?)")
        return ModelSource(spec, path, "bundled")
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotAvailable(f"{spec}: is a file; give a directory in the diffusers layout "
                                    "(model_index.json + vae/ + vocoder/ ...)")
        missing = [s for s in subfolders if not (path / s / "config.json").exists()]
        if missing:
            raise ModelNotAvailable(f"{spec}: not a diffusers AudioLDM(2) directory, missing "
                                    f"{', '.join(s + '/config.json' for s in missing)}")
        return ModelSource(spec, path.resolve(), "local")
    if not is_hub_id(spec):
        raise ModelNotAvailable(f"{spec!r} is neither a bundled model ({', '.join(BUNDLED)}), an existing "
                                "directory, nor a hub id like 'cvssp/audioldm2'")
    return ModelSource(spec, _from_hub(spec, subfolders, local_only), "hub")


def _from_hub(repo_id: str, subfolders, local_only: bool = False) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["model_index.json", "unet/config.json"] + [f"{s}/*" for s in subfolders]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    hint = (f"download it where you have network (hf download {repo_id} --local-dir DIR) and pass "
            f"--model DIR, or populate the Hugging Face cache (HF_HOME)")
    if local_only:
        raise ModelNotAvailable(f"weights of {repo_id!r} are not in the local cache: {hint}")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise ModelNotAvailable(f"weights of {repo_id!r} are not in the local cache and HF_HUB_OFFLINE is set: {hint}")
    old = {k: os.environ.get(k) for k in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")}
    os.environ.update(HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="10")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # network errors come in many classes; the message is what matters
        reason = str(exc).split("\n")[0][:200]
        raise ModelNotAvailable(f"weights of {repo_id!r} are not available offline and could not be downloaded "
                                f"({type(exc).__name__}: {reason}): {hint}") from None
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def resolve_device(device: Optional[str] = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; otherwise ``torch.device(device)``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelNotAvailable(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "fp32") -> torch.dtype:
    """Map ``fp32``/``bf16``/``fp16`` (or a torch dtype) to a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return TORCH_DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of fp32, bf16, fp16") from None


def vae_dtype_for(dtype: torch.dtype, vae_config, force_fp16: bool = False) -> torch.dtype:
    """The VAE is known to overflow in fp16 (``force_upcast``): keep it fp32 unless forced."""
    if dtype == torch.float16 and getattr(vae_config, "force_upcast", True) and not force_fp16:
        return torch.float32
    return dtype


def disable_tf32(device, dtype) -> bool:
    """Make fp32 on CUDA compute in IEEE fp32: turn TF32 off for cuDNN convolutions and CUDA matmuls.

    torch lets cuDNN run fp32 convolutions in TF32 by default (``torch.backends.cudnn.allow_tf32``), and
    ``torch.set_float32_matmul_precision("high")`` does the same for matmuls: a 10-bit mantissa, ~1e-3
    relative error per operation. fp32 limits are calibrated in IEEE fp32 (on a CPU, or on a GPU after
    this call) and travel across machines (:func:`harness.judging.thresholds.check_kernel_path`), so a
    run in TF32 would judge correct chains by limits it cannot meet. The flags are process-wide;
    bf16 and fp16 runs leave them alone (their limits belong to one kernel path anyway).

    Parameters
    ----------
    device : str or torch.device
        Where the chain computes; only a CUDA device changes anything.
    dtype : str or torch.dtype
        The chain's precision (``fp32``, ``bf16``, ``fp16`` or a torch dtype); only fp32 changes anything.

    Returns
    -------
    bool
        True when the flags were set (a CUDA device in fp32), False when nothing was changed.
    """
    if torch.device(device).type != "cuda" or resolve_dtype(dtype) != torch.float32:
        return False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return True


def _floating_to(value, dtype: torch.dtype):
    """``value`` in ``dtype`` when it is a floating tensor of another dtype; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
        return value.to(dtype)
    return value


def cast_inputs(module: torch.nn.Module):
    """Cast the floating tensors passed to ``module`` positionally to the dtype of its weights, on each call.

    The dtype is read at call time, so a later ``module.to(...)`` is followed. Returns the hook's handle
    (``handle.remove()`` undoes it).
    """
    def pre_hook(mod, args):
        dtype = next(mod.parameters()).dtype
        return tuple(_floating_to(a, dtype) for a in args)

    return module.register_forward_pre_hook(pre_hook)


def cast_at_boundaries(pipe) -> list:
    """Hand each component of an AudioLDM(2) pipeline its input in its own dtype: latents in the VAE's, the
    mel in the vocoder's.

    Under fp16 the VAE stays fp32 (:func:`vae_dtype_for`) while the UNet hands it fp16 latents and the
    vocoder is fp16: without the casts the pipeline stops at the VAE's first convolution (``Input type
    (c10::Half) and bias type (float) should be the same``) and again at the vocoder. The casts sit where
    the data enters each component, on every path of ``vae.decode`` (``post_quant_conv`` when the VAE has
    one, then ``decoder``; tiled and sliced decoding included) and on the vocoder; in a pipeline whose
    components share one dtype they change nothing.

    Parameters
    ----------
    pipe : diffusers.AudioLDM2Pipeline or diffusers.AudioLDMPipeline
        Any pipeline with ``vae`` and ``vocoder`` components.

    Returns
    -------
    list of torch.utils.hooks.RemovableHandle
        The hooks' handles (``handle.remove()`` undoes each).
    """
    entries = [m for m in (getattr(pipe.vae, "post_quant_conv", None), pipe.vae.decoder, pipe.vocoder)
               if m is not None]
    return [cast_inputs(m) for m in entries]


def quiet_libraries() -> None:
    """Silence diffusers/transformers info chatter and progress bars (errors still surface)."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_components(source: ModelSource, device="cpu", dtype="fp32", force_vae_fp16: bool = False):
    """Load the VAE (``AutoencoderKL``) and vocoder (``SpeechT5HifiGan``) of ``source`` in eval mode."""
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    quiet_libraries()

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    disable_tf32(dev, dt)
    try:
        vae = AutoencoderKL.from_pretrained(source.path, subfolder="vae")
        vocoder = SpeechT5HifiGan.from_pretrained(source.path, subfolder="vocoder")
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"{source.spec}: cannot load vae/vocoder from {source.path}: "
                                f"{str(exc).splitlines()[0]}") from None
    vae = vae.to(dev, vae_dtype_for(dt, vae.config, force_vae_fp16)).eval().requires_grad_(False)
    vocoder = vocoder.to(dev, dt).eval().requires_grad_(False)
    return vae, vocoder


def text_features_as_tensor(text_encoder) -> None:
    """Make ``text_encoder.get_text_features`` return the projected text embedding as a tensor, as
    ``MusicLDMPipeline`` expects.

    diffusers keeps ``MusicLDMPipeline`` (no longer maintained there) calling ``ClapModel.get_text_features(...).to(...)``;
    transformers 5 returns a ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds that embedding, and the
    pipeline stops with ``AttributeError: 'BaseModelOutputWithPooling' object has no attribute 'to'``. An older
    transformers that returns the tensor itself is left as it is.

    Parameters
    ----------
    text_encoder : transformers.ClapModel
        The pipeline's text encoder; changed in place (an instance attribute, the class is untouched).
    """
    method = text_encoder.get_text_features

    def get_text_features(*args, **kwargs):
        out = method(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    text_encoder.get_text_features = get_text_features


def load_pipeline(source: ModelSource, device="cpu", dtype="fp32"):
    """Load the full text-to-audio pipeline of ``source`` (AudioLDM2, AudioLDM v1 or MusicLDM by its model_index).

    cvssp/audioldm2 stores its language model as ``GPT2Model``, which current transformers cannot
    generate with (diffusers issue #12630); it is loaded as ``GPT2LMHeadModel`` instead, in ``dtype`` like the
    rest. Under fp16 the VAE stays fp32 (:func:`vae_dtype_for`) and :func:`cast_at_boundaries` hands it
    and the vocoder their inputs in their own dtypes; in fp32 on CUDA TF32 is turned off (:func:`disable_tf32`).
    """
    import diffusers

    quiet_libraries()
    index = json.loads((source.path / "model_index.json").read_text())
    cls_name = index.get("_class_name", "AudioLDM2Pipeline")
    cls = getattr(diffusers, cls_name, None)
    if cls is None:
        raise ModelNotAvailable(f"{source.spec}: pipeline class {cls_name!r} is not in diffusers "
                                f"{diffusers.__version__}")
    kwargs = {}
    dt = resolve_dtype(dtype)
    if "language_model" in index:
        from transformers import GPT2LMHeadModel

        # a component given to from_pretrained is used as it is, not converted to its torch_dtype: a language
        # model left in fp32 hands fp32 embeddings to an fp16/bf16 UNet
        kwargs["language_model"] = GPT2LMHeadModel.from_pretrained(source.path, subfolder="language_model").to(dt)
    try:
        pipe = cls.from_pretrained(source.path, torch_dtype=dt, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"{source.spec}: cannot load the full pipeline from {source.path} "
                                f"({str(exc).splitlines()[0]}); golden generation needs every component") from None
    if dt == torch.float16:
        pipe.vae.to(vae_dtype_for(dt, pipe.vae.config))
    if cls_name == "MusicLDMPipeline":
        text_features_as_tensor(pipe.text_encoder)
    cast_at_boundaries(pipe)
    pipe.set_progress_bar_config(disable=True)
    dev = resolve_device(device)
    disable_tf32(dev, dt)
    return pipe.to(dev)
