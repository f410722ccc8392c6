"""The exceptions the harness raises on purpose: one family, so callers catch :class:`HarnessError`.

==========================  =====================  ================================================
exception                   also a                 raised when
==========================  =====================  ================================================
:class:`InputError`         ``ValueError``         an input cannot be used: waveform, mel, metric
                                                   arguments (librosa's ``ParameterError``)
:class:`AudioError`         ``InputError``         an audio file or waveform is unusable; names it
:class:`LayoutError`        ``InputError``         a tensor reaches a stage in the wrong layout
:class:`ModelNotAvailable`  ``RuntimeError``       weights cannot be had (offline, missing layout)
:class:`CalibrationError`   ``RuntimeError``       a known mistake cannot be told from the chain
:class:`GoldenError`        ``AssertionError``     a golden is missing, edited or truncated
==========================  =====================  ================================================

The second base keeps ``except ValueError`` (and pytest's reading of an ``AssertionError`` as a
failed check) working for callers that predate the family.
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
        The file (or the name given to :func:`harness.signal.audio.check_waveform`) the problem is about.
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


class ModelNotAvailable(HarnessError, RuntimeError):
    """The requested weights cannot be had (offline, missing directory, incomplete layout)."""


class CalibrationError(HarnessError, RuntimeError):
    """A known mistake could not be told apart from the correct chain on some clip."""


class GoldenError(HarnessError, AssertionError):
    """A golden file is missing, edited, truncated, or the manifest is incomplete."""
