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


@pytest.mark.slow  # the shipped suite on a broken variant; the summary's parts are checked in the default suite
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


def _passing(name: str, metric: str, value: float, limit: float, bound: str, baseline=None):
    room = (limit - value) if bound == "max" else (value - limit)
    used = None if baseline is None else round(100.0 * (value - baseline) / (limit - baseline), 1)
    fig = {"metric": metric, "clip": "clip:speech", "value": value, "limit": limit, "bound": bound,
           "headroom_pct": round(100.0 * room / abs(limit), 2), "baseline": baseline, "margin_used_pct": used,
           "ok": True}
    return (f"test_quality.py::test_matrix[{name}]", "passed",
            {"harness_combination": name, "harness_stage": "chain", "harness_verdict": "pass",
             "harness_figures": json.dumps([fig])})


def test_a_failure_reads_as_the_condition_that_holds_with_its_margin():
    ceiling = _record(1, True, False)
    floor_fig = {"metric": "mel_snr", "clip": "clip:noise", "value": 16.7, "limit": 22.2, "bound": "min",
                 "headroom_pct": -24.8, "baseline": 24.7, "margin_used_pct": 320.0, "ok": False}
    floor = ("t::floor", "failed", {**ceiling[2], "harness_combination": "floor-combo",
                                    "harness_figures": json.dumps([floor_fig])})
    text = job_summary.markdown([ceiling, floor])
    assert "mel_l1 1.5 > limit 1 (over by 0.5) on `clip:1`" in text
    assert "mel_snr 16.7 < floor 22.2 (under by 5.5) on `clip:noise`" in text
    assert "<= 1 on" not in text and ">= 22.2 on" not in text  # never the condition that failed


def test_the_closest_figures_are_the_tight_ones_tightest_first():
    records = [_passing(f"roomy{i}", "mel_l1", 0.1, 1.0, "max") for i in range(5)]  # 90 % headroom: not shown
    records += [_passing(f"tight{i}", "mel_l1", 1.0 - 0.01 * i, 1.0, "max", baseline=0.5) for i in range(1, 21)]
    records.append(_passing("snr", "mel_snr", 26.24, 25.24, "min", baseline=26.24))  # 4 % headroom
    text = job_summary.markdown(records)
    section = text.split("## Closest to their limits")[1].split("## Drift")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert "roomy" not in section and len(rows) == job_summary.TOP
    shown = [float(re.search(r"\(([-\d.]+) %\) \|", r).group(1)) for r in rows]
    assert shown == sorted(shown) and shown[0] == 1.0
    assert "(15 of 21)" in section
    assert "`snr`" in section and "0 % (at calibration)" in section and "-0 %" not in section
    assert "| 98 % |" in section  # tight1: 0.99 from a baseline of 0.5 towards 1.0


def test_margin_used_never_reads_minus_zero_and_better_than_calibration_says_so():
    assert job_summary._used({"margin_used_pct": -0.2}) == "0 % (at calibration)"
    assert job_summary._used({"margin_used_pct": -40.0}) == "0 % (better than calibration)"
    assert job_summary._used({"margin_used_pct": 64.4}) == "64 %"


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_the_header_counts_every_harness_test_as_pytest_does(pytester, xdist):
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_counts="""
        import pytest

        def test_options(harness_options):
            assert harness_options["model"]

        def test_skipped(harness_options):
            pytest.skip("no figures, still a harness test")

        def test_fails(harness_options):
            assert False

        @pytest.mark.parametrize("harness_frontend", ["mine"])
        def test_param(harness_frontend):
            pass

        def test_not_ours():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-summary=summary.md", *xdist)
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    text = (pytester.path / "summary.md").read_text()
    assert "4 harness tests: 1 failed, 2 passed, 1 skipped\n" in text, text


def test_changed_dependencies_are_said_once():
    rec = _record(1, True, False)
    rec[2]["harness_drift"] = "diffusers 0.42.1 -> 0.43.0"
    text = job_summary.markdown([rec, (rec[0] + "b", "failed", dict(rec[2]))])
    assert text.count("Dependencies changed since the goldens:** diffusers 0.42.1 -> 0.43.0") == 1
    assert "Dependencies changed" not in job_summary.markdown([_record(1, True, False)])


def test_each_failure_is_shown_with_its_own_fix():
    one, two = _record(1, True, False), _record(8, True, False)  # the same culprit (ours1), two different fixes
    two[2]["harness_fix"] = "fix: divide by the scaling factor once"
    text = job_summary.markdown([one, two])
    rows = [line for line in text.splitlines() if line.startswith("| `ours") and "| FAIL |" in line]
    assert len(rows) == 2 and rows[0].endswith("| fix: 'ours' (registered by this project) ... |")
    assert rows[1].endswith("| fix: divide by the scaling factor once |")
    same = job_summary.markdown([one, _record(8, True, False)])
    assert same.count("> fix: 'ours' (registered by this project) ...") == 1  # one fix: said once, above the rows
