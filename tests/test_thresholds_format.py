"""The thresholds file's format: limit fields parsed in one place, every field of the shipped files one the
format page documents, a newer format refused by name."""
import re
from pathlib import Path

import pytest

from harness.errors import GoldenError
from harness.judging import thresholds
from harness.judging.thresholds import Bound, parse_limit

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "harness" / "goldens").glob("*/thresholds*.toml"))
OTHER_FIELDS = {"expected", "not_asserted", "detect_ratio_min", "unjudgeable", "error", "not_separable"}


@pytest.mark.parametrize("key, parsed", [
    ("mel_l1_max", ("mel_l1", Bound.MAX)), ("snr_min", ("snr", Bound.MIN)),
    ("ref_mel_l1_max", ("ref_mel_l1", Bound.MAX)), ("mel_l1_detect_min", ("mel_l1", Bound.DETECT_MIN)),
    ("mel_snr_detect_max", ("mel_snr", Bound.DETECT_MAX)), ("measured_mel_l1", None), ("expected", None),
    ("mel_l1_ratio", None), ("detect_ratio_min", None), ("mel_snr_offset_db", None),
])
def test_limit_fields_parse(key, parsed):
    assert parse_limit(key) == parsed
    if parsed is not None:
        assert thresholds.limit_field(*parsed) == key


def test_bounds_print_as_their_field_suffix():
    assert f"{Bound.DETECT_MIN}" == "detect_min" and str(Bound.MAX) == "max"
    assert Bound.MAX.sign == "<=" and Bound.DETECT_MIN.sign == ">=" and Bound.DETECT_MAX.detects


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_field_of_the_shipped_files_is_documented(path):
    data = thresholds.load(path)
    page = (ROOT / "docs" / "thresholds-format.md").read_text()
    for key in data["meta"]:
        assert f"`{key}`" in page, f"[meta] {key} is not on the format page"
    for key in data["policy"]:
        assert f"`{key}`" in page or key.startswith("abs_margin_"), f"[policy] {key} is not on the format page"
    for table, entry in data.items():
        if table in ("meta", "policy", "exact_snr_db"):
            continue
        assert re.fullmatch(r"(relative:)?[a-z0-9-]+:(frontend|vae|vocoder|chain|decode|roundtrip)", table), table
        for key in entry:
            relative = table.startswith("relative:") and key.endswith(thresholds.MARGIN_SUFFIXES)
            assert (parse_limit(key) is not None or key.startswith("measured_") or key in OTHER_FIELDS
                    or relative), f"{table}: field {key!r} is none the format page documents"


def test_a_newer_format_is_refused_with_the_command(tmp_path):
    text = SHIPPED[0].read_text().replace("[meta]\n", f"[meta]\nformat = {thresholds.FORMAT + 1}\n", 1)
    (tmp_path / "thresholds.toml").write_text(text)
    with pytest.raises(GoldenError, match=r"thresholds format 2, but this harness reads format 1 and older.*"
                                          r"harness thresholds --calibrate"):
        thresholds.load(tmp_path / "thresholds.toml")
    assert thresholds.load(SHIPPED[0])["meta"].get("format", 1) == 1  # written before the key: format 1


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_writer_keeps_every_limit_of_a_shipped_file_and_records_the_format(tmp_path, path):
    data = thresholds.load(path)
    tables = {k: v for k, v in data.items() if k not in ("meta", "policy", "exact_snr_db")}
    meta = {k: v for k, v in data["meta"].items() if k not in ("calibrated_at", "format")}
    again = thresholds.load(thresholds.write(tmp_path / "thresholds.toml", tables, meta))
    assert again["meta"]["format"] == thresholds.FORMAT
    # every table of limits as it was ([policy] and [exact_snr_db] are the code's constants at writing time)
    assert {k: v for k, v in again.items() if k not in ("meta", "policy", "exact_snr_db")} == tables


def test_a_loaded_file_is_a_threshold_table_looked_up_by_purpose():
    table = thresholds.load(SHIPPED[0])
    assert isinstance(table, thresholds.ThresholdTable) and table.scope == table["meta"]["scope"]
    assert table.limits_table("audioldm2-scaled-hifigan", "vae") is table["audioldm2-scaled-hifigan:vae"]
    assert table.relative_table("audioldm2-sample-hifigan", "vae") is table.get("relative:audioldm2-sample-hifigan:vae")
    assert table.limits_table("ours-scaled-hifigan", "vae") is None
    assert set(table.judged_tables()) == set(table) - set(thresholds.FIXED_TABLES)
    assert thresholds.ThresholdTable.of(table) is table
