"""Real-size AudioLDM(2) pipelines with seeded random weights, built offline from configs shipped here.

The architecture, parameter count, shapes and FLOPs are those of the real checkpoints
(``docs/AUDIOLDM2_REFERENCE.md`` section 6; VAE and vocoder configs in ``configs/audioldm2``); the
weights are random, so there is no quality to speak of — but the whole flow (``harness golden``,
``harness thresholds --calibrate``, ``pytest --harness-model DIR``, ``harness matrix``, ``harness diagnose``,
``harness bench``) runs on it exactly as on a downloaded checkpoint.

Random weights are made *well-conditioned*: the vocoder's output layer is rescaled so that a typical
log-mel gives audio at about -20 dBFS (a random HiFi-GAN gives about -105 dBFS, which the harness would
rightly refuse as silence), and the VAE's scaling factor is set so that its latents have unit
variance, as training would.

Usage::

    from harness.builders import realsize
    realsize.build("/tmp/audioldm2-real")              # about 1.1 B parameters, 4.3 GB of safetensors
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch

from harness.model.chain import Chain
from harness.model.loading import REAL_CONFIGS
from harness.builders.bundled import tiny

VARIANTS = ("audioldm2", "audioldm2-large")
#: what a well-conditioned random vocoder should output for a typical log-mel (dBFS rms)
TARGET_RMS_DBFS = -20.0


def build_vae(seed: int = 0, device: str = "cpu"):
    """The cvssp/audioldm2 ``AutoencoderKL`` (55 M parameters), random weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    with torch.device(device):
        return AutoencoderKL.from_config(json.loads((REAL_CONFIGS / "vae" / "config.json").read_text()))


def build_vocoder(seed: int = 0, device: str = "cpu"):
    """The cvssp/audioldm2 ``SpeechT5HifiGan`` (55 M parameters), random weights."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    cfg = {k: v for k, v in json.loads((REAL_CONFIGS / "vocoder" / "config.json").read_text()).items()
           if k not in ("architectures", "model_type")}
    torch.manual_seed(seed)
    with torch.device(device):
        return SpeechT5HifiGan(SpeechT5HifiGanConfig(**cfg))


def chain(device: str = "cpu", seed: int = 0):
    """A :class:`harness.model.chain.Chain` of the cvssp/audioldm2 VAE and vocoder with random weights (shipped
    configs); ``device="meta"`` builds it without memory or compute, for shape checks."""
    vae, vocoder = build_vae(seed, device), build_vocoder(seed, device)
    return Chain(vae.eval().requires_grad_(False), vocoder.eval().requires_grad_(False))


def condition(vae, vocoder, seed: int = 0) -> dict:
    """Make random VAE/vocoder weights behave like trained ones where the harness depends on it.

    1. The vocoder's last convolution is scaled so a typical log-mel (speech-like, -11.5 .. 1 nats) comes
       out at :data:`TARGET_RMS_DBFS`.
    2. The VAE's ``scaling_factor`` is set to 1 / std of the latents of that mel, as for a trained VAE.

    Returns the measured figures (recorded in the directory's ``training.json``).
    """
    gen = torch.Generator().manual_seed(seed)
    frames = 256
    # a log-mel with speech-like structure: smooth spectral envelope, louder low bins, some silence
    envelope = torch.linspace(0.5, -6.0, 64)[None, :]
    mel = (envelope + 1.5 * torch.randn(frames, 64, generator=gen)).clamp(-11.5, 1.0)[None, None]
    with torch.inference_mode():
        wave = vocoder(mel[:, 0])
        rms = float(wave.float().pow(2).mean().sqrt())
        gain = 10 ** (TARGET_RMS_DBFS / 20) / max(rms, 1e-12)
        vocoder.conv_post.weight.mul_(gain)
        if vocoder.conv_post.bias is not None:
            vocoder.conv_post.bias.mul_(gain)
        after = float(vocoder(mel[:, 0]).float().pow(2).mean().sqrt())
        z = vae.encode(mel.to(vae.dtype)).latent_dist.mode()
        scaling = 1.0 / float(z.float().std())
    vae.register_to_config(scaling_factor=scaling)
    to_db = lambda v: 20 * torch.log10(torch.tensor(max(v, 1e-12))).item()  # noqa: E731
    return {"vocoder_rms_dbfs_before": round(to_db(rms), 1), "vocoder_rms_dbfs_after": round(to_db(after), 1),
            "vocoder_gain": gain, "vae_scaling_factor": scaling}


def build_pipeline(variant: str = "audioldm2", seed: int = 0):
    """Every component of ``variant`` at its real size (see the module docstring), random weights.

    Tokenizers are byte-level stand-ins built offline (the real vocabularies are downloads); the text
    models keep their real vocabulary sizes, so the parameter counts are the real ones.
    """
    from diffusers import AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel, DDIMScheduler
    from transformers import (ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig, GPT2Config,
                              GPT2LMHeadModel, T5Config, T5EncoderModel)

    if variant not in VARIANTS:
        raise ValueError(f"unknown real-size variant {variant!r}; known: {', '.join(VARIANTS)}")
    vae, vocoder = build_vae(seed), build_vocoder(seed)
    # 1. UNet: 350 M (audioldm2), 750 M with two transformer layers per block (audioldm2-large)
    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        sample_size=256, in_channels=8, out_channels=8, block_out_channels=(128, 256, 384, 640), layers_per_block=2,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3 + ("UpBlock2D",),
        cross_attention_dim=[[None, 768, 1024]] * 4, attention_head_dim=8,
        transformer_layers_per_block=2 if variant == "audioldm2-large" else 1)
    # 2. CLAP (laion/clap-htsat-unfused): RoBERTa text branch and HTSAT audio branch
    torch.manual_seed(seed)
    text_encoder = ClapModel(ClapConfig(text_config=ClapTextConfig(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        projection_dim=512).to_dict(), projection_dim=512))
    # 3. flan-t5-large encoder
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=32128, d_model=1024, num_layers=24, num_heads=16, d_kv=64,
                                             d_ff=2816, feed_forward_proj="gated-gelu"))
    # 4. GPT2 base
    torch.manual_seed(seed)
    language_model = GPT2LMHeadModel(GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024,
                                                vocab_size=50257))
    language_model.config.max_new_tokens = 8
    torch.manual_seed(seed)
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=512, text_encoder_1_dim=1024, langauge_model_dim=768)
    tokenizer_2 = tiny._t5_tokenizer()
    tokenizer_2.model_max_length = 128
    return AudioLDM2Pipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, projection_model=projection_model,
        language_model=language_model, tokenizer=tiny._roberta_tokenizer(), tokenizer_2=tokenizer_2,
        feature_extractor=ClapFeatureExtractor(), unet=unet, scheduler=DDIMScheduler(**tiny.SCHEDULER),
        vocoder=vocoder)


def build(out_dir: str | os.PathLike, variant: str = "audioldm2", seed: int = 0,
          components: Sequence[str] = ("all",)) -> Path:
    """Write a real-size ``variant`` in the diffusers layout to ``out_dir`` and return it.

    ``components=("vae", "vocoder")`` writes only the reconstruction chain (seconds; for shape checks
    and benchmarks); the default writes the complete pipeline (about 40 s and 5 GB of memory on CPU).
    """
    out = Path(out_dir)
    if tuple(components) == ("all",):
        pipe = build_pipeline(variant, seed)
        figures = condition(pipe.vae, pipe.vocoder, seed)
        n = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
             for name in ("unet", "text_encoder", "text_encoder_2", "language_model", "projection_model", "vae",
                          "vocoder")}
        return tiny.save_pipeline(pipe, out, training={
            "built_by": "harness build-real-size", "variant": variant, "seed": seed, "weights": "random",
            "parameters": n, "parameters_total": sum(n.values()), **figures})
    vae, vocoder = build_vae(seed), build_vocoder(seed)
    figures = condition(vae, vocoder, seed)
    vae.save_pretrained(out / "vae")
    vocoder.save_pretrained(out / "vocoder")
    (out / "model_index.json").write_text(json.dumps({
        "_class_name": "AudioLDM2Pipeline", "_note": "random real-size vae+vocoder built by harness from "
        "harness/configs/audioldm2; the other components are absent",
        "vae": ["diffusers", "AutoencoderKL"], "vocoder": ["transformers", "SpeechT5HifiGan"]}, indent=2))
    (out / "training.json").write_text(json.dumps({"built_by": "harness.builders.realsize.build", "seed": seed,
                                                   "weights": "random", **figures}, indent=2) + "\n")
    return out
