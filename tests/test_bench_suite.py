"""Benchmarks of a project's own code: one import times every registered variant, and pytest-benchmark's gate
against the project's saved baseline fails a variant made 2x slower."""
import json

pytest_plugins = ["pytester"]

CONFTEST = """
import os
import torch
from harness import register_vocoder


@register_vocoder("ours-vocoder", description="our vocoder wrapper")
def ours(chain, mel):
    wave = chain.vocode(mel)
    if os.environ.get("OURS_SLOWER"):  # a change that makes it 2x slower: the work done twice
        wave = chain.vocode(mel)
    return wave
"""


def test_one_import_times_the_project_s_variants_and_the_gate_catches_a_2x_slowdown(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_speed="from harness.surfaces.bench.suite import *  # noqa: F401,F403\n")
    storage = f"file://{pytester.path / 'saved'}"
    common = ["-p", "no:cacheprovider", "--benchmark-enable", f"--benchmark-storage={storage}",
              "--benchmark-min-rounds=5", "-k", "ours-vocoder or vocoder-hifigan"]
    baseline = pytester.runpytest_subprocess(*common, "--benchmark-autosave", "--benchmark-json=base.json")
    baseline.assert_outcomes(passed=2)
    runs = json.loads((pytester.path / "base.json").read_text())["benchmarks"]
    info = {b["params"]["harness_variant"][1]: b["extra_info"] for b in runs}
    assert set(info) == {"ours-vocoder", "hifigan"}
    assert info["ours-vocoder"]["realtime_factor"] > 0 and info["ours-vocoder"]["audio_seconds_per_second"] > 0
    monkeypatch.setenv("OURS_SLOWER", "1")
    slower = pytester.runpytest_subprocess(*common, "--benchmark-compare", "--benchmark-compare-fail=min:25%")
    assert slower.ret != 0
    text = slower.stdout.str() + slower.stderr.str()
    assert "Performance has regressed" in text
    assert "test_bench_variant[vocoder-ours-vocoder] (0001_unversi) - Field 'min' has failed" in text, text[-2000:]
