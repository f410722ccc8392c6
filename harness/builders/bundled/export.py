"""Export of a trained VAE and vocoder as a diffusers pipeline (the latents re-parametrised to cvssp/audioldm2's
scaling factor), re-export, and checkpoints stripped for transport.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path
from typing import List, Optional

import torch

from harness.model.chain import fold_weight_norm
from harness.builders.bundled import tiny
from harness.builders.bundled.config import TrainConfig
from harness.builders.bundled.loops import REAL_SCALING_FACTOR, _Checkpoint


@torch.no_grad()
def rescale_latents(vae, scale: float, target: float = REAL_SCALING_FACTOR):
    """Change of variables ``z' = (scale / target) z`` in ``quant_conv`` / ``post_quant_conv``, in place.

    A VAE whose latents ``z`` have scaling factor ``scale`` (``1 / std(z)``) gets latents ``z' = a z``
    with ``a = scale / target`` and scaling factor ``target``: the posterior mean is multiplied by
    ``a``, its log-variance shifted by ``2 ln a``, and ``post_quant_conv`` divides its input by ``a``.
    ``z' * target == z * scale``, so pipeline latents, every correct round trip and the decode of
    pipeline latents are unchanged up to float round-off. Returns ``vae`` with ``scaling_factor=target``.
    """
    a = scale / target
    c = vae.config.latent_channels
    vae.quant_conv.weight[:c] *= a
    vae.quant_conv.bias[:c] *= a
    vae.quant_conv.bias[c:] += 2.0 * math.log(a)
    vae.post_quant_conv.weight /= a
    vae.register_to_config(scaling_factor=target)
    return vae


def export(vae, vocoder, scale: float, cfg: TrainConfig, out_model: Path, training: dict):
    """Write the full pipeline (weight norm folded into the vocoder, latents re-parametrised to
    :data:`REAL_SCALING_FACTOR` by :func:`rescale_latents`) to ``out_model``."""
    vae = rescale_latents(copy.deepcopy(vae).cpu().eval(), scale)
    vocoder = copy.deepcopy(vocoder).cpu().eval()
    fold_weight_norm(vocoder)
    pipe = tiny.build_pipeline(vae, vocoder, seed=cfg.seed)
    tiny.save_pipeline(pipe, out_model, training)


def reexport(model_dir: str | os.PathLike, seed: int = 0, scaling_factor: Optional[float] = None) -> Path:
    """Rebuild the pipeline around the trained VAE and vocoder already in ``model_dir`` (e.g. after a
    change to the seeded-random UNet/text encoders in :mod:`harness.builders.bundled.tiny`); keeps ``training.json``.

    ``scaling_factor``: re-parametrise the VAE's latents to it (:func:`rescale_latents`), recorded in
    ``training.json`` under ``latent_rescale``.
    """
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    path = Path(model_dir)
    vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
    vocoder = SpeechT5HifiGan.from_pretrained(path, subfolder="vocoder")
    training = json.loads((path / "training.json").read_text()) if (path / "training.json").exists() else None
    if scaling_factor is not None and abs(scaling_factor - vae.config.scaling_factor) > 1e-12:
        old = float(vae.config.scaling_factor)
        rescale_latents(vae, old, scaling_factor)
        if training is not None:
            training["latent_rescale"] = {"from": old, "to": scaling_factor,
                                          "how": "harness.builders.bundled.export.rescale_latents "
                                                 "(exact change of variables in quant_conv/post_quant_conv)"}
    pipe = tiny.build_pipeline(vae.eval(), vocoder.eval(), seed=seed)

    shutil.rmtree(path)
    tiny.save_pipeline(pipe, path, training)
    return path


def load_trained(model_dir: str, part: str):
    """The trained ``"vae"`` or ``"vocoder"`` (weight norm re-applied, for further training) of a pipeline directory."""
    path = Path(model_dir)
    if part == "vae":
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(path, subfolder="vae")
    from transformers import SpeechT5HifiGan

    vocoder = SpeechT5HifiGan.from_pretrained(path, subfolder="vocoder")
    vocoder.apply_weight_norm()
    return vocoder


def portable_checkpoints(run_dir: str | os.PathLike, dest: str | os.PathLike) -> List[Path]:
    """Copy a run's checkpoints without their optimiser state, plus ``config.json`` and ``log.jsonl``.

    What a re-export needs (:func:`main` resumes a finished stage from them and trains no further),
    small enough to copy back from another machine (a few MB a checkpoint instead of several times that).
    Returns the written paths.
    """
    run, dest = Path(run_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(run.glob("*.ckpt")):
        state = torch.load(path, map_location="cpu", weights_only=False)
        state.pop("opts", None)
        _Checkpoint(dest / path.name).save(**state)
        written.append(dest / path.name)
    for name in ("config.json", "log.jsonl"):
        if (run / name).exists():
            (dest / name).write_bytes((run / name).read_bytes())
            written.append(dest / name)
    return written
