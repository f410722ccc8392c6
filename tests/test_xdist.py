"""pytest-xdist support: quality tests that share stages carry one ``xdist_group`` and run on one worker, and
workers share the cores instead of each taking all of them."""
import re
from types import SimpleNamespace

import pytest

from harness.judging import golden, matrix, thresholds
from harness.surfaces import plugin

pytest_plugins = ["pytester"]


def _item(**params):
    return SimpleNamespace(callspec=SimpleNamespace(params=params))


def test_quality_tests_are_grouped_by_what_they_share():
    combos = matrix.combinations()
    groups = {c.id: plugin._xdist_group(_item(combination=c, clip_stage="chain")) for c in combos}
    assert groups["audioldm2-scaled-hifigan"] == groups["audioldm2-sample-griffin-lim"] == "frontend-audioldm2"
    # a VAE mistake is measured up to its VAE stage only: a unit of its own per front-end
    assert groups["audioldm2-no-decode-scale-hifigan"] == groups["audioldm2-double-scale-griffin-lim"] \
        == "frontend-audioldm2-vae-mistakes"
    assert groups["power-mel-unscaled-hifigan"] == "frontend-power-mel"
    assert plugin._xdist_group(_item(golden_stage=("decode", "scaled"))) == plugin.GOLDEN_GROUP["decode"] == "golden-vae"
    assert plugin._xdist_group(_item(golden_stage=("vocoder", "hifigan"))) == "golden-vocoder"
    assert plugin._xdist_group(SimpleNamespace()) is None


def test_workers_share_the_cores(monkeypatch):
    import os

    import torch

    from harness import machine

    before = torch.get_num_threads()
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(machine, "_THREADS_CHOSEN", [])  # a fresh worker process: nothing decided yet
    config = SimpleNamespace(option=SimpleNamespace(dist="load", numprocesses=2))
    try:
        torch.set_num_threads(machine.physical_cores())  # torch's default, as a fresh worker has it
        plugin._share_cores_among_xdist_workers()
        plugin._group_quality_tests(config)
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
        assert config.option.dist == "loadgroup"
    finally:
        torch.set_num_threads(before)


def test_every_parametrized_test_id_names_its_group():
    groups = plugin.xdist_groups()
    assert {f"{c.id}:{s}" for c, s in matrix.clip_stage_names()} <= set(groups)
    assert groups["audioldm2-scaled-hifigan:chain"] == "frontend-audioldm2"
    assert groups["decode-scaled"] == "golden-vae"


def test_pytest_n_runs_each_group_on_one_worker(pytester):
    """The real thing: under ``pytest -n 2`` a group never spans workers, and both workers get work.

    The groups are read from the test ids, as the plugin's scheduler reads them: a node id may or may not
    carry xdist's ``@group`` suffix, depending on the pytest version (pytest 9.2 dropped it silently)."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_groups="""
        import os, torch

        def test_matrix(combination, clip_stage):
            assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-v", "-p", "no:cacheprovider", "-k", "audioldm2 or power-mel")
    detected = thresholds.chain_detections(thresholds.load(golden.BUNDLED_DIR / "tiny" / "thresholds.toml"))
    expected = [f"{c.id}:{s}" for c, s in matrix.clip_stage_names(detected)
                if "audioldm2" in c.id or "power-mel" in c.id]
    result.assert_outcomes(passed=len(expected))
    assert "HarnessGroupScheduling" in result.stdout.str()
    ran = re.findall(r"\[(gw\d)\] .*?PASSED test_groups.py::test_matrix\[(.*?)\]", result.stdout.str())
    assert sorted(test_id for _, test_id in ran) == sorted(expected)
    groups = plugin.xdist_groups()
    workers_of = {}
    for worker, test_id in ran:
        workers_of.setdefault(groups[test_id], set()).add(worker)
    assert set(workers_of) >= {"frontend-audioldm2", "frontend-power-mel"}
    assert all(len(w) == 1 for w in workers_of.values()), workers_of
    assert {w for ws in workers_of.values() for w in ws} == {"gw0", "gw1"}
