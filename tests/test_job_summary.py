"""Figures CI can show: every quality test's figures as JUnit properties, and ``--harness-summary``: failures
first, grouped by culprit, with the consequences of an upstream failure named as such; under 1 MiB."""
import json
import re
import xml.etree.ElementTree as ET

import pytest

from harness.surfaces import job_summary

pytest_plugins = ["pytester"]

# a project's front-end with the original report's mistake, declared correct
BROKEN_CONFTEST = """
import librosa
import numpy as np
import torch
from harness import register_frontend


@register_frontend("ours", description="our preprocessing (carries the power_to_db/20 mistake)")
def ours(waveform):
    mels = [librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=160,
                                                                n_mels=64, fmax=8000), ref=np.max) / 20
            for x in waveform.double().cpu().numpy()]
    frames = waveform.shape[-1] // 160
    return torch.from_numpy(np.stack(mels)[:, None, :, :frames].transpose(0, 1, 3, 2).copy()).float()
"""


def test_a_broken_variant_s_failures_are_all_named_and_every_figure_is_in_the_junit_file(pytester, harness_options):
    golden = harness_options["golden_dir"].resolve()
    if not (golden / "thresholds.toml").exists():
        pytest.skip("no calibrated goldens for this model")
    pytester.makeconftest(BROKEN_CONFTEST)
    pytester.makepyfile(test_quality="from harness.surfaces.suite import *  # noqa: F401,F403\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "-rf", f"--harness-golden-dir={golden}", "--harness-model",
        harness_options["model"], "--junitxml=junit.xml", "--harness-summary=summary.md",
        "--harness-report-dir=reports", "-k", "ours-scaled or ours-none-hifigan or frontend-ours")
    failed = re.findall(r"FAILED test_quality.py::(\w+)\[(\S+?)\]", result.stdout.str())
    assert failed and result.ret == 1

    summary = (pytester.path / "summary.md").read_text()
    assert len(summary.encode()) < 1024 * 1024
    assert "### Culprit: front-end 'ours' (registered by this project)" in summary
    for test, test_id in failed:  # every failure is named, own-stage ones with their figures
        combo, _, stage = test_id.rpartition(":") if test == "test_matrix" else (f"golden-{test_id}", "", "")
        assert f"`{combo}`" in summary, (test_id, summary)
    assert "follows from 'frontend'" in summary  # the VAE/vocoder/chain failures of its combinations
    assert "re-calibrating cannot change that" in summary and "re-baseline" not in summary

    cases = list(ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"))
    quality = [c for c in cases if c.get("name").startswith(("test_matrix[", "test_golden_stage["))]
    assert quality
    for case in quality:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if case.find("skipped") is not None:
            continue
        assert {"harness_stage", "harness_verdict", "harness_limits_from"} <= set(props), case.get("name")
        if "harness_error" not in props:
            assert {"harness_metric", "harness_clip", "harness_value", "harness_limit",
                    "harness_headroom_pct"} <= set(props), case.get("name")
            assert json.loads(props["harness_figures"])
    downstream = [c for c in quality if "ours-scaled-hifigan:vae" in c.get("name")]
    assert downstream and {p.get("name"): p.get("value") for p in downstream[0].iter("property")}.get(
        "harness_follows_from") == "frontend"


def _record(i: int, failed: bool, follows: bool):
    figures = [{"metric": "mel_l1", "clip": f"clip:{i}", "value": 1.5, "limit": 1.0, "bound": "max",
                "headroom_pct": -50.0, "baseline": 0.9, "margin_used_pct": 600.0, "ok": not failed}]
    props = {"harness_combination": f"ours{i}-scaled-hifigan", "harness_stage": "vae" if follows else "frontend",
             "harness_verdict": "FAIL" if failed else "pass", "harness_culprit": f"front-end 'ours{i % 7}'",
             "harness_headroom_pct": -50.0, "harness_figures": json.dumps(figures),
             "harness_evidence": f"reports/ours{i}-scaled-hifigan-frontend" + "x" * 40,
             "harness_fix": "fix: 'ours' (registered by this project) ..."}
    if follows:
        props["harness_follows_from"] = "frontend"
    return f"test_quality.py::test_matrix[ours{i}]", "failed" if failed else "passed", props


def test_the_summary_stays_under_a_mebibyte_and_keeps_every_own_stage_failure():
    records = [_record(i, True, i % 2 == 1) for i in range(12000)] + [_record(i, False, False) for i in range(5000)]
    text = job_summary.markdown(records)
    assert len(text.encode()) <= job_summary.MAX_BYTES
    own = [r for r in records if r[1] == "failed" and "harness_follows_from" not in r[2]]
    assert all(f"`{r[2]['harness_combination']}`" in text for r in own)
    # the 6,000 consequences are summarised as counts per culprit, never dropped
    counts = re.findall(r"(\d+) at stage 'vae' \(follow from 'frontend'\)", text)
    assert sum(int(c) for c in counts) == 6000


def test_an_all_green_run_says_so():
    text = job_summary.markdown([_record(1, False, False)])
    assert "None: every quality test passed" in text and "Closest to their limits" in text
