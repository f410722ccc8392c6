"""The losses and the training loops: the VAE (log-mel L1 + 1e-6 KL), the vocoder (log-mel L1 + multi-resolution
STFT), the vocoder against HiFi-GAN's discriminators; AdamW with warm-up and cosine decay, checkpoints a resumed
run continues from, a stage fitted to a wall-clock budget.
"""
from __future__ import annotations

import math
import os
import time
import zlib
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.signal import frontend, metrics
from harness.signal.audio import HOP
from harness.builders.bundled import tiny
from harness.builders.bundled.config import TrainConfig
from harness.builders.bundled.data import random_crops
from harness.builders.bundled.discriminators import (
    HifiGanDiscriminator, discriminator_loss, feature_matching_loss, generator_loss,
)


#: magnitude floor of the training losses (``|X| >= 1e-7``): keeps log and sqrt gradients finite
MAGNITUDE_EPS = 1e-7


def mrstft_loss(pred: torch.Tensor, target: torch.Tensor, ffts: List[int], w_log_mag: float = 1.0) -> torch.Tensor:
    """Stage 2's multi-resolution STFT loss: the batch mean of :func:`harness.signal.metrics.stft_distance`
    (spectral convergence + ``w_log_mag`` x log-magnitude L1) at FFT ``n``, hop ``n / 4``, window ``n``
    for each ``n`` in ``ffts``, magnitudes floored at :data:`MAGNITUDE_EPS`; a scalar."""
    total = 0.0
    for n_fft in ffts:
        resolution = (n_fft, n_fft // 4, n_fft, MAGNITUDE_EPS ** 2)
        total = total + metrics.stft_distance(metrics.magnitude_spectrogram(pred, *resolution),
                                              metrics.magnitude_spectrogram(target, *resolution),
                                              w_log_mag=w_log_mag).mean()
    return total / len(ffts)


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 1e-5 + (base - 1e-5) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


class _Checkpoint:
    def __init__(self, path: Path):
        self.path = path

    def load(self, device: str = "cpu"):
        return torch.load(self.path, map_location=device, weights_only=False) if self.path.exists() else None

    def save(self, **state):
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)


@torch.no_grad()
def evaluate_vae(vae, data, scaling: float = 1.0) -> Dict[str, float]:
    """Held-out VAE round trip (posterior mode): log-mel L1 in nats, whole clips."""
    vae.eval()
    errs = []
    mo = data["mel_offsets"]
    for i in range(len(mo) - 1):
        m = torch.from_numpy(data["mel"][mo[i]:mo[i + 1]])[None, None].to(vae.device)
        rec = vae.decode(vae.encode(m).latent_dist.mode() * scaling / scaling).sample
        errs.append((rec - m).abs().mean().item())
    vae.train()
    return {"vae_mel_l1": float(np.mean(errs))}


@torch.no_grad()
def evaluate_vocoder(vocoder, data) -> Dict[str, float]:
    """Held-out vocoder alone (true mel in): log-mel L1 (nats) of the re-analysed output, whole clips."""
    vocoder.eval()
    errs = []
    mo = data["mel_offsets"]
    for i in range(len(mo) - 1):
        m = torch.from_numpy(data["mel"][mo[i]:mo[i + 1]]).to(next(vocoder.parameters()).device)
        wav = vocoder(m[None])[:, : m.shape[0] * HOP]
        rec = frontend.get_frontend("audioldm2")(wav)[0, 0]
        errs.append((rec - m).abs().mean().item())
    vocoder.train()
    return {"vocoder_mel_l1": float(np.mean(errs))}


def _descend(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss`` with HiFi-GAN-style gradient-norm clipping at 5."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()


#: steps timed at the start of a stage fitted to a wall-clock budget, after ``PACE_WARMUP`` untimed ones
PACE_STEPS = 20


PACE_WARMUP = 5


#: the training loop's wall clock (a test replaces it)
_clock = time.time


def _run(name: str, modules: Dict[str, torch.nn.Module], cfg: TrainConfig, out: Path, steps: int, lr: float,
         step_fn, data, eval_fn, log, warmup: Optional[int] = None, minutes: Optional[float] = None):
    """The training loop every stage shares: resumable checkpoints, seeded batches, LR schedule, evaluation.

    ``modules`` are moved to ``cfg.device`` and trained with one AdamW each; ``step_fn(rng, optimizers)``
    draws a batch from ``rng``, makes the updates and returns the figures to log. ``eval_fn(modules[first],
    heldout)`` runs every ``cfg.eval_every`` steps.

    ``minutes``: fit the stage to this wall-clock budget. The first :data:`PACE_STEPS` steps (after
    :data:`PACE_WARMUP` warm-up steps) are timed, one evaluation too, and ``steps`` is set so the stage
    ends inside the budget. The LR schedule follows the fitted count from then on (the first steps'
    rates barely depend on it); the checkpoint keeps the count, so a resumed or re-exported run does
    not re-fit. As a guard, the loop also stops at 1.2x the budget. Returns ``(history, wall seconds, steps)``.
    """
    ckpt = _Checkpoint(out / f"{name}.ckpt")
    for m in modules.values():
        m.to(cfg.device)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=lr, betas=(0.8, 0.99), weight_decay=0.0) for k, m in modules.items()}
    warmup = cfg.warmup if warmup is None else warmup
    state = ckpt.load(cfg.device)
    step, elapsed, history = 0, 0.0, []
    if state is not None:
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
            if "opts" in state:  # a portable checkpoint (portable_checkpoints) carries no optimiser state
                opts[k].load_state_dict(state["opts"][k])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        if state.get("fitted_steps"):  # fitted to a budget once: keep that count and its LR schedule
            steps, minutes = state["fitted_steps"], None
    for m in modules.values():
        m.train()
    bar = tqdm(total=steps, initial=step, desc=f"train {name}", dynamic_ncols=True, mininterval=5)
    t_start, last_save = _clock() - elapsed, _clock()
    t_budget = _clock()
    pace_from, fitted = step + PACE_WARMUP, None
    running: Dict[str, float] = {}
    evaluated = next(iter(modules.values()))

    def save():
        ckpt.save(modules={k: m.state_dict() for k, m in modules.items()},
                  opts={k: o.state_dict() for k, o in opts.items()}, step=step, fitted_steps=fitted,
                  elapsed=_clock() - t_start, history=history)

    while step < steps:
        for opt in opts.values():
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, steps, lr, warmup)
        rng = np.random.default_rng([cfg.seed, step, zlib.crc32(name.encode()) % 1000])
        torch.manual_seed(cfg.seed * 100003 + step)
        parts = step_fn(rng, opts)
        step += 1
        for k, v in parts.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()})
        if minutes is not None and step == pace_from:
            t_pace = _clock()
        elif minutes is not None and step == pace_from + PACE_STEPS:
            pace = (_clock() - t_pace) / PACE_STEPS
            t_eval = _clock()
            eval_fn(evaluated, data["heldout"])
            t_eval = _clock() - t_eval
            left = minutes * 60 - (_clock() - t_budget)
            # each evaluation costs t_eval; one more runs at the end
            fitted = step + int((left - t_eval) / (pace + t_eval / cfg.eval_every))
            steps = fitted = max(step, fitted)
            bar.total = steps
            log({"stage": name, "fitted": {"minutes": minutes, "s_per_step": round(pace, 4),
                                           "eval_s": round(t_eval, 2), "steps": steps}})
        if minutes is not None and _clock() - t_budget > 1.2 * minutes * 60 and step < steps:
            log({"stage": name, "stopped": f"past 1.2 x the {minutes}-minute budget at step {step} of {steps}"})
            steps = fitted = step  # this step is the last: evaluated and saved below
        if step % cfg.eval_every == 0 or step == steps:
            metrics = eval_fn(evaluated, data["heldout"])
            record = {"step": step, "wall_s": round(_clock() - t_start, 1), "device": cfg.device, **running, **metrics}
            history.append(record)
            log({"stage": name, **record})
        if _clock() - last_save > 300 or step == steps or step % cfg.eval_every == 0:
            save()
            last_save = _clock()
    bar.close()
    return history, _clock() - t_start, steps


def train_vae(cfg: TrainConfig, out: Path, data, log):
    """Stage 1: the VAE on log-mel L1 + ``vae_kl_weight`` x KL, posterior samples; returns ``(vae, history, wall s)``."""
    vae = tiny.build_vae(cfg.seed)

    def step_fn(rng, opts):
        mel, _ = random_crops(data["train"], rng, cfg.vae_batch, cfg.vae_frames, cfg.device)
        x = mel[:, None]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        l1 = (rec - x).abs().mean()
        kl = post.kl().mean()
        _descend(vae, opts["vae"], l1 + cfg.vae_kl_weight * kl)
        return {"l1": l1.item(), "kl": kl.item()}

    history, wall, _ = _run("vae", {"vae": vae}, cfg, out, cfg.vae_steps, cfg.vae_lr, step_fn, data, evaluate_vae,
                            log)
    return vae, history, wall


@torch.no_grad()
def scaling_factor(vae, data, seed: int = 0, frames: int = 128, n: int = 256) -> float:
    """``1 / std`` of posterior samples over training crops, as AudioLDM2 computed its factor."""
    vae.eval()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    zs = []
    for _ in range(n // 32):
        mel, _ = random_crops(data, rng, 32, frames, vae.device)
        zs.append(vae.encode(mel[:, None]).latent_dist.sample().flatten())
    return float(1.0 / torch.cat(zs).std())


def _mel_l1(pred: torch.Tensor, wave: torch.Tensor) -> torch.Tensor:
    """Log-mel L1 (nats) between two waveforms ``[batch, samples]``, differentiable in ``pred``."""
    return (frontend.log_mel(frontend.stft_magnitude(pred, eps=MAGNITUDE_EPS ** 2))
            - frontend.log_mel(frontend.stft_magnitude(wave))).abs().mean()


def train_vocoder(cfg: TrainConfig, out: Path, data, log):
    """Stage 2: the generator alone on log-mel L1 + multi-resolution STFT (no discriminator)."""
    vocoder = tiny.build_vocoder(cfg.seed, cfg.vocoder_width, cfg.vocoder_arch)
    vocoder.apply_weight_norm()

    def step_fn(rng, opts):
        mel, wave = random_crops(data["train"], rng, cfg.vocoder_batch, cfg.vocoder_frames, cfg.device)
        pred = vocoder(mel)[:, : wave.shape[-1]]
        mel_l1 = _mel_l1(pred, wave)
        mr = mrstft_loss(pred, wave, cfg.mrstft_ffts, cfg.mrstft_log_mag_weight)
        _descend(vocoder, opts["vocoder"], mel_l1 + mr)
        return {"mel_l1": mel_l1.item(), "mrstft": mr.item()}

    history, wall, cfg.vocoder_steps = _run("vocoder", {"vocoder": vocoder}, cfg, out, cfg.vocoder_steps,
                                            cfg.vocoder_lr, step_fn, data, evaluate_vocoder, log,
                                            minutes=cfg.vocoder_minutes or None)
    return vocoder, history, wall


def train_vocoder_gan(cfg: TrainConfig, out: Path, data, vocoder, log):
    """Stage 3: HiFi-GAN's adversarial training of the stage-2 generator.

    Multi-period + multi-scale discriminators (:mod:`harness.builders.bundled.discriminators`), least-squares GAN
    losses, feature matching (x ``gan_fm_weight``) and log-mel L1 (x ``gan_mel_weight``), on
    ``gan_frames``-frame crops of the wider :func:`harness.signal.synth.vocoder_corpus`.
    """
    torch.manual_seed(cfg.seed)
    disc = HifiGanDiscriminator()

    def step_fn(rng, opts):
        mel, wave = random_crops(data["gan"], rng, cfg.gan_batch, cfg.gan_frames, cfg.device)
        pred = vocoder(mel)[:, : wave.shape[-1]]
        # 1. the discriminators, on real audio and on a detached generation (one batch of both)
        both = disc(torch.cat([wave, pred.detach()]))
        n = wave.shape[0]
        d_loss = discriminator_loss([(r[:n], []) for r, _ in both], [(f[n:], []) for f, _ in both])
        _descend(disc, opts["discriminator"], d_loss)
        # 2. the generator: fool them, match their features (real ones need no graph), keep the mel
        with torch.no_grad():
            real = disc(wave)
        fake = disc(pred)
        adv, fm, mel_l1 = generator_loss(fake), feature_matching_loss(real, fake), _mel_l1(pred, wave)
        _descend(vocoder, opts["vocoder"], adv + cfg.gan_fm_weight * fm + cfg.gan_mel_weight * mel_l1)
        return {"d": d_loss.item(), "adv": adv.item(), "fm": fm.item(), "mel_l1": mel_l1.item()}

    history, wall, cfg.gan_steps = _run("vocoder_gan", {"vocoder": vocoder, "discriminator": disc}, cfg, out,
                                        cfg.gan_steps, cfg.gan_lr, step_fn, data, evaluate_vocoder, log,
                                        warmup=cfg.gan_warmup, minutes=cfg.gan_minutes or None)
    return vocoder, history, wall


#: cvssp/audioldm2's VAE scaling factor (``docs/AUDIOLDM2_REFERENCE.md`` section 6). The bundled VAE's
#: latents are re-parametrised to it, so a forgotten or doubled factor is as large a mistake (2.4x)
#: as on the real model, not the 1.4x of the tiny VAE's own factor.
REAL_SCALING_FACTOR = 0.4110932946205139
