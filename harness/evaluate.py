"""Held-out evaluation of a model: the figures ``training.json`` records and the issue notes quote.

Two clip sets the training never saw:

* ``code-heldout``: the training recipe with another seed and other espeak-ng languages/voices;
* ``debian-sounds``: real recordings from Debian's alsa-utils and sound-theme-freedesktop packages
  (kept out of training on purpose), when installed.

Rows: VAE round trip (``audioldm2-scaled``), vocoder alone (true mel in), full chain, Griffin-Lim on
the true mel, and the full chain fed by the original report's ``seed-librosa-db`` front-end.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from . import audio, matrix, synth
from .chain import Chain

DEBIAN_SOUNDS = ["alsa/Front_Center.wav", "alsa/Rear_Right.wav", "alsa/Noise.wav",
                 "freedesktop/stereo/alarm-clock-elapsed.oga", "freedesktop/stereo/complete.oga",
                 "freedesktop/stereo/phone-incoming-call.oga", "freedesktop/stereo/service-login.oga",
                 "freedesktop/stereo/camera-shutter.oga", "freedesktop/stereo/bell.oga",
                 "freedesktop/stereo/phone-outgoing-busy.oga"]
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
    root = Path("/usr/share/sounds")
    real = {}
    for rel in DEBIAN_SOUNDS:
        if (root / rel).exists():
            real[rel] = audio.pad_or_crop(audio.load_audio(root / rel), FRAMES)
    if real:
        sets["debian-sounds"] = real
    return sets


def evaluate(chain: Chain, sets=None) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Mean metrics per clip set and row (VAE round trip plus :data:`ROWS`)."""
    sets = sets or clip_sets()
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for set_name, clips in sets.items():
        # peak-normalisation divides by max|x|: skip clips that are silent after cropping
        clips = {k: v for k, v in clips.items() if np.abs(v).max() > audio.SILENCE_PEAK}
        ev = matrix.Evaluator(chain, clips)
        rows: Dict[str, Dict[str, float]] = {}
        full = ev.run(ROWS["full chain"])
        rows["VAE round trip"] = {"mel_l1": float(np.mean(full["vae"].metrics["mel_l1"]))}
        for label, combo in ROWS.items():
            r = ev.run(combo)["chain"]
            rows[label] = {k: round(float(np.mean(v)), 4) for k, v in r.metrics.items()}
        rows["n_clips"] = {"count": len(clips)}
        out[set_name] = rows
    return out


def format_table(results) -> str:
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
