"""``harness diagnose``'s stages: the chain run stage by stage on one file or ``.npy`` mel (VAE round trip,
vocoder alone, Griffin-Lim baseline, the correct calls beside, full chain) and the one-line verdict that
names the stage losing the quality."""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.errors import AudioError
from harness.vocabulary import DEFAULTS
from harness.signal import audio, frontend, metrics
from harness.judging import thresholds, verdicts
from harness.judging.matrix import REFERENCE, Combination
from harness.judging.stages import StageResult, compare, measure, mel_figures, output
from harness.surfaces.diagnose.findings import (
    VAE_OK_NATS, REFERENCE_VAE, REFERENCE_VOCODER, Diagnosis, Finding, frontend_findings, check_input,
    check_mel_statistics, load_mel, mel_statistics, silent_fraction,
)


# --- stages --------------------------------------------------------------------------------------

#: the mel-domain figures of a mel row (and of every row of a ``.npy``, which has no audio to compare with)
MEL_FIGURES = ("mel_l1", "mel_snr")
#: the figures of a waveform row against the input audio (``mse`` is redundant with ``snr`` once gain-matched)
WAVE_FIGURES = tuple(name for name in metrics.METRICS if name != "mse")
#: the clip stage each row measures (:mod:`harness.judging.stages`): the chosen component's rows are keyed by
#: the stage; the rows beside them run the correct component (``_reference``), the VAE on the chosen
#: front-end's mel (``vae_frontend``) or the Griffin-Lim vocoder (the phase-free baseline)
ROW_STAGE = {"frontend": "frontend", "vae": "vae", "vae_reference": "vae", "vae_frontend": "vae",
             "vocoder": "vocoder", "vocoder_reference": "vocoder", "griffin_lim": "vocoder", "chain": "chain"}


def _floats(figures: Dict[str, np.ndarray]) -> Dict[str, float]:
    """One item's figures as floats."""
    return {k: float(v[0]) for k, v in figures.items()}


def _row(label: str, source: str, fn) -> tuple:
    """Run one row; ``fn() -> (metrics, mel [frames, 64] or None, wave [samples] or None)``.

    Any exception is the row's result, not a crash (:func:`harness.judging.stages.measure` with every
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
    """Measure every row (:data:`ROW_STAGE`) on its own -> ``(stages, mels, waves)`` (the last two keyed by
    row label); each runs its component and compares its output through :mod:`harness.judging.stages`.

    ``true`` [1, 1, T, 64] is the mel the VAE and vocoder were trained on (the audioldm2 mel of the audio,
    or the user's .npy), ``mel`` the chosen front-end's; ``ref_wave`` [1, 160 T] the normalised input, or
    None for a .npy, whose outputs are then judged by re-analysing their mel against ``true``.
    """
    fe = frontend.get_frontend(DEFAULTS["frontend"])
    cpu_true = true.float().cpu()
    n = true.shape[2] * audio.HOP

    def judge(wave):
        """A waveform row: against the input audio as the whole chain is, or (a .npy) re-analysed against ``true``."""
        wave = wave[:, :n].float().cpu()
        out_mel = fe(wave)  # the vocoder's output re-analysed: drawn, and (a .npy) what is compared
        m = mel_figures(out_mel, cpu_true, MEL_FIGURES) if ref_wave is None else \
            compare("chain", wave, ref_wave, WAVE_FIGURES)
        return _floats(m), out_mel[0, 0].numpy(), wave[0].numpy()

    def roundtrip(name, m, names=MEL_FIGURES):
        out = output(chain, "vae", name, m, seed=seed).float().cpu()
        return _floats(compare("vae", out, m.float().cpu(), names)), out[0, 0].numpy(), None

    def vocode(name, m):
        return judge(output(chain, "vocoder", name, m))

    rows, src = [], "audioldm2 mel" if ref_wave is not None else ".npy mel"
    if ref_wave is not None:
        rows.append(("frontend", f"front-end {fe_name}", "audio",
                     lambda: (_floats(compare("frontend", mel.float().cpu(), cpu_true, MEL_FIGURES)),
                              mel[0, 0].float().cpu().numpy(), None)))
    rows.append(("vae", f"VAE round trip {vae}", src, lambda: roundtrip(vae, true)))
    if vae != REFERENCE_VAE:
        rows.append(("vae_reference", f"VAE round trip {REFERENCE_VAE} (reference)", src,
                     lambda: roundtrip(REFERENCE_VAE, true)))
    if ref_wave is not None and fe_name != DEFAULTS["frontend"]:
        # what the original report measured: the VAE fed the wrong front-end (its own scale: L1 only)
        rows.append(("vae_frontend", f"VAE round trip {vae} on {fe_name}", f"{fe_name} mel",
                     lambda: roundtrip(vae, mel, ("mel_l1",))))
    rows.append(("vocoder", f"vocoder {vocoder}", src, lambda: vocode(vocoder, true)))
    if vocoder != REFERENCE_VOCODER:
        rows.append(("vocoder_reference", f"vocoder {REFERENCE_VOCODER} (reference)", src,
                     lambda: vocode(REFERENCE_VOCODER, true)))
    rows.append(("griffin_lim", "Griffin-Lim (baseline)", src, lambda: vocode("griffin-lim", true)))
    rows.append(("chain", f"full chain {fe_name}-{vae}-{vocoder}" if ref_wave is not None else
                 f"full chain {vae}-{vocoder}", "audio" if ref_wave is not None else src,
                 lambda: vocode(vocoder, output(chain, "vae", vae, mel, seed=seed))))
    stages, mels, waves = {}, {}, {}
    for key, label, source, fn in rows:
        stages[key], mels[label], wave = _row(label, source, fn)
        if ROW_STAGE[key] in ("vocoder", "chain"):
            waves[label] = wave
    return stages, mels, waves


# --- verdict -------------------------------------------------------------------------------------


def usage_loss(stage: str, stages: Dict[str, dict], combo, thresholds_data: Optional[dict] = None) -> bool:
    """Whether the variant at ``stage`` (``vae`` or ``vocoder``) loses clearly more than the correct call
    of the same model on this file: :func:`harness.judging.thresholds.judge` under the relative policy, with
    the variant's calibrated margins (:meth:`harness.judging.verdicts.Judge.relative_limits`)."""
    reference = stages.get(f"{stage}_reference", stages[stage])["metrics"]
    if "mel_l1" not in reference or "mel_l1" not in stages[stage]["metrics"]:
        return False
    limits, _ = verdicts.Judge(thresholds_data or {}).relative_limits(combo, stage, "pass", "mel_l1",
                                                 {"mel_l1": np.array([reference["mel_l1"]])})
    result = StageResult({"mel_l1": np.array([stages[stage]["metrics"]["mel_l1"]])})
    return not thresholds.judge(result, limits, "pass")[0]


def verdict(fe_findings: List[Finding], stages: Dict[str, dict], input_findings=(), combo=None,
            thresholds_data: Optional[dict] = None, bundled: Optional[str] = None) -> Dict[str, str]:
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

    With ``bundled`` (the name of the bundled model under test) a weak model stage is said as what it is, in a
    neutral tone (``"tone": "note"``): the small model trained for this package, whose absolute quality is limited,
    called correctly; not a failure of the user's, whose usage the verdict is about.
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
        if bundled:  # the package's own small model on the package's own clips must not read as broken
            part = "VAE" if stage == "vae" else "vocoder"
            loss = (f"its round trip loses {l1['vae']:.2f} nats" if stage == "vae" else
                    f"it loses {l1['vocoder']:.2f} nats, {l1['vocoder'] - gl:.2f} more than the Griffin-Lim baseline "
                    f"({gl:.2f})")
            msg = (f"{stage}: no usage mistake found. The {part} is the bundled '{bundled}' model's, called correctly: "
                   f"{loss}. That is this small model, trained for this package, not a fault of "
                   "your call: its absolute quality is limited, and the verdict is about usage mistakes (run "
                   "--model with your own model to judge its quality)")
            return {"stage": stage, "kind": "model", "tone": "note", "message": msg + note}
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

    wave = torch.from_numpy(audio.pad_or_crop(x, audio.grid_frames(len(x))))[None]  # normalised, then padded
    in_found, silent = check_input(info, seconds), silent_fraction(x)
    if silent > 0.5:
        in_found.append(Finding("flag" if silent > 0.8 else "info", "silence", f"{100 * silent:.0f}% of 10 ms "
                                "frames are 60 dB below the peak: mostly silence, so every figure is mostly about "
                                "how the chain renders silence; trim it to judge the sound itself"))
    with torch.inference_mode():
        true = frontend.get_frontend(DEFAULTS["frontend"])(wave).to(chain.device)
        mel = frontend.get_frontend(fe_name)(wave).to(chain.device)
    true_np, mel_np = true[0, 0].cpu().numpy(), mel[0, 0].cpu().numpy()
    found = frontend_findings(mel_np, true_np) if fe_name != DEFAULTS["frontend"] else \
        [f for f in check_mel_statistics(mel_np) if f.severity == "flag"]
    info = {**info, "silent_fraction": silent, "analysed_seconds": len(x) / audio.SAMPLE_RATE}
    checks = {"input": {"kind": "audio", **info, "findings": [f._asdict() for f in in_found]},
              "frontend": {"stats": mel_statistics(mel_np), "reference": mel_statistics(true_np),
                           "findings": [f._asdict() for f in found]}}
    stages, mels, waves = run_stages(chain, true, mel, fe_name, vae, vocoder, audio.normalize_waveform(wave), seed)
    waves = {"input": x, **{k: None if w is None else w[: len(x)] for k, w in waves.items()}}
    if fe_name == DEFAULTS["frontend"]:  # its panel would repeat the input's
        mels.pop(stages["frontend"]["label"])
    return checks, found, in_found, stages, {"input mel (audioldm2)": true_np, **mels}, waves


def _bundled(chain) -> Optional[str]:
    """The name of the bundled model ``chain`` runs, None for any other model."""
    source = getattr(chain, "source", None)
    return source.spec if source is not None and getattr(source, "kind", None) == "bundled" else None


def diagnose_file(chain, path, frontend_name: str = DEFAULTS["frontend"], vae: str = DEFAULTS["vae"],
                  vocoder: str = DEFAULTS["vocoder"], seconds: float = 10.24, seed: int = 0,
                  thresholds_data: Optional[dict] = None) -> Diagnosis:
    """Diagnose one audio file or ``.npy`` log-mel ``[frames, 64]``.

    Raises
    ------
    harness.errors.AudioError
        The file is unusable (unreadable, empty, silent, NaN, too short, absurd rate, wrong mel shape).
    """
    path = str(path)
    is_mel = path.lower().endswith(".npy")
    if is_mel:
        checks, found, in_found, stages, mels, waves = _diagnose_mel(chain, path, vae, vocoder, seed)
    else:
        checks, found, in_found, stages, mels, waves = _diagnose_audio(chain, path, frontend_name, vae, vocoder,
                                                                        seconds, seed)
    combo = Combination(DEFAULTS["frontend"] if is_mel else frontend_name, vae, vocoder)
    report = {"file": path, "frontend": None if is_mel else frontend_name, "vae": vae, "vocoder": vocoder,
              "checks": checks, "stages": stages,
              "verdict": verdict(found, stages, in_found, combo, thresholds_data, bundled=_bundled(chain))}
    return Diagnosis(_clean(report), mels, waves)


def run_files(chain, files, progress: bool = True, **options) -> List[Diagnosis]:
    """:func:`diagnose_file` on each file; an unusable one becomes ``Diagnosis({"file", "error"})``
    so the others still run."""
    out = []
    for path in tqdm(list(files), desc="diagnose", disable=not progress, unit="file"):
        try:
            out.append(diagnose_file(chain, path, **options))
        except ValueError as exc:  # AudioError, or a front-end refusing the input
            msg = str(exc) if isinstance(exc, AudioError) else f"{path}: {exc}"
            out.append(Diagnosis({"file": str(path), "error": msg}))
    return out
