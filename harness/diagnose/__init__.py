"""``harness diagnose``: run the chain stage by stage on one file and say which stage loses the quality.

Per file: input checks (level, clipping, rate, channels), a front-end check that compares the log-mel's
statistics with what the VAE was trained on, every stage measured on its own (VAE round trip, vocoder
alone, Griffin-Lim baseline, full chain) and a one-line verdict. A ``.npy`` log-mel can be diagnosed
too (statistics, VAE round trip, vocoder). The HTML report is in :mod:`harness.diagnose.report`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional

import numpy as np
import torch

from .. import audio, frontend, metrics
from ..griffinlim import griffin_lim_from_mel
from ..matrix import REFERENCE, Combination, StageResult, grid_frames, measure

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
#: the correct calls a variant is compared with: the reference combination's (:data:`harness.matrix.REFERENCE`)
REFERENCE_VAE = REFERENCE.vae
REFERENCE_VOCODER = REFERENCE.vocoder


class Finding(NamedTuple):
    """One observation: ``severity`` is ``flag`` (something is wrong) or ``info``; ``code`` is stable."""

    severity: str
    code: str
    message: str


@dataclass
class Diagnosis:
    """The JSON-able ``record`` of one file, plus the mels and waveforms the HTML report shows."""

    record: dict
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


def check_frontend(mel: np.ndarray, ref: Optional[np.ndarray]) -> List[Finding]:
    """Absolute checks, minus what the audio itself explains, plus the comparison with ``ref`` if given."""
    found = check_mel_statistics(mel)
    if ref is None:
        return found
    own = {f.code for f in check_mel_statistics(ref)}  # e.g. a pure tone is sparse whatever the front-end
    return [f for f in found if f.code not in own] + compare_with_reference(mel, ref)


# --- inputs --------------------------------------------------------------------------------------


def check_input(info: dict, seconds: float) -> List[Finding]:
    """Findings about the audio file itself (from :func:`harness.audio.load_info`)."""
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
        raise audio.AudioError(path, "file not found")
    with open(path, "rb") as fh:  # np.load's own error for a non-.npy file talks about pickles
        if fh.read(6) != b"\x93NUMPY":
            raise audio.AudioError(path, "not a .npy file (no NPY header)", "save it with numpy.save")
    try:
        mel = np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise audio.AudioError(path, f"not a readable .npy array ({type(exc).__name__}: {exc})") from exc
    while mel.ndim > 2 and mel.shape[0] == 1:  # [1, 1, T, 64] as fed to the VAE
        mel = mel[0]
    found = []
    if mel.ndim == 2 and mel.shape[0] == frontend.N_MELS and mel.shape[1] != frontend.N_MELS:
        found.append(Finding("flag", "transposed", f"shape {mel.shape} looks transposed: a log-mel is [frames, 64] "
                             "(the vocoder wants [batch, frames, 64]); analysed as its transpose"))
        mel = mel.T
    if mel.ndim != 2 or mel.shape[1] != frontend.N_MELS or not np.issubdtype(mel.dtype, np.number):
        raise audio.AudioError(path, f"expected a log-mel [frames, 64] (or [64, frames]), got shape {mel.shape} "
                               f"dtype {mel.dtype}", "save it with `harness mel`")
    if mel.shape[0] < audio.VAE_FACTOR:
        raise audio.AudioError(path, f"too short: {mel.shape[0]} frames; at least {audio.VAE_FACTOR} are needed")
    if not np.isfinite(mel).all():
        raise audio.AudioError(path, f"{int(np.count_nonzero(~np.isfinite(mel)))} NaN/Inf values in the log-mel")
    keep = mel.shape[0] // audio.VAE_FACTOR * audio.VAE_FACTOR
    if keep != mel.shape[0]:
        found.append(Finding("info", "cropped", f"{mel.shape[0]} frames cropped to {keep} (a multiple of 4)"))
    return mel[:keep].astype(np.float32), found


# --- stages --------------------------------------------------------------------------------------


def _mel_metrics(out: torch.Tensor, ref: torch.Tensor, snr: bool = True) -> Dict[str, float]:
    """Mel-domain ``mel_l1`` (nats) and ``mel_snr`` (dB) of one item, as floats (:func:`harness.metrics.mel_l1`)."""
    names = ("mel_l1", "mel_snr") if snr else ("mel_l1",)
    return {n: float(getattr(metrics, n)(mel_estimate=out, mel_reference=ref)[0]) for n in names}


def _stage(label: str, source: str, fn) -> tuple:
    """Run one stage; ``fn() -> (metrics, mel [frames, 64] or None, wave [samples] or None)``.

    Any exception is the stage's result, not a crash (:func:`harness.matrix.measure` with every
    ``Exception``): diagnosing user code means its failures are findings.
    """

    kept = {}

    def figures():
        m, kept["mel"], kept["wave"] = fn()
        return m

    result = measure(figures, errors=(Exception,))
    return ({"label": label, "input": source, "metrics": result.metrics, "error": result.error},
            kept.get("mel"), kept.get("wave"))


def run_stages(chain, true: torch.Tensor, mel: torch.Tensor, fe_name: str, vae: str, vocoder: str,
               ref_wave: Optional[torch.Tensor], seed: int = 0) -> tuple:
    """Measure every stage on its own -> ``(stages, mels, waves)`` (the last two keyed by stage label).

    ``true`` [1, 1, T, 64] is the mel the VAE and vocoder were trained on (the audioldm2 mel of the audio,
    or the user's .npy), ``mel`` the chosen front-end's; ``ref_wave`` [1, 160 T] the normalised input, or
    None for a .npy, whose outputs are then judged by re-analysing their mel against ``true``.
    """
    fe = frontend.get_frontend("audioldm2")
    cpu_true = true.float().cpu()
    n = true.shape[2] * frontend.HOP

    def judge(wave):
        wave = wave[:, :n].float().cpu()
        out_mel = fe(wave)
        if ref_wave is None:
            m = _mel_metrics(out_mel, cpu_true)
        else:  # mse is redundant with snr once gain-matched
            m = {k: float(v[0]) for k, v in metrics.compute(wave, ref_wave).items() if k != "mse"}
        return m, out_mel[0, 0].numpy(), wave[0].numpy()

    def roundtrip(name, m, snr=True):
        out = chain.vae_roundtrip(m, name, seed).float().cpu()
        return _mel_metrics(out, m.float().cpu(), snr), out[0, 0].numpy(), None

    plan, src = [], "audioldm2 mel" if ref_wave is not None else ".npy mel"
    if ref_wave is not None:
        plan.append(("frontend", f"front-end {fe_name}", "audio",
                     lambda: (_mel_metrics(mel.float().cpu(), cpu_true), mel[0, 0].float().cpu().numpy(), None)))
    plan.append(("vae", f"VAE round trip {vae}", src, lambda: roundtrip(vae, true)))
    if vae != REFERENCE_VAE:
        plan.append(("vae_reference", f"VAE round trip {REFERENCE_VAE} (reference)", src,
                     lambda: roundtrip(REFERENCE_VAE, true)))
    if ref_wave is not None and fe_name != "audioldm2":
        # what the original report measured: the VAE fed the wrong front-end (its own scale: L1 only)
        plan.append(("vae_frontend", f"VAE round trip {vae} on {fe_name}", f"{fe_name} mel",
                     lambda: roundtrip(vae, mel, snr=False)))
    plan.append(("vocoder", f"vocoder {vocoder}", src, lambda: judge(chain.vocoder_out(true, vocoder))))
    if vocoder != REFERENCE_VOCODER:
        plan.append(("vocoder_reference", f"vocoder {REFERENCE_VOCODER} (reference)", src,
                     lambda: judge(chain.vocoder_out(true, REFERENCE_VOCODER))))
    plan.append(("griffin_lim", "Griffin-Lim (baseline)", src, lambda: judge(griffin_lim_from_mel(true))))
    plan.append(("chain", f"full chain {fe_name}-{vae}-{vocoder}" if ref_wave is not None else
                 f"full chain {vae}-{vocoder}", "audio" if ref_wave is not None else src,
                 lambda: judge(chain.vocoder_out(chain.vae_roundtrip(mel, vae, seed), vocoder))))
    stages, mels, waves = {}, {}, {}
    for name, label, source, fn in plan:
        stages[name], mels[label], wave = _stage(label, source, fn)
        if name in ("vocoder", "vocoder_reference", "griffin_lim", "chain"):
            waves[label] = wave
    return stages, mels, waves


# --- verdict -------------------------------------------------------------------------------------


def usage_loss(stage: str, stages: Dict[str, dict], combo, thresholds_data: Optional[dict] = None) -> bool:
    """Whether the variant at ``stage`` (``vae`` or ``vocoder``) loses clearly more than the correct call
    of the same model on this file: :func:`harness.thresholds.judge` under the relative policy, with
    the variant's calibrated margins (:func:`harness.thresholds.relative_stage_limits`)."""
    from .. import thresholds

    reference = stages.get(f"{stage}_reference", stages[stage])["metrics"]
    if "mel_l1" not in reference or "mel_l1" not in stages[stage]["metrics"]:
        return False
    limits, _ = thresholds.relative_stage_limits(thresholds_data or {}, combo, stage, "pass", "mel_l1",
                                                 {"mel_l1": np.array([reference["mel_l1"]])})
    result = StageResult({"mel_l1": np.array([stages[stage]["metrics"]["mel_l1"]])})
    return not thresholds.judge(result, limits, "pass")[0]


def verdict(fe_findings: List[Finding], stages: Dict[str, dict], input_findings=(), combo=None,
            thresholds_data: Optional[dict] = None) -> Dict[str, str]:
    """The stage that loses the most, and why: ``{"stage": frontend|vae|vocoder|chain|none, "kind", "message"}``.

    ``kind`` is ``usage`` (a front-end, VAE or vocoder call the user can fix: ``harness diagnose``
    exits 1), ``model`` (the model itself is weak on this file, called correctly: exits 1 only under
    ``--strict``) or ``none``.

    In order: front-end findings; a stage that fails; a variant that loses more than the correct call
    of the same model (``scaled`` VAE, ``hifigan`` vocoder: a usage mistake, judged by :func:`usage_loss`
    with ``combo``'s relative margins from ``thresholds_data``); then the model itself: a
    VAE that loses more than :data:`VAE_OK_NATS` even when called correctly, or a vocoder much worse
    than the Griffin-Lim baseline. Usage mistakes come first because a weak model makes every chain
    lossy but is not what the user can fix in their code.
    """
    flags = [f for f in fe_findings if f.severity == "flag"]
    if flags:
        why = "" if flags[0].code == "transposed" else " -> the VAE sees a distribution it was never trained on"
        return {"stage": "frontend", "kind": "usage", "message": f"front-end: {flags[0].message}{why}"}
    for name in ("vae", "vocoder", "chain"):
        if stages.get(name, {}).get("error"):
            return {"stage": name, "kind": "usage", "message": f"{name}: fails: {stages[name]['error']}"}
    l1 = {k: v["metrics"].get("mel_l1", math.nan) for k, v in stages.items()}
    ref_vae = "vae_reference" if "vae_reference" in l1 else "vae"
    ref_voc = "vocoder_reference" if "vocoder_reference" in l1 else "vocoder"
    usage = {"vae": l1["vae"] - l1[ref_vae], "vocoder": l1["vocoder"] - l1[ref_voc]}
    combo = REFERENCE if combo is None else combo
    flagged = [k for k in usage if usage_loss(k, stages, combo, thresholds_data)]
    if flagged:
        stage = max(flagged, key=lambda k: usage[k])
        if stage == "vae":
            msg = (f"vae: VAE round trip loses {l1['vae']:.2f} nats, {usage['vae']:.2f} more than the correct "
                   f"'{REFERENCE_VAE}' call ({l1[ref_vae]:.2f}): scaling factor applied wrongly?")
        else:
            msg = (f"vocoder: loses {l1['vocoder']:.2f} nats, {usage['vocoder']:.2f} more than the model's "
                   f"'{REFERENCE_VOCODER}' ({l1[ref_voc]:.2f}): wrong mel layout or scale?")
        return {"stage": stage, "kind": "usage", "message": msg}
    # the stages as used (a chain with Griffin-Lim or no VAE does not suffer from a weak model part)
    gl = l1.get("griffin_lim", math.nan)
    model = {"vae": l1["vae"] - VAE_OK_NATS, "vocoder": l1["vocoder"] - gl - max(0.1, 0.5 * gl)}
    stage = max(model, key=lambda k: -math.inf if math.isnan(model[k]) else model[k])
    # a weak stage on a flagged input (clipping, very low level) may be the input's fault
    note = "".join(f"; but the input is flagged: {f.message}" for f in input_findings if f.severity == "flag")[:300]
    if model[stage] > 0:
        msg = (f"vae: VAE round trip loses {l1['vae']:.2f} nats even when called correctly: undertrained or "
               "mismatched VAE weights?" if stage == "vae" else
               f"vocoder: loses {l1['vocoder']:.2f} nats, {l1['vocoder'] - gl:.2f} more than the Griffin-Lim "
               f"baseline ({gl:.2f}), even when called correctly: undertrained or mismatched vocoder weights?")
        return {"stage": stage, "kind": "model", "message": msg + note}
    return {"stage": "none", "kind": "none", "message": f"no stage stands out: VAE round trip {l1['vae']:.2f} nats, vocoder "
                                        f"{l1['vocoder']:.2f} vs Griffin-Lim {gl:.2f}{note}"}


# --- one file ------------------------------------------------------------------------------------


def _clean(obj):
    """JSON-able: -inf dBFS and NaN become None, floats rounded to 4 decimals."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 4) if math.isfinite(obj) else None
    return obj


def _diagnose_mel(chain, path: str, vae: str, vocoder: str, seed: int) -> tuple:
    mel_np, found = load_mel(path)
    true = torch.from_numpy(mel_np)[None, None].to(chain.device)
    found = found + check_mel_statistics(mel_np)
    checks = {"input": {"kind": "mel", "frames": mel_np.shape[0], "findings": []},
              "frontend": {"stats": mel_statistics(mel_np), "reference": None, "findings": [f._asdict() for f in found]}}
    stages, mels, waves = run_stages(chain, true, true, "npy", vae, vocoder, None, seed)
    return checks, found, [], stages, {"input mel (.npy)": mel_np, **mels}, waves


def _diagnose_audio(chain, path: str, fe_name: str, vae: str, vocoder: str, seconds: float, seed: int) -> tuple:
    info = audio.load_info(path, max_seconds=seconds)
    n = max(int(seconds * audio.SAMPLE_RATE), audio.MIN_SAMPLES)
    x = audio.load_audio(path, max_seconds=n / audio.SAMPLE_RATE, truncate=True)[:n]  # reads only what it analyses

    wave = torch.from_numpy(audio.pad_or_crop(x, grid_frames(len(x))))[None]  # normalised, then padded
    in_found, silent = check_input(info, seconds), silent_fraction(x)
    if silent > 0.5:
        in_found.append(Finding("flag" if silent > 0.8 else "info", "silence", f"{100 * silent:.0f}% of 10 ms "
                                "frames are 60 dB below the peak: mostly silence, so every figure is mostly about "
                                "how the chain renders silence; trim it to judge the sound itself"))
    with torch.inference_mode():
        true = frontend.get_frontend("audioldm2")(wave).to(chain.device)
        mel = frontend.get_frontend(fe_name)(wave).to(chain.device)
    true_np, mel_np = true[0, 0].cpu().numpy(), mel[0, 0].cpu().numpy()
    found = check_frontend(mel_np, true_np) if fe_name != "audioldm2" else \
        [f for f in check_mel_statistics(mel_np) if f.severity == "flag"]
    info = {**info, "silent_fraction": silent, "analysed_seconds": len(x) / audio.SAMPLE_RATE}
    checks = {"input": {"kind": "audio", **info, "findings": [f._asdict() for f in in_found]},
              "frontend": {"stats": mel_statistics(mel_np), "reference": mel_statistics(true_np),
                           "findings": [f._asdict() for f in found]}}
    stages, mels, waves = run_stages(chain, true, mel, fe_name, vae, vocoder, frontend.normalize_waveform(wave), seed)
    waves = {"input": x, **{k: None if w is None else w[: len(x)] for k, w in waves.items()}}
    if fe_name == "audioldm2":  # its panel would repeat the input's
        mels.pop(stages["frontend"]["label"])
    return checks, found, in_found, stages, {"input mel (audioldm2)": true_np, **mels}, waves


def diagnose_file(chain, path, frontend_name: str = "audioldm2", vae: str = "scaled", vocoder: str = "hifigan",
                  seconds: float = 10.24, seed: int = 0, thresholds_data: Optional[dict] = None) -> Diagnosis:
    """Diagnose one audio file or ``.npy`` log-mel ``[frames, 64]``.

    Raises
    ------
    harness.audio.AudioError
        The file is unusable (unreadable, empty, silent, NaN, too short, absurd rate, wrong mel shape).
    """

    path = str(path)
    is_mel = path.lower().endswith(".npy")
    if is_mel:
        checks, found, in_found, stages, mels, waves = _diagnose_mel(chain, path, vae, vocoder, seed)
    else:
        checks, found, in_found, stages, mels, waves = _diagnose_audio(chain, path, frontend_name, vae, vocoder,
                                                                        seconds, seed)
    record = {"file": path, "frontend": None if is_mel else frontend_name, "vae": vae, "vocoder": vocoder,
              "checks": checks, "stages": stages,
              "verdict": verdict(found, stages, in_found, Combination(frontend_name if not is_mel else "audioldm2",
                                                                      vae, vocoder), thresholds_data)}
    return Diagnosis(_clean(record), mels, waves)


def run_files(chain, files, progress: bool = True, **options) -> List[Diagnosis]:
    """:func:`diagnose_file` on each file; an unusable one becomes ``Diagnosis({"file", "error"})``
    so the others still run."""
    from tqdm.auto import tqdm

    out = []
    for path in tqdm(list(files), desc="diagnose", disable=not progress, unit="file"):
        try:
            out.append(diagnose_file(chain, path, **options))
        except ValueError as exc:  # AudioError, or a front-end refusing the input
            msg = str(exc) if isinstance(exc, audio.AudioError) else f"{path}: {exc}"
            out.append(Diagnosis({"file": str(path), "error": msg}))
    return out
