"""Where the goldens of a run come from: the copy shipped in the package for a bundled model, a
project's own directory (which takes precedence), an ini option pytest reads without flags; and what
happens when they are missing: the quality tests fail naming the command that makes them, never a
green run that tested nothing; skipping them is an explicit flag."""
import re
import shutil
from pathlib import Path

from harness.judging import golden

pytest_plugins = ["pytester"]

SUITE = "from harness.surfaces.suite import test_golden_stage, test_matrix  # noqa: F401\n"
WHERE = """
def test_where(harness_options):
    print("GOLDEN_DIR=" + str(harness_options["golden_dir"].resolve()))
"""
SELECT = ["-p", "no:cacheprovider", "-s", "-k", "audioldm2-scaled-hifigan:chain or decode-scaled or where"]


def golden_dir_of(result) -> Path:
    return Path(re.search(r"GOLDEN_DIR=(\S+)", result.stdout.str()).group(1))


def test_a_new_project_runs_on_the_shipped_goldens(pytester):
    pytester.makepyfile(test_quality=SUITE + WHERE)
    result = pytester.runpytest_subprocess(*SELECT)
    result.assert_outcomes(passed=3)
    assert golden_dir_of(result) == (golden.BUNDLED_DIR / "tiny").resolve()


def test_the_ini_option_is_authoritative(pytester):
    pytester.makepyfile(test_quality=SUITE + WHERE)
    pytester.makeini("[pytest]\nharness_golden_dir = goldens-of-ours\n")
    result = pytester.runpytest_subprocess(*SELECT)
    # configured but empty: the tests fail with the command, never fall back to the shipped copy
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*no goldens in *goldens-of-ours/tiny: run `harness golden --model tiny --out "
                                 "*goldens-of-ours/tiny`*"])
    assert result.ret != 0
    skipped = pytester.runpytest_subprocess(*SELECT, "--harness-allow-missing-goldens", "-rs")
    skipped.assert_outcomes(passed=1, skipped=2)
    assert skipped.ret == 0
    # with the goldens there it passes: tests/test_readme.py (the README's project sets this option)


def test_missing_thresholds_fail_with_the_command(pytester):
    gold = pytester.path / "ours"
    shutil.copytree(golden.BUNDLED_DIR / "tiny", gold)
    (gold / "thresholds.toml").unlink()
    pytester.makepyfile(test_quality=SUITE)
    # the goldens and thresholds are checked before the model loads: a model that does not exist is never reached
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--harness-golden-dir={gold}", "-k",
                                           "audioldm2-scaled-hifigan:chain", "--harness-model", str(pytester.path / "absent"))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no fp32 thresholds in *thresholds.toml: run `harness thresholds --calibrate*"])
    assert "model not available" not in result.stdout.str()


def test_golden_dir_with_a_space_warns_how_to_write_it(pytester):
    """A project directory ``golden/<slug>`` is taken over the shipped copy; ``--harness-golden-dir PATH`` warns."""
    pytester.makepyfile(test_quality=WHERE)
    (pytester.path / "golden" / "tiny").mkdir(parents=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-k", "where")
    assert golden_dir_of(result) == (pytester.path / "golden" / "tiny").resolve()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "where", "--harness-golden-dir", "golden/tiny")
    result.stdout.fnmatch_lines(["*write --harness-golden-dir=PATH (with '=')*"])


def test_locate_never_writes_into_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert golden.locate("tiny") == golden.BUNDLED_DIR / "tiny"
    assert golden.locate("tiny", writing=True) == Path("golden/tiny")
    assert golden.locate("cvssp/audioldm2") == Path("golden/cvssp--audioldm2")
    assert golden.locate("tiny", root=tmp_path / "g") == tmp_path / "g" / "tiny"
    assert golden.locate("tiny", golden_dir="x") == Path("x")
    (tmp_path / "golden" / "tiny").mkdir(parents=True)
    (tmp_path / "golden" / "tiny" / "manifest.json").write_text("{}")
    assert golden.locate("tiny") == Path("golden/tiny")


def test_the_shipped_goldens_are_package_data():
    """Every file of the shipped goldens matches a ``package-data`` pattern, so a wheel carries them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["harness"]
    package = root / "harness"
    files = [p for p in (package / "goldens").rglob("*") if p.is_file()]
    assert len(files) > 10
    matched = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    assert not [str(p) for p in files if p not in matched]


def test_each_precision_has_its_own_thresholds():
    """The shipped set carries thresholds per precision, each calibrated in it (never derived from fp32)."""
    from harness.judging import thresholds

    for dtype in ("fp32", "bf16", "fp16"):
        data = thresholds.load(golden.BUNDLED_DIR / "tiny" / thresholds.file_name(dtype))
        assert data["meta"]["exact_key"] == f"cpu-{dtype}" and data["meta"]["problems"] == []
    assert thresholds.file_name("fp32") == "thresholds.toml"
    assert thresholds.file_name("bf16") == "thresholds-bf16.toml"


def test_bf16_thresholds_carry_the_relative_margins_fp32_has():
    """``harness matrix --dtype bf16`` judges audio without a stored baseline: the shipped bf16 set was
    calibrated with ``--scope all`` and has a relative margin table wherever the fp32 set has one."""
    from harness.judging import thresholds

    fp32, bf16 = (thresholds.load(golden.BUNDLED_DIR / "tiny" / thresholds.file_name(d)) for d in ("fp32", "bf16"))
    assert bf16["meta"]["scope"] == "all"
    relative = {k for k in fp32 if k.startswith("relative:")}
    assert relative and relative == {k for k in bf16 if k.startswith("relative:")}
