"""Thin on purpose: the harness is a pytest plugin (harness/plugin.py, registered by entry point).

Only the hypothesis profile lives here, so property tests are deterministic run to run.
"""
import sys


def pytest_collection_modifyitems(items):
    # hypothesis is imported by the test modules that use it; a run without them (the quality tests, a
    # pytest-xdist controller) is spared its import (0.7 s per process)
    if "hypothesis" in sys.modules:
        from hypothesis import settings

        settings.register_profile("deterministic", derandomize=True, deadline=None, print_blob=True)
        settings.load_profile("deterministic")
