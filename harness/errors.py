"""The exceptions the harness raises on purpose: one family, so callers catch :class:`HarnessError`.

==========================  =====================  ================================================
exception                   also a                 raised when
==========================  =====================  ================================================
:class:`InputError`         ``ValueError``         an input cannot be used: waveform, mel, metric
                                                   arguments (librosa's ``ParameterError``)
:class:`AudioError`         ``InputError``         an audio file or waveform is unusable; names it
:class:`LayoutError`        ``InputError``         a tensor reaches a stage in the wrong layout
:class:`ComponentError`     ``InputError``         a project's component raised a ``TypeError`` on
                                                   what the harness handed it; names the component
:class:`ModelNotAvailable`  ``RuntimeError``       weights cannot be had (offline, missing layout)
:class:`IncompatibleModel`  ``ValueError``         a model's configs disagree with what the harness
                                                   judges (mel bins, hop, latent channels); names both
:class:`CalibrationError`   ``RuntimeError``       a known mistake cannot be told from the chain
:class:`GoldenError`        ``AssertionError``     a golden is missing, edited or truncated
:class:`ResourceError`      ``MemoryError``        the device ran out of memory: the run stops
==========================  =====================  ================================================

The second base keeps ``except ValueError`` (and pytest's reading of an ``AssertionError`` as a
failed check) working for callers that predate the family. :class:`ResourceError` is deliberately no
``RuntimeError``: the stages take a ``RuntimeError`` as their result (a mistaken component that
raises is a finding), and running out of memory says nothing about a component.
"""
from __future__ import annotations

import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class HarnessError(Exception):
    """Base of every exception the harness raises on purpose."""


class InputError(HarnessError, ValueError):
    """An input the harness cannot use (a waveform, a mel, metric arguments); the message says why."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class AudioError(InputError):
    """An audio input the harness cannot use.

    ``str()`` is a single line: ``"<path>: <reason> (<hint>)"`` (the path part is left
    out when there is no path, the hint part when there is no hint).

    Parameters
    ----------
    path : str or path-like or None
        The file (or the name given to :func:`harness.signal.audio.valid_audio`) the problem is about.
    reason : str
        What is wrong, specific enough to act on (``"empty: 0 audio frames"``).
    hint : str, optional
        What to do about it.
    """

    def __init__(self, path: Optional[PathLike], reason: str, hint: str = ""):
        self.path = None if path is None else os.fspath(path)
        self.reason = _one_line(reason)
        self.hint = _one_line(hint)
        super().__init__(str(self))

    def __str__(self) -> str:
        msg = self.reason if self.path is None else f"{self.path}: {self.reason}"
        return f"{msg} ({self.hint})" if self.hint else msg

    def __reduce__(self):  # keep pickling (pytest-xdist, multiprocessing) working
        return (type(self), (self.path, self.reason, self.hint))


class LayoutError(InputError):
    """A tensor reached a stage in the wrong layout (e.g. ``[b, 64, T]`` into the vocoder)."""


class ComponentError(InputError):
    """A project's component (front-end, VAE or vocoder variant) raised a ``TypeError`` on what the harness
    handed it: a stage's result naming the component and its input (:func:`component_error` makes it)."""


def describe(value) -> str:
    """How a message names an input: ``"a Tensor [1, 16000] torch.float32 on cuda:0"``, or its type."""
    shape, dtype, device = (getattr(value, a, None) for a in ("shape", "dtype", "device"))
    if shape is None:
        return f"a {type(value).__name__}"
    return (f"a {type(value).__name__} {list(shape)}" + (f" {dtype}" if dtype is not None else "")
            + (f" on {device}" if device is not None else ""))


def component_error(component: str, exc: TypeError, given) -> ComponentError:
    """The :class:`ComponentError` a project's component's ``TypeError`` becomes.

    A ``TypeError`` escapes the stages (:data:`harness.judging.stages.STAGE_ERRORS`), so code that cannot read
    its input (numpy on a GPU tensor: ``can't convert cuda:0 device type tensor to numpy``) would stop the
    whole run; as a :class:`ComponentError` it is the stage's result and names what raised it.

    Parameters
    ----------
    component : str
        How the message names it: ``"front-end 'ours'"``, ``"vocoder 'ours'"``, ``"VAE variant 'ours' (decode)"``.
    exc : TypeError
        What it raised.
    given : object
        What it was handed (named by :func:`describe`).

    Returns
    -------
    ComponentError
    """
    device = getattr(given, "device", None)
    hint = ""
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        hint = ("; a batched component gets its input on the chain's device: call .cpu() before numpy, or "
                "register it with batched=False to be handed CPU data one clip at a time")
    return ComponentError(f"{component} raised TypeError: {_one_line(exc)} (it was handed {describe(given)}{hint})")


class ResourceError(HarnessError, MemoryError):
    """The device ran out of memory while a stage ran: an error of the run, never a stage's result.

    An out-of-memory says nothing about the component that was running, so it is neither a failure of a
    correct component nor the detection of a known mistake (:func:`harness.judging.stages.measure` raises
    it). The message says where, what was running and what to do.
    """


#: what the allocators say when memory runs out, in the messages of their plain ``RuntimeError`` (CUDA before
#: torch had ``torch.OutOfMemoryError``, HIP, MPS, the CPU allocator)
OUT_OF_MEMORY_MESSAGES = ("out of memory", "can't allocate memory", "failed to allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out: a ``MemoryError``, torch's ``OutOfMemoryError`` (also
    ``torch.cuda.OutOfMemoryError``), or a ``RuntimeError`` whose message says so."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OUT_OF_MEMORY_MESSAGES)


def out_of_memory(exc: BaseException, running: str) -> ResourceError:
    """The :class:`ResourceError` an out-of-memory ``exc`` (:func:`is_out_of_memory`) becomes.

    Parameters
    ----------
    exc : BaseException
        What torch (or Python) raised.
    running : str
        What was running: ``"vocoder 'hifigan' at stage 'vocoder'"``.

    Returns
    -------
    ResourceError
        ``exc`` itself when it already is one.
    """
    if isinstance(exc, ResourceError):
        return exc
    first = _one_line(str(exc).split("\n")[0])[:300]
    return ResourceError(f"out of memory running {running} ({type(exc).__name__}: {first}): this is not a finding "
                         "about the component; give it fewer or shorter clips at a time, free the device's memory "
                         "(other processes on the GPU), or run on the CPU (--harness-device cpu, or --device cpu "
                         "of a command)")


class ModelNotAvailable(HarnessError, RuntimeError):
    """The requested weights cannot be had (offline, missing directory, incomplete layout)."""


class IncompatibleModel(HarnessError, ValueError):
    """A model whose configs the harness cannot judge (:func:`harness.model.settings.check_settings`): another mel
    count, hop or sample rate than the front-end's, or latents its VAE cannot take. Raised before any weight is
    loaded; the message names the numbers that disagree and the config files they come from."""


class CalibrationError(HarnessError, RuntimeError):
    """A known mistake could not be told apart from the correct chain on some clip."""


class GoldenError(HarnessError, AssertionError):
    """A golden file is missing, edited, truncated, or the manifest is incomplete."""
