"""Tiny offline-built pipelines of the AudioLDM family, made of the real diffusers/transformers classes.

Every member shares the bundled model's trained VAE and vocoder (the same 16 kHz, 64-mel, 8-channel
latent interfaces as the real checkpoints); what differs is what the family members differ in:

=================  =========================================================================
variant            what is built (real class, tiny width)
=================  =========================================================================
``audioldm2``      ``AudioLDM2Pipeline``: CLAP + T5 + GPT2 + ``AudioLDM2UNet2DConditionModel``
``audioldm2-large`` the same with two transformer layers per block (cvssp/audioldm2-large)
``audioldm2-tts``  ``AudioLDM2Pipeline`` with a ``VitsModel`` text encoder and a ``VitsTokenizer``
                   (cvssp/audioldm2-speech-*): the golden cases carry a transcription
``audioldm``       AudioLDM v1 ``AudioLDMPipeline``: ``ClapTextModelWithProjection`` +
                   ``UNet2DConditionModel`` conditioned by class embedding (cvssp/audioldm-s-full-v2)
``musicldm``       ``MusicLDMPipeline``: a ``ClapModel`` whose text embedding is the plain
                   ``UNet2DConditionModel``'s class label (ucsd-reach/musicldm); its VAE's latents
                   re-parametrised to MusicLDM's scaling factor (:data:`MUSICLDM_SCALING_FACTOR`)
=================  =========================================================================

Usage::

    from harness.builders import family
    family.build_tiny("audioldm", "/tmp/audioldm-tiny")      # then: harness golden --model /tmp/audioldm-tiny
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from harness.model.loading import BUNDLED
from harness.builders.bundled import tiny
from harness.builders.bundled.export import rescale_latents

VARIANTS = ("audioldm2", "audioldm2-large", "audioldm2-tts", "audioldm", "musicldm")
#: ucsd-reach/musicldm's ``vae/config.json`` scaling factor
MUSICLDM_SCALING_FACTOR = 1.0753
#: VitsTokenizer symbols of the TTS member: letters and punctuation, no phonemizer needed
VITS_SYMBOLS = ["<pad>", "<unk>", " "] + list("abcdefghijklmnopqrstuvwxyz.,!?'-")
#: the id diffusers writes at the end of a VITS phoneme sequence (pipeline_audioldm2.encode_prompt)
VITS_END_ID = 182


def build_tiny(variant: str, out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny pipeline of ``variant`` (see :data:`VARIANTS`) in the diffusers layout.

    Parameters
    ----------
    variant : str
        Family member.
    out_dir : path
        Directory to write (``model_index.json`` and one folder per component).
    seed : int
        Seed of every component that is not the bundled trained VAE/vocoder.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    if variant not in VARIANTS:
        raise ValueError(f"unknown family variant {variant!r}; known: {', '.join(VARIANTS)}")

    vae = AutoencoderKL.from_pretrained(BUNDLED["tiny"], subfolder="vae")
    vocoder = SpeechT5HifiGan.from_pretrained(BUNDLED["tiny"], subfolder="vocoder")
    if variant == "audioldm":
        pipe = _audioldm_v1(vae, vocoder, seed)
    elif variant == "musicldm":
        pipe = _musicldm(vae, vocoder, seed)
    elif variant == "audioldm2-tts":
        pipe = _audioldm2_tts(vae, vocoder, seed)
    else:
        pipe = tiny.build_pipeline(vae, vocoder, seed, transformer_layers_per_block=2 if variant.endswith("large")
                                   else 1)
    return tiny.save_pipeline(pipe, out_dir, training={"family_variant": variant, "seed": seed,
                                                       "vae_vocoder": "bundled tiny (trained)"})


def _class_embedding_unet(vae, seed: int):
    """The plain ``UNet2DConditionModel`` of AudioLDM v1 and MusicLDM, as in diffusers' tests of both pipelines: the
    text embedding (width 16) enters as a class embedding concatenated to the time embedding."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=tiny.UNET_SAMPLE_SIZE,
        in_channels=vae.config.latent_channels, out_channels=vae.config.latent_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(16, 32), norm_num_groups=8, attention_head_dim=4,
        class_embed_type="simple_projection", projection_class_embeddings_input_dim=16, class_embeddings_concat=True,
    )


def _audioldm_v1(vae, vocoder, seed: int):
    # as in diffusers' AudioLDM pipeline tests: the text embedding enters the UNet as
    # a class embedding concatenated to the time embedding, no cross-attention context
    from diffusers import AudioLDMPipeline, DDIMScheduler
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    unet = _class_embedding_unet(vae, seed)
    tokenizer = tiny._roberta_tokenizer()
    torch.manual_seed(seed)
    text_encoder = ClapTextModelWithProjection(ClapTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=16, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=2, num_hidden_layers=2, pad_token_id=1, vocab_size=len(tokenizer), projection_dim=16,
        max_position_embeddings=80))
    return AudioLDMPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                            scheduler=DDIMScheduler(**tiny.SCHEDULER), vocoder=vocoder)


def _musicldm(vae, vocoder, seed: int):
    # as in diffusers' MusicLDM pipeline tests: the CLAP text embedding enters the UNet as a class embedding
    # concatenated to the time embedding; the VAE is the bundled one with its latents rescaled (the pipeline's
    # latents times MusicLDM's factor are the bundled latents times its own: every correct chain is unchanged)
    from diffusers import MusicLDMPipeline

    base = tiny.build_pipeline(vae, vocoder, seed)
    rescale_latents(vae, float(vae.config.scaling_factor), MUSICLDM_SCALING_FACTOR)
    unet = _class_embedding_unet(vae, seed)
    return MusicLDMPipeline(vae=vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                            feature_extractor=base.feature_extractor, unet=unet, scheduler=base.scheduler,
                            vocoder=vocoder)


def _vits_tokenizer():
    from transformers import VitsTokenizer

    vocab = {s: i for i, s in enumerate(VITS_SYMBOLS)}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "vocab.json"
        path.write_text(json.dumps(vocab))
        return VitsTokenizer(str(path), phonemize=False, add_blank=True, normalize=True, model_max_length=64)


def _audioldm2_tts(vae, vocoder, seed: int):
    from diffusers import AudioLDM2Pipeline
    from transformers import VitsConfig, VitsModel

    base = tiny.build_pipeline(vae, vocoder, seed)
    torch.manual_seed(seed)
    # the pipeline only runs its text encoder (width 32: the UNet cross-attends to it as to T5); the rest of
    # the VITS model is there for the class
    vits = VitsModel(VitsConfig(
        vocab_size=VITS_END_ID + 1, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        flow_size=16, spectrogram_bins=33, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]],
        depth_separable_channels=2, duration_predictor_filter_channels=16, prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1,
        duration_predictor_num_flows=1, window_size=4))
    from diffusers import AudioLDM2ProjectionModel

    torch.manual_seed(seed)
    projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16,
                                          use_learned_position_embedding=True, max_seq_length=64)
    return AudioLDM2Pipeline(vae=vae, text_encoder=base.text_encoder, text_encoder_2=vits,
                             projection_model=projection, language_model=base.language_model,
                             tokenizer=base.tokenizer, tokenizer_2=_vits_tokenizer(),
                             feature_extractor=base.feature_extractor, unet=base.unet, scheduler=base.scheduler,
                             vocoder=vocoder)
