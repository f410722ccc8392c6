"""The harness's vocabulary: the words every layer speaks, each defined here once.

The chain's components and their correct defaults, the stages a component is measured at, the calibration
scopes, the audio files a directory offers and the library versions a provenance record names. The CLI builds
``harness --help`` from them without loading torch (this module imports nothing but the standard library); the
stage engine (:mod:`harness.judging.stages`), the calibration, the goldens and the pytest plugin read the same
ones. Their strings are written to files (thresholds keys, manifests, JSON records): they do not change.
"""
from __future__ import annotations

import platform
from enum import Enum
from types import MappingProxyType
from typing import Dict, Mapping

from harness.machine import version

# --- the components ------------------------------------------------------------------------------

#: the chain's components, in order: a combination chooses one of each
COMPONENTS = ("frontend", "vae", "vocoder")
#: the correct component of each kind: AudioLDM2's own front-end, the ``scaled`` VAE call, its HiFi-GAN
DEFAULTS: Mapping[str, str] = MappingProxyType({"frontend": "audioldm2", "vae": "scaled", "vocoder": "hifigan"})
#: how messages and help texts name each component: ``front-end 'ours'``, ``VAE variant 'ours'``, ``vocoder 'ours'``
COMPONENT_NAMES: Mapping[str, str] = MappingProxyType(
    {"frontend": "front-end", "vae": "VAE variant", "vocoder": "vocoder"})

# --- the stages ----------------------------------------------------------------------------------

#: the stages measured on clips (any audio), in the chain's order: each component's, then the whole chain's
CLIP_STAGES = COMPONENTS + ("chain",)
#: the stages measured on golden cases
GOLDEN_STAGES = ("decode", "vocoder", "frontend", "roundtrip")
#: the component each stage runs (the whole chain runs all three)
COMPONENT_AT: Mapping[str, str] = MappingProxyType(
    {"frontend": "frontend", "vae": "vae", "roundtrip": "vae", "decode": "vae", "vocoder": "vocoder"})

# --- calibration ---------------------------------------------------------------------------------

#: what a calibration measures, largest first: ``all`` adds the relative margins (audio without a stored baseline)
#: to ``chain``, which adds the whole-chain decisions of the known mistakes heard through HiFi-GAN to ``absolute``
#: (every variant's golden stages and every combination's limits on the golden set: what pytest judges). Two
#: smaller scopes each hold a part of ``absolute``: ``reference``, the correct variants' golden stages and the
#: correct built-in combinations (the limits a project's own variants are judged by: the known mistakes then
#: skip), and ``golden``, every variant's golden stages only
SCOPES = ("all", "chain", "absolute", "reference", "golden")

# --- words of files and records ---------------------------------------------------------------------


class Word(str, Enum):
    """An enumerated word of a file or record (a limit's bound, a record's status): equal to, hashed as, printed as
    and JSON/TOML-encoded as its string value, so that typing it changes nothing that is written or compared."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# --- precision ----------------------------------------------------------------------------------

#: the precisions a chain runs in (``--dtype`` of a command, ``--harness-dtype`` of pytest); each has its own limits
PRECISIONS = ("fp32", "bf16", "fp16")

# --- reports ------------------------------------------------------------------------------------

#: the prefix of every JUnit property a harness test records (``harness_verdict``, ``harness_speed_ratio``, ...)
PROPERTY_PREFIX = "harness_"

# --- files and provenance ------------------------------------------------------------------------

#: the audio files a directory given to a command or to the goldens stands for (lower case, with the dot)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")
#: the packages whose versions a provenance record names (a golden manifest, a thresholds file, a speed baseline)
PACKAGES = ("audioldm2-harness", "torch", "diffusers", "transformers", "numpy", "librosa")


def versions() -> Dict[str, str]:
    """``{"audioldm2-harness": "0.1.0", "torch": "2.13.0", ..., "python": "3.11.9"}``: the installed versions of
    :data:`PACKAGES` (``-`` for one that is not installed) and Python's, as a provenance record names them (a
    golden manifest as this dict, a thresholds file and a speed baseline as :func:`versions_line`)."""
    return {**{name: version(name) for name in PACKAGES}, "python": platform.python_version()}


def versions_line() -> str:
    """:func:`versions` as one line, ``"audioldm2-harness==0.1.0 torch==2.13.0 ..."``."""
    return " ".join(f"{name}=={v}" for name, v in versions().items())
