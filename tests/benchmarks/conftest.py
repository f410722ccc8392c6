"""Fixtures of the throughput benchmarks; the helpers are in ``benchutil.py``."""
import pytest

from benchutil import Bench, Chains


@pytest.fixture
def bench(benchmark) -> Bench:
    """Times a callable with pytest-benchmark and records throughput, FLOPs and % of peak in ``extra_info``."""
    return Bench(benchmark)


@pytest.fixture(scope="session")
def chains() -> Chains:
    """Chains (tiny / real size) and stage inputs, built once per session."""
    return Chains()
