"""Thin on purpose: the harness is a pytest plugin (harness/plugin.py, registered by entry point).

Only the hypothesis profile lives here, so property tests are deterministic run to run.
"""
from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("deterministic")
