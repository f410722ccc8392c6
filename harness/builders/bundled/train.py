"""Training recipe of the bundled ``tiny`` model: VAE first, then the HiFi-GAN vocoder.

Run ``harness train --out runs/tiny`` (resumable: re-running picks up from the last checkpoint
in ``--out``). Data is made by code at start (:mod:`harness.signal.synth`, cached in ``data.npz``),
seeds are fixed and each step's batch is drawn from a generator seeded by ``(seed, step)``, so a
resumed run sees the same batches as an uninterrupted one.

On a machine without espeak-ng (e.g. a GPU machine), the corpus travels as a FLAC pack
(:func:`write_data_pack`, ``TrainConfig.data_pack``); a stage can be fitted to a wall-clock budget
(``minutes``: the step count is set from the first steps' pace), and :func:`portable_checkpoints`
strips a run to what an export needs (docs/bundled-model.md, "Training the vocoder on a GPU").

Losses: VAE = L1 on the log-mel + 1e-6 KL (AudioLDM's weighting of the KL term);
vocoder = log-mel L1 + multi-resolution STFT (spectral convergence + log-magnitude L1).
Both use AdamW with a warm-up and cosine decay.
"""
from __future__ import annotations

import copy
import io
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

from harness.signal import frontend, metrics, synth
from harness.model.chain import fold_weight_norm
from harness.builders.bundled import tiny


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
            return ["gan"] if self.init_from else list(STAGES)
        chosen = [x.strip() for x in self.stages.split(",") if x.strip()]
        unknown = sorted(set(chosen) - set(STAGES))
        if unknown:
            raise ValueError(f"unknown training stage(s) {unknown}: choose from {', '.join(STAGES)}")
        return [x for x in STAGES if x in chosen]


#: the recipe's stages, in order: 1. VAE, 2. vocoder (supervised), 3. vocoder (adversarial)
STAGES = ("vae", "vocoder", "gan")


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
    """The training and held-out sets: read from ``cfg.data_pack`` (with its ``gan`` set, if it
    has one), or made by :func:`harness.signal.synth.make_corpus` and cached in ``out/data.npz``."""
    if cfg.data_pack:
        return read_data_pack(cfg.data_pack)
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
    """Make (or load from ``out/data_gan.npz``) stage 3's wider corpus (:func:`harness.signal.synth.vocoder_corpus`)."""
    path = out / "data_gan.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    arrays = _clips_to_arrays(synth.vocoder_corpus(cfg.n_gan_clips, cfg.seed + 7))
    np.savez(path, **arrays)
    return arrays


#: scale of the 16-bit samples in a data pack (corpus waveforms peak at 0.5: 15 bits used)
_PCM_SCALE = 32767.0


def write_data_pack(data: Dict[str, Dict[str, np.ndarray]], path: str | os.PathLike) -> Path:
    """Write corpus sets to one ``.npz`` of 16-bit FLAC streams, for a machine that cannot make them.

    About 0.28x the size of the float32 ``data.npz``, so
    the corpus can travel to a GPU machine that has no espeak-ng. Log-mels are recomputed on reading.

    Parameters
    ----------
    data : dict
        ``{set name: arrays}`` as :func:`prepare_data` returns them (``wave``, ``offsets``, ``desc``
        are used; waveforms float32 at 16 kHz, peak-normalised to 0.5).
    path : path-like
        The ``.npz`` to write.

    Returns
    -------
    Path
        ``path``.
    """
    import soundfile as sf

    arrays = {}
    for name, d in data.items():
        pcm = np.clip(np.round(d["wave"] * _PCM_SCALE), -32768, 32767).astype(np.int16)
        buf = io.BytesIO()
        sf.write(buf, pcm, frontend.SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        arrays[f"{name}_flac"] = np.frombuffer(buf.getvalue(), np.uint8)
        arrays[f"{name}_offsets"] = d["offsets"]
        arrays[f"{name}_desc"] = d["desc"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def read_data_pack(path: str | os.PathLike) -> Dict[str, Dict[str, np.ndarray]]:
    """The sets of a :func:`write_data_pack` file, with log-mels recomputed: ``{set name: arrays}``."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data pack {path} not found: write one with `harness train --write-pack {path}` "
                                "on a machine with espeak-ng")
    z = np.load(path)
    out = {}
    for name in sorted({k.rsplit("_", 1)[0] for k in z.files}):
        pcm, _ = sf.read(io.BytesIO(z[f"{name}_flac"].tobytes()), dtype="int16")
        wave = pcm.astype(np.float32) / _PCM_SCALE
        offsets = z[f"{name}_offsets"]
        out[name] = _clips_to_arrays((wave[a:b], str(desc)) for a, b, desc in
                                     zip(offsets[:-1], offsets[1:], z[f"{name}_desc"]))
    return out


def _random_crops(data, rng: np.random.Generator, batch: int, frames: int, device: str = "cpu"):
    """``batch`` aligned crops, on ``device``: mel ``[batch, frames, 64]`` and wave ``[batch, frames*160]``."""
    mo, wo = data["mel_offsets"], data["offsets"]
    lengths = np.diff(mo)
    ok = np.flatnonzero(lengths >= frames)
    clips = ok[rng.integers(0, len(ok), batch)]
    mels, waves = [], []
    for c in clips:
        t0 = int(rng.integers(0, lengths[c] - frames + 1))
        mels.append(data["mel"][mo[c] + t0: mo[c] + t0 + frames])
        waves.append(data["wave"][wo[c] + t0 * frontend.HOP: wo[c] + (t0 + frames) * frontend.HOP])
    return torch.from_numpy(np.stack(mels)).to(device), torch.from_numpy(np.stack(waves)).to(device)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# the two stages
# ---------------------------------------------------------------------------


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
    from tqdm.auto import tqdm

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
        mel, _ = _random_crops(data["train"], rng, cfg.vae_batch, cfg.vae_frames, cfg.device)
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
        mel, _ = _random_crops(data, rng, 32, frames, vae.device)
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
        mel, wave = _random_crops(data["train"], rng, cfg.vocoder_batch, cfg.vocoder_frames, cfg.device)
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

    Multi-period + multi-scale discriminators (:mod:`harness.discriminators`), least-squares GAN
    losses, feature matching (x ``gan_fm_weight``) and log-mel L1 (x ``gan_mel_weight``), on
    ``gan_frames``-frame crops of the wider :func:`harness.signal.synth.vocoder_corpus`.
    """
    from harness.builders.bundled.discriminators import (
        HifiGanDiscriminator, discriminator_loss, feature_matching_loss, generator_loss,
    )

    torch.manual_seed(cfg.seed)
    disc = HifiGanDiscriminator()

    def step_fn(rng, opts):
        mel, wave = _random_crops(data["gan"], rng, cfg.gan_batch, cfg.gan_frames, cfg.device)
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
            training["latent_rescale"] = {"from": old, "to": scaling_factor, "how": "harness.builders.bundled.train.rescale_latents "
                                          "(exact change of variables in quant_conv/post_quant_conv)"}
    pipe = tiny.build_pipeline(vae.eval(), vocoder.eval(), seed=seed)
    import shutil

    shutil.rmtree(path)
    tiny.save_pipeline(pipe, path, training)
    return path


def _load_trained(model_dir: str, part: str):
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


def main(out: str, model_out: str, cfg: TrainConfig | None = None, export_model: bool = True) -> dict:
    """Train the stages of ``cfg.stage_list()`` (resuming where ``out`` has checkpoints) and export the pipeline.

    1. VAE; 2. vocoder on log-mel L1 + MR-STFT; 3. vocoder adversarially (HiFi-GAN). A stage that is
    not trained takes its component (and its history) from ``cfg.init_from``. ``export_model=False``
    (a machine without diffusers) trains and writes checkpoints only; re-running with the run's
    ``config.json`` and an ``init_from`` exports it. Returns the ``training.json`` content.
    """
    cfg = cfg or TrainConfig()
    stages = cfg.stage_list()
    needs = [x for x in ("vae", "vocoder") if x not in stages and (export_model or x == "vocoder")]
    if needs and not cfg.init_from:
        raise ValueError(f"stages {stages} do not train the {' and the '.join(needs)}: give init_from "
                         "(a trained pipeline directory, e.g. harness/models/tiny) to take them from")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"the training config asks for device {cfg.device!r}, which torch does not see here; "
                           "pass --device cpu (e.g. to export a run trained on a GPU)")
    torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # every step has the same crop shapes
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    (outp / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    logf = open(outp / "log.jsonl", "a")

    def log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    before = json.loads((Path(cfg.init_from) / "training.json").read_text()) if cfg.init_from else {}
    walls = dict(before.get("wall_time_s", {}))
    t0 = time.time()
    data = prepare_data(cfg, outp)
    if "gan" in stages and "gan" not in data:
        if cfg.data_pack:  # synthesising it here could silently lack speech (a machine without espeak-ng)
            log({"note": f"{cfg.data_pack} has no stage-3 corpus: stage 3 trains on its stage-2 set"})
            data["gan"] = data["train"]
        else:
            data["gan"] = prepare_gan_data(cfg, outp)
    walls["data"] = round(time.time() - t0, 1)
    # 1. the VAE (trained, then an interim export so the harness has it while the vocoder trains; or
    #    taken from init_from, already on its exported latent scale)
    vae, scale = None, before.get("scaling_factor")
    vae_hist = before.get("vae_history", [])
    if "vae" in stages:
        vae, vae_hist, walls["vae"] = train_vae(cfg, outp, data, log)
        scale = scaling_factor(vae, data["train"], cfg.seed)
        log({"scaling_factor": scale})
        if export_model:
            export(vae, tiny.build_vocoder(cfg.seed, cfg.vocoder_width, cfg.vocoder_arch), scale, cfg, Path(model_out),
                   {"status": "interim: vocoder untrained"})
    elif export_model:
        vae = _load_trained(cfg.init_from, "vae")
        scale = float(vae.config.scaling_factor)
    # 2. the vocoder without discriminators
    if "vocoder" in stages:
        vocoder, voc_hist, walls["vocoder"] = train_vocoder(cfg, outp, data, log)
        gan_hist = []
    else:
        vocoder, voc_hist = _load_trained(cfg.init_from, "vocoder"), before.get("vocoder_history", [])
        gan_hist = before.get("vocoder_gan_history", [])
    # 3. the vocoder with discriminators
    if "gan" in stages:
        vocoder, gan_hist, walls["vocoder_gan"] = train_vocoder_gan(cfg, outp, data, vocoder, log)
    (outp / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")  # with fitted step counts
    training = {
        "recipe": "harness train (harness/train.py): 1. VAE, 2. vocoder (log-mel L1 + MR-STFT), "
                  "3. vocoder adversarial (HiFi-GAN MPD + MSD, feature matching, 45 x log-mel L1)",
        "config": asdict(cfg),
        "stages_trained": stages,
        "data": {
            "train": f"{cfg.n_speech} espeak-ng utterances ({len(synth.TRAIN_LANGS)} languages x "
                     f"{len(synth.TRAIN_VARIANTS)} variants, random rate/pitch) + {cfg.n_synth} synthesised "
                     "music/effect clips (tones, chords, melodies, chirps, noise bursts, percussion), 1.6-4 s",
            "gan": f"{cfg.n_gan_clips} clips of harness.signal.synth.vocoder_corpus (seed {cfg.seed + 7}): speech in "
                   f"{len(synth.TRAIN_LANGS) + len(synth.EXTRA_TRAIN_LANGS)} languages, speech over noise/music "
                   "beds, music/effects, coloured noise, transient runs; silent gaps and level steps; 1.2-4 s"
                   if data.get("gan") is not data["train"] else "the stage-2 training set (the data pack has "
                   "no stage-3 corpus)",
            "heldout": f"{cfg.n_heldout_speech} utterances in other languages/voices "
                       f"({', '.join(synth.HELDOUT_LANGS)}; {', '.join(synth.HELDOUT_VARIANTS)}) + "
                       f"{cfg.n_heldout_synth} synth clips, seed {cfg.heldout_seed}",
            "train_seconds": round(len(data["train"]["wave"]) / frontend.SAMPLE_RATE, 1),
            **({"gan_seconds": round(len(data["gan"]["wave"]) / frontend.SAMPLE_RATE, 1)} if "gan" in data else {}),
            **({"pack": f"{cfg.data_pack} (16-bit FLAC of the corpus above; mels recomputed)"} if cfg.data_pack else {}),
        },
        "scaling_factor": scale,
        "wall_time_s": walls,
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {cfg.threads} threads, device {cfg.device}",
        "vae_history": vae_hist,
        "vocoder_history": voc_hist,
        "vocoder_gan_history": gan_hist,
        "final": {**(vae_hist[-1] if vae_hist else {}), **((gan_hist or voc_hist)[-1] if gan_hist or voc_hist else {})},
    }
    if cfg.init_from:
        training["taken_from"] = {"path": cfg.init_from, "parts": [x for x in ("vae", "vocoder") if x not in stages],
                                  "recipe": before.get("recipe"), "config": before.get("config"),
                                  "note": "weights taken as exported (vocoder weight norm re-applied; "
                                          "optimiser state not carried)"}
        if "latent_rescale" in before:
            training["latent_rescale"] = before["latent_rescale"]
    if export_model:
        export(vae, vocoder.cpu(), scale, cfg, Path(model_out), training)
    return training
