"""Held-out evaluation of a model: the figures ``training.json`` records and the issue notes quote.

Two clip sets the training never saw:

* ``code-heldout``: the training recipe with another seed and other espeak-ng languages/voices;
* ``debian-sounds``: every sound file under ``/usr/share/sounds`` (Debian's alsa-utils speech
  recordings, sound-theme-freedesktop and oxygen-sounds UI sounds; kept out of training on
  purpose), when installed.

Rows: VAE round trip (``audioldm2-scaled``), vocoder alone (true mel in), full chain, Griffin-Lim on
the true mel, and the full chain fed by the original report's ``seed-librosa-db`` front-end: each a
combination's clip stage, measured by the quality matrix (:class:`harness.judging.matrix.Evaluator`)
through the stage engine (:mod:`harness.judging.stages`). Figures are medians over the clips of a set.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from harness.errors import AudioError
from harness.vocabulary import DEFAULTS
from harness.signal import audio, metrics, synth
from harness.model.chain import Chain
from harness.judging import matrix, stages

#: where Debian's sound packages install their files
DEBIAN_SOUNDS = Path("/usr/share/sounds")
#: the sound files read there (Debian's own formats)
SOUND_SUFFIXES = (".wav", ".oga", ".ogg", ".flac")
ROWS = {
    "vocoder alone (true mel)": matrix.Combination("audioldm2", "none", "hifigan"),
    "full chain": matrix.REFERENCE,
    "griffin-lim (true mel)": matrix.Combination("audioldm2", "none", "griffin-lim"),
    "seed-librosa-db chain": matrix.Combination("seed-librosa-db", "scaled", "hifigan"),
}
FRAMES = 256


def clip_sets(n_speech: int = 8, n_synth: int = 8, seed: int = 1) -> Dict[str, Dict[str, np.ndarray]]:
    """``{set name: {clip name: float32 [FRAMES*160]}}``, each clip cropped/zero-padded to 2.56 s."""
    sets = {"code-heldout": {}}
    for i, (x, desc) in enumerate(synth.make_corpus(n_speech, n_synth, seed, heldout=True, progress=False)):
        sets["code-heldout"][f"{i:02d}:{desc}"] = audio.pad_or_crop(x, FRAMES)
    real = {}
    for path in sorted(DEBIAN_SOUNDS.rglob("*")) if DEBIAN_SOUNDS.is_dir() else []:
        if path.suffix.lower() in SOUND_SUFFIXES:
            try:
                real[str(path.relative_to(DEBIAN_SOUNDS))] = audio.pad_or_crop(audio.load_audio(path), FRAMES)
            except AudioError:  # e.g. too short: a held-out figure needs a usable clip
                continue
    if real:
        sets["debian-sounds"] = real
    return sets


def evaluate(chain: Chain, sets=None) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Median metrics per clip set and row (VAE round trip plus :data:`ROWS`).

    Returns
    -------
    dict
        ``{set: {row: {metric: median over the clips}, "n_clips": {"count": n}}}``; mel L1 in nats,
        LSD and mel SNR in dB, MR-STFT unitless.
    """
    sets = sets or clip_sets()
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for set_name, clips in sets.items():
        # peak-normalisation divides by max|x|: skip clips that are silent after cropping
        clips = {k: v for k, v in clips.items() if np.abs(v).max() > audio.SILENCE_PEAK}
        ev = matrix.Evaluator(chain, clips)
        rows: Dict[str, Dict[str, float]] = {}
        full = ev.run(ROWS["full chain"])
        rows["VAE round trip"] = {"mel_l1": round(float(np.median(full["vae"].metrics["mel_l1"])), 4)}
        for label, combo in ROWS.items():
            r = ev.run(combo)["chain"]
            rows[label] = {k: round(float(np.median(v)), 4) for k, v in r.metrics.items()}
        rows["n_clips"] = {"count": len(clips)}
        out[set_name] = rows
    return out


def format_table(results) -> str:
    """The :func:`evaluate` figures as text: one block per clip set, one row per chain row, metrics as columns."""
    cols = ["mel_l1", "lsd", "mel_snr", "mrstft", "snr", "correlation"]
    lines = []
    for set_name, rows in results.items():
        lines.append(f"{set_name} ({rows['n_clips']['count']} clips)")
        lines.append("  " + "row".ljust(28) + "".join(c.rjust(12) for c in cols))
        for label, m in rows.items():
            if label == "n_clips":
                continue
            lines.append("  " + label.ljust(28) + "".join(
                (f"{m[c]:.3f}" if c in m else "-").rjust(12) for c in cols))
    return "\n".join(lines)


def plot_training(training: dict, path: str) -> str:
    """Draw a model's training curves from its ``training.json`` content into the PNG ``path``.

    Held-out log-mel L1 (nats) of the VAE round trip and of the vocoder alone, against the step
    counted across the stages (stage 3, adversarial, continues stage 2's axis); where stage 3 ran, a
    second panel with its running losses (discriminator, adversarial, feature matching, log-mel L1).
    Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gan = training.get("vocoder_gan_history", [])
    fig, axes = plt.subplots(1, 2 if gan else 1, figsize=(11 if gan else 6, 4), layout="constrained", squeeze=False)
    held = axes[0, 0]
    vae = training.get("vae_history", [])
    held.plot([h["step"] for h in vae], [h["vae_mel_l1"] for h in vae], "o-", label="VAE round trip (stage 1)")
    voc = training.get("vocoder_history", [])
    held.plot([h["step"] for h in voc], [h["vocoder_mel_l1"] for h in voc], "o-", label="vocoder, stage 2 (L1 + MR-STFT)")
    offset = voc[-1]["step"] if voc else 0
    if gan:
        held.plot([offset + h["step"] for h in gan], [h["vocoder_mel_l1"] for h in gan], "o-",
                  label="vocoder, stage 3 (adversarial)")
    held.set(xlabel="step" + (" (stage 3 continues stage 2's axis)" if gan else ""),
             ylabel="held-out log-mel L1 (nats)", title="held-out reconstruction", ylim=(0, None))
    held.legend()
    if gan:
        losses = axes[0, 1]
        for key, label in (("d", "discriminator"), ("adv", "generator adversarial"), ("fm", "feature matching"),
                           ("mel_l1", "log-mel L1 (train)")):
            losses.plot([h["step"] for h in gan], [h[key] for h in gan], "o-", label=label)
        losses.set(xlabel="stage 3 step", ylabel="running loss", title="stage 3 losses (running means)")
        losses.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def stage_records(source: str | Path, stage: str = "vocoder") -> list:
    """The held-out evaluation records of one training stage, from a run directory (its ``log.jsonl``) or
    a trained model directory (its ``training.json``); each a dict with ``step``, ``wall_s`` and the
    stage's held-out figure (``vocoder_mel_l1``, ``vae_mel_l1``). Raises ``FileNotFoundError`` naming
    what is missing."""
    path = Path(source)
    if (path / "log.jsonl").exists():
        records = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines() if line.strip()]
        return [r for r in records if r.get("stage") == stage and "step" in r]  # not the budget-fit record
    if (path / "training.json").exists():
        return json.loads((path / "training.json").read_text()).get(f"{stage}_history", [])
    raise FileNotFoundError(f"{path}: neither a training run (log.jsonl) nor a trained model (training.json); "
                            "give the --out of a `harness train` run or a model directory")


def plot_runs(runs: Dict[str, list], path: str, key: str = "vocoder_mel_l1") -> str:
    """Compare training runs: their held-out figure ``key`` against the step and against wall-clock
    minutes (what a recipe change costs on the machine that ran it), one line per run.

    ``runs`` maps a label to :func:`stage_records`. Writes the PNG ``path`` and returns it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for label, records in runs.items():
        by_step.plot([r["step"] for r in records], [r[key] for r in records], "o-", ms=3, label=label)
        by_time.plot([r["wall_s"] / 60 for r in records], [r[key] for r in records], "o-", ms=3, label=label)
    ylabel = "held-out log-mel L1 (nats)" if key.endswith("mel_l1") else key
    by_step.set(xlabel="step", ylabel=ylabel, title="per step", ylim=(0, None))
    by_time.set(xlabel="wall-clock minutes (each run's own machine)", ylabel=ylabel, title="per minute",
                ylim=(0, None))
    by_step.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: clips :func:`plot_spectrograms` draws by default: a steady harmonic tone, a real chime, real speech
SPECTROGRAM_CLIPS = ("code-heldout/tone", "debian-sounds/Oxygen-Sys-App-Error-Critical.ogg",
                     "debian-sounds/alsa/Front_Center.wav")


def plot_spectrograms(chain: Chain, path: str, sets=None, clips=SPECTROGRAM_CLIPS) -> str:
    """Draw, for a few held-out clips, the input's spectrogram beside the vocoder's and Griffin-Lim's
    rendering of its true mel, into the PNG ``path``; returns ``path``.

    Log-magnitude (dB) at the MR-STFT's finest-frequency resolution (FFT 2048, window 1200, hop 240),
    0-8 kHz, each panel titled with its RMS and MR-STFT distance: where a vocoder's harmonics, level
    and noise floor go wrong is seen at once (a frame-rate comb at 100 Hz multiples, say).

    Parameters
    ----------
    chain : Chain
        The model whose vocoder is drawn.
    path : str
        PNG to write.
    sets : dict, optional
        :func:`clip_sets` output (made when omitted).
    clips : sequence of str
        ``"set/name"`` entries; ``name`` may be a unique substring of a clip name. Missing ones are skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sets or clip_sets()
    finest = max(zip(metrics.MRSTFT_FFT_SIZES, metrics.MRSTFT_HOP_SIZES, metrics.MRSTFT_WIN_LENGTHS))
    chosen = []
    for entry in clips:
        set_name, _, part = entry.partition("/")
        names = [n for n in sets.get(set_name, {}) if part in n]
        if names:
            chosen.append((names[0], sets[set_name][names[0]]))
    if not chosen:
        raise ValueError(f"none of the clips {list(clips)} is in the sets {list(sets)}")
    fig, axes = plt.subplots(len(chosen), 3, figsize=(13, 2.8 * len(chosen)), layout="constrained", squeeze=False)
    for row, (name, x) in enumerate(chosen):
        wave = audio.normalize_waveform(torch.from_numpy(x)[None].float())
        mel = stages.output(chain, "frontend", DEFAULTS["frontend"], wave)
        renders = [("input", wave)] + [(label, stages.output(chain, "vocoder", variant, mel, samples=wave.shape[-1]))
                                       for label, variant in (("vocoder (true mel)", "hifigan"),
                                                              ("Griffin-Lim 32 (true mel)", "griffin-lim"))]
        for col, (label, y) in enumerate(renders):
            y = y.detach().float().cpu()  # the vocoders answer on the chain's device
            spec = metrics.magnitude_spectrogram(y.double(), *finest)[0]
            score = "" if col == 0 else f", MR-STFT {metrics.mrstft(y, wave).item():.2f}"
            ax = axes[row, col]
            ax.imshow(20 * torch.log10(spec + 1e-6).numpy(), origin="lower", aspect="auto", vmin=-80, vmax=40,
                      cmap="magma", extent=(0, y.shape[-1] / audio.SAMPLE_RATE, 0, audio.SAMPLE_RATE / 2000))
            ax.set_title(f"{name[:38]}\n{label}: RMS {y.pow(2).mean().sqrt().item():.3f}{score}", fontsize=9)
            ax.set(xlabel="s" if row == len(chosen) - 1 else None, ylabel="kHz" if col == 0 else None)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
