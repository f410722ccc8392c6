"""The run's HTML report (:mod:`harness.surfaces.html_report`): one self-contained page with the failures first,
their players and mel figures, the stage table and the dependencies block; rendered in headless Chromium."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from harness.judging import evidence
from harness.signal import audio
from harness.signal.frontend import audioldm2
from harness.surfaces import html_report

pytest_plugins = ["pytester"]

SR = 16000
FAILING = "tests/test_quality.py::test_matrix[audioldm2-scaled-ours-vocoder:vocoder]"
PASSING = "tests/test_quality.py::test_matrix[audioldm2-scaled-hifigan:vocoder]"


def _mel(wave):
    return audioldm2(torch.from_numpy(wave)[None])[0, 0].numpy()


@pytest.fixture
def records(tmp_path):
    """A failing vocoder's records with a real evidence directory (written by harness.judging.evidence: input and
    output WAVs, the mel figure; a golden WAV beside them), a passing record, and a dependency change."""
    t = np.arange(SR) / SR
    wave_in = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)).astype(np.float32)
    wave_out = np.clip(wave_in, -0.2, 0.2)
    ev = tmp_path / "reports" / "audioldm2-scaled-ours-vocoder-vocoder"
    evidence.write_evidence(ev, "clip-tone", wave_in, wave_out, _mel(wave_in), _mel(wave_out))
    audio.write_audio(ev / "clip-tone-golden.wav", wave_in)
    figures = [{"metric": "mel_l1", "clip": "clip:tone", "value": 0.91, "limit": 0.35, "bound": "max",
                "headroom_pct": -160.0, "ok": False},
               {"metric": "mel_l1", "clip": "clip:music", "value": 0.2, "limit": 0.35, "bound": "max",
                "headroom_pct": 42.9, "ok": True}]
    failing = {"harness_combination": "audioldm2-scaled-ours-vocoder", "harness_stage": "vocoder",
               "harness_expected": "pass", "harness_verdict": "FAIL", "harness_metric": "mel_l1", "harness_value": 0.91,
               "harness_limit": 0.35, "harness_limits_from": "audioldm2-scaled-hifigan",
               "harness_figures": json.dumps(figures), "harness_evidence": str(ev),
               "harness_culprit": "vocoder 'ours-vocoder' (registered by this project)",
               "harness_fix": "fix vocoder 'ours-vocoder' <clipped>",
               html_report.DEPENDENCIES_KEY: "torch 2.12.0 -> 2.13.0 (goldens, thresholds); numpy 2.2.6 -> 2.3.1 "
                                                "(goldens)"}
    passing = {"harness_combination": "audioldm2-scaled-hifigan", "harness_stage": "vocoder", "harness_verdict": "pass",
               "harness_metric": "mel_l1", "harness_value": 0.2, "harness_limit": 0.35}
    return [(PASSING, "passed", passing), (FAILING, "failed", failing)]


def test_the_page_holds_the_failure_first_with_its_audio_figure_and_table(records, tmp_path):
    page = html_report.write(tmp_path / "html", records)
    text = page.read_text()
    assert page.name == "index.html" and page.stat().st_size < html_report.MAX_BYTES
    # three players (golden, input, yours), the mel figure, all embedded: nothing else in the directory
    assert len(re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,', text)) == 3
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', text)) == 1
    assert [p.name for p in page.parent.iterdir()] == ["index.html"]
    assert text.index("<b>golden</b>") < text.index("<b>input</b>") < text.index("<b>yours</b>")
    # the dependencies block, then the failure, then the stage table with the failing row first
    assert text.index("Dependencies changed") < text.index("Failures (1)") < text.index("Stages (2)")
    assert "<code>torch</code></td><td>2.12.0 -&gt; 2.13.0 (goldens, thresholds)" in text
    assert "<code>numpy</code>" in text and "&lt;clipped&gt;" in text  # escaped, never raw HTML
    table = text[text.index("Stages (2)"):]
    assert table.index("audioldm2-scaled-ours-vocoder") < table.index("audioldm2-scaled-hifigan<")
    assert "clip:tone" in text and "&le; 0.35" in text


def test_several_failures_are_listed_first_with_links_the_culprits_own_before_its_consequences(records, tmp_path):
    failing = records[1]
    after = ("tests/test_quality.py::test_matrix[audioldm2-scaled-ours-vocoder:chain]", "failed",
             {**failing[2], "harness_stage": "chain", "harness_follows_from": "vocoder"})
    text = html_report.write(tmp_path, [after, failing]).read_text()
    assert '<li><a href="#failure-0">audioldm2-scaled-ours-vocoder</a> at vocoder</li>' in text
    assert text.index('id="failure-0"') < text.index("[audioldm2-scaled-ours-vocoder:vocoder]</h3>") \
        < text.index('id="failure-1"') < text.index("[audioldm2-scaled-ours-vocoder:chain]</h3>")


def test_a_run_without_failures_or_dependency_changes_says_so(records, tmp_path):
    text = html_report.write(tmp_path, records[:1]).read_text()
    assert "Failures (0)" in text and "None: every quality test passed" in text
    assert "Dependencies changed" not in text and "<audio" not in text


def test_audio_over_the_budget_is_linked_beside_the_page_and_the_page_says_so(records, tmp_path):
    wav_bytes = (tmp_path / "reports" / "audioldm2-scaled-ours-vocoder-vocoder" / "clip-tone-input.wav").stat().st_size
    page = html_report.write(tmp_path / "html", records, audio_budget=int(1.5 * wav_bytes))
    text = page.read_text()
    assert len(re.findall(r'src="data:audio/wav', text)) == 1
    linked = re.findall(r'<audio [^>]*src="(media/[^"]+\.wav)"', text)
    assert len(linked) == 2 and all((page.parent / src).is_file() for src in linked)
    assert "2 file(s) would have taken the page over its size limit" in text


def test_the_page_stays_under_its_limit_by_linking_images_too(records, tmp_path):
    limit = 100_000  # room for the text; a 64 kB WAV or the 78 kB figure, base64-encoded, would not fit
    page = html_report.write(tmp_path / "html", records, max_bytes=limit)
    text = page.read_text()
    assert page.stat().st_size <= limit
    assert re.search(r'<img [^>]*src="media/[^"]+\.png"', text) and "data:" not in text
    assert "4 file(s) would have taken the page over its size limit" in text
    assert len(list((page.parent / html_report.MEDIA_DIR).iterdir())) == 4


def test_records_of_another_shape_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"a record is \(node id, outcome"):
        html_report.write(tmp_path, [("only", "two")])


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install -y chromium): the page "
                                                "is rendered in a headless browser")
def test_the_page_renders_and_its_players_read_their_audio_in_chromium(records, tmp_path):
    """Headless Chromium reads each embedded WAV's duration (1 s each) and draws a page with content."""
    from matplotlib import image

    page = html_report.write(tmp_path / "html", records)
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(browser + ["--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    durations = [float(d) for d in re.findall(r'data-duration="([^"]+)"', dom.stdout)]
    assert durations == pytest.approx([1.0, 1.0, 1.0], abs=0.01), (durations, dom.stderr[-2000:])
    shot = tmp_path / "page.png"
    subprocess.run(browser + [f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
                   capture_output=True, timeout=120)
    pixels = image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (1600, 1280)
    # content, not a blank page: a fair share of pixels differs from the background, in more than one colour
    background = np.median(pixels.reshape(-1, 3), axis=0)
    drawn = np.abs(pixels - background).sum(axis=-1) > 0.1
    assert drawn.mean() > 0.05 and len(np.unique((pixels[drawn] * 8).astype(int), axis=0)) > 20



def _junit_records(path):
    """``(node id, outcome, {property: value})`` per test case of a JUnit XML file, as the plugin's records are."""
    from xml.etree import ElementTree

    records = []
    for case in ElementTree.parse(path).iter("testcase"):
        outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        records.append((f"{case.get('classname')}::{case.get('name')}", outcome, props))
    return records


@pytest.mark.slow  # the same run through the plugin's --harness-html is in the default suite (below)
def test_a_real_failing_run_makes_a_page_with_its_evidence(pytester, harness_options):
    """A slip (a vocoder at half the level) through the shipped suite: its JUnit properties are the records, its
    evidence directory holds the golden and output WAVs the page embeds."""
    from user_project import run_shipped_suite

    reports = pytester.path / "reports"
    xml = pytester.path / "junit.xml"
    _, outcomes = run_shipped_suite(pytester, harness_options, "slips", ["test_golden_stage[vocoder-slip-gain]"],
                                    "--harness-report-dir", str(reports), f"--junitxml={xml}")
    assert set(outcomes.values()) == {"FAILED"}, outcomes
    records = [r for r in _junit_records(xml) if r[2].get("harness_stage")]
    page = html_report.write(pytester.path / "html", records)
    text = page.read_text()
    assert "Failures (1)" in text and "slip-gain" in text
    assert len(re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,', text)) >= 2  # golden, yours
    assert "<b>golden</b>" in text and "<b>yours</b>" in text
    assert re.search(r'<img [^>]*src="data:image/png;base64,', text)


def test_the_plugin_writes_the_page_and_links_it_from_the_summary(pytester, harness_options):
    """``--harness-html=DIR``: the page of a failing run written by the plugin itself, linked from the summary."""
    from user_project import run_shipped_suite

    summary = pytester.path / "summary.md"
    _, outcomes = run_shipped_suite(pytester, harness_options, "slips", ["test_golden_stage[vocoder-slip-gain]"],
                                    "--harness-report-dir", str(pytester.path / "reports"),
                                    f"--harness-html={pytester.path / 'html'}", f"--harness-summary={summary}")
    assert set(outcomes.values()) == {"FAILED"}, outcomes
    page = pytester.path / "html" / "index.html"
    text = page.read_text()
    assert "slip-gain" in text and re.search(r'<audio controls[^>]*src="data:audio/wav;base64,', text)
    assert f"`{page}`" in summary.read_text()
