"""This repository's own test settings; the harness's pytest plugin (harness/surfaces/plugin.py) is registered by entry point.

* ``--run-slow`` and the ``slow`` / ``gpu`` / ``real_model`` markers are this repository's, not the plugin's:
  an installed plugin must not skip tests of the projects it is a guest in.
* hypothesis: one profile, registered before any test module makes its ``@settings`` (a settings object
  inherits the defaults in force when it is made), so property tests are derandomized and carry no
  deadline: a deadline is a timing assertion that fails on any slow runner. A test whose own settings
  set a deadline is refused at collection.
"""
import pytest
from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("deterministic")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (minutes on CPU)")


def pytest_configure(config):
    for marker in ("slow: takes minutes on CPU (run with --run-slow)",
                   "gpu: needs CUDA (skipped without it)",
                   "real_model: needs a real AudioLDM2 checkpoint (--harness-model cvssp/audioldm2 or a local copy)"):
        config.addinivalue_line("markers", marker)


def pytest_collection_modifyitems(config, items):
    timed = [item.nodeid for item in items
             if getattr(getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None),
                        "deadline", None) is not None]
    if timed:
        raise pytest.UsageError("property tests with a hypothesis deadline (a timing assertion in disguise; "
                                "use deadline=None): " + ", ".join(timed))
    import torch

    from harness.model import loading
    from harness.surfaces import plugin

    real = plugin.setting(config, "model") not in loading.BUNDLED
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="gpu: CUDA is not available on this machine"))
        if "real_model" in item.keywords and not real:
            item.add_marker(pytest.mark.skip(reason="real_model: pass --harness-model cvssp/audioldm2 (or a local "
                                             "copy of its weights) to run it"))
