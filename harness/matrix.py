"""The quality matrix: every front-end x VAE variant x vocoder variant, measured stage by stage.

For a clip ``x`` and a combination, four stages are measured, each against its own reference,
so a failure names the stage that lost the quality:

=========  ==========================================  ============================================
stage      compares                                    judged by
=========  ==========================================  ============================================
frontend   front-end mel vs AudioLDM2's mel in the     ``mel_l1``
           closer of its two framings (training,
           TacotronSTFT)
vae        VAE round-trip output vs the ``scaled``     ``ref_mel_l1``, ``mel_l1``
           round trip of the same mel; and vs its
           input mel
vocoder    ``audioldm2`` re-analysis of the vocoder    ``mel_l1``
           output vs the mel it was given
chain      output waveform vs the (normalised) input   ``mel_l1``, ``lsd``, ``mrstft``, ``mel_snr``
=========  ==========================================  ============================================

Waveform SNR/correlation/SI-SDR are computed for the chain (lag-aligned, gain-matched) and
reported, never asserted: no vocoder reproduces phase. Golden cases add the stages that *are*
sample-exact (:func:`golden_stages`).
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch

from . import frontend as frontends
from . import metrics, variants
from .chain import Chain, LayoutError

CLIP_STAGES = ("frontend", "vae", "vocoder", "chain")
GOLDEN_STAGES = ("decode", "vocoder", "frontend", "roundtrip")
#: metrics asserted per stage (the first is the key metric used for detection)
JUDGED = {
    "frontend": ["mel_l1"], "vae": ["ref_mel_l1", "mel_l1"], "vocoder": ["mel_l1"],
    "chain": ["mel_l1", "lsd", "mrstft", "mel_snr"],
    "decode": ["mel_l1"], "roundtrip": ["mel_l1"],
}
REPORTED = ["snr", "correlation", "si_sdr"]
#: metrics that measure a deviation from the reference combination's output, judged (relative policy)
#: as a share of the reference's own loss in the named metric: a posterior sample strays further from
#: the mode on a clip the VAE reconstructs poorly
SHARE_OF = {"ref_mel_l1": "mel_l1"}
DEFAULTS = {"frontend": "audioldm2", "vae": "scaled", "vocoder": "hifigan"}


@dataclass(frozen=True)
class Combination:
    """One front-end x VAE variant x vocoder variant; ``id`` reads like ``audioldm2-scaled-hifigan``."""

    frontend: str
    vae: str
    vocoder: str

    @property
    def id(self) -> str:
        return f"{self.frontend}-{self.vae}-{self.vocoder}"

    def expected(self) -> Dict[str, str]:
        """Verdict per clip stage: ``pass``, ``detect``, or ``report`` (an upstream stage is already wrong)."""
        fe_ok = frontends.get_frontend(self.frontend).correct
        vae_ok = variants.get_vae(self.vae).expected.get("roundtrip", "pass") == "pass"
        voc_ok = variants.get_vocoder(self.vocoder).correct
        verdict = lambda ok: "pass" if ok else "detect"  # noqa: E731
        return {
            "frontend": verdict(fe_ok),
            "vae": verdict(vae_ok) if fe_ok else "report",
            "vocoder": verdict(voc_ok) if fe_ok and vae_ok else "report",
            # a broken combination is asserted *detected* at its culprit stage; its whole-chain figure,
            # where the vocoder's own error dilutes an upstream mistake, is reported
            "chain": "pass" if fe_ok and vae_ok and voc_ok else "report",
        }

    def culprit(self) -> Optional[str]:
        """The first stage whose component is a known mistake (where detection must happen)."""
        return next((s for s, v in self.expected().items() if v == "detect"), None)

    def reference(self, stage: str) -> "Combination":
        """The combination whose figure at ``stage`` *on the same clip* this one is judged against when
        the clip has no stored baseline (:func:`harness.thresholds.relative_limits`).

        The component of ``stage`` is replaced by the correct default, the rest kept: the front-end
        stage's reference is ``audioldm2`` (its own figure is 0 by definition), the VAE stage's is the
        ``scaled`` VAE after the same front-end, the vocoder stage's is ``hifigan`` on the same mel;
        the chain's is the reference combination ``audioldm2-scaled-hifigan``.
        """
        return REFERENCE if stage == "chain" else dataclasses.replace(self, **{stage: DEFAULTS[stage]})

    def correct_alternatives(self, stage: str) -> List["Combination"]:
        """This combination with the component of ``stage`` replaced by each correct built-in one that
        has the stage's key metric (the ``none`` VAE has no VAE output to compare): the band a known
        mistake must clear to count as detected under the relative policy."""
        if stage == "chain":
            return [REFERENCE]
        names = [n for n in BUILTIN[stage] if not (stage == "vae" and variants.get_vae(n).skip)]
        return [dataclasses.replace(self, **{stage: n}) for n in names]

    def sibling(self, stage: str) -> "Combination":
        """The combination judged for ``stage`` when this one has no thresholds of its own: every
        component that is not a known-correct *built-in* is replaced by the default correct one."""
        fe = self.frontend if self.frontend in BUILTIN["frontend"] else DEFAULTS["frontend"]
        vae = self.vae if self.vae in BUILTIN["vae"] else DEFAULTS["vae"]
        voc = self.vocoder if self.vocoder in BUILTIN["vocoder"] else DEFAULTS["vocoder"]
        return Combination(fe, vae, voc)


#: the reference combination: the correct way to call every stage
REFERENCE = Combination(**DEFAULTS)

BUILTIN = {
    "frontend": ("audioldm2", "audioldm2-tacotron"),
    "vae": ("scaled", "none", "sample"),
    "vocoder": ("hifigan", "griffin-lim"),
}


def grid_frames(n_samples: int) -> int:
    """Mel frames a clip of ``n_samples`` is padded to: the smallest multiple of 4 that covers it, and
    never exactly 64 (= the mel bins), where a transposed ``[b, 64, T]`` mel would pass a shape check."""
    from . import audio

    frames = audio.frames_for(n_samples)
    return frames + audio.VAE_FACTOR if frames == frontends.N_MELS else frames


def combinations(frontends_: Optional[Iterable[str]] = None, vaes: Optional[Iterable[str]] = None,
                 vocoders: Optional[Iterable[str]] = None) -> List[Combination]:
    """Every registered (or the named) front-end x VAE x vocoder combination."""
    fes = list(frontends_ or [f.name for f in frontends.list_frontends()])
    vs = list(vaes or [v.name for v in variants.list_vaes()])
    vcs = list(vocoders or [v.name for v in variants.list_vocoders()])
    return [Combination(*c) for c in itertools.product(fes, vs, vcs)]


def _mel_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean(dim=tuple(range(1, a.ndim))).double()


@dataclass
class StageResult:
    """Per-clip metrics of one stage, or the error that stopped it (e.g. a LayoutError)."""

    metrics: Dict[str, np.ndarray]
    error: Optional[str] = None


#: a stage that was not computed because nothing is asserted there (downstream of a known mistake)
NOT_MEASURED = StageResult({}, None)


class Evaluator:
    """Runs combinations on a fixed set of equal-length clips, caching shared stages.

    Parameters
    ----------
    chain : Chain
    clips : dict name -> float32 [samples]; all the same length, a multiple of 640 samples.
    """

    def __init__(self, chain: Chain, clips: Dict[str, np.ndarray], seed: int = 0):
        lengths = {len(x) for x in clips.values()}
        if len(lengths) != 1:
            raise ValueError(f"clips must share one length, got {sorted(lengths)}; group them by length")
        self.chain, self.names, self.seed = chain, list(clips), seed
        self.wave = torch.from_numpy(np.stack([clips[n] for n in self.names])).to(chain.device)
        self.reference_wave = frontends.normalize_waveform(self.wave)
        self.reference_mel = frontends.get_frontend("audioldm2")(self.wave)
        # AudioLDM2 has two framings (training: frame t centred on 160 t + 80; inference TacotronSTFT:
        # on 160 t); a correct front-end matches one of them, so the front-end stage takes the closer
        self.framing_mels = [self.reference_mel, frontends.get_frontend("audioldm2-tacotron")(self.wave)]
        self._fe: Dict[str, torch.Tensor] = {}
        self._vae: Dict[tuple, object] = {}
        self.outputs: Dict[str, Dict[str, torch.Tensor]] = {}

    def _frontend(self, name):
        if name not in self._fe:
            with torch.inference_mode():
                self._fe[name] = frontends.get_frontend(name)(self.wave).float()
        return self._fe[name]

    def _vae_out(self, fe, vae):
        key = (fe, vae)
        if key not in self._vae:
            gen = torch.Generator(device=self.chain.device).manual_seed(self.seed)
            try:
                self._vae[key] = variants.get_vae(vae).roundtrip(self.chain, self._frontend(fe), gen)
            except (LayoutError, ValueError) as exc:
                self._vae[key] = exc
        return self._vae[key]

    def _wave_out(self, combo: Combination, mel_out: torch.Tensor):
        """The vocoder's waveform of ``combo`` (cropped to the input length), or the exception it raised;
        reused from :attr:`outputs` when a run kept it."""
        kept = self.outputs.get(combo.id, {}).get("wave_out")
        if kept is not None:
            return kept
        try:
            return variants.get_vocoder(combo.vocoder)(self.chain, mel_out)[:, : self.wave.shape[-1]]
        except (LayoutError, ValueError, RuntimeError) as exc:
            return exc

    def run(self, combo: Combination, keep_outputs: bool = False, judged_only: bool = False,
            upto: str = "chain") -> Dict[str, StageResult]:
        """Measure the clip stages of ``combo`` up to ``upto``; values are numpy arrays ``[n_clips]``.

        Stages after ``upto`` come back as :data:`NOT_MEASURED`. ``judged_only``: stop at the culprit
        stage of a broken combination (the stages after it are only reported): most of the vocoder work
        is saved. Front-end mels, VAE outputs and vocoder waveforms are cached, so a later call with a
        deeper ``upto`` only adds the missing stages (the waveform too when ``keep_outputs``).
        """
        if judged_only and combo.culprit():
            upto = min(upto, combo.culprit(), key=CLIP_STAGES.index)
        depth = CLIP_STAGES.index(upto)
        out = {s: NOT_MEASURED for s in CLIP_STAGES[depth + 1:]}

        def failed(err: str, *stages: str) -> Dict[str, StageResult]:
            return {**out, **{s: StageResult({}, err) for s in stages if CLIP_STAGES.index(s) <= depth}}

        # 1. front-end: the closer of AudioLDM2's two framings
        mel_in = self._frontend(combo.frontend)
        fe_l1 = torch.minimum(*[_mel_l1(mel_in, m) for m in self.framing_mels])
        out["frontend"] = StageResult({"mel_l1": fe_l1.cpu().numpy()})
        if depth < 1:
            return out
        # 2. VAE round trip, vs its input and vs the correct call's output
        mel_out = self._vae_out(combo.frontend, combo.vae)
        if isinstance(mel_out, Exception):
            return failed(f"{type(mel_out).__name__}: {mel_out}", "vae", "vocoder", "chain")
        vae_metrics = {"mel_l1": _mel_l1(mel_out, mel_in).cpu().numpy()}
        reference_out = self._vae_out(combo.frontend, DEFAULTS["vae"])
        if not variants.get_vae(combo.vae).skip and not isinstance(reference_out, Exception):
            # how far this variant's output is from the correct call's: free of the VAE's own loss,
            # which on some clips is as large as a scaling mistake's
            vae_metrics["ref_mel_l1"] = _mel_l1(mel_out, reference_out).cpu().numpy()
        out["vae"] = StageResult(vae_metrics)
        if depth < 2:
            return out
        # 3. vocoder: its output re-analysed vs the mel it was given
        wave_out = self._wave_out(combo, mel_out)
        if isinstance(wave_out, Exception):
            return failed(f"{type(wave_out).__name__}: {wave_out}", "vocoder", "chain")
        if not torch.isfinite(wave_out).all():
            return failed("vocoder output contains NaN/Inf", "vocoder", "chain")
        reanalysed = frontends.get_frontend("audioldm2")(wave_out)
        out["vocoder"] = StageResult({"mel_l1": _mel_l1(reanalysed, mel_out).cpu().numpy()})
        if keep_outputs:
            self.outputs[combo.id] = {"mel_in": mel_in, "mel_out": mel_out, "wave_out": wave_out}
        if depth < 3:
            return out
        # 4. whole chain: output waveform vs the normalised input
        try:
            chain_metrics = {k: v.cpu().numpy()
                             for k, v in metrics.compute(wave_out, self.reference_wave, JUDGED["chain"] + REPORTED).items()}
        except ValueError as exc:  # e.g. a silent output: the chain lost everything
            return failed(f"ValueError: {exc}", "chain")
        out["chain"] = StageResult(chain_metrics)
        return out


def golden_stages(chain: Chain, case_latents: np.ndarray, case_mel: np.ndarray, case_audio: np.ndarray,
                  seed: int = 0, stages: Iterable[str] = GOLDEN_STAGES) -> Dict[str, Dict[str, StageResult]]:
    """Stage isolation on golden cases (batched over cases).

    Returns ``{stage: {variant_name: StageResult}}`` with stages ``decode`` (golden latents -> VAE
    decode vs golden mel), ``roundtrip`` (golden mel -> VAE round trip vs golden mel), ``vocoder``
    (golden mel -> vocoder vs golden waveform: sample-exact for HiFi-GAN, so waveform SNR and
    correlation are judged there) and ``frontend`` (golden waveform -> front-end vs golden mel); only
    the named ``stages``.
    """
    dev = chain.device
    lat = torch.from_numpy(case_latents).to(dev)
    mel = torch.from_numpy(case_mel)[:, None].to(dev)
    wav = torch.from_numpy(case_audio).to(dev)
    res: Dict[str, Dict[str, StageResult]] = {s: {} for s in stages}
    for v in variants.list_vaes() if "decode" in res else []:
        if v.skip or v.custom is not None:
            continue
        try:
            dec = v.decode_latents(chain, lat)
            res["decode"][v.name] = StageResult({"mel_l1": _mel_l1(dec, mel).cpu().numpy()})
        except (LayoutError, ValueError) as exc:
            res["decode"][v.name] = StageResult({}, f"{type(exc).__name__}: {exc}")
    for v in variants.list_vaes() if "roundtrip" in res else []:
        if v.skip:
            continue
        gen = torch.Generator(device=dev).manual_seed(seed)
        try:
            rt = v.roundtrip(chain, mel, gen)
            res["roundtrip"][v.name] = StageResult({"mel_l1": _mel_l1(rt, mel).cpu().numpy()})
        except (LayoutError, ValueError) as exc:
            res["roundtrip"][v.name] = StageResult({}, f"{type(exc).__name__}: {exc}")
    for v in variants.list_vocoders() if "vocoder" in res else []:
        try:
            out = v(chain, mel)[:, : wav.shape[-1]]
            m = {"snr": metrics.snr(out, wav).cpu().numpy(), "correlation": metrics.correlation(out, wav).cpu().numpy(),
                 "mel_l1": metrics.mel_l1(out, wav).cpu().numpy()}
            res["vocoder"][v.name] = StageResult(m)
        except (LayoutError, ValueError, RuntimeError) as exc:
            res["vocoder"][v.name] = StageResult({}, f"{type(exc).__name__}: {exc}")
    for f in frontends.list_frontends() if "frontend" in res else []:
        with torch.inference_mode():
            fm = f(wav).float()
        res["frontend"][f.name] = StageResult({"mel_l1": _mel_l1(fm, mel).cpu().numpy()})
    return res


def golden_stage_names() -> List[tuple]:
    """Every (golden stage, variant name) pair :func:`golden_stages` measures."""
    vaes = [v for v in variants.list_vaes() if not v.skip]
    pairs = ([("decode", v.name) for v in vaes if v.custom is None] + [("roundtrip", v.name) for v in vaes]
             + [("vocoder", v.name) for v in variants.list_vocoders()]
             + [("frontend", f.name) for f in frontends.list_frontends()])
    return [(s, n) for s, n in pairs if golden_expected(s, n) != "report"]


GOLDEN_REFERENCE = {"decode": "scaled", "roundtrip": "scaled", "vocoder": "hifigan", "frontend": "audioldm2"}


def golden_expected(stage: str, name: str) -> str:
    """Expected verdict of a golden stage for a variant name.

    Mistakes are asserted *detected* on the sample-exact stages (decode, vocoder). On the frontend
    and roundtrip stages they are only reported: a golden mel comes from the pipeline's UNet (seeded-
    random for the bundled model), so neither its re-analysis nor its VAE round trip is close to it
    even when everything is right; the same mistakes are asserted in the clip matrix, on the same
    golden waveforms.
    """
    if stage == "decode":
        return variants.get_vae(name).expected.get("decode", "pass")
    if stage == "roundtrip":
        return "pass" if variants.get_vae(name).expected.get("roundtrip", "pass") == "pass" else "report"
    if stage == "vocoder":
        return variants.get_vocoder(name).expected
    return "pass" if frontends.get_frontend(name).correct else "report"
