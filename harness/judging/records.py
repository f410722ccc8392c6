"""A matrix record: one file judged with one combination, its figures and the verdict of each stage.

``harness matrix`` (:func:`harness.judging.report.matrix_records`), datasets (:mod:`harness.judging.dataset`)
and ``harness thresholds --validate`` build and read records through :class:`Record` and :class:`StageRecord`
only; a record becomes JSON through :meth:`Record.to_dict` and is read back through :meth:`Record.from_dict`.
The JSON schema, field by field, is on the records page of the documentation; its version is
:data:`SCHEMA_VERSION` (a dataset's ``run.json`` holds it as ``record_schema``).

Usage::

    from harness.judging.records import Record, Status

    record = Record.from_dict(json.loads(line))     # a line of a dataset's records.jsonl
    record.combination                              # 'audioldm2-scaled-hifigan'
    record.status is Status.DETECTED, record.stages["vae"].policy
    json.dumps(record.to_dict())                    # the line again, byte for byte
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, Mapping, Optional, Tuple

from harness.vocabulary import Word

#: the version of the record's JSON schema; a change of a field's name, type or meaning raises it
SCHEMA_VERSION = 1


class Expected(Word):
    """What a stage (or a whole combination) is expected to do."""

    #: stay within its limits (a correct stage)
    PASS = "pass"
    #: be detected: reach its detection limit or stop with an error (a known mistake)
    DETECT = "detect"
    #: only be reported, not judged (a stage after a mistake's culprit)
    REPORT = "report"


class Status(Word):
    """A record's status (:meth:`harness.judging.verdicts.Judge.status`)."""

    #: a correct combination within its limits at every judged stage
    PASS = "pass"
    #: a correct combination outside its limits: fails ``harness matrix``
    FAIL = "FAIL"
    #: the reference combination on a file without a stored baseline: what the others are judged against
    YARDSTICK = "yardstick"
    #: a known mistake detected at its culprit stage
    DETECTED = "detected"
    #: a known mistake not detected on a clip with a stored baseline: fails ``harness matrix``
    MISSED = "MISSED"
    #: a known mistake that changes this clip (without a stored baseline) too little to tell: not a failure
    NOT_SEPARABLE = "not separable"


class Policy(Word):
    """How one stage of a record was judged (:meth:`harness.judging.verdicts.Judge.file_stage`)."""

    #: the clip is a golden clip: its own stored per-clip limits
    ABSOLUTE = "absolute"
    #: against the reference combination's figure on the same clip, with calibrated margins
    RELATIVE = "relative"
    #: the reference combination at its own stage: the others' yardstick, not itself judged
    YARDSTICK = "yardstick"
    #: a known mistake that cannot be judged on this model (random weights)
    UNJUDGEABLE = "unjudgeable"
    #: not judged (a stage only reported)
    NONE = "none"


@dataclass(frozen=True)
class StageRecord:
    """The verdict of one stage of a record.

    Attributes
    ----------
    expected : Expected
        What the stage must do.
    ok : bool
        Whether it did.
    error : str or None
        The error that stopped the stage (``"LayoutError: ..."``), else None.
    policy : Policy
        How it was judged.
    reference : str or None
        The stored baseline (``clip:<name>``, policy ``absolute``) or the combination whose figure on the same
        file it was judged against (policy ``relative``); else None.
    limits_from : str or None
        Whose calibrated limits or margins were applied (a combination's id), or why the stage is not judged
        (policy ``unjudgeable``); None for the ``none`` policy.
    limits : dict or None
        The limits applied to this file, ``{"mel_l1_max": 0.61, ...}`` (policies ``absolute`` and
        ``relative``), else None.
    """

    expected: Expected
    ok: bool
    error: Optional[str]
    policy: Policy
    reference: Optional[str]
    limits_from: Optional[str]
    limits: Optional[Dict[str, float]]

    def __post_init__(self):
        object.__setattr__(self, "expected", Expected(self.expected))
        object.__setattr__(self, "policy", Policy(self.policy))
        object.__setattr__(self, "ok", bool(self.ok))

    def to_dict(self) -> dict:
        """The stage's JSON object (plain strings, numbers and ``None``; the schema's order)."""
        return {name: _plain(getattr(self, name)) for name in field_names(StageRecord)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "StageRecord":
        """The stage of a JSON object :meth:`to_dict` wrote; ValueError naming a missing or unknown field,
        or a word the schema does not hold."""
        values = _fields_of(cls, data, "stage")
        limits = values["limits"]
        return cls(**{**values, "limits": None if limits is None else {k: float(v) for k, v in limits.items()}})


@dataclass(frozen=True)
class Record:
    """One file judged with one combination (a file x combination of the matrix).

    Attributes
    ----------
    file : str
        The file's path (or the clip's name) as given.
    frontend, vae, vocoder : str
        The combination's front-end, VAE variant and vocoder variant.
    expected : Expected
        ``pass`` for a correct combination, ``detect`` for one holding a known mistake.
    ok : bool
        Every judged stage behaved as expected.
    status : Status
        The record's status (:meth:`harness.judging.verdicts.Judge.status`).
    baseline : str or None
        The golden clip (``clip:<name>``) whose stored limits judged the file, else None.
    metrics : dict
        ``"<stage>.<metric>"`` -> figure, 4 decimals (``{"chain.mel_l1": 0.3966, ...}``); a stage that stopped,
        or was not measured, has none.
    stages : dict
        Clip stage (``frontend``, ``vae``, ``vocoder``, ``chain``) -> :class:`StageRecord`.
    """

    file: str
    frontend: str
    vae: str
    vocoder: str
    expected: Expected
    ok: bool
    status: Status
    baseline: Optional[str]
    metrics: Dict[str, float]
    stages: Dict[str, StageRecord]

    def __post_init__(self):
        object.__setattr__(self, "expected", Expected(self.expected))
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "ok", bool(self.ok))

    @property
    def combination(self) -> str:
        """The combination's id, ``<frontend>-<vae>-<vocoder>`` (``audioldm2-scaled-hifigan``)."""
        return f"{self.frontend}-{self.vae}-{self.vocoder}"

    @property
    def failed_stages(self) -> Tuple[str, ...]:
        """The stages that did not behave as expected, in stage order."""
        return tuple(name for name, stage in self.stages.items() if not stage.ok)

    def to_dict(self) -> dict:
        """The record's JSON object: the fields in the schema's order, enumerated words as plain strings;
        ``json.dumps(record.to_dict())`` is a line of a dataset's ``records.jsonl``."""
        return {name: _plain(getattr(self, name)) for name in field_names(Record)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Record":
        """The record of a JSON object :meth:`to_dict` wrote (``Record.from_dict(r.to_dict()) == r``);
        ValueError naming a missing or unknown field, or a word the schema does not hold."""
        values = _fields_of(cls, data, "record")
        if not isinstance(values["stages"], Mapping):
            raise ValueError(f"record field 'stages' is not an object: {values['stages']!r}")
        return cls(**{**values, "metrics": {k: float(v) for k, v in values["metrics"].items()},
                      "stages": {name: StageRecord.from_dict(stage) for name, stage in values["stages"].items()}})


def field_names(cls) -> Tuple[str, ...]:
    """The JSON keys of a :class:`Record` or :class:`StageRecord`, in the schema's order."""
    return tuple(f.name for f in fields(cls))


def _fields_of(cls, data: Mapping, what: str) -> dict:
    if not isinstance(data, Mapping):
        raise ValueError(f"a {what} is a JSON object, not {type(data).__name__}")
    names = field_names(cls)
    missing = [n for n in names if n not in data]
    unknown = [k for k in data if k not in names]
    if missing or unknown:
        raise ValueError(f"not a {what} of record schema {SCHEMA_VERSION}: "
                         + "; ".join(([f"missing {', '.join(missing)}"] if missing else [])
                                     + ([f"unknown {', '.join(map(str, unknown))}"] if unknown else [])))
    return {n: data[n] for n in names}


def _plain(value):
    if isinstance(value, Word):
        return value.value
    if isinstance(value, StageRecord):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
