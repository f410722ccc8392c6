"""A project of a user's own in a pytester directory: its conftest registers the variants of one module of
``tests/user_variants/``, its test file is the shipped suite, and pytest runs the tests of the given ids."""
import pathlib
import re

import pytest

CONFTEST = """
import sys
sys.path.insert(0, {path!r})
import {module}  # registers the project's variants
"""


def run_shipped_suite(pytester, harness_options, module: str, prefixes, *args):
    """Run ``from harness.surfaces.suite import *`` with ``module``'s variants on the tests whose ids start with one of
    ``prefixes`` (each ending in ':' or ']', so longer names that start alike stay out); returns the
    pytester result and ``{test id: PASSED|FAILED|ERROR|SKIPPED}``. Skips without calibrated goldens."""
    golden = harness_options["golden_dir"].resolve()
    if not (golden / "thresholds.toml").exists():
        pytest.skip("no calibrated goldens for this model")
    path = pathlib.Path(__file__).parent / "user_variants"
    pytester.makeconftest(CONFTEST.format(path=str(path), module=module))
    pytester.makepyfile(test_quality="from harness.surfaces.suite import *  # noqa: F401,F403\n")
    selection = " or ".join(p.split("[", 1)[1] for p in prefixes)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rA", f"--harness-golden-dir={golden}",
                                           "--harness-model", harness_options["model"], *args, "-k", selection)
    outcomes = {m.group(2): m.group(1) for m in (re.match(r"(PASSED|FAILED|ERROR|SKIPPED) \S*::(\S+)", line)
                                                 for line in result.stdout.lines) if m}
    return result, outcomes
