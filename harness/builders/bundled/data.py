"""The training corpus: made by code (:mod:`harness.signal.synth`), cached in ``data.npz``, carried as a FLAC pack
to a machine without espeak-ng, and cropped into each step's batch by a generator seeded by ``(seed, step)``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict

import numpy as np
import soundfile as sf
import torch

from harness.signal import frontend, synth
from harness.signal.audio import HOP, SAMPLE_RATE, normalize_waveform
from harness.builders.bundled.config import TrainConfig


def _clips_to_arrays(clips) -> Dict[str, np.ndarray]:
    waves, mels, offsets, moffsets, descs = [], [], [0], [0], []
    for x, desc in clips:
        n = (len(x) // (4 * HOP)) * 4 * HOP
        w = normalize_waveform(torch.from_numpy(x[:n])[None])
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
    arrays = {}
    for name, d in data.items():
        pcm = np.clip(np.round(d["wave"] * _PCM_SCALE), -32768, 32767).astype(np.int16)
        buf = io.BytesIO()
        sf.write(buf, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        arrays[f"{name}_flac"] = np.frombuffer(buf.getvalue(), np.uint8)
        arrays[f"{name}_offsets"] = d["offsets"]
        arrays[f"{name}_desc"] = d["desc"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def read_data_pack(path: str | os.PathLike) -> Dict[str, Dict[str, np.ndarray]]:
    """The sets of a :func:`write_data_pack` file, with log-mels recomputed: ``{set name: arrays}``."""
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


def random_crops(data, rng: np.random.Generator, batch: int, frames: int, device: str = "cpu"):
    """``batch`` aligned crops, on ``device``: mel ``[batch, frames, 64]`` and wave ``[batch, frames*160]``."""
    mo, wo = data["mel_offsets"], data["offsets"]
    lengths = np.diff(mo)
    ok = np.flatnonzero(lengths >= frames)
    clips = ok[rng.integers(0, len(ok), batch)]
    mels, waves = [], []
    for c in clips:
        t0 = int(rng.integers(0, lengths[c] - frames + 1))
        mels.append(data["mel"][mo[c] + t0: mo[c] + t0 + frames])
        waves.append(data["wave"][wo[c] + t0 * HOP: wo[c] + (t0 + frames) * HOP])
    return torch.from_numpy(np.stack(mels)).to(device), torch.from_numpy(np.stack(waves)).to(device)
