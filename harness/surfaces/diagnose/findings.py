"""What ``harness diagnose`` finds before running any model: the input's level, clipping, rate and
channels, and a log-mel's statistics against what the VAE was trained on (a front-end mistake shows
there first); the :class:`Diagnosis` every file gets."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from harness.errors import AudioError
from harness.vocabulary import DEFAULTS
from harness.signal import audio, frontend

FLOOR = frontend.LOG_FLOOR_NATS
#: a 0.5-peak waveform's magnitude mel stays below this in practice (full-scale square wave: 1.8 nats;
#: the strict bound ln(256 * max row sum of the mel basis) is 2.81).
MAX_NATS = 2.0
#: the highest-rms 0.5-peak signal (binary noise) has a mean of -0.63 nats: above this is impossible.
MAX_MEAN = -0.5
#: a correct VAE round trip of a trained AudioLDM2-like VAE loses less than this (tiny: 0.2-0.3 nats).
VAE_OK_NATS = 0.5
CLIP_FRACTION = 0.001
LOW_PEAK_DBFS = -40.0
DC_SHARE = 0.1  # a DC offset above this share of the peak is flagged (real recordings stay near 0)
#: the correct calls a variant is compared with (:data:`harness.vocabulary.DEFAULTS`)
REFERENCE_VAE = DEFAULTS["vae"]
REFERENCE_VOCODER = DEFAULTS["vocoder"]


class Finding(NamedTuple):
    """One observation: ``severity`` is ``flag`` (something is wrong) or ``info``; ``code`` is stable."""

    severity: str
    code: str
    message: str


@dataclass
class Diagnosis:
    """The JSON-able ``report`` of one file (what ``harness diagnose --json`` prints for it: its checks, stages and
    verdict; not a matrix record), plus the mels and waveforms the HTML report shows."""

    report: dict
    mels: Dict[str, Optional[np.ndarray]] = field(default_factory=dict)    # title -> [frames, 64]
    waves: Dict[str, Optional[np.ndarray]] = field(default_factory=dict)   # title -> [samples] at 16 kHz


# --- mel statistics ------------------------------------------------------------------------------


def mel_statistics(mel: np.ndarray) -> Dict[str, float]:
    """``mean``, ``std``, ``min``, ``max`` (nats) and ``floor_fraction`` (share at ln(1e-5)) of ``[frames, 64]``."""
    mel = np.asarray(mel, dtype=np.float64)
    return {"mean": float(mel.mean()), "std": float(mel.std()), "min": float(mel.min()), "max": float(mel.max()),
            "floor_fraction": float(np.mean(mel <= FLOOR + 1e-4))}


def check_mel_statistics(mel: np.ndarray) -> List[Finding]:
    """Known front-end mistakes recognised from a log-mel ``[frames, 64]`` alone (no audio needed).

    The ``audioldm2`` mel of a 0.5-peak waveform has ``min >= ln(1e-5) = -11.513`` (the clamp, often
    reached), ``max < 2`` nats and ``mean < -0.5``; a constant pile other than the clamp, a maximum of
    exactly 0 or values above those bounds come from another front-end.
    """
    mel = np.asarray(mel, dtype=np.float64)
    if not np.isfinite(mel).all():
        return [Finding("flag", "nonfinite", "contains NaN/Inf values: the front-end divides by zero or logs 0")]
    s, out = mel_statistics(mel), []
    lo, hi = s["min"], s["max"]
    # a pile of identical values at the minimum is a clamp: where it sits names the compression used
    pile = float(np.mean(mel <= lo + 1e-4))
    if abs(hi) < 1e-6 and lo >= -4.0 - 1e-4:
        out.append(Finding("flag", "power-to-db", "max is exactly 0 and min >= -4: looks like "
                           "power_to_db(ref=max)/20 (original report bug); use the audioldm2 front-end "
                           f"(ln of magnitude mel); its std {s['std']:.2f} is also ~2.3x too small"))
    elif abs(hi) < 1e-6:
        out.append(Finding("flag", "ref-max", "max is exactly 0: normalised to a per-clip reference (ref=max); "
                           "the audioldm2 mel is absolute: ln(clamp(mel, 1e-5)) of a 0.5-peak waveform"))
    elif lo < FLOOR - 1e-3:
        out.append(Finding("flag", "below-floor", f"min {lo:.2f} is below ln(1e-5) = {FLOOR:.3f}: not "
                           "ln(clamp(mel, 1e-5)) (dB? another clamp?)"))
    elif abs(lo - math.log10(frontend.LOG_FLOOR)) < 1e-4:
        out.append(Finding("flag", "log10", "values clamp at -5.00 = log10(1e-5): looks like log10 instead of the "
                           "natural log (values shrunk 2.30x); use ln"))
    elif pile > 0.005 and abs(lo - FLOOR) > 1e-3:  # a float mel hits one value 0.5% of the time only by a clamp
        out.append(Finding("flag", "other-floor", f"{100 * pile:.1f}% of values clamp at {lo:.3f}, not at "
                           f"ln(1e-5) = {FLOOR:.3f}: another log or clamp than the audioldm2 front-end"))
    if hi > MAX_NATS:
        why = ("the high mean suggests a filterbank without Slaney area norm (htk-mel, torchaudio MelScale "
               "defaults)" if s["mean"] > -1.0 else "values look ~doubled: mel of |STFT|^2 (power-mel) or a "
               "filterbank without Slaney area norm (htk-mel)")
        out.append(Finding("flag", "too-high", f"max {hi:.2f} nats is above the {MAX_NATS:.1f} a 0.5-peak "
                           f"waveform's magnitude mel reaches: {why}; or the waveform is not normalised"))
    elif s["mean"] > MAX_MEAN:
        out.append(Finding("flag", "mean-high", f"mean {s['mean']:.2f} nats is above {MAX_MEAN}, impossible for a "
                           "0.5-peak magnitude mel: no Slaney norm (htk-mel) or an un-normalised waveform?"))
    # per-cell spread of even stationary white noise is ~0.27 nats; high and flat means compressed values
    if s["std"] < 0.2 and s["mean"] > -1.5 and not out:
        out.append(Finding("flag", "compressed", f"std {s['std']:.2f} with mean {s['mean']:.2f}: too narrow and too "
                           "high for a ln mel (training mels: std ~1.5..4): log10 (values shrunk 2.30x) or dB/20?"))
    elif s["std"] < 0.2:
        out.append(Finding("info", "narrow", f"std {s['std']:.2f} is very small (training mels: ~1.5..4): "
                           "stationary noise, or compressed values (log10, dB/20)?"))
    if s["mean"] < -9.0:
        out.append(Finding("info", "sparse", f"mean {s['mean']:.2f}: mostly at the floor (silence, a pure tone)"))
    return out


def compare_with_reference(mel: np.ndarray, ref: np.ndarray) -> List[Finding]:
    """Compare a front-end's mel with the ``audioldm2`` mel of the same audio (both ``[frames, 64]``)."""
    a, b = mel_statistics(mel), mel_statistics(ref)
    if mel.shape == ref.shape:
        # a constant shift is a level error: ln(peak / 0.5) when the 0.5-peak normalisation is skipped;
        # cells near the floor are clamped differently and the DC bins differ, so judge the bulk only
        diff = (mel - ref)[(ref > FLOOR + 1) & (mel > FLOOR + 1)]
        med = float(np.median(diff)) if diff.size else 0.0
        if abs(med) > 0.1 and np.mean(np.abs(diff - med) < 0.05) > 0.8:
            return [Finding("flag", "offset", f"a constant offset of {med:+.2f} nats from the audioldm2 mel: "
                            "the waveform is not normalised to a 0.5 peak (offset = ln(peak / 0.5))")]
    ratio = a["std"] / max(b["std"], 1e-9)
    if abs(a["mean"] - b["mean"]) > 0.5 or not 0.75 <= ratio <= 1.33 or abs(a["max"] - b["max"]) > 0.75:
        return [Finding("flag", "far-from-reference", f"statistics far from the audioldm2 mel of the same audio: "
                        f"mean {a['mean']:.2f} vs {b['mean']:.2f}, std {a['std']:.2f} vs {b['std']:.2f} "
                        f"(x{ratio:.2f}), max {a['max']:.2f} vs {b['max']:.2f} nats")]
    return []


def frontend_findings(mel: np.ndarray, ref: Optional[np.ndarray]) -> List[Finding]:
    """Absolute checks, minus what the audio itself explains, plus the comparison with ``ref`` if given."""
    found = check_mel_statistics(mel)
    if ref is None:
        return found
    own = {f.code for f in check_mel_statistics(ref)}  # e.g. a pure tone is sparse whatever the front-end
    return [f for f in found if f.code not in own] + compare_with_reference(mel, ref)


# --- inputs --------------------------------------------------------------------------------------


def check_input(info: dict, seconds: float) -> List[Finding]:
    """Findings about the audio file itself (from :func:`harness.signal.audio.load_info`)."""
    out = []
    if info["sample_rate"] < audio.SAMPLE_RATE:
        out.append(Finding("flag", "band-limited", f"{info['sample_rate']} Hz input: nothing between "
                           f"{info['sample_rate'] / 2000:g} and 8 kHz exists in it, so every stage is judged "
                           "against a band the file never had (the vocoder gets the blame); use a 16 kHz or "
                           "higher-rate source"))
    elif info["sample_rate"] != audio.SAMPLE_RATE:
        out.append(Finding("info", "resampled", f"{info['sample_rate']} Hz: resampled to 16 kHz"))
    if info["channels"] > 1:
        out.append(Finding("info", "channels", f"{info['channels']} channels: the first is kept (as AudioLDM2's "
                           "training code does, no mix-down)"))
    if info["duration"] > seconds:
        out.append(Finding("info", "cropped", f"{info['duration']:.2f} s: the first {seconds:.2f} s are analysed"))
    if info["clipped_fraction"] > CLIP_FRACTION:
        out.append(Finding("flag", "clipping", f"clipping: {100 * info['clipped_fraction']:.2f}% of samples at full "
                           "scale (> 0.1%): that distortion is in the input, not the chain"))
    if info["peak_dbfs"] < LOW_PEAK_DBFS:
        out.append(Finding("flag", "low-level", f"very low level: peak {info['peak_dbfs']:.1f} dBFS; normalising to "
                           f"a 0.5 peak raises the noise floor by {-info['peak_dbfs'] - 6.0:.0f} dB"))
    peak = 10 ** (info["peak_dbfs"] / 20) if np.isfinite(info["peak_dbfs"]) else 0.0
    dc = info.get("dc_offset", 0.0)
    if peak > 0 and abs(dc) > DC_SHARE * peak:
        out.append(Finding("flag", "dc-offset", f"DC offset {dc:+.3f} ({100 * abs(dc) / peak:.0f}% of the peak): "
                           "AudioLDM2's normalisation removes a constant offset, but the signal left is that much "
                           "smaller and a drifting offset puts energy in the lowest mel bins; remove it (high-pass) "
                           "before judging the chain"))
    if info.get("truncated"):
        out.append(Finding("flag", "truncated", "truncated WAV: the header claims more data than the file holds"))
    return out


def silent_fraction(x: np.ndarray) -> float:
    """Share of 10 ms frames whose rms is 60 dB or more below the peak."""
    frames = x[: len(x) // audio.HOP * audio.HOP].reshape(-1, audio.HOP)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.mean(rms < 1e-3 * np.max(np.abs(x))))


def load_mel(path: str) -> tuple:
    """A user's log-mel ``.npy`` -> ``([frames, 64] float32, findings)``; :class:`AudioError` if unusable."""
    if not os.path.isfile(path):
        raise AudioError(path, "file not found")
    with open(path, "rb") as fh:  # np.load's own error for a non-.npy file talks about pickles
        if fh.read(6) != b"\x93NUMPY":
            raise AudioError(path, "not a .npy file (no NPY header)", "save it with numpy.save")
    try:
        mel = np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise AudioError(path, f"not a readable .npy array ({type(exc).__name__}: {exc})") from exc
    while mel.ndim > 2 and mel.shape[0] == 1:  # [1, 1, T, 64] as fed to the VAE
        mel = mel[0]
    found = []
    if mel.ndim == 2 and mel.shape[0] == audio.N_MELS and mel.shape[1] != audio.N_MELS:
        found.append(Finding("flag", "transposed", f"shape {mel.shape} looks transposed: a log-mel is [frames, 64] "
                             "(the vocoder wants [batch, frames, 64]); analysed as its transpose"))
        mel = mel.T
    if mel.ndim != 2 or mel.shape[1] != audio.N_MELS or not np.issubdtype(mel.dtype, np.number):
        raise AudioError(path, f"expected a log-mel [frames, 64] (or [64, frames]), got shape {mel.shape} "
                         f"dtype {mel.dtype}", "save it with `harness mel`")
    if mel.shape[0] < audio.VAE_FACTOR:
        raise AudioError(path, f"too short: {mel.shape[0]} frames; at least {audio.VAE_FACTOR} are needed")
    if not np.isfinite(mel).all():
        raise AudioError(path, f"{int(np.count_nonzero(~np.isfinite(mel)))} NaN/Inf values in the log-mel")
    keep = mel.shape[0] // audio.VAE_FACTOR * audio.VAE_FACTOR
    if keep != mel.shape[0]:
        found.append(Finding("info", "cropped", f"{mel.shape[0]} frames cropped to {keep} (a multiple of 4)"))
    return mel[:keep].astype(np.float32), found
