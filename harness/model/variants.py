"""Named VAE and vocoder variants: the correct way to call each stage, and the known mistakes.

A VAE variant says how the scaling factor ``s`` is applied on each side and which posterior
statistic is used; whether it is right then depends on the stage:

* ``roundtrip`` (mel -> encode -> decode): right when both sides agree;
* ``decode`` (pipeline latents -> decode): right when decode divides by exactly ``s``.

So forgetting ``s`` on *both* sides (``unscaled``) passes a round trip but fails on pipeline
latents: the harness shows both. Register your own with :func:`register_vae` /
:func:`register_vocoder`; it joins the quality matrix with expected verdict ``pass``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch

from harness.errors import InputError, component_error
from harness.signal.griffinlim import griffin_lim_from_mel


@dataclass(frozen=True)
class VaeVariant:
    """How a user drives the VAE.

    Attributes
    ----------
    name : str
    encode_scale, decode_scale : callable ``s -> float``
        Factor multiplied after encode / divided before decode (``s`` = the VAE's scaling_factor).
    sample : bool
        Use ``latent_dist.sample(generator)`` instead of ``mode()`` (one generator per item).
    skip : bool
        ``none``: no VAE at all (front-end straight into the vocoder).
    encode_fn, decode_fn : callable, optional
        A project's own VAE calls, replacing the scaling above: ``encode_fn(chain, mel [b, 1, T, 64]) ->
        latents [b, 8, T/4, 16]`` multiplied by the scaling factor, as the pipeline has them, and
        ``decode_fn(chain, latents) -> mel [b, 1, T, 64]`` (or ``[b, T, 64]``); tensors or numpy arrays,
        inputs in the VAE's dtype on its device. With ``decode_fn`` the golden decode stage (the
        pipeline's latents through it) runs on the variant too. Made by :func:`register_vae` from two
        functions or from a wrapper class around ``pipe.vae``.
    custom : callable, optional
        ``custom(chain, mel, generator) -> mel``: a user's own round trip, replacing the above (no
        decode-only path: the golden decode stage does not run on it; prefer ``encode_fn``/``decode_fn``).
        ``generator`` is a list of CPU ``torch.Generator``, one per item of ``mel``, each seeded alike
        (:func:`harness.model.chain.item_generators`); diffusers' ``latent_dist.sample(generator)`` takes
        it as it is, and a variant that draws its own noise item by item keeps each clip's result
        independent of its batch (draw on the CPU and move the noise: ``torch.randn(shape, generator=g)
        .to(mel.device)``, the same numbers on every device).
    expected : dict
        Verdict per stage, ``"pass"`` or ``"detect"``; stages not listed are ``pass``.
    fine_tuned : bool
        Other weights than the pipeline's VAE (fine-tuned): the sample-exact golden stages and the distance
        to the base's round trip do not apply; the matrix judges it no worse than the base by spectral
        quality (its output against the input mel, with the base's calibrated ceilings).
    """

    name: str
    encode_scale: Callable[[float], float] = lambda s: s
    decode_scale: Callable[[float], float] = lambda s: s
    sample: bool = False
    skip: bool = False
    custom: Optional[Callable] = None
    expected: Dict[str, str] = field(default_factory=dict)
    description: str = ""
    encode_fn: Optional[Callable] = None
    decode_fn: Optional[Callable] = None
    fine_tuned: bool = False

    @property
    def correct(self) -> bool:
        """True when every stage of this variant is expected to pass (not a known mistake)."""
        return all(v == "pass" for v in self.expected.values())

    def expected_at(self, stage: str) -> str:
        """The verdict expected at ``stage`` (``roundtrip``, ``decode``; ``pass`` where ``expected`` names none),
        as every component spells it."""
        return self.expected.get(stage, "pass")

    def roundtrip(self, chain, mel: torch.Tensor, generator: Optional[Sequence[torch.Generator]] = None) -> torch.Tensor:
        """``mel [b, 1, T, 64]`` -> encode -> decode -> ``[b, 1, T, 64]`` the way this variant does it."""
        if self.skip:
            return mel
        if self.custom is not None:
            try:
                return self.custom(chain, mel, generator)
            except TypeError as exc:  # a project's round trip: its stage's result, not a crash of the run
                raise component_error(f"VAE variant {self.name!r} (custom round trip)", exc, mel) from exc
        if self.decode_fn is not None:
            with torch.inference_mode():
                z = (self._call(self.encode_fn, chain, mel, "encode", 1) if self.encode_fn is not None else
                     chain.encode(mel, sample=self.sample, generator=generator))
                return self._call(self.decode_fn, chain, z, "decode", 1)
        s = chain.scaling_factor
        z = chain.encode(mel, scale=self.encode_scale(s), sample=self.sample, generator=generator)
        return chain.decode(z, scale=self.decode_scale(s))

    @property
    def has_decode(self) -> bool:
        """Whether pipeline latents can be decoded the way this variant decodes (the golden decode stage)."""
        return not self.skip and (self.custom is None or self.decode_fn is not None)

    def decode_latents(self, chain, latents: torch.Tensor) -> torch.Tensor:
        """Pipeline latents (already multiplied by ``s``) -> mel, the way this variant decodes."""
        if not self.has_decode:
            raise InputError(f"VAE variant {self.name!r} has no decode-only path (a round trip given as `custom`)")
        if self.decode_fn is not None:
            with torch.inference_mode():
                return self._call(self.decode_fn, chain, latents, "decode", 1)
        return chain.decode(latents, scale=self.decode_scale(chain.scaling_factor))

    def _call(self, fn, chain, x: torch.Tensor, what: str, channels: int) -> torch.Tensor:
        """A project's encode/decode on ``x`` (in the VAE's dtype and device); its result as a float32 tensor
        on the chain's device, a decoded mel as ``[b, 1, T, 64]``."""
        p = next(chain.vae.parameters())
        x = x.to(p.device, p.dtype)
        try:
            out = fn(chain, x)
        except TypeError as exc:  # only a project's variant has these functions: its stage's result, not a crash
            raise component_error(f"VAE variant {self.name!r} ({what})", exc, x) from exc
        out = torch.as_tensor(getattr(out, "sample", out)).to(chain.device).float()
        if what == "decode":
            if out.ndim == 3:
                out = out[:, None]
            if out.ndim != 4 or out.shape[1] != 1 or out.shape[0] != x.shape[0]:
                raise InputError(f"VAE variant {self.name!r}: decode returned shape {tuple(out.shape)}, expected "
                                 f"a log-mel [{x.shape[0]}, 1, frames, 64]")
        return out


@dataclass(frozen=True)
class VocoderVariant:
    """How a user turns a log-mel ``[b, 1, T, 64]`` into a waveform ``[b, 160 T]``.

    ``fn(chain, mel)`` may return a tensor or a numpy array, ``[b, samples]`` or ``[b, 1, samples]``, at
    least ``160 T`` samples (longer is cropped); with ``batched=False`` it takes one mel ``[1, 1, T, 64]``
    at a time, on the CPU whatever the chain's device (numpy reads it; :meth:`Chain.vocode
    <harness.model.chain.Chain.vocode>` moves it to the vocoder's device). A ``TypeError`` it raises is its
    stage's result (:class:`~harness.errors.ComponentError`), naming it. ``fine_tuned``: other weights than
    the pipeline's vocoder, judged no worse than the base by spectral quality (the clip matrix) instead of
    sample-exactly against the golden waveform.
    """

    name: str
    fn: Callable
    correct: bool = True
    description: str = ""
    batched: bool = True
    fine_tuned: bool = False

    def expected_at(self, stage: Optional[str] = None) -> str:
        """The verdict expected at ``stage``, as every component spells it: ``pass`` for a correct vocoder
        variant, ``detect`` for a known mistake (a vocoder variant has one verdict at every stage)."""
        return "pass" if self.correct else "detect"

    def __call__(self, chain, mel: torch.Tensor) -> torch.Tensor:
        if self.batched:
            return self._wave(self._run(chain, mel), mel.shape[0], chain.device)
        # one mel at a time is how numpy code is written, and numpy cannot read a GPU tensor: each mel is
        # handed over on the CPU and its waveform goes back to the chain's device
        return torch.cat([self._wave(self._run(chain, m[None]), 1, chain.device) for m in mel.cpu()])

    def _run(self, chain, mel: torch.Tensor):
        """``fn(chain, mel)``; a ``TypeError`` of a project's vocoder becomes a :class:`~harness.errors.ComponentError`
        naming it (a stage's result), while one of the harness's own vocoders is a bug and stays one."""
        try:
            return self.fn(chain, mel)
        except TypeError as exc:
            if getattr(self.fn, "__module__", None) == __name__:
                raise
            raise component_error(f"vocoder {self.name!r}", exc, mel) from exc

    def _wave(self, out, batch: int, device) -> torch.Tensor:
        out = torch.as_tensor(out).to(device).float()
        if out.ndim == 3 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim == 1 and batch == 1:
            out = out[None]
        if out.ndim != 2 or out.shape[0] != batch:
            raise InputError(f"vocoder {self.name!r} returned shape {tuple(out.shape)}, expected a waveform "
                             f"[{batch}, samples]")
        return out


_VAES: Dict[str, VaeVariant] = {}
_VOCODERS: Dict[str, VocoderVariant] = {}


def register_vae(variant, wrapper: Optional[Callable] = None, *, encode: Optional[Callable] = None,
                 decode: Optional[Callable] = None, correct: bool = True, description: str = "",
                 fine_tuned: bool = False) -> VaeVariant:
    """Add a VAE variant to the registry (and the matrix). Returns it, so it can be used inline.

    Parameters
    ----------
    variant : VaeVariant or str
        A whole :class:`VaeVariant`, or the name of a project's own VAE calls given by one of:
    wrapper : callable, optional
        A class (or factory) taking the pipeline's VAE (``pipe.vae``, a diffusers ``AutoencoderKL``) and
        returning an object with ``encode(mel [b, 1, T, 64]) -> latents [b, 8, T/4, 16]`` (multiplied by
        the scaling factor, as the pipeline has them) and ``decode(latents) -> mel``; made once per model.
    encode, decode : callable, optional
        The same two calls as functions of ``(chain, x)``; ``chain.vae`` is the pipeline's VAE.
    correct : bool, default True
        False declares a known mistake (expected to be detected at the round trip and the golden decode).
    description : str
    fine_tuned : bool, default False
        True for a VAE with weights of its own (fine-tuned): judged no worse than the base by spectral
        quality instead of sample-exactly (:attr:`VaeVariant.fine_tuned`). Leave it False for a refactor
        of the pipeline's own VAE: the exact checks are what catch a slip there.

    Examples
    --------
    >>> class OurVae:
    ...     def __init__(self, vae):
    ...         self.vae = vae
    ...     def encode(self, mel):
    ...         return self.vae.encode(mel).latent_dist.mode() * self.vae.config.scaling_factor
    ...     def decode(self, latents):
    ...         return self.vae.decode(latents / self.vae.config.scaling_factor).sample
    >>> register_vae("ours-vae", OurVae, description="our VAE wrapper")  # doctest: +SKIP
    """
    if not isinstance(variant, VaeVariant):
        name = variant
        if wrapper is not None:
            made = {}

            def wrapped(chain):
                key = id(chain.vae)
                if key not in made:
                    made[key] = (chain.vae, wrapper(chain.vae))  # keeps the VAE alive while its id is a key
                return made[key][1]

            encode = lambda chain, mel: wrapped(chain).encode(mel)  # noqa: E731
            decode = lambda chain, latents: wrapped(chain).decode(latents)  # noqa: E731
        if decode is None:
            raise InputError(f"register_vae({name!r}): give a VaeVariant, a wrapper class with encode/decode, or "
                             "encode= and decode= functions")
        expected = {} if correct else {"roundtrip": "detect", "decode": "detect"}
        variant = VaeVariant(name, encode_fn=encode, decode_fn=decode, expected=expected, description=description,
                             fine_tuned=fine_tuned)
    _VAES[variant.name] = variant
    return variant


def register_vocoder(name: str, *, correct: bool = True, description: str = "", batched: bool = True,
                     fine_tuned: bool = False):
    """Decorator adding ``fn(chain, mel[b,1,T,64]) -> wave[b,160T]`` as a vocoder variant.

    ``fine_tuned=True`` for a vocoder with weights of its own: judged no worse than the base by spectral
    quality in the clip matrix instead of sample-exactly against the golden waveform (a refactor of the
    pipeline's own vocoder keeps the default, and the exact check). ``batched=False``: ``fn`` takes one mel
    ``[1, 1, T, 64]`` at a time, handed over on the CPU (numpy code reads it as it is).

    Examples
    --------
    >>> @register_vocoder("my-vocoder", fine_tuned=True, description="our fine-tuned HiFi-GAN")
    ... def my_vocoder(chain, mel):
    ...     return chain.vocode(mel)
    """

    def wrap(fn):
        _VOCODERS[name] = VocoderVariant(name, fn, correct, description or (fn.__doc__ or "").strip().split("\n")[0],
                                         batched, fine_tuned)
        return fn

    return wrap


def get_vae(name: str) -> VaeVariant:
    """The registered VAE variant called ``name`` (an :class:`~harness.errors.InputError` lists the known ones)."""
    if name not in _VAES:
        raise InputError(f"unknown VAE variant {name!r}; known: {', '.join(_VAES)}")
    return _VAES[name]


def get_vocoder(name: str) -> VocoderVariant:
    """The registered vocoder variant called ``name`` (an :class:`~harness.errors.InputError` lists the known ones)."""
    if name not in _VOCODERS:
        raise InputError(f"unknown vocoder variant {name!r}; known: {', '.join(_VOCODERS)}")
    return _VOCODERS[name]


def list_vaes() -> List[VaeVariant]:
    """Every registered VAE variant, in registration order (built-ins first)."""
    return list(_VAES.values())


def list_vocoders() -> List[VocoderVariant]:
    """Every registered vocoder variant, in registration order (built-ins first)."""
    return list(_VOCODERS.values())


# --- VAE variants --------------------------------------------------------------------------------

register_vae(VaeVariant("scaled", description="correct: z = mode(encode(mel)) * s; mel = decode(z / s)"))
register_vae(VaeVariant("none", skip=True, description="no VAE: front-end mel straight into the vocoder"))
register_vae(VaeVariant("sample", sample=True,
                        description="correct, stochastic: posterior sample (seeded) instead of the mode"))
register_vae(VaeVariant("no-decode-scale", decode_scale=lambda s: 1.0,
                        expected={"roundtrip": "detect", "decode": "detect"},
                        description="mistake: multiplies by s after encode but forgets to divide before decode"))
register_vae(VaeVariant("no-encode-scale", encode_scale=lambda s: 1.0, expected={"roundtrip": "detect"},
                        description="mistake: forgets s after encode (fine on pipeline latents, wrong in a round trip)"))
register_vae(VaeVariant("double-scale", decode_scale=lambda s: s * s,
                        expected={"roundtrip": "detect", "decode": "detect"},
                        description="mistake: divides by s twice before decode (by hand and again in a helper)"))
register_vae(VaeVariant("unscaled", encode_scale=lambda s: 1.0, decode_scale=lambda s: 1.0,
                        expected={"decode": "detect"},
                        description="mistake: s forgotten on both sides: cancels in a round trip, wrong on "
                                    "pipeline latents"))


# --- vocoder variants ----------------------------------------------------------------------------


@register_vocoder("hifigan", description="correct: the model's HiFi-GAN on [batch, frames, 64]")
def _hifigan(chain, mel):
    return chain.vocode(mel)


@register_vocoder("hifigan-transposed", correct=False,
                  description="mistake: HiFi-GAN fed [batch, 64, frames] (caught as a layout error, or a "
                              "quality collapse when frames == 64)")
def _hifigan_transposed(chain, mel):
    return chain.vocode(mel[:, 0].transpose(1, 2))


@register_vocoder("griffin-lim", description="phase-free baseline: mel inversion + 32 Griffin-Lim iterations")
def _griffin_lim(chain, mel):
    return griffin_lim_from_mel(mel, n_iter=32)


#: the harness's own VAE and vocoder variants; any other name was registered by a project
BUILTIN_VAES = frozenset(_VAES)
BUILTIN_VOCODERS = frozenset(_VOCODERS)
