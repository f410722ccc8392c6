"""Torch threads of the quality tests and the CLI beside other work: the cores it leaves free, decided once per
process, never below 1 nor above torch's default, an explicit choice kept, and said under ``-v``."""
import subprocess
import sys

import pytest
import torch

from harness import machine


@pytest.mark.parametrize("usable,busy,workers,default,expected", [
    (2, 0.0, 1, 2, 2),    # idle: torch's default
    (2, 1.0, 1, 2, 1),    # one CPU-bound process beside us on two cores: the one core it leaves
    (2, 2.0, 1, 2, 1),    # every core busy: never below 1
    (16, 3.2, 1, 8, 8),   # never above torch's default
    (4, 0.3, 1, 4, 4),    # a little background work is not a core taken
    (4, 3.0, 2, 4, 2),    # pytest-xdist: the worker's share; the siblings' load is that share already
])
def test_threads_are_the_free_cores_within_one_and_the_default(usable, busy, workers, default, expected):
    threads, why = machine.threads_beside_other_work(default, usable, busy, workers)
    assert threads == expected and why


@pytest.fixture
def fresh(monkeypatch):
    """A process in which nothing has decided the threads yet, torch at its default."""
    before = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(machine, "_THREADS_CHOSEN", [])
    torch.set_num_threads(machine.physical_cores())
    yield monkeypatch
    torch.set_num_threads(before)


def test_decided_once_beside_a_busy_core(fresh):
    fresh.setattr(machine, "usable_cores", lambda: 2)
    fresh.setattr(machine, "physical_cores", lambda: torch.get_num_threads())
    calls = []
    fresh.setattr(machine, "busy_cores", lambda: calls.append(1) or 1.0)
    line = machine.use_free_cores()
    assert torch.get_num_threads() == 1 and line.startswith("torch threads: 1 (") and "busy" in line
    fresh.setattr(machine, "busy_cores", lambda: 0.0)
    assert machine.use_free_cores() == line and torch.get_num_threads() == 1 and calls == [1]


def test_an_explicit_choice_is_kept(fresh):
    fresh.setattr(machine, "busy_cores", lambda: 64.0)
    fresh.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    assert "kept: OMP_NUM_THREADS" in machine.use_free_cores()
    assert torch.get_num_threads() == machine.physical_cores()
    fresh.setattr(machine, "_THREADS_CHOSEN", [])
    fresh.delenv("OMP_NUM_THREADS")
    fresh.setattr(machine, "physical_cores", lambda: 8)
    torch.set_num_threads(3)  # the project's own torch.set_num_threads: not torch's default
    assert "kept" in machine.use_free_cores() and torch.get_num_threads() == 3


def test_the_cli_says_its_threads_under_verbose(fresh, capsys, tmp_path):
    from harness.judging import report
    from harness.surfaces import cli

    fresh.setattr(machine, "busy_cores", lambda: 0.0)
    assert cli.main(["diagnose", "-v", "--out", str(tmp_path), report.default_files()[0]]) in (0, 1)
    assert f"harness diagnose: torch threads: {torch.get_num_threads()} (" in capsys.readouterr().err


def test_pytest_says_the_threads_of_the_quality_tests_under_verbose(pytester):
    pytester.makepyfile(test_one="""
        def test_chain(harness_chain):
            assert harness_chain is not None
    """)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*audioldm2-harness: torch threads: *"])


pytest_plugins = ["pytester"]
