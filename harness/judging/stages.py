"""The stage engine: the one engine that runs a component at a stage and measures its output.

A *stage* is a step of the chain where one component (a front-end, a VAE variant, a vocoder variant) is
run and its output compared with a reference, so that a loss of quality is found where it happens. The
quality matrix (:mod:`harness.judging.matrix`) runs the clip stages of every combination, the golden
cases run the golden stages of every variant (:func:`golden_stages`), ``harness diagnose`` runs the clip
stages of one combination beside the correct calls; all of them call :func:`output` to run a component
and :func:`compare` to measure what came out.

==========  =========  ===================  ==================  ============================================
stage       component  input                output              compared with
==========  =========  ===================  ==================  ============================================
frontend    front-end  waveform             log-mel             AudioLDM2's log-mel, the closer framing
vae         VAE        a front-end's mel    round-trip mel      its input mel; the correct round trip's mel
roundtrip   VAE        the golden mel       round-trip mel      the correct round trip of the golden mel
decode      VAE        pipeline latents     decoded mel         the golden mel (the pipeline's own decode)
vocoder     vocoder    log-mel              waveform            a mel: its re-analysis; a waveform: itself
chain       all three  waveform             waveform            the (normalised) input waveform
==========  =========  ===================  ==================  ============================================

Clip stages (:data:`harness.vocabulary.CLIP_STAGES`) run on any audio; golden stages
(:data:`harness.vocabulary.GOLDEN_STAGES`) on the golden cases, where the pipeline's own latents, mel and
waveform make ``decode`` and ``vocoder`` sample-exact. The stages' names and the component each runs are
:mod:`harness.vocabulary`'s.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from harness.errors import HarnessError, LayoutError, ResourceError, describe, is_out_of_memory, out_of_memory
from harness.vocabulary import COMPONENT_AT, COMPONENT_NAMES, DEFAULTS, GOLDEN_STAGES
from harness.signal import frontend as frontends
from harness.signal.audio import HOP, N_MELS
from harness.signal import metrics
from harness.model import variants
from harness.model.chain import Chain, item_generators

#: metrics asserted per stage (the first is the key metric used for detection)
JUDGED = {
    "frontend": ["mel_l1"], "vae": ["ref_mel_l1", "mel_l1"], "vocoder": ["mel_l1"],
    "chain": ["mel_l1", "lsd", "mrstft", "mel_snr"],
    "decode": ["mel_l1"], "roundtrip": ["mel_l1"],
}
#: metrics of the chain computed and reported, never asserted: no vocoder reproduces phase
REPORTED = ["snr", "correlation", "si_sdr"]
#: metrics that measure a deviation from the reference combination's output, judged (relative policy)
#: as a share of the reference's own loss in the named metric: a posterior sample strays further from
#: the mode on a clip the VAE reconstructs poorly
SHARE_OF = {"ref_mel_l1": "mel_l1"}
#: the metrics a golden vocoder stage computes against the golden waveform (sample-exact for HiFi-GAN)
GOLDEN_VOCODER_METRICS = ("snr", "correlation", "mel_l1")


# --- results -------------------------------------------------------------------------------------


@dataclass
class StageResult:
    """Per-clip metrics of one stage (numpy ``[n_clips]`` each), or the error that stopped it.

    Attributes
    ----------
    metrics : dict of str -> ndarray [n_clips]
        Empty when the stage failed or was not measured.
    error : str or None
        ``"LayoutError: ..."``: the exception that stopped the stage.
    """

    metrics: Dict[str, np.ndarray]
    error: Optional[str] = None


#: a stage that was not computed because nothing is asserted there (downstream of a known mistake)
NOT_MEASURED = StageResult({}, None)
#: what a stage may raise that is a result, not a harness bug: a layout or value error, torch's shape errors
#: (running out of memory, a RuntimeError too, is not one: :func:`measure` raises it as a ResourceError)
STAGE_ERRORS = (LayoutError, ValueError, RuntimeError)


def measure(stage: Callable[[], Dict[str, np.ndarray]], errors: Tuple[type, ...] = STAGE_ERRORS) -> StageResult:
    """Run one stage's measurement ``stage() -> {metric: ndarray [n_clips]}``; an error in ``errors`` becomes
    the stage's result (a mistaken variant that raises is a finding, not a crash).

    Parameters
    ----------
    stage : callable
        Computes the stage and its metrics.
    errors : tuple of exception types, default :data:`STAGE_ERRORS`
        ``harness diagnose`` passes ``(Exception,)``: every failure of user code is a finding there.

    Returns
    -------
    StageResult

    Raises
    ------
    harness.errors.ResourceError
        The stage ran out of memory (``torch.OutOfMemoryError``, an allocator's ``RuntimeError``): that says
        nothing about the component, so it is never a result (a known mistake would count as detected).
    """
    try:
        return StageResult(stage())
    except ResourceError:
        raise
    except errors as exc:
        if is_out_of_memory(exc):
            raise out_of_memory(exc, "a stage's measurement") from exc
        return StageResult({}, f"{type(exc).__name__}: {exc}")


# --- running a component -------------------------------------------------------------------------


def _known(stage: str, stages: Iterable[str]) -> str:
    """``stage`` itself, or a KeyError naming the known ones: a misspelt stage is a harness user's bug, not a
    stage's result (:func:`measure` does not catch it)."""
    if stage not in stages:
        raise KeyError(f"stage {stage!r} is not one of: {', '.join(stages)}")
    return stage


def component(stage: str, name: str):
    """The registered component called ``name`` that ``stage`` runs: a front-end, a VAE or a vocoder variant
    (an :class:`~harness.errors.InputError` lists the known ones)."""
    return {"frontend": frontends.get_frontend, "vae": variants.get_vae,
            "vocoder": variants.get_vocoder}[COMPONENT_AT[_known(stage, COMPONENT_AT)]](name)


def output(chain: Chain, stage: str, name: str, x: torch.Tensor, *, seed: int = 0,
           samples: Optional[int] = None) -> torch.Tensor:
    """Component ``name`` run at ``stage`` on ``x``: the one place a stage calls the model.

    Parameters
    ----------
    chain : Chain
    stage : str
        ``frontend`` (``x``: waveform ``[b, samples]``), ``vae`` or ``roundtrip`` (``x``: mel
        ``[b, 1, T, 64]``), ``decode`` (``x``: pipeline latents ``[b, 8, T/4, 16]``, multiplied by the scaling
        factor), ``vocoder`` (``x``: mel).
    name : str
        A registered front-end, VAE or vocoder variant.
    seed : int, default 0
        The VAE's posterior sample, per item (:func:`harness.model.chain.item_generators`).
    samples : int, optional
        Vocoder output cropped to this many samples (160 per frame); fewer raise a LayoutError.

    Returns
    -------
    Tensor
        Mel ``[b, 1, T, 64]`` or waveform ``[b, samples]`` on the chain's device.

    Raises
    ------
    StageOutputError
        A project's component raised, or a component returned what the stage cannot measure (another shape or
        frame count, a non-float dtype, NaN/Inf, a tuple or list): the message names the component and says
        what came back; the exception carries the output as it came for the evidence. A LayoutError.
    KeyError
        ``stage`` runs no single component (``chain``) or is not a stage.
    harness.errors.ResourceError
        The device ran out of memory running the component (named, with the stage).
    """
    _known(stage, COMPONENT_AT)
    try:
        return _output(chain, stage, name, x, seed, samples)
    except ResourceError:
        raise
    except (RuntimeError, MemoryError) as exc:
        if is_out_of_memory(exc):
            raise out_of_memory(exc, f"{KIND[stage]} {name!r} at stage {stage!r} on {chain.device}") from exc
        raise


class StageOutputError(LayoutError):
    """A component's output a stage cannot measure (a wrong shape, dtype or type, NaN), or an exception a
    project's component raised: the stage's result, never a crash of the run.

    Attributes
    ----------
    output : object or None
        What the component returned, as it came (None when it raised before returning): the evidence of a
        failure draws it whatever its shape.
    returned_by : str
        Which call returned ``output``: ``front-end``, ``encode``, ``decode``, ``round trip`` or ``vocoder``.
    """

    def __init__(self, message: str, output=None, returned_by: str = ""):
        super().__init__(message)
        self.output, self.returned_by = output, returned_by

    def __reduce__(self):  # pytest-xdist and multiprocessing pickle exceptions
        return (type(self), (str(self), None, self.returned_by))


#: how a message names the component each stage runs
KIND = {stage: COMPONENT_NAMES[component] for stage, component in COMPONENT_AT.items()}


def is_builtin(stage: str, name: str) -> bool:
    """Whether ``name`` is one of the harness's own components at ``stage`` (a clip or golden stage)."""
    kind = COMPONENT_AT[_known(stage, COMPONENT_AT)]
    return name in {"frontend": frontends.BUILTIN_NAMES, "vae": variants.BUILTIN_VAES,
                    "vocoder": variants.BUILTIN_VOCODERS}[kind]


#: what :func:`_recording` holds for a call that has not returned
_RAISED = object()


def _recording(fn: Callable, label: str, seen: list) -> Callable:
    """``fn`` that also appends ``(label, what it returned)`` to ``seen``: the output as it came, before the
    harness converts it, for the evidence of a failure."""
    @functools.wraps(fn)
    def call(*args):
        seen.append((label, _RAISED))  # replaced by the output once it returns: the last entry says who raised
        seen[-1] = (label, fn(*args))
        return seen[-1][1]
    return call


def _recorded(stage: str, name: str, seen: list):
    """Component ``name`` of ``stage`` with its project functions recording their outputs into ``seen``."""
    comp = component(stage, name)
    if COMPONENT_AT[stage] == "vae":
        fields = {"encode_fn": "encode", "decode_fn": "decode", "custom": "round trip"}
        repl = {f: _recording(getattr(comp, f), label, seen) for f, label in fields.items()
                if getattr(comp, f) is not None}
        return dataclasses.replace(comp, **repl) if repl else comp
    return dataclasses.replace(comp, fn=_recording(comp.fn, KIND[stage], seen))


def _run(chain: Chain, stage: str, comp, x: torch.Tensor, seed: int) -> torch.Tensor:
    if stage == "frontend":
        with torch.inference_mode():
            return comp(x.to(chain.device)).float()
    if stage in ("vae", "roundtrip"):
        return comp.roundtrip(chain, x, item_generators(x.shape[0], seed, chain.device))
    if stage == "decode":
        return comp.decode_latents(chain, x)
    return comp(chain, x)


def _output(chain: Chain, stage: str, name: str, x: torch.Tensor, seed: int, samples: Optional[int]) -> torch.Tensor:
    builtin = is_builtin(stage, name)
    seen: list = []
    # a project's component is run with its functions recording what they return, so that a failure's
    # evidence shows the output as it came, whatever its shape
    comp = component(stage, name) if builtin else _recorded(stage, name, seen)
    what = f"{KIND[stage]} {name!r}"
    try:
        out = _run(chain, stage, comp, x, seed)
    except ResourceError:
        raise
    except Exception as exc:
        # the harness's own component raising is a bug of the harness and stays one; anything a project's
        # component raises, or returns that cannot be read, is its stage's result, naming it
        if builtin or is_out_of_memory(exc):
            raise
        label, raw = seen[-1] if seen else (KIND[stage], _RAISED)
        raw = None if raw is _RAISED else raw
        if isinstance(exc, HarnessError):
            # already the stage's result, of its own type (a ComponentError names what raised): it says what came
            # back where the harness's reading of the output refused it, and carries that output for the evidence
            if raw is not None and type(exc).__str__ is Exception.__str__ and len(exc.args) == 1:
                exc.args = (f"{exc} (its {label} returned {describe(raw)})",)
            exc.output, exc.returned_by = raw, label
            raise
        if raw is None:
            message = f"{what}: its {label} raised {type(exc).__name__}: {' '.join(str(exc).split())}"
        else:
            message = (f"{what}: its {label} returned {describe(raw)}, which the harness could not read "
                       f"({type(exc).__name__}: {' '.join(str(exc).split())})")
        raise StageOutputError(message, raw, label) from exc
    raw = seen[-1][1] if seen else out
    return _checked(chain, stage, what, x, out, raw, samples)


def _dtype_name(raw) -> Optional[str]:
    """The dtype of what a component returned, where it is not a real floating-point one."""
    dtype = getattr(raw, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return None if dtype.is_floating_point else str(dtype)
    if dtype is not None and np.dtype(dtype).kind != "f":
        return str(dtype)
    return None


def _checked(chain: Chain, stage: str, what: str, x: torch.Tensor, out: torch.Tensor, raw,
             samples: Optional[int]) -> torch.Tensor:
    """``out`` if the stage can measure it, else a :class:`StageOutputError` saying what came back, what was
    expected and why, carrying ``raw`` (the output as the component returned it)."""
    def refuse(reason: str):
        raise StageOutputError(f"{what} returned {describe(raw)}: {reason}", raw, KIND[stage])

    bad_dtype = _dtype_name(raw)
    if bad_dtype is not None:
        refuse(f"dtype {bad_dtype}, expected real floating-point values (float32)")
    if stage == "vocoder":
        if samples is not None and out.shape[-1] < samples:
            refuse(f"{out.shape[-1]} samples for {x.shape[-2]} frames, fewer than the {samples} of the input "
                   f"({HOP} per frame; {out.shape[-1] / max(x.shape[-2], 1):g} per frame came back)")
        if not torch.isfinite(out).all():
            refuse("the waveform contains NaN or Inf")
        return out if samples is None else out[:, :samples]
    b = x.shape[0]
    frames = (x.shape[-1] // HOP if stage == "frontend" else
              x.shape[2] * chain.vae_factor if stage == "decode" else x.shape[2])
    expected = (b, 1, frames, N_MELS)
    if tuple(out.shape) != expected:
        if stage == "frontend":
            why = (f"AudioLDM2's front-end gives {frames} frames for {x.shape[-1]} samples "
                   f"(one frame per {HOP} samples: hop length {HOP})")
        elif stage == "decode":
            why = f"the pipeline's decode gives {frames} frames for {x.shape[2]} latent frames"
        else:
            why = f"a round trip gives back the {frames} frames of its input mel"
        refuse(f"shape {tuple(out.shape)}, expected a log-mel {expected}: {why}")
    if not torch.isfinite(out).all():
        n = int((~torch.isfinite(out)).sum())
        refuse(f"the log-mel contains NaN or Inf ({n} of {out.numel()} values)")
    return out


# --- comparing an output with its reference ------------------------------------------------------


def mel_figures(estimate: torch.Tensor, reference: torch.Tensor,
                names: Sequence[str] = ("mel_l1",)) -> Dict[str, np.ndarray]:
    """Per-item mel-domain figures of two log-mels ``[b, 1, T, 64]``: ``mel_l1`` (nats), ``mel_snr`` (dB);
    numpy ``[b]`` each."""
    return {n: metrics.get_metric(n).fn(mel_estimate=estimate, mel_reference=reference).cpu().numpy() for n in names}


def framing_mels(wave: torch.Tensor, training_mel: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
    """The AudioLDM2 log-mels ``[b, 1, T, 64]`` of ``wave`` in both of its framings: training (frame t
    centred on ``160 t + 80``; ``training_mel`` when already computed) and inference (TacotronSTFT, on
    ``160 t``). A correct front-end matches one of them."""
    if training_mel is None:
        training_mel = frontends.get_frontend(DEFAULTS["frontend"])(wave)
    return [training_mel, frontends.get_frontend("audioldm2-tacotron")(wave)]


def frontend_distance(mel: torch.Tensor, references: Sequence[torch.Tensor]) -> np.ndarray:
    """Per-item log-mel L1 of a front-end's ``mel`` to the closer of AudioLDM2's framings
    (:func:`framing_mels`), numpy ``[b]``."""
    return np.minimum(*[mel_figures(mel, m)["mel_l1"] for m in references])


def compare(stage: str, out: torch.Tensor, reference, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """The per-item figures of a stage's output ``out`` against its reference, numpy ``[b]`` each.

    Parameters
    ----------
    stage : str
        One of :data:`harness.vocabulary.COMPONENT_AT` or ``chain``.
    out : Tensor
        What :func:`output` returned (a mel ``[b, 1, T, 64]`` or a waveform ``[b, samples]``).
    reference : Tensor or list of Tensor
        A mel ``[b, 1, T, 64]``, a waveform ``[b, samples]``, or (front-end) the mels of both framings
        (:func:`framing_mels`), the closer one counting. A vocoder's waveform compared with a *mel* is
        re-analysed by the AudioLDM2 front-end first (the clip stage: the vocoder renders the mel it was
        given); compared with a *waveform* it is
        measured sample by sample (the golden stage: the pipeline's own vocoder on the same mel). The chain's
        waveform is lag-aligned and gain-matched to the input for the waveform metrics (:func:`metrics.compute`).
    names : sequence of str, optional
        Metrics to compute. Defaults: ``mel_l1`` for mels; :data:`GOLDEN_VOCODER_METRICS` for a vocoder
        against a waveform; the chain's :data:`JUDGED` and :data:`REPORTED` for the chain.

    Returns
    -------
    dict of str -> ndarray [b]
    """
    _known(stage, (*COMPONENT_AT, "chain"))
    if isinstance(reference, (list, tuple)):
        if names is not None and tuple(names) != ("mel_l1",):
            raise ValueError(f"a front-end is compared with the closer framing by mel_l1 only, not {list(names)}")
        return {"mel_l1": frontend_distance(out, reference)}
    if stage == "chain":  # lag-aligned and gain-matched for the waveform metrics
        return {k: v.cpu().numpy() for k, v in metrics.compute(
            out, reference, JUDGED["chain"] + REPORTED if names is None else names).items()}
    if stage == "vocoder" and reference.ndim == 2:  # sample by sample: the same mel went into both
        return {n: metrics.get_metric(n)(out, reference).cpu().numpy()
                for n in (GOLDEN_VOCODER_METRICS if names is None else names)}
    if stage == "vocoder":  # a waveform against the mel it was made from
        out = frontends.get_frontend(DEFAULTS["frontend"])(out)
    return mel_figures(out, reference, ("mel_l1",) if names is None else names)


# --- the golden stages ---------------------------------------------------------------------------

#: what each golden stage compares a variant's output with (:func:`golden_stages`)
GOLDEN_COMPARED_WITH = {
    "decode": "the golden mel (the pipeline's own decode of its latents)",
    "roundtrip": "the correct round trip (scaled, the posterior's mode) of the golden mel",
    "vocoder": "the golden waveform (the pipeline's own vocoder on the golden mel)",
    "frontend": "the AudioLDM2 front-end of the golden waveform, in the closer of its two framings",
}
#: the built-in whose calibrated limits judge a project's own variant at each golden stage, and from whose
#: ceiling the detection limits of the known mistakes follow: the stage's correct component
GOLDEN_REFERENCE = {stage: DEFAULTS[COMPONENT_AT[stage]] for stage in GOLDEN_STAGES}


@dataclass
class GoldenInputs:
    """The golden cases on the chain's device: latents ``[n, 8, T/4, 16]``, mel ``[n, 1, T, 64]``,
    waveform ``[n, samples]``, and the references computed once (the correct round trip, the framings)."""

    latents: torch.Tensor
    mel: torch.Tensor
    wave: torch.Tensor
    seed: int
    _references: Dict[str, object] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, chain: Chain, case_latents, case_mel, case_audio, seed: int = 0) -> "GoldenInputs":
        dev = chain.device
        return cls(torch.from_numpy(np.asarray(case_latents)).to(dev),
                   torch.from_numpy(np.asarray(case_mel))[:, None].to(dev),
                   torch.from_numpy(np.asarray(case_audio)).to(dev), seed)

    def input(self, stage: str) -> torch.Tensor:
        """What ``stage`` runs its component on: the latents (decode), the waveform (front-end), else the mel."""
        return {"decode": self.latents, "frontend": self.wave}.get(stage, self.mel)

    def reference(self, chain: Chain, stage: str):
        """What ``stage`` compares with (:data:`GOLDEN_COMPARED_WITH`): a mel, a waveform, or (front-end)
        the mels of both framings."""
        if stage not in self._references:
            self._references[stage] = {
                "decode": lambda: self.mel,
                "roundtrip": lambda: output(chain, "roundtrip", DEFAULTS["vae"], self.mel, seed=self.seed),
                "vocoder": lambda: self.wave,
                "frontend": lambda: framing_mels(self.wave),
            }[stage]()
        return self._references[stage]


def golden_variant_names(stage: str) -> List[str]:
    """The registered variants a golden stage runs on (a KeyError for a name not in
    :data:`harness.vocabulary.GOLDEN_STAGES`)."""
    _known(stage, GOLDEN_STAGES)
    if stage == "decode":
        return [v.name for v in variants.list_vaes() if v.has_decode]
    if stage == "roundtrip":
        return [v.name for v in variants.list_vaes() if not v.skip]
    if stage == "vocoder":
        return [v.name for v in variants.list_vocoders()]
    return [f.name for f in frontends.list_frontends()]


def golden_pair(chain: Chain, inputs: GoldenInputs, stage: str, name: str) -> Tuple[object, object]:
    """``(output, reference)`` of variant ``name`` at golden ``stage``: what :func:`compare` measures and the
    evidence of a failure draws."""
    samples = inputs.wave.shape[-1] if stage == "vocoder" else None
    out = output(chain, stage, name, inputs.input(stage), seed=inputs.seed, samples=samples)
    return out, inputs.reference(chain, stage)


def golden_result(chain: Chain, inputs: GoldenInputs, stage: str, name: str) -> StageResult:
    """Variant ``name`` at golden ``stage`` on ``inputs``, measured (:func:`measure`: an error is the result)."""
    return measure(lambda: compare(stage, *golden_pair(chain, inputs, stage, name)))


def golden_stages(chain: Chain, case_latents: np.ndarray, case_mel: np.ndarray, case_audio: np.ndarray,
                  seed: int = 0, stages: Iterable[str] = GOLDEN_STAGES) -> Dict[str, Dict[str, StageResult]]:
    """Stage isolation on golden cases (batched over cases).

    Returns ``{stage: {variant_name: StageResult}}``, only the named ``stages``; each stage compares a
    variant's output with :data:`GOLDEN_COMPARED_WITH`:

    * ``decode``: golden latents -> the variant's decode, vs the golden mel (the pipeline's own decode);
    * ``roundtrip``: golden mel -> the variant's encode and decode, vs the correct round trip (``scaled``,
      the posterior's mode) of the same mel;
    * ``vocoder``: golden mel -> the vocoder, vs the golden waveform (sample-exact for HiFi-GAN, so waveform
      SNR and correlation are judged there);
    * ``frontend``: golden waveform -> the front-end, vs the AudioLDM2 front-end of the same waveform (the
      closer of its two framings, as in the clip matrix).

    The golden mel comes from the pipeline's UNet, far from anything a VAE reproduces or a re-analysis
    returns; comparing round trips and front-ends with it would measure that distance, not the variant.
    """
    names = {stage: golden_variant_names(stage) for stage in stages}  # a misspelt stage fails here, not per variant
    inputs = GoldenInputs.of(chain, case_latents, case_mel, case_audio, seed)
    return {stage: {name: golden_result(chain, inputs, stage, name) for name in names[stage]}
            for stage in names}
