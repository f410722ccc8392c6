"""Fixtures of the throughput benchmarks; the helpers are in ``benchutil.py``."""
import pytest

from benchutil import Chains
from harness.surfaces.bench.timing import Bench


@pytest.fixture(scope="session", autouse=True)
def _allocator():
    """Every benchmark (librosa's too) runs with freed memory kept for reuse, as ``Chain.optimize()`` sets it."""
    from harness.machine import keep_freed_memory

    keep_freed_memory()


@pytest.fixture
def bench(harness_bench) -> Bench:
    """The plugin's ``harness_bench``: times a callable beside the reference work, records throughput, FLOPs, % of
    peak and peak memory in ``extra_info``, and gates it against the speed baseline when there is one."""
    return harness_bench


@pytest.fixture(scope="session")
def chains() -> Chains:
    """Chains (tiny / real size) and stage inputs, built once per session."""
    return Chains()
