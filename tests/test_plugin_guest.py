"""The installed plugin is a guest in other projects' test suites: it owns only ``--harness-*`` options and
``harness_*`` ini keys, leaves other tests (and their markers, options and parameter names) alone, imports no
torch where no harness test is collected, and runs its shipped suite beside a project's own tests."""
import pytest

pytest_plugins = ["pytester"]

# a project with options and markers of its own, of the names ML test suites use
OWN_CONFTEST = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--device", default="cpu")
    parser.addoption("--model", default="ours")
    parser.addoption("--dtype", default="float32")
    parser.addoption("--run-slow", action="store_true")
    parser.addoption("--report-dir", default="out")

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: ours")
    config.addinivalue_line("markers", "gpu: ours")

def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="our own slow skip"))

@pytest.fixture
def combination():
    return "our own combination fixture"
"""
OWN_TESTS = """
import pytest

def test_device(request):
    assert request.config.getoption("--device") == "cpu"
    assert request.config.getoption("--model") == "ours"

@pytest.mark.slow
def test_slow():
    pass

@pytest.mark.gpu
def test_gpu():
    pass  # this project runs its gpu tests everywhere: no plugin may skip them

def test_own_combination(combination):
    assert combination == "our own combination fixture"

@pytest.mark.parametrize("golden_stage", ["ours-1", "ours-2"])
def test_own_golden_stage(golden_stage):
    assert golden_stage.startswith("ours")
"""


def outcomes(result):
    """``{test: (outcome, skip reason)}`` of a ``-rA`` run."""
    out = {}
    for line in result.stdout.lines:
        parts = line.split(" ", 2)
        if parts[0] in ("PASSED", "FAILED", "ERROR", "SKIPPED") and len(parts) > 1:
            if parts[0] == "SKIPPED":  # SKIPPED [1] file:line: reason
                out[line.split(": ", 1)[0]] = ("SKIPPED", line.split(": ", 1)[1])
            else:
                out[parts[1]] = (parts[0], "")
    return out


def test_a_project_runs_as_without_the_harness(pytester):
    pytester.makeconftest(OWN_CONFTEST)
    pytester.makepyfile(test_own=OWN_TESTS)
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:audioldm2_harness", "-rA")
    with_it = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    assert without.ret == with_it.ret == 0
    assert outcomes(with_it) == outcomes(without)
    assert with_it.parseoutcomes() == without.parseoutcomes() == {"passed": 5, "skipped": 1}
    assert "our own slow skip" in with_it.stdout.str()


def test_no_torch_where_no_harness_test_is_collected(pytester):
    pytester.makeconftest("""
import sys

def pytest_collection_finish(session):
    print("IMPORTED", sorted(m for m in ("torch", "diffusers", "librosa") if m in sys.modules))
""")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["IMPORTED []"])
    assert "audioldm2-harness" in pytester.runpytest_subprocess("--help").stdout.str()  # loaded, all the same


def test_the_shipped_suite_runs_beside_a_project_s_own_tests(pytester, harness_options):
    """Both sets of options in one run: the project's ``--device``/``--model``/``--run-slow``, the harness's
    ``--harness-*``; the project's ``combination`` fixture stays its own in its own test module."""
    golden = harness_options["golden_dir"].resolve()
    if not (golden / "thresholds.toml").exists():
        pytest.skip("no calibrated goldens for this model")
    pytester.makeconftest(OWN_CONFTEST.replace("@pytest.fixture\ndef combination", "@pytest.fixture\ndef _unused"))
    pytester.makepyfile(test_own=OWN_TESTS.replace("def test_own_combination(combination):\n    assert combination "
                                                   "== \"our own combination fixture\"", ""))
    pytester.makepyfile(test_quality="from harness.surfaces.suite import *  # noqa: F401,F403\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rA", "--device", "cpu", "--model", "ours", "--run-slow",
        "--harness-model", harness_options["model"], f"--harness-golden-dir={golden}", "--harness-device", "cpu",
        "-k", "test_own or test_device or test_slow or test_gpu or audioldm2-scaled-hifigan: or decode-scaled")
    got = result.parseoutcomes()
    assert result.ret == 0 and not got.get("skipped") and not got.get("failed"), result.stdout.str()[-3000:]
    assert got["passed"] == 5 + 4 + 1, got  # the project's own tests, 4 clip stages, the golden decode stage
    result.stdout.fnmatch_lines(["PASSED test_own.py::test_slow", "PASSED test_own.py::test_gpu",
                                 "PASSED test_quality.py::test_matrix[[]audioldm2-scaled-hifigan:chain[]]",
                                 "PASSED test_quality.py::test_golden_stage[[]decode-scaled[]]"])


def test_settings_come_from_the_command_line_then_the_ini_file_then_the_default(pytester):
    pytester.makeini("""
[pytest]
harness_dtype = bf16
harness_report_dir = from-ini
harness_allow_missing_goldens = true
""")
    pytester.makepyfile(test_settings="""
def test_settings(harness_options):
    print("SETTINGS", harness_options["model"], harness_options["dtype"], harness_options["report_dir"],
          harness_options["device"], harness_options["allow_missing"])
""")
    ini = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    ini.stdout.fnmatch_lines(["*SETTINGS tiny bf16 from-ini cpu True"])  # model, device: defaults
    cli = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--harness-dtype", "fp16",
                                        "--harness-report-dir", "cli", "--harness-device", "auto")
    cli.stdout.fnmatch_lines(["*SETTINGS tiny fp16 cli auto True"])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-dtype", "fp8")
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(["*harness dtype 'fp8': expected one of fp32, bf16, fp16*"])
