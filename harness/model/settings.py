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


def _field(config: dict, root: Path, name: str, key: str):
    if key not in config:
        raise ModelNotAvailable(f"{root / name}: has no {key!r}; is it the config of a diffusers/transformers "
                                "component of an AudioLDM-family pipeline?")
    return config[key]


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
    rates = _field(vocoder, root, "vocoder/config.json", "upsample_rates")
    blocks = _field(vae, root, "vae/config.json", "block_out_channels")
    return ModelSettings(
        pipeline=index.get("_class_name"),
        sample_rate=int(_field(vocoder, root, "vocoder/config.json", "sampling_rate")),
        hop=int(math.prod(rates)),
        n_mels=int(_field(vocoder, root, "vocoder/config.json", "model_in_dim")),
        vae_in_channels=int(vae.get("in_channels", 3)),  # diffusers' AutoencoderKL defaults
        vae_out_channels=int(vae.get("out_channels", 3)),
        latent_channels=int(vae.get("latent_channels", 4)),
        vae_scale_factor=2 ** (len(blocks) - 1),
        scaling_factor=float(vae.get("scaling_factor", 0.18215)),
        unet_in_channels=unet.get("in_channels"),
        unet_out_channels=unet.get("out_channels"),
    )


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
