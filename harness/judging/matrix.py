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
sample-exact (:func:`harness.judging.stages.golden_stages`). Every stage runs its component and measures
its output through :mod:`harness.judging.stages`, the stage engine; this module chooses the combinations
and caches what they share on a set of clips.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch

from harness.errors import InputError, LayoutError
from harness.vocabulary import CLIP_STAGES, DEFAULTS
from harness.signal import frontend as frontends
from harness.signal.audio import normalize_waveform
from harness.model import variants
from harness.model.chain import Chain
from harness.judging import stages
from harness.judging.stages import NOT_MEASURED, StageResult, golden_variant_names, is_builtin, measure


@dataclass(frozen=True)
class Combination:
    """One front-end x VAE variant x vocoder variant; ``id`` reads like ``audioldm2-scaled-hifigan``.

    A related combination is always this one with some components replaced by correct defaults; which ones
    says what it is for:

    ===================================  =======================================================================
    method                               replaces                       used for
    ===================================  =======================================================================
    :meth:`reference` ``(stage)``        the component of ``stage``     the figure on the same clip it is judged
                                                                        against without a stored baseline
    :meth:`correct_alternatives`         the component of ``stage``,    the band a known mistake must clear
    ``(stage)``                          by each correct built-in       (relative policy)
    :meth:`siblings` ``(stage)``         every component that is not a  the limits a project's variant is judged
                                         correct built-in               by (first: the default front-end)
    :meth:`stand_in` ``()``              each project-registered one    the calibrated decisions it takes
    :meth:`corrected` ``()``             each known mistake             the chain a broken chain is compared with
    ===================================  =======================================================================
    """

    frontend: str
    vae: str
    vocoder: str

    @property
    def id(self) -> str:
        """``frontend-vae-vocoder``, e.g. ``audioldm2-scaled-hifigan``: test ids and threshold tables use it."""
        return f"{self.frontend}-{self.vae}-{self.vocoder}"

    def verdicts(self) -> Dict[str, str]:
        """Expected verdict per clip stage: ``pass``, ``detect``, or ``report`` (an upstream stage is already
        wrong). Named apart from the variants' ``expected`` (a front-end's or vocoder's one verdict, a VAE
        variant's per-golden-stage dict): this is the whole combination's, stage by stage."""
        fe_ok, vae_ok, voc_ok = self._correct().values()
        verdict = lambda ok: "pass" if ok else "detect"  # noqa: E731
        return {
            "frontend": verdict(fe_ok),
            "vae": verdict(vae_ok) if fe_ok else "report",
            "vocoder": verdict(voc_ok) if fe_ok and vae_ok else "report",
            # a broken combination is asserted *detected* at its culprit stage; its whole-chain figure,
            # where the vocoder's own error dilutes an upstream mistake, is reported, and asserted only
            # where calibration measured a clear separation (:meth:`chain_judgeable`)
            "chain": "pass" if fe_ok and vae_ok and voc_ok else "report",
        }

    def _correct(self) -> Dict[str, bool]:
        """Whether each component (front-end, VAE variant, vocoder) is a correct way to call its stage."""
        return {"frontend": frontends.get_frontend(self.frontend).correct,
                "vae": variants.get_vae(self.vae).expected_at("roundtrip") == "pass",
                "vocoder": variants.get_vocoder(self.vocoder).correct}

    def corrected(self) -> "Combination":
        """This combination with each mistaken component replaced by the correct default, the rest kept:
        the chain a broken combination's whole-chain figure is compared with (``seed-librosa-db-none-griffin-lim``
        -> ``audioldm2-none-griffin-lim``)."""
        return dataclasses.replace(self, **{s: DEFAULTS[s] for s, ok in self._correct().items() if not ok})

    def chain_judgeable(self) -> bool:
        """A front-end or VAE mistake heard through AudioLDM2's own vocoder (HiFi-GAN): the chain a user
        runs, where that vocoder's error dilutes the mistake. It is asserted *detected* at the chain stage
        too where calibration finds it clearly worse than :meth:`corrected` on every clip
        (:func:`harness.judging.thresholds.chain_detection`). Griffin-Lim chains are left to the culprit stage:
        asserting them too would add a quarter of the matrix tests' time (24 s measured) for no new finding."""
        culprit = self.culprit()
        # a mistake a project registered has no calibrated chain decision to take
        return culprit in ("frontend", "vae") and self.vocoder == DEFAULTS["vocoder"] and \
            is_builtin(culprit, getattr(self, culprit))

    def culprit(self) -> Optional[str]:
        """The first stage whose component is a known mistake (where detection must happen)."""
        return next((s for s, v in self.verdicts().items() if v == "detect"), None)

    def reference(self, stage: str) -> "Combination":
        """The combination whose figure at ``stage`` *on the same clip* this one is judged against when
        the clip has no stored baseline (:func:`harness.judging.thresholds.relative_limits`).

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

    def user_components(self) -> List[str]:
        """The stages whose component a project registered (not one of the harness's own variants)."""
        return [s for s in CLIP_STAGES[:3] if not is_builtin(s, getattr(self, s))]

    def stand_in(self) -> "Combination":
        """The built-in combination whose calibrated decisions this one takes: each component a project
        registered replaced by the correct built-in it stands for (``ours-no-decode-scale-hifigan`` ->
        ``audioldm2-no-decode-scale-hifigan``), the harness's own components (correct or mistaken) kept."""
        return dataclasses.replace(self, **{s: DEFAULTS[s] for s in self.user_components()})

    def siblings(self, stage: str) -> List["Combination"]:
        """The combinations whose limits judge ``stage`` when this one has no thresholds of its own: first this
        one with every component that is not a correct built-in replaced by the default (the same at every
        stage), then, for a project's own front-end, the same with each other correct built-in front-end.
        AudioLDM2 has two framings and a correct front-end matches either (the front-end stage takes the
        closer one), so downstream it is held to the looser of their limits."""
        fe = self.frontend if self.frontend in BUILTIN["frontend"] else DEFAULTS["frontend"]
        vae = self.vae if self.vae in BUILTIN["vae"] else DEFAULTS["vae"]
        voc = self.vocoder if self.vocoder in BUILTIN["vocoder"] else DEFAULTS["vocoder"]
        first = Combination(fe, vae, voc)
        if self.frontend in BUILTIN["frontend"]:
            return [first]
        return [first] + [dataclasses.replace(first, frontend=f) for f in BUILTIN["frontend"] if f != first.frontend]


#: the reference combination: the correct way to call every stage
REFERENCE = Combination(**DEFAULTS)

BUILTIN = {
    "frontend": ("audioldm2", "audioldm2-tacotron"),
    "vae": ("scaled", "none", "sample"),
    "vocoder": ("hifigan", "griffin-lim"),
}


def combinations(frontends_: Optional[Iterable[str]] = None, vaes: Optional[Iterable[str]] = None,
                 vocoders: Optional[Iterable[str]] = None) -> List[Combination]:
    """Every registered (or the named) front-end x VAE x vocoder combination."""
    fes = list(frontends_ or [f.name for f in frontends.list_frontends()])
    vs = list(vaes or [v.name for v in variants.list_vaes()])
    vcs = list(vocoders or [v.name for v in variants.list_vocoders()])
    return [Combination(*c) for c in itertools.product(fes, vs, vcs)]


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
            raise InputError(f"clips must share one length, got {sorted(lengths)}; group them by length")
        self.chain, self.names, self.seed = chain, list(clips), seed
        self.wave = torch.from_numpy(np.stack([clips[n] for n in self.names])).to(chain.device)
        self.reference_wave = normalize_waveform(self.wave)
        self.reference_mel = frontends.get_frontend(DEFAULTS["frontend"])(self.wave)
        self.framing_mels = stages.framing_mels(self.wave, self.reference_mel)
        self._fe: Dict[str, torch.Tensor] = {}
        self._vae: Dict[tuple, object] = {}
        self.outputs: Dict[str, Dict[str, torch.Tensor]] = {}
        self._vocoder_errors: Dict[str, Exception] = {}

    def failure(self, combo: Combination) -> Optional[tuple]:
        """``(stage, exception)`` of the first stage of ``combo`` whose component raised or returned what the stage
        refused (:class:`harness.judging.stages.StageOutputError` carries the output as it came), else None."""
        found = [("frontend", self._fe.get(combo.frontend)), ("vae", self._vae.get((combo.frontend, combo.vae))),
                 ("vocoder", self._vocoder_errors.get(combo.id))]
        return next(((stage, exc) for stage, exc in found if isinstance(exc, Exception)), None)

    def _frontend(self, name):
        """The front-end's mel of the clips, or the exception it raised (both cached), as :meth:`_vae_out`."""
        if name not in self._fe:
            try:
                self._fe[name] = stages.output(self.chain, "frontend", name, self.wave)
            except (LayoutError, ValueError) as exc:
                self._fe[name] = exc
        return self._fe[name]

    def _vae_out(self, fe, vae):
        """The VAE variant's output on front-end ``fe``'s mel, or the exception it raised (both cached)."""
        key = (fe, vae)
        if key not in self._vae:
            try:
                self._vae[key] = stages.output(self.chain, "vae", vae, self._frontend(fe), seed=self.seed)
            except (LayoutError, ValueError) as exc:
                self._vae[key] = exc
        return self._vae[key]

    def _wave_out(self, combo: Combination, mel_out: torch.Tensor) -> torch.Tensor:
        """The vocoder's waveform of ``combo`` (cropped to the input length); reused from :attr:`outputs`
        when a run kept it. Raises what the vocoder raises, or ValueError for a NaN/Inf output."""
        kept = self.outputs.get(combo.id, {}).get("wave_out")
        if kept is not None:
            return kept
        return stages.output(self.chain, "vocoder", combo.vocoder, mel_out, samples=self.wave.shape[-1])

    def _vae_metrics(self, combo: Combination, mel_in, mel_out, reference_out) -> Dict[str, np.ndarray]:
        """The VAE stage's figures of ``combo``: its output ``mel_out`` against its input ``mel_in``, and
        (``ref_mel_l1``) against ``reference_out``, the correct call's output, where that applies.

        Returns
        -------
        dict
            Metric name -> per-clip values, as :func:`harness.judging.stages.compare` gives them.
        """
        found = stages.compare("vae", mel_out, mel_in)
        vae = variants.get_vae(combo.vae)
        if not (vae.skip or vae.fine_tuned) and not isinstance(reference_out, Exception):
            # how far this variant's output is from the correct call's: free of the VAE's own loss,
            # which on some clips is as large as a scaling mistake's (other weights never match it:
            # a fine-tuned VAE is judged on its own loss, no worse than the base's ceiling)
            found["ref_mel_l1"] = stages.compare("vae", mel_out, reference_out)["mel_l1"]
        return found

    def _vocoder_metrics(self, combo: Combination, mel_out, kept: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
        """The vocoder stage's figures of ``combo``: its waveform (stored in ``kept["wave_out"]``) re-analysed
        against ``mel_out``, the mel it was given. What the vocoder raised is kept for the evidence, then raised.

        Returns
        -------
        dict
            Metric name -> per-clip values, as :func:`harness.judging.stages.compare` gives them.
        """
        try:
            kept["wave_out"] = wave_out = self._wave_out(combo, mel_out)
        except (LayoutError, ValueError) as exc:  # kept for the evidence: what the vocoder returned, as it came
            self._vocoder_errors[combo.id] = exc
            raise
        return stages.compare("vocoder", wave_out, mel_out)

    def run(self, combo: Combination, keep_outputs: bool = False, upto: str = "chain") -> Dict[str, StageResult]:
        """Measure the clip stages of ``combo`` up to ``upto``; values are numpy arrays ``[n_clips]``.

        Stages after ``upto`` come back as :data:`NOT_MEASURED`. Front-end mels, VAE outputs and vocoder
        waveforms are cached, so a later call with a deeper ``upto`` only adds the missing stages (the
        waveform too when ``keep_outputs``).
        """
        depth = CLIP_STAGES.index(upto)
        out = {s: NOT_MEASURED for s in CLIP_STAGES[depth + 1:]}

        def failed(result: StageResult, *names: str) -> Dict[str, StageResult]:
            return {**out, **{s: result for s in names if CLIP_STAGES.index(s) <= depth}}

        # 1. front-end: the closer of AudioLDM2's two framings
        mel_in = self._frontend(combo.frontend)
        if isinstance(mel_in, Exception):  # a front-end that raises stops its combination there: a finding
            return failed(StageResult({}, f"{type(mel_in).__name__}: {mel_in}"), "frontend", "vae", "vocoder", "chain")
        out["frontend"] = measure(lambda: stages.compare("frontend", mel_in, self.framing_mels))
        if depth < 1 or out["frontend"].error:
            return failed(out["frontend"], "vae", "vocoder", "chain") if out["frontend"].error else out
        # 2. VAE round trip, vs its input and vs the correct call's output
        mel_out = self._vae_out(combo.frontend, combo.vae)
        if isinstance(mel_out, Exception):
            return failed(StageResult({}, f"{type(mel_out).__name__}: {mel_out}"), "vae", "vocoder", "chain")
        reference_out = self._vae_out(combo.frontend, DEFAULTS["vae"])
        out["vae"] = measure(lambda: self._vae_metrics(combo, mel_in, mel_out, reference_out))
        if depth < 2 or out["vae"].error:
            return failed(out["vae"], "vocoder", "chain") if out["vae"].error else out
        # 3. vocoder: its output re-analysed vs the mel it was given
        kept = {}
        out["vocoder"] = measure(lambda: self._vocoder_metrics(combo, mel_out, kept))
        if out["vocoder"].error:
            return failed(out["vocoder"], "chain")
        if keep_outputs:
            self.outputs[combo.id] = {"mel_in": mel_in, "mel_out": mel_out, "wave_out": kept["wave_out"],
                                      "mel_correct": None if isinstance(reference_out, Exception) else reference_out}
        if depth < 3:
            return out
        # 4. whole chain: output waveform vs the normalised input (a silent output raises: the chain lost everything)
        out["chain"] = measure(lambda: stages.compare("chain", kept["wave_out"], self.reference_wave),
                               errors=(ValueError,))
        return out


def clip_stage_names(chain_detected: Optional[Iterable[str]] = None) -> List[tuple]:
    """Every (combination, clip stage) pair the quality tests assert: each stage not merely reported
    downstream of a known mistake, plus the whole chain of a built-in front-end/VAE mistake heard through
    HiFi-GAN (:meth:`Combination.chain_judgeable`) that calibration asserts detected.

    ``chain_detected``: the combination ids whose chain calibration asserts detected
    (:func:`harness.judging.thresholds.chain_detections`); a combination takes the decision of its
    :meth:`Combination.stand_in`. None (not known yet): every candidate chain is listed.
    """
    detected = None if chain_detected is None else set(chain_detected)
    return [(c, s) for c in combinations() for s, e in c.verdicts().items()
            if e != "report" or (s == "chain" and c.chain_judgeable()
                                 and (detected is None or c.stand_in().id in detected))]


def correct_variants() -> List[tuple]:
    """``(kind, name)`` of every registered correct front-end, VAE variant (``none`` aside) and vocoder."""
    return ([("frontend", f.name) for f in frontends.list_frontends() if f.correct]
            + [("vae", v.name) for v in variants.list_vaes() if v.correct and not v.skip]
            + [("vocoder", v.name) for v in variants.list_vocoders() if v.correct])


def golden_stage_names() -> List[tuple]:
    """Every (golden stage, variant name) pair :func:`golden_stages` measures and the tests assert."""
    pairs = [(s, n) for s in ("decode", "roundtrip", "vocoder", "frontend") for n in golden_variant_names(s)]
    return [(s, n) for s, n in pairs if golden_expected(s, n) != "report"]


def golden_expected(stage: str, name: str) -> str:
    """Expected verdict of a golden stage for a variant name: ``pass``, ``detect`` (a known mistake) or
    ``report`` (not asserted).

    A fine-tuned VAE or vocoder (``fine_tuned=True`` when registered) has other weights than the pipeline
    that made the goldens, so the sample-exact stages (decode, vocoder) and the comparison with the base's
    round trip do not apply to it: it is ``report`` there, and the clip matrix judges it no worse than
    the base by spectral quality.
    """
    component = stages.component(stage, name)
    return "report" if getattr(component, "fine_tuned", False) else component.expected_at(stage)
