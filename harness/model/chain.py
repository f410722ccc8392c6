"""The reconstruction chain: front-end -> VAE encode/decode -> vocoder, one explicit function per model call.

The calls (the front-end, and the model's: encode, decode, vocode) with their shapes (T = frames, a multiple
of 4; the real model's 10.24 s clip has T = 1024); where each is judged is :mod:`harness.judging.stages`:

======================  ============================  ==============================
call                    input                         output
======================  ============================  ==============================
front-end               wave ``[b, 160 T]``           mel ``[b, 1, T, 64]``
:meth:`Chain.encode`    mel ``[b, 1, T, 64]``         latents ``[b, 8, T/4, 16]``
:meth:`Chain.decode`    latents ``[b, 8, T/4, 16]``   mel ``[b, 1, T, 64]``
:meth:`Chain.vocode`    mel ``[b, 1, T, 64]``         wave ``[b, 160 T]`` (HiFi-GAN's extra samples cropped)
======================  ============================  ==============================
"""
from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch

from harness.errors import InputError, LayoutError
from harness.machine import keep_freed_memory
from harness.signal import frontend as frontends
from harness.signal.audio import HOP
from harness.model import loading, variants


def fold_weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Fold weight-norm parametrizations (new or old style) into plain weights, in place; returns ``module``.

    An inference speed-up (:meth:`Chain.optimize`: no weight is recomputed per call) and what an exported
    vocoder holds (:mod:`harness.builders.bundled.train`). Values are unchanged up to float round-off.
    """
    from torch.nn.utils import parametrize

    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        elif hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
    return module


class TensorMemo:
    """The results of a deterministic model call, found again by the *content* of its input tensor.

    The matrix and the golden stages hand one mel to several VAE variants (``scaled``, ``sample`` and
    ``unscaled`` all start from the same posterior) and the same latents to several decodes (every
    variant that divides by ``s`` decodes the pipeline's latents alike); at real size each such call
    costs seconds. An entry is found only for an input equal element by element (``torch.equal``)
    with the same ``key``, so a hit returns exactly what the call would; entries beyond ``max_bytes``
    go, oldest first.
    """

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._entries: List[tuple] = []  # (fingerprint, input, value, bytes), the most recently used last
        self._bytes_held = 0

    @staticmethod
    def _bytes(value) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        moments = value.parameters  # a posterior: its moments, and its std and var (half their size each)
        return 2 * moments.numel() * moments.element_size()

    def get(self, x: torch.Tensor, key=None):
        """The value stored for an input equal to ``x`` under ``key``, or None (also when ``key`` is None:
        nothing is then stored either)."""
        if key is None or x.device.type == "meta":
            return None
        fp = (tuple(x.shape), x.dtype, x.device, key)
        for i, entry in enumerate(self._entries):
            if entry[0] == fp and torch.equal(entry[1], x):
                self._entries.append(self._entries.pop(i))
                return entry[2]
        return None

    def put(self, x: torch.Tensor, value, key=None):
        """Store ``value`` for input ``x`` under ``key`` (both kept as they are: never modify them); returns
        ``value``."""
        if key is None or x.device.type == "meta":
            return value
        size = self._bytes(x) + self._bytes(value)
        self._entries.append(((tuple(x.shape), x.dtype, x.device, key), x, value, size))
        self._bytes_held += size
        while len(self._entries) > 1 and self._bytes_held > self.max_bytes:
            self._bytes_held -= self._entries.pop(0)[3]
        return value


def weights_version(module: torch.nn.Module):
    """A key that changes whenever ``module`` or its weights do (an optimizer step, a load, a swap), or
    None where torch keeps no version counter (weights made under ``inference_mode``): :class:`TensorMemo`
    then stores nothing."""
    try:
        # a weak reference: equal only while this very module lives, and it does not keep it alive
        return weakref.ref(module), sum(p._version for p in module.parameters())
    except RuntimeError:
        return None


def item_generators(batch: int, seed: int, device=None) -> List[torch.Generator]:
    """One CPU ``torch.Generator`` per item of a batch, each seeded with ``seed``, whatever the device.

    diffusers' convention for per-item seeding (``latent_dist.sample(generators)``, ``randn_tensor``):
    item ``i`` draws the same numbers whether it is alone or at any place in any batch. The generators
    are CPU ones because CUDA's generator draws other numbers from the same seed: diffusers' ``randn_tensor``
    draws with a CPU generator on the CPU and moves the noise to the chain's device, so a posterior sample
    on a GPU starts from the noise it had when the limits were calibrated on a CPU. Code that draws its
    own noise with them draws on the CPU and moves it (``torch.randn(shape, generator=g).to(device)``).

    Parameters
    ----------
    batch : int
        Items in the batch (one generator each).
    seed : int
        The seed of every generator.
    device : str or torch.device, optional
        The chain's device. Accepted for callers that pass it; the generators are on the CPU regardless.

    Returns
    -------
    list of torch.Generator
    """
    return [torch.Generator(device="cpu").manual_seed(seed) for _ in range(batch)]


@dataclass
class ChainOutput:
    """Every intermediate of one chain run (all float32, on the chain's device)."""

    mel_in: torch.Tensor      # [b, 1, T, 64] front-end output
    mel_out: torch.Tensor     # [b, 1, T, 64] after the VAE variant (== mel_in for vae "none")
    wave_out: torch.Tensor    # [b, samples]  vocoder output cropped to the input length


class Chain:
    """A loaded VAE + vocoder with explicit stage functions.

    Examples
    --------
    >>> chain = Chain.load("tiny")                       # doctest: +SKIP
    >>> out = chain.run(wave, "audioldm2", "scaled", "hifigan")
    >>> out.wave_out.shape == wave.shape
    True
    """

    def __init__(self, vae, vocoder, source: Optional[loading.ModelSource] = None):
        self.vae = vae
        self.vocoder = vocoder
        self.source = source
        # the VAE's posterior by input mel, and decoded mels by latents and scale: several variants of one
        # stage ask for the same (keyed by the weights' version too: a changed or swapped VAE computes anew)
        self._moments, self._decoded = TensorMemo(), TensorMemo()
        #: whether encode/decode keep their results for an equal input (off: every call runs the model)
        self.memoize = True

    @contextlib.contextmanager
    def no_memo(self):
        """Within the block every :meth:`encode` and :meth:`decode` runs the VAE, whatever it computed before.

        A benchmark times the model, not a lookup: the memo would answer every round after the first.

        Examples
        --------
        >>> with chain.no_memo():                          # doctest: +SKIP
        ...     chain.decode(latents)                      # the VAE's decoder runs
        """
        before, self.memoize = self.memoize, False
        try:
            yield self
        finally:
            self.memoize = before

    @classmethod
    def load(cls, model: str = "tiny", device: str = "cpu", dtype: str = "fp32",
             force_vae_fp16: bool = False) -> "Chain":
        """Load the VAE and vocoder of ``model`` (``tiny``, a local diffusers directory or a hub id)."""
        source = loading.resolve_model(model)
        vae, vocoder = loading.load_components(source, device, dtype, force_vae_fp16)
        return cls(vae, vocoder, source)

    @property
    def device(self) -> torch.device:
        """Where the VAE's weights are (the chain's device)."""
        return next(self.vae.parameters()).device

    @property
    def scaling_factor(self) -> float:
        """The VAE's latent scaling factor ``s`` (``vae.config.scaling_factor``; 0.4110 for cvssp/audioldm2)."""
        return float(self.vae.config.scaling_factor)

    @property
    def n_mels(self) -> int:
        """Mel bins the vocoder takes (``model_in_dim``; 64 for AudioLDM2)."""
        return int(self.vocoder.config.model_in_dim)

    @property
    def vae_factor(self) -> int:
        """Frames per latent frame: ``2 ** (len(block_out_channels) - 1)`` (4 for AudioLDM2)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    # --- stages --------------------------------------------------------------------------------

    def _check_mel(self, mel: torch.Tensor, what: str) -> torch.Tensor:
        """A log-mel handed to the VAE: its layout ``[batch, 1, frames, n_mels]``, a frame count the VAE can take,
        finite values. A check of the mel, not of a waveform: the chain's waveforms are checked where they enter,
        by the front-end (:func:`harness.signal.audio.valid_audio`)."""
        if mel.ndim != 4 or mel.shape[1] != 1 or mel.shape[-1] != self.n_mels:
            raise LayoutError(f"{what}: expected a log-mel [batch, 1, frames, {self.n_mels}], got {tuple(mel.shape)}")
        if mel.shape[2] % self.vae_factor:
            raise LayoutError(f"{what}: {mel.shape[2]} frames is not a multiple of the VAE factor {self.vae_factor}; "
                              "pad the waveform to a multiple of 640 samples (harness.signal.audio.pad_or_crop)")
        if mel.device.type != "meta" and not torch.isfinite(mel).all():  # meta: shape-only runs
            raise InputError(f"{what}: the log-mel contains NaN or Inf")
        return mel

    @torch.inference_mode()
    def encode(self, mel: torch.Tensor, scale: Optional[float] = None, sample: bool = False,
               generator: Union[None, torch.Generator, Sequence[torch.Generator]] = None) -> torch.Tensor:
        """Log-mel ``[b, 1, T, 64]`` -> latents ``[b, 8, T/4, 16]``, multiplied by ``scale`` (default ``s``).

        ``sample`` draws from the posterior with ``generator``: one generator, or one per item
        (:func:`item_generators`, as diffusers' ``latent_dist.sample`` takes them)."""
        mel = self._check_mel(mel, "VAE encode")
        p = next(self.vae.parameters())
        x = mel.to(p.device, p.dtype)
        weights = weights_version(self.vae) if self.memoize else None
        dist = self._moments.get(x, weights)
        if dist is None:
            dist = self._moments.put(x.clone(), self.vae.encode(x).latent_dist, weights)
        z = dist.sample(generator) if sample else dist.mode()
        return z.float() * (self.scaling_factor if scale is None else scale)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, scale: Optional[float] = None) -> torch.Tensor:
        """Latents ``[b, 8, T/4, 16]`` divided by ``scale`` (default ``s``) -> log-mel ``[b, 1, T, 64]``."""
        lat_ch = self.vae.config.latent_channels
        if latents.ndim != 4 or latents.shape[1] != lat_ch:
            raise LayoutError(f"VAE decode: expected latents [batch, {lat_ch}, frames/4, 16], got {tuple(latents.shape)}")
        p = next(self.vae.parameters())
        scale = self.scaling_factor if scale is None else scale
        x = latents.to(p.device, p.dtype)
        weights = weights_version(self.vae) if self.memoize else None
        key = None if weights is None else (weights, scale)
        if key is None:
            return self.vae.decode(x / scale).sample.float()
        mel = self._decoded.get(x, key)
        if mel is None:
            mel = self._decoded.put(x.clone(), self.vae.decode(x / scale).sample.float(), key)
        return mel.clone()  # the memo's copy stays as computed whatever the caller does with its own

    @torch.inference_mode()
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[b, 1, T, 64]`` or ``[b, T, 64]`` -> waveform ``[b, 160 T]`` (fp32).

        A ``[b, 64, T]`` input is refused with a :class:`LayoutError` (unless T is also 64, which no
        shape check can tell apart: the quality metrics catch that one).
        """
        if mel.ndim == 4:
            mel = mel[:, 0]
        if mel.ndim != 3 or mel.shape[-1] != self.n_mels:
            hint = " (it looks transposed: the vocoder wants [batch, frames, 64])" if mel.ndim == 3 and \
                mel.shape[1] == self.n_mels else ""
            raise LayoutError(f"vocoder: expected a log-mel [batch, frames, {self.n_mels}], got {tuple(mel.shape)}{hint}")
        p = next(self.vocoder.parameters())
        wave = self.vocoder(mel.to(p.device, p.dtype))
        return wave[:, : mel.shape[1] * HOP].float()

    def optimize(self, channels_last: bool = False, compile: bool = False, cpu_allocator: bool = True) -> "Chain":
        """Inference speed-ups, in place; returns ``self``.

        Always folds weight norm (if a checkpoint still carries it) into plain weights, so no
        weight is recomputed per call. On CPU, ``cpu_allocator`` calls :func:`keep_freed_memory`
        (process-wide). ``channels_last`` puts the VAE's 2-D convolutions in NHWC (a GPU win,
        usually not on CPU); ``compile`` wraps the VAE encoder/decoder and the vocoder in
        ``torch.compile``, on CPU with inductor's ``freezing`` (weights become constants, prepacked
        for oneDNN; do not change them afterwards), at the cost of a compile per module on the first
        call. Values are unchanged up to float round-off.
        """
        self._moments, self._decoded = TensorMemo(), TensorMemo()  # the weights may change by round-off
        cpu = self.device.type == "cpu"
        if cpu_allocator and cpu:
            keep_freed_memory()
        fold_weight_norm(self.vae)
        fold_weight_norm(self.vocoder)
        if channels_last:
            self.vae.to(memory_format=torch.channels_last)
        if compile:
            options = {"freezing": True} if cpu else None
            for module in (self.vae.encoder, self.vae.decoder, self.vocoder):
                module.compile(options=options)
        return self

    # --- the stages of one combination (front-end, VAE and vocoder variants by name) -----------

    def front_end(self, wave: torch.Tensor, name: str = "audioldm2") -> torch.Tensor:
        """Waveform ``[b, samples]`` -> the named front-end's log-mel ``[b, 1, T, 64]`` (fp32, chain's device).

        The waveform is checked once, by the front-end (:func:`harness.signal.audio.valid_audio`)."""
        with torch.inference_mode():
            return frontends.get_frontend(name)(wave.to(self.device)).float()

    def vae_roundtrip(self, mel: torch.Tensor, name: str = "scaled", seed: int = 0) -> torch.Tensor:
        """Log-mel ``[b, 1, T, 64]`` through the named VAE variant (seeded for a posterior sample).

        A posterior sample draws each item from its own generator seeded with ``seed``
        (:func:`item_generators`), so an item's result never depends on the rest of its batch.
        """
        return variants.get_vae(name).roundtrip(self, mel, item_generators(mel.shape[0], seed, self.device))

    def vocoder_out(self, mel: torch.Tensor, name: str = "hifigan", samples: Optional[int] = None) -> torch.Tensor:
        """Log-mel ``[b, 1, T, 64]`` -> the named vocoder variant's waveform ``[b, samples]`` (cropped to
        ``samples`` when given: HiFi-GAN returns ``160 T + 32`` on cvssp/audioldm2, ``160 T + 1`` on the
        bundled tiny)."""
        wave = variants.get_vocoder(name)(self, mel)
        if samples is None:
            return wave
        if wave.shape[-1] < samples:
            raise LayoutError(f"vocoder {name!r} returned {wave.shape[-1]} samples for {mel.shape[-2]} frames, "
                              f"fewer than the {samples} of the input (160 per frame)")
        return wave[:, :samples]

    # --- whole chain ---------------------------------------------------------------------------

    def run(self, wave: torch.Tensor, frontend: str = "audioldm2", vae: str = "scaled", vocoder: str = "hifigan",
            seed: int = 0) -> ChainOutput:
        """Waveform ``[b, samples]`` (16 kHz, samples a multiple of 640) through one combination.

        Parameters
        ----------
        wave : Tensor or ndarray [b, samples] or [samples]
        frontend, vae, vocoder : str
            Registered variant names (:mod:`harness.signal.frontend`, :mod:`harness.model.variants`).
        seed : int
            Seed of the posterior sample of the ``sample`` VAE variant.

        Returns
        -------
        ChainOutput
            The front-end mel, the VAE's mel and the output waveform cropped to ``samples``.

        Raises
        ------
        InputError
            A waveform :func:`harness.signal.audio.valid_audio` refuses, checked once, by the front-end; the
            stages after it trust it.
        """
        wave = torch.as_tensor(wave, dtype=torch.float32)
        wave = wave[None] if wave.ndim == 1 else wave
        # 1. front-end
        mel_in = self.front_end(wave, frontend)
        # 2. VAE round trip
        mel_out = self.vae_roundtrip(mel_in, vae, seed)
        # 3. vocoder
        return ChainOutput(mel_in, mel_out, self.vocoder_out(mel_out, vocoder, wave.shape[-1]))
