"""The training recipe's settings (:class:`TrainConfig`, stored in ``training.json``) and its stages."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List


@dataclass
class TrainConfig:
    """Everything that decides the trained weights (stored in ``training.json``)."""

    seed: int = 0
    n_speech: int = 400
    n_synth: int = 400
    heldout_seed: int = 1
    n_heldout_speech: int = 16
    n_heldout_synth: int = 16
    vae_steps: int = 1200
    vae_batch: int = 16
    vae_frames: int = 128
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    vocoder_steps: int = 14000
    vocoder_batch: int = 8
    vocoder_frames: int = 64
    vocoder_lr: float = 2e-3
    #: the vocoder's ``upsample_initial_channel`` (the shipped one: 128)
    vocoder_width: int = 128
    #: other ``SpeechT5HifiGanConfig`` fields of the vocoder, over :data:`tiny.VOCODER_CONFIG` (e.g.
    #: ``{"upsample_rates": [5, 4, 2, 2, 2], "upsample_kernel_sizes": [16, 16, 8, 4, 4], ...}``)
    vocoder_arch: Dict = field(default_factory=dict)
    #: fit stage 2 / stage 3 to this many wall-clock minutes instead of the step counts (0: use the
    #: counts); the fitted count replaces ``vocoder_steps`` / ``gan_steps`` in ``training.json``
    vocoder_minutes: float = 0.0
    gan_minutes: float = 0.0
    mrstft_ffts: List[int] = field(default_factory=lambda: [256, 512, 1024, 2048])
    #: weight of the MR-STFT's log-magnitude L1 in stage 2 (spectral convergence has weight 1); a probe
    #: at 0 lowered held-out log-mel L1 but raised LSD and left MR-STFT as it was (README)
    mrstft_log_mag_weight: float = 1.0
    warmup: int = 200
    eval_every: int = 500
    threads: int = 2
    #: stage 3, adversarial (HiFi-GAN): steps, batch, crop length in frames, learning rate, loss weights
    gan_steps: int = 4000
    gan_batch: int = 4
    gan_frames: int = 80
    gan_lr: float = 2e-4
    gan_mel_weight: float = 45.0
    gan_fm_weight: float = 2.0
    gan_warmup: int = 0
    #: clips of :func:`harness.signal.synth.vocoder_corpus` for stage 3 (seed ``seed + 7``)
    n_gan_clips: int = 1200
    #: a trained pipeline directory whose VAE and stage-2 vocoder are taken as they are (their
    #: history is carried over from its ``training.json``) where :attr:`stages` does not train them
    init_from: str = ""
    #: the stages to train, comma-separated from ``vae,vocoder,gan``; "" = all three, or only
    #: ``gan`` with :attr:`init_from`
    stages: str = ""
    #: a corpus pack (:func:`write_data_pack`) to train on instead of synthesising the corpus
    data_pack: str = ""
    #: torch device of the training ("cpu", "cuda")
    device: str = "cpu"

    def stage_list(self) -> List[str]:
        """The stages this config trains, in order (see :attr:`stages`)."""
        if not self.stages:
            return ["gan"] if self.init_from else list(TRAINING_STAGES)
        chosen = [x.strip() for x in self.stages.split(",") if x.strip()]
        unknown = sorted(set(chosen) - set(TRAINING_STAGES))
        if unknown:
            raise ValueError(f"unknown training stage(s) {unknown}: choose from {', '.join(TRAINING_STAGES)}")
        return [x for x in TRAINING_STAGES if x in chosen]


#: the recipe's training stages, in order: 1. VAE, 2. vocoder (supervised), 3. vocoder (adversarial); what
#: is trained, not where the chain is measured (:mod:`harness.judging.stages`)
TRAINING_STAGES = ("vae", "vocoder", "gan")
