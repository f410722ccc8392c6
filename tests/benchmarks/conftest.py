"""Fixtures of the throughput benchmarks; the helpers are in ``benchutil.py``."""
import pytest

from benchutil import Bench, Chains


@pytest.fixture(scope="session", autouse=True)
def _allocator():
    """Every benchmark (librosa's too) runs with freed memory kept for reuse, as ``Chain.optimize()`` sets it."""
    from harness.model.chain import keep_freed_memory

    keep_freed_memory()


@pytest.fixture
def bench(benchmark) -> Bench:
    """Times a callable with pytest-benchmark and records throughput, FLOPs and % of peak in ``extra_info``."""
    return Bench(benchmark)


@pytest.fixture(scope="session")
def chains() -> Chains:
    """Chains (tiny / real size) and stage inputs, built once per session."""
    return Chains()
