"""Training recipe of the bundled ``tiny`` model: VAE first, then the HiFi-GAN vocoder.

Run ``harness train --out runs/tiny`` (resumable: re-running picks up from the last checkpoint
in ``--out``). Data is made by code at start (:mod:`harness.synth`, cached in ``data.npz``),
seeds are fixed and each step's batch is drawn from a generator seeded by ``(seed, step)``, so a
resumed run sees the same batches as an uninterrupted one.

Losses: VAE = L1 on the log-mel + 1e-6 KL (AudioLDM's weighting of the KL term);
vocoder = log-mel L1 + multi-resolution STFT (spectral convergence + log-magnitude L1).
Both use AdamW with a warm-up and cosine decay.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from .. import frontend, metrics, synth
from ..chain import fold_weight_norm
from . import tiny


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
    mrstft_ffts: List[int] = field(default_factory=lambda: [256, 512, 1024, 2048])
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
    #: clips of :func:`harness.synth.vocoder_corpus` for stage 3 (seed ``seed + 7``)
    n_gan_clips: int = 1200
    #: a trained pipeline directory whose VAE and stage-2 vocoder are taken as they are (their
    #: history is carried over from its ``training.json``); only stage 3 then runs. "" trains all.
    init_from: str = ""


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def _clips_to_arrays(clips) -> Dict[str, np.ndarray]:
    waves, mels, offsets, moffsets, descs = [], [], [0], [0], []
    for x, desc in clips:
        n = (len(x) // (4 * frontend.HOP)) * 4 * frontend.HOP
        w = frontend.normalize_waveform(torch.from_numpy(x[:n])[None])
        m = frontend.log_mel(frontend.stft_magnitude(w))[0, 0]
        waves.append(w[0].numpy())
        mels.append(m.numpy())
        offsets.append(offsets[-1] + n)
        moffsets.append(moffsets[-1] + m.shape[0])
        descs.append(desc)
    return dict(wave=np.concatenate(waves), mel=np.concatenate(mels), offsets=np.array(offsets),
                mel_offsets=np.array(moffsets), desc=np.array(descs))


def prepare_data(cfg: TrainConfig, out: Path) -> Dict[str, Dict[str, np.ndarray]]:
    """Make (or load from ``out/data.npz``) the training and held-out sets."""
    path = out / "data.npz"
    if path.exists():
        z = np.load(path)
        return {s: {k[len(s) + 1:]: z[k] for k in z.files if k.startswith(s + "_")} for s in ("train", "heldout")}
    train = _clips_to_arrays(synth.make_corpus(cfg.n_speech, cfg.n_synth, cfg.seed))
    held = _clips_to_arrays(synth.make_corpus(cfg.n_heldout_speech, cfg.n_heldout_synth, cfg.heldout_seed,
                                              heldout=True))
    np.savez(path, **{f"train_{k}": v for k, v in train.items()}, **{f"heldout_{k}": v for k, v in held.items()})
    return {"train": train, "heldout": held}


def prepare_gan_data(cfg: TrainConfig, out: Path) -> Dict[str, np.ndarray]:
    """Make (or load from ``out/data_gan.npz``) stage 3's wider corpus (:func:`harness.synth.vocoder_corpus`)."""
    path = out / "data_gan.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    arrays = _clips_to_arrays(synth.vocoder_corpus(cfg.n_gan_clips, cfg.seed + 7))
    np.savez(path, **arrays)
    return arrays


def _random_crops(data, rng: np.random.Generator, batch: int, frames: int):
    """``batch`` aligned crops: mel ``[batch, frames, 64]`` and wave ``[batch, frames*160]``."""
    mo, wo = data["mel_offsets"], data["offsets"]
    lengths = np.diff(mo)
    ok = np.flatnonzero(lengths >= frames)
    clips = ok[rng.integers(0, len(ok), batch)]
    mels, waves = [], []
    for c in clips:
        t0 = int(rng.integers(0, lengths[c] - frames + 1))
        mels.append(data["mel"][mo[c] + t0: mo[c] + t0 + frames])
        waves.append(data["wave"][wo[c] + t0 * frontend.HOP: wo[c] + (t0 + frames) * frontend.HOP])
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(waves))


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


#: magnitude floor of the training losses (``|X| >= 1e-7``): keeps log and sqrt gradients finite
MAGNITUDE_EPS = 1e-7


def mrstft_loss(pred: torch.Tensor, target: torch.Tensor, ffts: List[int]) -> torch.Tensor:
    """Stage 2's multi-resolution STFT loss: the batch mean of :func:`harness.metrics.stft_distance`
    (spectral convergence + log-magnitude L1) at FFT ``n``, hop ``n / 4``, window ``n`` for each ``n``
    in ``ffts``, magnitudes floored at :data:`MAGNITUDE_EPS`; a scalar."""
    total = 0.0
    for n_fft in ffts:
        resolution = (n_fft, n_fft // 4, n_fft, MAGNITUDE_EPS ** 2)
        total = total + metrics.stft_distance(metrics.magnitude_spectrogram(pred, *resolution),
                                              metrics.magnitude_spectrogram(target, *resolution)).mean()
    return total / len(ffts)


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 1e-5 + (base - 1e-5) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


# ---------------------------------------------------------------------------
# the two stages
# ---------------------------------------------------------------------------


class _Checkpoint:
    def __init__(self, path: Path):
        self.path = path

    def load(self):
        return torch.load(self.path, weights_only=False) if self.path.exists() else None

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
        m = torch.from_numpy(data["mel"][mo[i]:mo[i + 1]])[None, None]
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
        m = torch.from_numpy(data["mel"][mo[i]:mo[i + 1]])
        wav = vocoder(m[None])[:, : m.shape[0] * frontend.HOP]
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


def _run(name: str, modules: Dict[str, torch.nn.Module], cfg: TrainConfig, out: Path, steps: int, lr: float,
         step_fn, data, eval_fn, log, warmup: Optional[int] = None):
    """The training loop every stage shares: resumable checkpoints, seeded batches, LR schedule, evaluation.

    ``modules`` are trained with one AdamW each; ``step_fn(rng, optimizers)`` draws a batch from
    ``rng``, makes the updates and returns the figures to log. ``eval_fn(modules[first], heldout)``
    runs every ``cfg.eval_every`` steps. Returns ``(history, wall seconds)``.
    """
    from tqdm.auto import tqdm

    ckpt = _Checkpoint(out / f"{name}.ckpt")
    opts = {k: torch.optim.AdamW(m.parameters(), lr=lr, betas=(0.8, 0.99), weight_decay=0.0) for k, m in modules.items()}
    warmup = cfg.warmup if warmup is None else warmup
    state = ckpt.load()
    step, elapsed, history = 0, 0.0, []
    if state is not None:
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
            opts[k].load_state_dict(state["opts"][k])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
    for m in modules.values():
        m.train()
    bar = tqdm(total=steps, initial=step, desc=f"train {name}", dynamic_ncols=True, mininterval=5)
    t_start, last_save = time.time() - elapsed, time.time()
    running: Dict[str, float] = {}
    evaluated = next(iter(modules.values()))
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
        if step % cfg.eval_every == 0 or step == steps:
            metrics = eval_fn(evaluated, data["heldout"])
            record = {"step": step, "wall_s": round(time.time() - t_start, 1), **running, **metrics}
            history.append(record)
            log({"stage": name, **record})
        if time.time() - last_save > 300 or step == steps or step % cfg.eval_every == 0:
            ckpt.save(modules={k: m.state_dict() for k, m in modules.items()},
                      opts={k: o.state_dict() for k, o in opts.items()}, step=step,
                      elapsed=time.time() - t_start, history=history)
            last_save = time.time()
    bar.close()
    return history, time.time() - t_start


def train_vae(cfg: TrainConfig, out: Path, data, log):
    """Stage 1: the VAE on log-mel L1 + ``vae_kl_weight`` x KL, posterior samples; returns ``(vae, history, wall s)``."""
    vae = tiny.build_vae(cfg.seed)

    def step_fn(rng, opts):
        mel, _ = _random_crops(data["train"], rng, cfg.vae_batch, cfg.vae_frames)
        x = mel[:, None]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        l1 = (rec - x).abs().mean()
        kl = post.kl().mean()
        _descend(vae, opts["vae"], l1 + cfg.vae_kl_weight * kl)
        return {"l1": l1.item(), "kl": kl.item()}

    history, wall = _run("vae", {"vae": vae}, cfg, out, cfg.vae_steps, cfg.vae_lr, step_fn, data, evaluate_vae, log)
    return vae, history, wall


@torch.no_grad()
def scaling_factor(vae, data, seed: int = 0, frames: int = 128, n: int = 256) -> float:
    """``1 / std`` of posterior samples over training crops, as AudioLDM2 computed its factor."""
    vae.eval()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    zs = []
    for _ in range(n // 32):
        mel, _ = _random_crops(data, rng, 32, frames)
        zs.append(vae.encode(mel[:, None]).latent_dist.sample().flatten())
    return float(1.0 / torch.cat(zs).std())


def _mel_l1(pred: torch.Tensor, wave: torch.Tensor) -> torch.Tensor:
    """Log-mel L1 (nats) between two waveforms ``[batch, samples]``, differentiable in ``pred``."""
    return (frontend.log_mel(frontend.stft_magnitude(pred, eps=MAGNITUDE_EPS ** 2))
            - frontend.log_mel(frontend.stft_magnitude(wave))).abs().mean()


def train_vocoder(cfg: TrainConfig, out: Path, data, log):
    """Stage 2: the generator alone on log-mel L1 + multi-resolution STFT (no discriminator)."""
    vocoder = tiny.build_vocoder(cfg.seed, cfg.vocoder_width)
    vocoder.apply_weight_norm()

    def step_fn(rng, opts):
        mel, wave = _random_crops(data["train"], rng, cfg.vocoder_batch, cfg.vocoder_frames)
        pred = vocoder(mel)[:, : wave.shape[-1]]
        mel_l1 = _mel_l1(pred, wave)
        mr = mrstft_loss(pred, wave, cfg.mrstft_ffts)
        _descend(vocoder, opts["vocoder"], mel_l1 + mr)
        return {"mel_l1": mel_l1.item(), "mrstft": mr.item()}

    history, wall = _run("vocoder", {"vocoder": vocoder}, cfg, out, cfg.vocoder_steps, cfg.vocoder_lr, step_fn, data,
                         evaluate_vocoder, log)
    return vocoder, history, wall


def train_vocoder_gan(cfg: TrainConfig, out: Path, data, vocoder, log):
    """Stage 3: HiFi-GAN's adversarial training of the stage-2 generator.

    Multi-period + multi-scale discriminators (:mod:`harness.discriminators`), least-squares GAN
    losses, feature matching (x ``gan_fm_weight``) and log-mel L1 (x ``gan_mel_weight``), on
    ``gan_frames``-frame crops of the wider :func:`harness.synth.vocoder_corpus`.
    """
    from .discriminators import (HifiGanDiscriminator, discriminator_loss, feature_matching_loss,
                                 generator_loss)

    torch.manual_seed(cfg.seed)
    disc = HifiGanDiscriminator()

    def step_fn(rng, opts):
        mel, wave = _random_crops(data["gan"], rng, cfg.gan_batch, cfg.gan_frames)
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

    history, wall = _run("vocoder_gan", {"vocoder": vocoder, "discriminator": disc}, cfg, out, cfg.gan_steps,
                         cfg.gan_lr, step_fn, data, evaluate_vocoder, log, warmup=cfg.gan_warmup)
    return vocoder, history, wall


#: cvssp/audioldm2's VAE scaling factor (``docs/AUDIOLDM2_REFERENCE.md`` section 6). The bundled VAE's
#: latents are re-parametrised to it, so a forgotten or doubled factor is as large a mistake (2.4x)
#: as on the real model, not the 1.4x of the tiny VAE's own factor.
REAL_SCALING_FACTOR = 0.4110932946205139


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
    vae = rescale_latents(copy.deepcopy(vae).eval(), scale)
    vocoder = copy.deepcopy(vocoder).eval()
    fold_weight_norm(vocoder)
    pipe = tiny.build_pipeline(vae, vocoder, seed=cfg.seed)
    tiny.save_pipeline(pipe, out_model, training)


def reexport(model_dir: str | os.PathLike, seed: int = 0, scaling_factor: Optional[float] = None) -> Path:
    """Rebuild the pipeline around the trained VAE and vocoder already in ``model_dir`` (e.g. after a
    change to the seeded-random UNet/text encoders in :mod:`harness.bundled.tiny`); keeps ``training.json``.

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
            training["latent_rescale"] = {"from": old, "to": scaling_factor, "how": "harness.bundled.train.rescale_latents "
                                          "(exact change of variables in quant_conv/post_quant_conv)"}
    pipe = tiny.build_pipeline(vae.eval(), vocoder.eval(), seed=seed)
    import shutil

    shutil.rmtree(path)
    tiny.save_pipeline(pipe, path, training)
    return path


def _load_trained(model_dir: str):
    """VAE, vocoder (weight norm re-applied, for further training) and ``training.json`` of a pipeline directory."""
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    path = Path(model_dir)
    vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
    vocoder = SpeechT5HifiGan.from_pretrained(path, subfolder="vocoder")
    vocoder.apply_weight_norm()
    return vae, vocoder, json.loads((path / "training.json").read_text())


def main(out: str, model_out: str, cfg: TrainConfig | None = None) -> dict:
    """Train the three stages (resuming where ``out`` has checkpoints) and export the pipeline.

    1. VAE; 2. vocoder on log-mel L1 + MR-STFT; 3. vocoder adversarially (HiFi-GAN). With
    ``cfg.init_from`` stages 1-2 are read from that pipeline instead of trained.
    """
    cfg = cfg or TrainConfig()
    torch.set_num_threads(cfg.threads)
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    logf = open(outp / "log.jsonl", "a")

    def log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    t0 = time.time()
    data = prepare_data(cfg, outp)
    data["gan"] = prepare_gan_data(cfg, outp)
    data_wall = time.time() - t0
    if cfg.init_from:
        # 1-2. taken from a trained pipeline (its VAE is already on its exported latent scale)
        vae, vocoder, before = _load_trained(cfg.init_from)
        scale = float(vae.config.scaling_factor)
        vae_hist, voc_hist = before["vae_history"], before["vocoder_history"]
        walls = before["wall_time_s"]
        vae_wall, voc_wall = walls["vae"], walls["vocoder"]
    else:
        # 1. the VAE, then an interim export so the harness has a trained VAE while the vocoder trains
        vae, vae_hist, vae_wall = train_vae(cfg, outp, data, log)
        scale = scaling_factor(vae, data["train"], cfg.seed)
        log({"scaling_factor": scale})
        export(vae, tiny.build_vocoder(cfg.seed, cfg.vocoder_width), scale, cfg, Path(model_out), {"status": "interim: vocoder untrained"})
        # 2. the vocoder without discriminators
        vocoder, voc_hist, voc_wall = train_vocoder(cfg, outp, data, log)
    # 3. the vocoder with discriminators
    vocoder, gan_hist, gan_wall = train_vocoder_gan(cfg, outp, data, vocoder, log)
    training = {
        "recipe": "harness train (harness/train.py): 1. VAE, 2. vocoder (log-mel L1 + MR-STFT), "
                  "3. vocoder adversarial (HiFi-GAN MPD + MSD, feature matching, 45 x log-mel L1)",
        "config": asdict(cfg),
        "data": {
            "train": f"{cfg.n_speech} espeak-ng utterances ({len(synth.TRAIN_LANGS)} languages x "
                     f"{len(synth.TRAIN_VARIANTS)} variants, random rate/pitch) + {cfg.n_synth} synthesised "
                     "music/effect clips (tones, chords, melodies, chirps, noise bursts, percussion), 1.6-4 s",
            "gan": f"{cfg.n_gan_clips} clips of harness.synth.vocoder_corpus (seed {cfg.seed + 7}): speech in "
                   f"{len(synth.TRAIN_LANGS) + len(synth.EXTRA_TRAIN_LANGS)} languages, speech over noise/music "
                   "beds, music/effects, coloured noise, transient runs; silent gaps and level steps; 1.2-4 s",
            "heldout": f"{cfg.n_heldout_speech} utterances in other languages/voices "
                       f"({', '.join(synth.HELDOUT_LANGS)}; {', '.join(synth.HELDOUT_VARIANTS)}) + "
                       f"{cfg.n_heldout_synth} synth clips, seed {cfg.heldout_seed}",
            "train_seconds": round(len(data["train"]["wave"]) / frontend.SAMPLE_RATE, 1),
            "gan_seconds": round(len(data["gan"]["wave"]) / frontend.SAMPLE_RATE, 1),
        },
        "scaling_factor": scale,
        "wall_time_s": {"data": round(data_wall, 1), "vae": round(vae_wall, 1), "vocoder": round(voc_wall, 1),
                        "vocoder_gan": round(gan_wall, 1)},
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {cfg.threads} threads",
        "vae_history": vae_hist,
        "vocoder_history": voc_hist,
        "vocoder_gan_history": gan_hist,
        "final": {**(vae_hist[-1] if vae_hist else {}), **(gan_hist[-1] if gan_hist else {})},
    }
    if cfg.init_from:
        training["stages_1_2_from"] = {"path": cfg.init_from, "recipe": before.get("recipe"),
                                       "config": before.get("config"), "note": "weights taken as exported "
                                       "(vocoder weight norm re-applied; stage-2 optimiser state not carried)"}
        if "latent_rescale" in before:
            training["latent_rescale"] = before["latent_rescale"]
    export(vae, vocoder, scale, cfg, Path(model_out), training)
    return training
