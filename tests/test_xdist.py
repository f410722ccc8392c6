"""pytest-xdist support: quality tests that share stages carry one ``xdist_group``, and workers share the
cores instead of each taking all of them."""
from types import SimpleNamespace

from harness import matrix, plugin


def test_quality_tests_are_grouped_by_what_they_share():
    combos = matrix.combinations()
    items = [SimpleNamespace(callspec=SimpleNamespace(params={"combination": c, "clip_stage": "chain"})) for c in combos]
    groups = {plugin._xdist_group(i) for i in items}
    assert groups == {f"vae-{c.vae}" for c in combos} and len(groups) > 2
    golden = SimpleNamespace(callspec=SimpleNamespace(params={"golden_stage": ("decode", "scaled")}))
    assert plugin._xdist_group(golden) == "golden-stages"
    assert plugin._xdist_group(SimpleNamespace()) is None


def test_workers_share_the_cores(monkeypatch):
    import os

    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    config = SimpleNamespace(option=SimpleNamespace(dist="load", numprocesses=2))
    try:
        plugin._share_cores_among_xdist_workers(config)
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
        assert config.option.dist == "loadgroup"
    finally:
        torch.set_num_threads(before)
