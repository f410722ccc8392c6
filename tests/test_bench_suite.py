"""Benchmarks of a project's own code: one import times every registered variant, every timed round runs the model
(not a memo), and the calibrated gate fails a variant made 2x slower as a test naming it, not a traceback."""
import json

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import json
import os

import pytest
import torch
from harness import register_frontend, register_vocoder
from harness.signal.frontend import log_mel, normalize_waveform, stft_magnitude

CALLS = {"ours": 0}


@register_frontend("ours", description="our front-end")
def ours(waveform):
    CALLS["ours"] += 1
    return log_mel(stft_magnitude(normalize_waveform(waveform)))


@register_vocoder("ours-vocoder", description="our vocoder wrapper")
def ours_vocoder(chain, mel):
    wave = chain.vocode(mel)
    if os.environ.get("OURS_SLOWER"):  # a change that makes it 2x slower: the work done twice
        wave = chain.vocode(mel)
    return wave


@pytest.fixture(scope="session")
def harness_chain(harness_chain):
    for name, module in [("encoder", harness_chain.vae.encoder), ("decoder", harness_chain.vae.decoder),
                         ("vocoder", harness_chain.vocoder)]:
        CALLS[name] = 0
        module.register_forward_hook(lambda *_, name=name: CALLS.__setitem__(name, CALLS[name] + 1))
    return harness_chain


def pytest_sessionfinish(session):
    with open("calls.json", "w") as f:
        json.dump(CALLS, f)
"""


def _project(pytester, monkeypatch):
    # a project's own run: under pytest -n, this test's worker variables would make pytest-benchmark in the
    # project's pytest disable timing ("xdist plugin is active")
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_speed="from harness.surfaces.bench.suite import *  # noqa: F401,F403\n")


def test_every_timed_round_runs_the_model(pytester, monkeypatch):
    """The VAE's memo would answer every round after the first: each timed round must call the encoder, the
    decoder, the vocoder and a project's front-end as often as it was timed."""
    _project(pytester, monkeypatch)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-enable", "--benchmark-json=run.json",
                                           "--harness-speed-baseline=off",
                                           "-k", "vae-scaled or vocoder-hifigan or frontend-ours")
    result.assert_outcomes(passed=3)
    calls = json.loads((pytester.path / "calls.json").read_text())
    info = {b["params"]["harness_variant"][1]: b["extra_info"] for b in
            json.loads((pytester.path / "run.json").read_text())["benchmarks"]}
    for name, modules in [("scaled", ("encoder", "decoder")), ("hifigan", ("vocoder",)), ("ours", ("ours",))]:
        rec = info[name]
        timed = len(rec["all_round_seconds"]) * rec["calls_per_round"]
        for module in modules:
            # every timed call, besides the 2 warm-up calls (and 1 FLOP-counting call)
            assert calls[module] >= timed + 2, (name, module, calls, rec["calls_per_round"])
        assert rec["peak_memory_bytes"] > 0 and rec["normalised"] > 0 and rec["threads"] >= 1
        assert len(rec["reference_seconds"]) == len(rec["all_round_seconds"])
    assert calls["encoder"] == calls["decoder"] == 2 + 1 + len(info["scaled"]["all_round_seconds"])
    assert calls["vocoder"] == 2 + 1 + len(info["hifigan"]["all_round_seconds"])


@pytest.mark.slow
def test_calibrated_gate_passes_unchanged_code_and_fails_a_2x_slowdown(pytester, monkeypatch):
    _project(pytester, monkeypatch)
    args = ["-k", "ours-vocoder or vocoder-hifigan"]
    calibrated = pytester.run("harness", "bench", "--runs", "2", "--baseline", "speed.json", "--calibrate", *args)
    assert calibrated.ret == 0, calibrated.stdout.str()[-3000:] + calibrated.stderr.str()[-3000:]
    base = json.loads((pytester.path / "speed.json").read_text())
    assert {k.split("[")[-1] for k in base["benchmarks"]} == {"vocoder-ours-vocoder]", "vocoder-hifigan]"}
    common = ["-p", "no:cacheprovider", "--benchmark-enable", "--harness-speed-baseline=speed.json", *args]
    unchanged = pytester.runpytest_subprocess(*common)
    unchanged.assert_outcomes(passed=2)
    monkeypatch.setenv("OURS_SLOWER", "1")
    slower = pytester.runpytest_subprocess(*common, "--junitxml=junit.xml")
    slower.assert_outcomes(passed=1, failed=1)
    text = slower.stdout.str()
    assert "speed regression: test_speed.py::test_bench_variant[vocoder-ours-vocoder]" in text
    assert "x slower (" in text and "fails" in text
    assert "Traceback" not in text and "PerformanceRegression" not in text
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="harness_speed_outcome" value="slower"' in junit
