"""The model check: what a model's configs imply for the chain, read before any weight is loaded.

A pipeline directory in the diffusers layout says in its JSON configs what its front-end must be (the vocoder's
``model_in_dim`` mel bins, the product of its ``upsample_rates`` = the hop, its ``sampling_rate``), how its VAE
scales (``latent_channels``, ``scaling_factor``, ``vae_scale_factor`` from ``block_out_channels``) and whether its
UNet's latents fit that VAE. :func:`read_settings` reads them (milliseconds, no torch); :func:`check_settings`
refuses a model the harness cannot judge with one line naming the numbers that disagree and the files they come
from. :func:`harness.model.loading.resolve_model` runs both, so every command that takes ``--model`` and the
pytest plugin refuse such a model before any work.

Usage::

    from harness.model.settings import check_settings, read_settings

    settings = read_settings("harness/models/tiny")   # no weights, no torch
    check_settings(settings, "tiny")                  # IncompatibleModel naming both numbers, or the settings
    settings.hop, settings.n_mels, settings.scaling_factor   # (160, 64, 0.4110932946205139)
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Union

from harness.errors import IncompatibleModel, ModelNotAvailable
from harness.signal.audio import HOP, N_MELS, SAMPLE_RATE, VAE_FACTOR

#: the pipeline classes whose chain the harness judges (``model_index.json`` ``_class_name``)
PIPELINES = ("AudioLDM2Pipeline", "AudioLDMPipeline", "MusicLDMPipeline")
#: where the list of supported models and settings is documented
SUPPORTED_DOC = "docs/models.md"
#: the files the check reads, relative to a pipeline directory
CONFIG_FILES = ("model_index.json", "vae/config.json", "vocoder/config.json", "unet/config.json")


@dataclass(frozen=True)
class ModelSettings:
    """What a model's configs say about its chain.

    Attributes
    ----------
    pipeline : str or None
        ``model_index.json`` ``_class_name`` (None when the directory has no ``model_index.json``).
    sample_rate : int
        ``vocoder/config.json`` ``sampling_rate`` (Hz).
    hop : int
        Samples per mel frame: the product of ``vocoder/config.json`` ``upsample_rates``.
    n_mels : int
        Mel bins the vocoder takes: ``vocoder/config.json`` ``model_in_dim``.
    vae_in_channels, vae_out_channels : int
        ``vae/config.json`` ``in_channels`` / ``out_channels`` (1: a log-mel image).
    latent_channels : int
        ``vae/config.json`` ``latent_channels``.
    vae_scale_factor : int
        ``2 ** (len(block_out_channels) - 1)`` of ``vae/config.json``: how much the VAE shrinks each mel axis.
    scaling_factor : float
        ``vae/config.json`` ``scaling_factor``: latents are multiplied by it after encode, divided before decode.
    unet_in_channels, unet_out_channels : int or None
        ``unet/config.json`` ``in_channels`` / ``out_channels`` (None without a ``unet/config.json``).
    """

    pipeline: Optional[str]
    sample_rate: int
    hop: int
    n_mels: int
    vae_in_channels: int
    vae_out_channels: int
    latent_channels: int
    vae_scale_factor: int
    scaling_factor: float
    unet_in_channels: Optional[int] = None
    unet_out_channels: Optional[int] = None

    def as_dict(self) -> dict:
        """The settings as a JSON-ready dict (the goldens' provenance, ``manifest.json`` ``settings``)."""
        return asdict(self)


def _config(root: Path, name: str, required: bool = True) -> Optional[dict]:
    path = root / name
    if not path.exists():
        if required:
            raise ModelNotAvailable(f"{root}: not a diffusers AudioLDM-family directory, missing {name}")
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise ModelNotAvailable(f"{path}: unreadable ({exc}); restore it or download the model again") from None


def _field(config: dict, root: Path, name: str, key: str, kind=int, default=None):
    """``config[key]`` as ``kind`` (``int``, ``float``, ``list``); a missing field takes ``default`` when one is
    given, else, like a field of another type, raises :class:`ModelNotAvailable` naming the file."""
    if key not in config and default is not None:
        return default
    value = config.get(key)
    try:
        if kind is list:
            if not isinstance(value, list) or not value or not all(isinstance(v, int) for v in value):
                raise TypeError
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        what = "has no" if key not in config else f"has {value!r} as"
        raise ModelNotAvailable(f"{root / name}: {what} {key!r}, not a {kind.__name__}; is it the config of a "
                                "diffusers/transformers component of an AudioLDM-family pipeline?") from None


def read_settings(model_dir: Union[str, "os.PathLike[str]"]) -> ModelSettings:
    """Read a pipeline directory's configs: no weights, no torch.

    Parameters
    ----------
    model_dir : str or path-like
        A directory in the diffusers layout: ``vae/config.json`` and ``vocoder/config.json`` are required,
        ``model_index.json`` and ``unet/config.json`` read when present.

    Returns
    -------
    ModelSettings

    Raises
    ------
    harness.errors.ModelNotAvailable
        A required config is missing, unreadable or lacks a field.
    """
    root = Path(model_dir)
    vae = _config(root, "vae/config.json")
    vocoder = _config(root, "vocoder/config.json")
    unet = _config(root, "unet/config.json", required=False) or {}
    index = _config(root, "model_index.json", required=False) or {}
    voc, ae, un = "vocoder/config.json", "vae/config.json", "unet/config.json"
    return ModelSettings(
        pipeline=index.get("_class_name"),
        sample_rate=_field(vocoder, root, voc, "sampling_rate"),
        hop=math.prod(_field(vocoder, root, voc, "upsample_rates", list)),
        n_mels=_field(vocoder, root, voc, "model_in_dim"),
        # diffusers' AutoencoderKL defaults where a config leaves a field out
        vae_in_channels=_field(vae, root, ae, "in_channels", default=3),
        vae_out_channels=_field(vae, root, ae, "out_channels", default=3),
        latent_channels=_field(vae, root, ae, "latent_channels", default=4),
        vae_scale_factor=2 ** (len(_field(vae, root, ae, "block_out_channels", list)) - 1),
        scaling_factor=_field(vae, root, ae, "scaling_factor", float, default=0.18215),
        unet_in_channels=_field(unet, root, un, "in_channels") if "in_channels" in unet else None,
        unet_out_channels=_field(unet, root, un, "out_channels") if "out_channels" in unet else None,
    )


def is_hub_id(spec: str) -> bool:
    """Whether ``spec`` reads as a Hugging Face hub id (``org/name``) rather than a path."""
    return spec.count("/") == 1 and not spec.startswith((".", "/"))


def local_model_dir(spec: str) -> Optional[Path]:
    """The local directory of a model given as a path or a hub id, found without torch and without a download:
    an existing directory, or a hub id's snapshot in the Hugging Face cache holding its configs; None otherwise
    (a bundled name is its caller's to resolve).

    Parameters
    ----------
    spec : str
        What the user gave (``--model`` of a command, ``--harness-model`` of pytest).

    Returns
    -------
    Path or None
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if not is_hub_id(spec):
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, allow_patterns=list(CONFIG_FILES), local_files_only=True))
    except Exception:  # not in the cache (the hub's errors come in many classes): the caller loads it later
        return None


def settings_problems(settings: ModelSettings, pipeline_needed: bool = False) -> List[str]:
    """Every way ``settings`` disagree with what the harness can judge, each naming both numbers and their homes.

    Parameters
    ----------
    settings : ModelSettings
    pipeline_needed : bool, default False
        The full pipeline will run (golden generation): its class must be one of :data:`PIPELINES`.

    Returns
    -------
    list of str
        Empty for a model the harness can judge.
    """
    vocoder, vae, unet = "vocoder/config.json", "vae/config.json", "unet/config.json"
    out = []
    if settings.n_mels != N_MELS:
        out.append(f"{vocoder} model_in_dim {settings.n_mels} != the front-end's {N_MELS} mel bins")
    if settings.hop != HOP:
        out.append(f"{vocoder} upsample_rates multiply to {settings.hop} != the front-end's hop of {HOP} samples")
    if settings.sample_rate != SAMPLE_RATE:
        out.append(f"{vocoder} sampling_rate {settings.sample_rate} != the front-end's {SAMPLE_RATE} Hz")
    if settings.vae_in_channels != 1 or settings.vae_out_channels != 1:
        out.append(f"{vae} in_channels {settings.vae_in_channels} / out_channels {settings.vae_out_channels} != 1 "
                   "(a log-mel is a one-channel image)")
    if settings.vae_scale_factor != VAE_FACTOR:
        out.append(f"{vae} block_out_channels give a VAE scale factor of {settings.vae_scale_factor} != the "
                   f"front-end's frame grid of {VAE_FACTOR}")
    unet_sides = [f"{key} {value}" for key, value in (("in_channels", settings.unet_in_channels),
                                                      ("out_channels", settings.unet_out_channels))
                  if value is not None and value != settings.latent_channels]
    if unet_sides:
        out.append(f"{vae} latent_channels {settings.latent_channels} != {unet} {' and '.join(unet_sides)} (the "
                   "UNet's latents cannot pass through this VAE)")
    if pipeline_needed and settings.pipeline is not None and settings.pipeline not in PIPELINES:
        out.append(f"model_index.json _class_name {settings.pipeline!r} is none of {', '.join(PIPELINES)}")
    return out


def check_settings(settings: ModelSettings, model: str, pipeline_needed: bool = False) -> ModelSettings:
    """Refuse a model the harness cannot judge: one line naming every disagreement (:func:`settings_problems`).

    Parameters
    ----------
    settings : ModelSettings
        From :func:`read_settings`.
    model : str
        How the message names the model (what the user gave: a path, a hub id).
    pipeline_needed : bool, default False
        See :func:`settings_problems`.

    Returns
    -------
    ModelSettings
        ``settings``, when there is nothing to refuse.

    Raises
    ------
    harness.errors.IncompatibleModel
        With ``"<model>: cannot be judged by this harness: <problem>; <problem> (supported: ...)"``.
    """
    problems = settings_problems(settings, pipeline_needed)
    if problems:
        raise IncompatibleModel(f"{model}: cannot be judged by this harness: {'; '.join(problems)} (supported: "
                                f"{', '.join(PIPELINES)} at {SAMPLE_RATE} Hz, hop {HOP}, {N_MELS} mel bins, VAE "
                                f"factor {VAE_FACTOR}; see {SUPPORTED_DOC})")
    return settings
