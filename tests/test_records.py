"""The record is one typed definition: built and read through Record and StageRecord, its JSON exactly the
documented schema, read back into the same record; its words print and encode as the strings of the schema."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.judging import report
from harness.judging.records import SCHEMA_VERSION, Expected, Policy, Record, StageRecord, Status, field_names
from harness.judging.verdicts import FAILING, Judge

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records():
    """Real records of the tiny model: a golden clip (its stored baseline) and a synthetic clip (none), a correct
    and a broken VAE, a correct and a broken vocoder."""
    from harness.model.chain import Chain

    chain = Chain.load("tiny")
    rng = np.random.default_rng(7)
    t = np.arange(16000 * 2) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    found, errors = report.matrix_records(chain, report.default_files()[:1], clips={"tone": tone}, progress=False,
                                          frontends_=["audioldm2"], vaes=["scaled", "no-decode-scale"],
                                          vocoders=["hifigan", "hifigan-transposed"])
    assert errors == [] and len(found) == 8
    return found


def documented_fields(heading):
    """The field column of the table under ``## <heading>`` on the records page, in order."""
    page = (ROOT / "docs" / "records.md").read_text()
    section = page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return tuple(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))


def test_a_record_reads_back_from_its_json_as_the_same_record(records):
    for r in records:
        line = json.dumps(r.to_dict())
        again = Record.from_dict(json.loads(line))
        assert again == r and json.dumps(again.to_dict()) == line
        assert type(again.status) is Status and all(type(s.policy) is Policy for s in again.stages.values())
    policies = {s.policy for r in records for s in r.stages.values()}
    assert {Policy.ABSOLUTE, Policy.RELATIVE, Policy.YARDSTICK, Policy.NONE} <= policies
    assert {r.status for r in records} >= {Status.PASS, Status.YARDSTICK, Status.DETECTED}


def test_the_json_is_exactly_the_documented_schema(records):
    assert field_names(Record) == documented_fields("Record fields")
    assert field_names(StageRecord) == documented_fields("Stage fields")
    for r in records:
        data = r.to_dict()
        assert tuple(data) == field_names(Record)
        assert all(tuple(stage) == field_names(StageRecord) for stage in data["stages"].values())
        assert type(data["status"]) is str and type(data["expected"]) is str  # plain JSON values, no enum
        assert all(type(s["policy"]) is str and type(s["expected"]) is str for s in data["stages"].values())
    page = (ROOT / "docs" / "records.md").read_text()
    assert f"The schema's version is **{SCHEMA_VERSION}**" in page
    for word in [*Status, *Policy, *Expected]:
        assert f"`{word}`" in page, word


def test_the_combination_and_the_failed_stages_are_read_from_the_record(records):
    r = next(r for r in records if r.vae == "no-decode-scale" and r.vocoder == "hifigan")
    assert r.combination == "audioldm2-no-decode-scale-hifigan" and r.failed_stages == ()
    assert r.expected is Expected.DETECT and r.stages["vae"].expected is Expected.DETECT


def test_words_print_and_encode_as_their_strings():
    assert json.dumps([Status.NOT_SEPARABLE, Policy.NONE]) == '["not separable", "none"]'
    assert json.dumps({Status.MISSED: 1}) == '{"MISSED": 1}'
    assert f"{Status.FAIL}|{Status.PASS:>6}|{Expected.DETECT}" == "FAIL|  pass|detect"
    assert str(Policy.YARDSTICK) == "yardstick" and Status.MISSED == "MISSED" and "FAIL" in FAILING
    assert {"not separable": 1}[Status.NOT_SEPARABLE] == 1 and Status("detected") is Status.DETECTED


def test_a_malformed_record_is_refused_naming_what_is_wrong(records):
    data = records[0].to_dict()
    with pytest.raises(ValueError, match="missing status"):
        Record.from_dict({k: v for k, v in data.items() if k != "status"})
    with pytest.raises(ValueError, match="unknown colour"):
        Record.from_dict({**data, "colour": "red"})
    with pytest.raises(ValueError, match="'fine' is not a valid Status"):
        Record.from_dict({**data, "status": "fine"})
    stages = {**data["stages"], "vae": {**data["stages"]["vae"], "policy": "lenient"}}
    with pytest.raises(ValueError, match="'lenient' is not a valid Policy"):
        Record.from_dict({**data, "stages": stages})


def test_the_status_is_decided_from_typed_stage_records():
    def stage(expected, ok, policy):
        return StageRecord(Expected(expected), ok, None, Policy(policy), None, None, None)

    missed = {"frontend": stage("detect", False, "absolute")}
    assert Judge.status(Expected.DETECT, False, missed) is Status.MISSED
    assert Judge.status(Expected.PASS, False, missed) is Status.FAIL
    assert Judge.status(Expected.DETECT, False, {"frontend": stage("detect", False, "relative")}) \
        is Status.NOT_SEPARABLE
    assert Judge.status(Expected.PASS, True, {"vae": stage("pass", True, "yardstick")}) is Status.YARDSTICK
