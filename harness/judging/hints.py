"""Fix hints from the evidence: what the measured difference between a stage's output and its reference
looks like, and the likely cause in the project's code that it points at.

A failing check knows which stage failed and has both arrays. :func:`hint` looks at their difference and
names one :class:`Kind` of mistake with a sentence a user can act on, for example "a constant offset of
+0.693 nats in every bin and frame: ...". It is a pure function of the arrays (numpy only, no model), so a
failure message, the job summary or a report can call it on whatever they hold.

What it recognises (a shape that explains most of the difference wins; mels and waveforms are looked at
each in their own way, a stage only changes the words):

=========  ===========================================================================================
kind       what the difference looks like
=========  ===========================================================================================
layout     a mel ``[64, frames]`` where ``[frames, 64]`` is expected (frames and bins swapped)
length     a different frame or sample count (hop, padding, a truncated or padded output)
floor      the mels differ only where the reference sits at the log floor ``ln(1e-5)``
lag        the output matches the reference shifted by a few frames or samples (alignment, padding)
clipping   the waveform is flat at a level below the reference's peak (a limiter, a clamp)
gain       the waveform is the reference times a constant (a gain stage, a normalisation)
band-loss  the waveform or mel loses its high frequencies (a low-pass, a resampling)
scale      a VAE stage whose output is a near-affine function of the reference (a scaling factor)
window     quiet mel bins raised, loud ones barely moved: spectral leakage of another STFT window
offset     one constant added to every mel bin (a waveform level: a missing or different normalisation)
affine     the mel is ``a * reference + b`` with ``a != 1`` (log base, power mel, dB or standardisation)
dc         only the lowest mel bins differ (a DC offset: the mean is not removed)
slope      one offset per mel bin, tilting across them (the filterbank: HTK vs Slaney, fmax, area norm)
noise      an uncorrelated residual at a measured SNR (added noise; at a VAE stage, a posterior sample)
none       no difference worth naming
other      a difference of no shape listed here
=========  ===========================================================================================

Example
-------
>>> import numpy as np
>>> from harness.judging.hints import Kind, hint
>>> reference = np.random.default_rng(0).normal(-4.0, 2.0, size=(256, 64))
>>> h = hint("frontend", reference + np.log(2.0), reference)
>>> h.kind is Kind.OFFSET
True
>>> h.sentence.startswith("a constant offset of +0.693 nats")
True

The stages are those of :mod:`harness.judging.stages`. The front-end stage and the golden ``decode`` and
``roundtrip`` stages compare mels ``[frames, 64]``; the golden ``vocoder`` stage compares waveforms
``[samples]`` at 16 kHz. The clip ``vocoder`` and ``chain`` stages judge a waveform against a mel or against the
input, through a vocoder that never reproduces the input's phase: for a hint at the vocoder stage, compare the
output with HiFi-GAN's on the same mel (it reproduces its own output sample for sample, as the golden stage
does); at the chain stage, give :func:`hint` the AudioLDM2 mels of the output and of the correct combination's
output (``harness.signal.frontend.audioldm2``). Never a waveform and a mel. At the VAE stages (``vae``, ``roundtrip``,
``decode``) a difference that follows the reference is a scaling factor and one that does not is a random
sample; elsewhere the mel shapes above are looked for.

Wiring it into a failure, one failing item ``i`` of a batch (a mel ``[b, 1, T, 64]``, a waveform ``[b, samples]``)::

    from harness.judging.hints import hint

    found = hint(stage, out[i].cpu().numpy(), reference[i].cpu().numpy())
    message = f"{message} (likely cause: {found.sentence})"
    properties.append(("harness_hint", found.sentence))   # shown by harness.surfaces.html_report
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from harness.vocabulary import CLIP_STAGES, COMPONENT_AT, GOLDEN_STAGES
from harness.signal.audio import HOP, N_MELS, SAMPLE_RATE
from harness.signal.frontend import LOG_FLOOR_NATS

#: every stage, clip and golden
STAGES = frozenset(CLIP_STAGES + GOLDEN_STAGES)
#: the stages whose component is the VAE: a structured difference there points at its scaling factor
VAE_STAGES = frozenset(stage for stage, component in COMPONENT_AT.items() if component == "vae")
#: a mean absolute difference below this (nats, or a share of the reference's RMS for waveforms) is none at all
NEGLIGIBLE = 1e-5
#: Hamming's coherent gain over Hann's, in nats: ``ln(0.54 / 0.5)``
HAMMING_OFFSET_NATS = float(np.log(0.54 / 0.5))
#: the largest shift tried when looking for a lag: frames for mels, samples for waveforms
MAX_LAG_FRAMES = 8
MAX_LAG_SAMPLES = 4 * HOP


class Kind(enum.Enum):
    """The shape of a difference, each pointing at a class of mistake (see the module's table)."""

    LAYOUT = "layout"
    LENGTH = "length"
    FLOOR = "floor"
    LAG = "lag"
    CLIPPING = "clipping"
    GAIN = "gain"
    BAND_LOSS = "band-loss"
    SCALE = "scale"
    WINDOW = "window"
    OFFSET = "offset"
    AFFINE = "affine"
    DC = "dc"
    SLOPE = "slope"
    NOISE = "noise"
    NONE = "none"
    OTHER = "other"


@dataclass(frozen=True)
class Hint:
    """A likely cause of a failure, from the shape of its difference.

    Attributes
    ----------
    kind : Kind
        The shape that was found.
    sentence : str
        One line, no newline: what was measured and where in the project's code to look.
    measured : dict of str -> float
        The figures behind it (e.g. ``offset_nats``, ``lag_samples``, ``gain_db``, ``snr_db``, ``cutoff_hz``).
    """

    kind: Kind
    sentence: str
    measured: Dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.sentence


def hint(stage: str, output, reference) -> Hint:
    """The likely cause of the difference between a stage's ``output`` and its ``reference``.

    Parameters
    ----------
    stage : str
        The stage that compared them (``frontend``, ``vae``, ``roundtrip``, ``decode``, ``vocoder``, ``chain``).
    output, reference : array_like
        Both log-mels (natural log, AudioLDM2's) ``[frames, 64]`` or ``[1, frames, 64]`` or ``[1, 1, frames, 64]``,
        in nats; or both waveforms ``[samples]`` (or ``[1, samples]``) at 16 kHz. One item, not a batch.

    Returns
    -------
    Hint

    Raises
    ------
    ValueError
        ``stage`` is not a stage, or the arrays are neither two mels nor two waveforms, hold NaN/Inf, or are empty.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {sorted(STAGES)}")
    out, ref = _squeeze(output, "output"), _squeeze(reference, "reference")
    if out.ndim != ref.ndim:
        raise ValueError(f"output {out.shape} and reference {ref.shape} are not the same kind of array: give two "
                         f"mels [frames, {N_MELS}] or two waveforms [samples]")
    if out.ndim == 1:
        return _wave_hint(stage, out, ref)
    return _mel_hint(stage, out, ref)


def _squeeze(x, what: str) -> np.ndarray:
    """``x`` as float64 without its leading unit axes: ``[frames, bins]`` or ``[samples]``."""
    a = np.asarray(x, dtype=np.float64)
    while a.ndim > 1 and a.shape[0] == 1:
        a = a[0]
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"{what}: expected a mel [frames, {N_MELS}] or a waveform [samples], got shape "
                         f"{np.shape(x)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} holds NaN or Inf: nothing can be measured on it")
    return a


# --- mels ----------------------------------------------------------------------------------------


def _mel_hint(stage: str, out: np.ndarray, ref: np.ndarray) -> Hint:
    if out.shape != ref.shape:
        return _mel_shape_hint(out, ref)
    d = out - ref
    l1 = float(np.abs(d).mean())
    if l1 < NEGLIGIBLE:
        return Hint(Kind.NONE, f"no difference worth naming (mean |difference| {l1:.2g} nats)", {"mel_l1": l1})
    for test in (_mel_floor, _mel_lag):
        found = test(out, ref, d, l1)
        if found is not None:
            return found
    if stage in VAE_STAGES:
        return _vae_hint(stage, out, ref, d, l1)
    for test in (_mel_band_loss, _mel_filterbank, _mel_affine, _mel_window, _mel_dc):
        found = test(out, ref, d, l1)
        if found is not None:
            return found
    return _mel_residual(stage, d, l1)


def _mel_shape_hint(out: np.ndarray, ref: np.ndarray) -> Hint:
    if out.shape == ref.shape[::-1] or (out.shape[0] == N_MELS and out.shape[1] != N_MELS):
        return Hint(Kind.LAYOUT, f"frames and mel bins swapped: the output is {list(out.shape)} where "
                                 f"[frames, bins] {list(ref.shape)} is expected; transpose it (or stop "
                                 "transposing) before it leaves your code", {})
    if out.shape[1] != ref.shape[1]:
        return Hint(Kind.OTHER, f"{out.shape[1]} mel bins where {ref.shape[1]} are expected: the mel filterbank "
                                "has the wrong number of bands", {"bins": float(out.shape[1])})
    frames, expected = out.shape[0], ref.shape[0]
    ratio = frames / expected
    why = (f"about {ratio:.2f}x the frames: a hop of {HOP / ratio:.0f} samples where {HOP} is expected"
           if abs(ratio - 1) > 0.05 else "padding or centring of the STFT differs (or the clip is cut)")
    return Hint(Kind.LENGTH, f"{frames} frames where {expected} are expected: {why}",
                {"frames": float(frames), "expected_frames": float(expected)})


def _mel_floor(out, ref, d, l1) -> Optional[Hint]:
    """Differences only where the reference sits at ``ln(1e-5)``: the output's log floor differs."""
    at_floor = ref <= LOG_FLOOR_NATS + 1e-3
    if not at_floor.any() or np.abs(d[at_floor]).sum() < 0.95 * np.abs(d).sum():
        return None
    lowest = float(out[at_floor].min())
    return Hint(Kind.FLOOR, f"the mels differ only in silent bins, where the reference sits at its log floor "
                            f"ln(1e-5) = {LOG_FLOOR_NATS:.2f} and yours goes down to {lowest:.2f}: clamp the mel "
                            "at 1e-5 before the log", {"floor_nats": lowest})


def _shift_l1(out: np.ndarray, ref: np.ndarray, k: int) -> float:
    """Mean |out[t] - ref[t - k]| over the frames (or samples) both cover."""
    n = len(out)
    if k >= 0:
        return float(np.abs(out[k:] - ref[: n - k]).mean())
    return float(np.abs(out[: n + k] - ref[-k:]).mean())


def _mel_lag(out, ref, d, l1) -> Optional[Hint]:
    n = min(MAX_LAG_FRAMES, len(out) // 4)
    costs = {k: _shift_l1(out, ref, k) for k in range(-n, n + 1) if k}
    if not costs:
        return None
    k = min(costs, key=costs.get)
    # a shift must explain most of the difference: a smooth mel changes little from frame to frame anyway
    if costs[k] > 0.3 * l1:
        return None
    direction = "late" if k > 0 else "early"
    return Hint(Kind.LAG, f"the output is {abs(k)} frame(s) ({abs(k) * HOP} samples) {direction}: the framing is "
                          "off (padding, STFT centring, an off-by-one in the frame index)",
                {"lag_frames": float(k), "mel_l1": l1, "mel_l1_aligned": costs[k]})


def _affine_fit(out: np.ndarray, ref: np.ndarray) -> Tuple[float, float, float]:
    """Least squares ``out ~ a * ref + b`` over the bins above the floor: ``(a, b, mean |residual|)``."""
    live = ref > LOG_FLOOR_NATS + 1e-3
    x, y = (ref[live], out[live]) if live.sum() > 2 else (ref.ravel(), out.ravel())
    a, b = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (1.0, float(np.mean(y - x)))
    return float(a), float(b), float(np.abs(y - a * x - b).mean())


def _vae_hint(stage, out, ref, d, l1) -> Hint:
    """At a VAE stage a difference that follows the reference (an affine map of it explains most of it) comes
    from latents of the wrong size; one that does not, from latents drawn at random."""
    a, b, res = _affine_fit(out, ref)
    measured = {"mel_l1": l1, "slope": a, "offset_nats": float(d.mean()), "residual_nats": res}
    if res < 0.65 * l1:
        where = {"decode": "the decode divides the latents by", "roundtrip": "the encode or decode uses",
                 "vae": "the encode or decode uses"}[stage]
        return Hint(Kind.SCALE, f"a shift of {d.mean():+.4f} nats that follows the reference mel (fit "
                                f"{a:.4f} x {b:+.4f}): {where} a scaling factor other than the VAE's "
                                "config.scaling_factor", measured)
    return Hint(Kind.NOISE, f"an uncorrelated difference of {l1:.3f} nats after the VAE: the latents are drawn "
                            "at random (a posterior sample, or one at a temperature above 1) where the "
                            "posterior's mode is expected", measured)


def _mel_window(out, ref, d, l1) -> Optional[Hint]:
    """Loud bins within a few hundredths of a nat, quiet bins raised: the window's sidelobes leak energy into
    the quiet bins (Hamming's stay at -43 dB where Hann's fall away), while its coherent and noise gains move
    the loud ones by 0.03 to 0.08 nats at most."""
    loud_median = float(np.median(d[ref > np.percentile(ref, 75)]))
    quiet_median = float(np.median(d[ref < np.percentile(ref, 25)]))
    if not (0.0 <= loud_median <= HAMMING_OFFSET_NATS + 0.01) or quiet_median < max(0.04, 3 * loud_median) \
            or np.mean(d > -0.01) < 0.9:
        return None
    return Hint(Kind.WINDOW, f"quiet bins raised by {quiet_median:+.3f} nats and loud ones by only "
                             f"{loud_median:+.3f} (spectral leakage): the STFT window differs, use AudioLDM2's "
                             "periodic Hann window of 1024 samples (not Hamming)",
                {"quiet_nats": quiet_median, "loud_nats": loud_median})


def _mel_affine(out, ref, d, l1) -> Optional[Hint]:
    a, b, res = _affine_fit(out, ref)
    if res > 0.25 * l1:  # a power mel's fit leaves ~0.21: the mel of |S|^2 is not exactly twice that of |S|
        return None
    measured = {"slope": a, "offset_nats": b, "mel_l1": l1}
    if abs(a - 1) < 0.02:
        b = float(d.mean())
        measured["offset_nats"] = b
        return Hint(Kind.OFFSET, f"a constant offset of {b:+.3f} nats in every bin and frame (a level {np.exp(b):.3g}"
                                 f"x the reference's): the waveform's level differs, normalise it to AudioLDM2's "
                                 "0.5 peak (mean removed) before the STFT, and use the magnitude, not a scaled "
                                 "one", measured)
    # (slope, how far from it a fit may land, what it means): a mel of |S|^2 fits ~1.88, not 2, and librosa's
    # power_to_db(...)/20 ~0.42, not 0.434, because the mel sums the bins before the log
    known = [(1 / np.log(10), 0.05, "log10 instead of ln (librosa's power_to_db(...) / 20 is one)"),
             (2.0, 0.08, "a power mel (|STFT|^2) instead of the magnitude"),
             (20 / np.log(10), 0.03, "decibels (20 log10) instead of ln"),
             (10 / np.log(10), 0.03, "power decibels (10 log10) instead of ln")]
    name = next((why for k, tolerance, why in known if abs(a / k - 1) < tolerance), None)
    why = name or "another unit or normalisation of the log-mel (dB scaled to a range, a standardised mel)"
    return Hint(Kind.AFFINE, f"the output is {a:.3f} x the reference {b:+.3f} nats: {why}; return AudioLDM2's "
                             "natural-log mel, ln(clamp(mel, 1e-5)), unscaled", measured)


def _mel_dc(out, ref, d, l1) -> Optional[Hint]:
    per_bin = np.abs(d).mean(axis=0)
    rest = float(np.median(per_bin[2:])) if len(per_bin) > 2 else 0.0
    if per_bin[:2].max() < 5 * max(rest, NEGLIGIBLE) or per_bin.argmax() > 1:
        return None
    return Hint(Kind.DC, f"the lowest mel bins differ most ({per_bin[:2].max():.3f} nats against {rest:.3f} "
                         "elsewhere): a DC offset, remove the waveform's mean before normalising it",
                {"low_bin_nats": float(per_bin[:2].max()), "other_bins_nats": rest})


def _mel_band_loss(out, ref, d, l1) -> Optional[Hint]:
    per_bin = d.mean(axis=0)
    lost = np.nonzero(per_bin < -1.0)[0]
    if len(lost) == 0 or lost[0] == 0 or not (per_bin[lost[0]:] < -0.5).all() \
            or np.abs(per_bin[: lost[0]]).mean() > 0.2 * np.abs(per_bin[lost[0]:]).mean():
        return None
    return Hint(Kind.BAND_LOSS, f"mel bins {lost[0]} to {len(per_bin) - 1} lose {-per_bin[lost[0]:].mean():.2f} "
                                "nats while the lower ones hold: the audio is band-limited (a low-pass, a lower "
                                "sample rate, or a filterbank whose fmax is below 8 kHz)",
                {"first_lost_bin": float(lost[0])})


def _mel_filterbank(out, ref, d, l1) -> Optional[Hint]:
    """One offset per mel bin explains the difference, far better than an affine map of the reference: each band
    is weighted differently, which is what another filterbank (HTK scale, no area normalisation, another fmax)
    does to a log-mel."""
    per_bin = d.mean(axis=0)
    per_bin_residual = float(np.abs(d - per_bin).mean())
    _, _, affine_residual = _affine_fit(out, ref)
    if per_bin_residual > 0.1 * l1 or per_bin_residual > 0.5 * affine_residual or per_bin.std() < 0.1:
        return None
    slope, _ = np.polyfit(np.arange(len(per_bin)), per_bin, 1)
    tilt = float(slope * (len(per_bin) - 1))
    return Hint(Kind.SLOPE, f"a difference set by the mel bin ({per_bin[0]:+.2f} nats in the lowest, "
                            f"{per_bin[-1]:+.2f} in the highest; a tilt of {tilt:+.2f}): the mel filterbank differs, "
                            "use AudioLDM2's (Slaney scale and area normalisation, 64 bands, fmin 0, fmax 8 kHz; "
                            "not HTK)", {"tilt_nats": tilt, "per_bin_residual_nats": per_bin_residual})


def _mel_residual(stage, d, l1) -> Hint:
    per_bin = np.abs(d.mean(axis=0)).mean()
    if per_bin < 0.2 * l1:
        return Hint(Kind.NOISE, f"an uncorrelated difference of {l1:.3f} nats with no shape across bins or frames: "
                                "noise or a random step in the output", {"mel_l1": l1})
    return Hint(Kind.OTHER, f"a difference of {l1:.3f} nats with no shape recognised: compare the mel figure of "
                            "the evidence", {"mel_l1": l1})


# --- waveforms -----------------------------------------------------------------------------------


def _wave_hint(stage: str, out: np.ndarray, ref: np.ndarray) -> Hint:
    if len(out) != len(ref):
        return _wave_length_hint(out, ref)
    scale = float(np.sqrt(np.mean(ref ** 2))) or 1.0
    rel = float(np.abs(out - ref).mean()) / scale
    if rel < NEGLIGIBLE:
        return Hint(Kind.NONE, f"no difference worth naming ({rel:.2g} of the reference's RMS)", {})
    for test in (_wave_lag, _wave_clipping, _wave_gain, _wave_band_loss, _wave_noise):
        found = test(out, ref)
        if found is not None:
            return found
    return Hint(Kind.OTHER, "a waveform difference of no shape recognised: listen to the evidence's WAVs", {})


def _wave_length_hint(out, ref) -> Hint:
    diff = len(out) - len(ref)
    frames = f" ({diff / HOP:+g} frames of {HOP})" if diff % HOP == 0 else ""
    what = "cut short" if diff < 0 else "too long"
    return Hint(Kind.LENGTH, f"{len(out)} samples where {len(ref)} are expected, {abs(diff)} {what}{frames}: the "
                             f"output must be {HOP} samples per mel frame (crop the vocoder's extra samples at the "
                             "end, no more)", {"samples": float(len(out)), "expected_samples": float(len(ref))})


def _xcorr(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Circular cross-correlation ``c[k] = sum out[t] ref[t - k]`` through the FFT, normalised."""
    n = 1 << int(np.ceil(np.log2(2 * len(out))))
    c = np.fft.irfft(np.fft.rfft(out, n) * np.conj(np.fft.rfft(ref, n)), n)
    return c / (np.linalg.norm(out) * np.linalg.norm(ref) + 1e-30)


def _wave_lag(out, ref) -> Optional[Hint]:
    c = _xcorr(out, ref)
    lags = np.r_[np.arange(0, MAX_LAG_SAMPLES + 1), np.arange(-MAX_LAG_SAMPLES, 0)]
    window = np.r_[c[: MAX_LAG_SAMPLES + 1], c[-MAX_LAG_SAMPLES:]]
    i = int(np.argmax(window))
    k = int(lags[i])
    if k == 0 or window[i] < 0.9 or window[i] < c[0] + 0.05:
        return None
    direction = "late" if k > 0 else "early"
    return Hint(Kind.LAG, f"the output is {abs(k)} samples {direction} (cross-correlation {window[i]:.3f} there, "
                          f"{c[0]:.3f} at 0): padding, a delay or a crop at the wrong end",
                {"lag_samples": float(k), "correlation": float(window[i])})


def _wave_clipping(out, ref) -> Optional[Hint]:
    level = float(np.abs(out).max())
    flat = np.abs(out) >= level * (1 - 1e-6)
    peak = float(np.abs(ref).max())
    # a clipped output holds its level for runs of samples, and is left alone below it
    if flat.mean() < 0.002 or level > 0.98 * peak or np.abs(ref[flat]).min() < level * (1 - 1e-3):
        return None
    below = ~flat
    if np.abs(out[below] - ref[below]).mean() > 0.05 * np.abs(ref[below]).mean():
        return None
    return Hint(Kind.CLIPPING, f"{100 * flat.mean():.2f} % of the samples are flat at {level:.4f}, "
                               f"{20 * np.log10(level / peak):.1f} dB below the reference's peak: the output is "
                               "clipped (a limiter, a clamp, a conversion without headroom)",
                {"clip_level": level, "clipped_share": float(flat.mean())})


def _wave_gain(out, ref) -> Optional[Hint]:
    g = float(np.dot(out, ref) / (np.dot(ref, ref) + 1e-30))
    residual = out - g * ref
    if g <= 0 or np.sum(residual ** 2) > 1e-4 * np.sum(out ** 2) or abs(20 * np.log10(g)) < 0.05:
        return None
    db = 20 * np.log10(g)
    return Hint(Kind.GAIN, f"the output is the reference at {db:+.2f} dB (x{g:.4g}): a gain or normalisation "
                           "is applied to it", {"gain_db": float(db), "gain": g})


def _band_db(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return np.array([10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].sum() + 1e-30)
                     for lo, hi in zip(edges[:-1], edges[1:])])


def _wave_band_loss(out, ref) -> Optional[Hint]:
    edges = np.arange(0, SAMPLE_RATE / 2 + 1, 500.0)
    loss = _band_db(out, edges) - _band_db(ref, edges)
    lost = np.nonzero(loss < -6.0)[0]
    # the lowest band holds and everything above the first lost band stays lost: a brick-wall low-pass and
    # the gradual roll-off of a linear-interpolation resampler alike
    if len(lost) == 0 or lost[0] == 0 or abs(loss[0]) > 1.5 or np.median(loss[lost[0]:]) > -10.0:
        return None
    cutoff = float(edges[lost[0]])
    return Hint(Kind.BAND_LOSS, f"the output loses {-np.median(loss[lost[0]:]):.0f} dB above {cutoff:.0f} Hz "
                                "while the bands below hold: it is band-limited (a low-pass, a resampling through "
                                "a lower rate, or a filterbank with fmax below 8 kHz)",
                {"cutoff_hz": cutoff, "loss_db": float(-np.median(loss[lost[0]:]))})


def _wave_noise(out, ref) -> Optional[Hint]:
    residual = out - ref
    spec = np.abs(np.fft.rfft(residual)) ** 2 + 1e-30
    flatness = float(np.exp(np.mean(np.log(spec))) / np.mean(spec))
    corr = float(abs(np.dot(residual, ref)) / (np.linalg.norm(residual) * np.linalg.norm(ref) + 1e-30))
    snr = float(10 * np.log10(np.sum(ref ** 2) / np.sum(residual ** 2)))
    # white noise has a flatness near 0.56 (an exponential's geometric over arithmetic mean); a filtered
    # residual, far less
    if flatness < 0.3 or corr > 0.1:
        return None
    return Hint(Kind.NOISE, f"an uncorrelated, broadband residual at {snr:.1f} dB SNR: noise is added to the output "
                            "(dither, a random step, a noisy resampler)", {"snr_db": snr, "flatness": flatness})
