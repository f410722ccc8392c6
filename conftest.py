"""This repository's own test settings; the harness's pytest plugin (harness/plugin.py) is registered by entry point.

* hypothesis: one profile, registered before any test module makes its ``@settings`` (a settings object
  inherits the defaults in force when it is made), so property tests are derandomized and carry no
  deadline: a deadline is a timing assertion that fails on any slow runner. A test whose own settings
  set a deadline is refused at collection.
"""
import pytest
from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("deterministic")


def pytest_collection_modifyitems(items):
    timed = [item.nodeid for item in items
             if getattr(getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None),
                        "deadline", None) is not None]
    if timed:
        raise pytest.UsageError("property tests with a hypothesis deadline (a timing assertion in disguise; "
                                "use deadline=None): " + ", ".join(timed))
