"""A failing golden stage of a project's component says what its difference from the reference looks like: the
hint is chosen from the evidence, not one sentence for every failure (every slip's hint on its own arrays:
tests/test_hints.py; here one slip end to end, three with --run-slow)."""
import re

import pytest

from user_project import run_shipped_suite

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("test_id,words", [
    pytest.param("test_golden_stage[vocoder-slip-lag]", r"lag|delay|late", marks=pytest.mark.slow),
    ("test_golden_stage[vocoder-slip-gain]", r"gain|level"),
    pytest.param("test_golden_stage[frontend-slip-hamming]", r"window", marks=pytest.mark.slow),
])
def test_a_slip_s_failure_names_its_kind(pytester, harness_options, test_id, words):
    xml = pytester.path / "junit.xml"
    result, outcomes = run_shipped_suite(pytester, harness_options, "slips", [test_id], f"--junitxml={xml}")
    assert set(outcomes.values()) == {"FAILED"}, outcomes
    text = result.stdout.str()
    line = next(ln for ln in text.splitlines() if "what the difference looks like:" in ln)
    assert re.search(words, line, re.I), line
    assert 'name="harness_hint"' in xml.read_text()
