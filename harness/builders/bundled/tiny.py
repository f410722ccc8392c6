"""Architecture of the bundled ``tiny`` AudioLDM2 and the assembly of its pipeline directory.

The VAE and the vocoder have the real model's interfaces (16 kHz, 64 mels, latent_channels 8,
downsampling factor 4; a ``SpeechT5HifiGan`` upsampling 160 on ``[batch, frames, 64]``) at a fraction
of its width. The vocoder upsamples in 3 steps (8, 4, 5) where the real one takes 5 (5, 4, 2, 2, 2),
so that its 16 kHz stage keeps 16 channels (the 5-step generator at this width left 4 and
underfitted; README, "Fewer, larger upsamplings"); it returns ``160 T + 1`` samples where the real
one returns ``160 T + 32``, both cropped by :meth:`harness.model.chain.Chain.vocode`. They are trained by
:mod:`harness.builders.bundled.train`.
The UNet and text encoders are small and seeded-random: they only make the generated goldens.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional

import torch

VAE_CONFIG = dict(
    in_channels=1, out_channels=1, latent_channels=8,
    down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
    block_out_channels=[32, 64, 64], layers_per_block=1, norm_num_groups=16, sample_size=256,
    scaling_factor=1.0, force_upcast=True,
)

VOCODER_CONFIG = dict(
    model_in_dim=64, sampling_rate=16000, upsample_initial_channel=128,
    upsample_rates=[8, 4, 5], upsample_kernel_sizes=[16, 8, 10],
    resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
    normalize_before=False,
)

#: latent frames of the UNet: 64 latent frames -> 256 mel frames -> 2.56 s default clip
UNET_SAMPLE_SIZE = 64
#: the DDIM schedule of cvssp/audioldm2's scheduler config
SCHEDULER = dict(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False,
                 set_alpha_to_one=False, steps_offset=1)


def build_vae(seed: int = 0):
    """The bundled VAE's architecture (:data:`VAE_CONFIG`), seeded-random weights: an ``AutoencoderKL``."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_CONFIG)


def build_vocoder(seed: int = 0, width: int = VOCODER_CONFIG["upsample_initial_channel"],
                  arch: Optional[dict] = None):
    """The bundled vocoder's architecture (:data:`VOCODER_CONFIG`), seeded-random weights: a ``SpeechT5HifiGan``.

    ``width`` is ``upsample_initial_channel`` (halved at each upsampling: 128 leaves 16 channels at
    16 kHz after the 3 of :data:`VOCODER_CONFIG`; the real model's 1024 after 5 leaves 32). ``arch``
    overrides other ``SpeechT5HifiGanConfig`` fields, e.g. the real model's 5 upsamplings
    ``{"upsample_rates": [5, 4, 2, 2, 2], "upsample_kernel_sizes": [16, 16, 8, 4, 4]}``; the rates'
    product must stay 160 (the hop).
    """
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    config = {**VOCODER_CONFIG, **(arch or {}), "upsample_initial_channel": width}
    if math.prod(config["upsample_rates"]) != 160:
        raise ValueError(f"vocoder upsample_rates {config['upsample_rates']} multiply to "
                         f"{math.prod(config['upsample_rates'])}, not the hop of 160 samples")
    torch.manual_seed(seed)
    return SpeechT5HifiGan(SpeechT5HifiGanConfig(**config))


def _roberta_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors
    from transformers import RobertaTokenizerFast

    # A byte-level BPE with only the 256 byte symbols: deterministic, built without any download.
    byte_vocab = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for ch in sorted(byte_vocab):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
                                model_max_length=77)


def _t5_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors
    from transformers import T5TokenizerFast

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + c, -3.0) for c in letters] + [(c, -4.0) for c in letters]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                           extra_ids=0, model_max_length=77)


def build_pipeline(vae, vocoder, seed: int = 0, transformer_layers_per_block: int = 1):
    """Assemble an ``AudioLDM2Pipeline`` around a trained VAE and vocoder, every other part seeded-random.

    ``transformer_layers_per_block=2`` gives the UNet of cvssp/audioldm2-large.
    """
    from diffusers import AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel, DDIMScheduler
    from transformers import (ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig,
                              GPT2Config, GPT2LMHeadModel, T5Config, T5EncoderModel)

    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=UNET_SAMPLE_SIZE,
        in_channels=VAE_CONFIG["latent_channels"], out_channels=VAE_CONFIG["latent_channels"],
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 16, 32], [None, 16, 32]), norm_num_groups=8, attention_head_dim=4,
        transformer_layers_per_block=transformer_layers_per_block,
    )
    scheduler = DDIMScheduler(**SCHEDULER)
    tokenizer = _roberta_tokenizer()
    text_cfg = ClapTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=16, intermediate_size=37,
                              layer_norm_eps=1e-05, num_attention_heads=2, num_hidden_layers=2, pad_token_id=1,
                              vocab_size=len(tokenizer), projection_dim=16, max_position_embeddings=80)
    audio_cfg = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37,
                                layer_norm_eps=1e-05, depths=[2, 2], num_attention_heads=[2, 2], num_hidden_layers=2,
                                hidden_size=32, patch_embeds_hidden_size=16, projection_dim=16, patch_size=2,
                                patch_stride=2, patch_embed_input_channels=4)
    torch.manual_seed(seed)
    text_encoder = ClapModel(ClapConfig(text_config=text_cfg.to_dict(), audio_config=audio_cfg.to_dict(),
                                                projection_dim=16))
    feature_extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480,
                                             max_length_s=10, fft_window_size=1024)
    tokenizer_2 = _t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), d_model=32, d_ff=37, d_kv=8,
                                             num_heads=2, num_layers=2))
    torch.manual_seed(seed)
    language_model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=len(tokenizer),
                                                n_ctx=99, n_positions=99))
    language_model.config.max_new_tokens = 8
    torch.manual_seed(seed)
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
    return AudioLDM2Pipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                             projection_model=projection_model, language_model=language_model, tokenizer=tokenizer,
                             tokenizer_2=tokenizer_2, feature_extractor=feature_extractor, unet=unet,
                             scheduler=scheduler, vocoder=vocoder)


def save_pipeline(pipe, out_dir: str | os.PathLike, training: dict | None = None) -> Path:
    """Write the pipeline in the diffusers layout (safetensors) plus ``training.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    for config in out.glob("*/config.json"):
        # diffusers records where a component was loaded from (a path on the exporting machine); the
        # config is part of the weights hash the goldens record, so that path would make it machine-made
        data = json.loads(config.read_text())
        if data.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    if training is not None:
        (out / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    return out
