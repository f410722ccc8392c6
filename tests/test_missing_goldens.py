"""A project without goldens or thresholds gets failing quality tests that name the command to run,
never a green run that tested nothing; skipping them is an explicit flag."""
pytest_plugins = ["pytester"]

SUITE = "from harness.suite import test_golden_stage, test_matrix  # noqa: F401\n"


def test_missing_goldens_fail_with_the_command(pytester):
    pytester.makepyfile(test_quality=SUITE)
    args = ["-p", "no:cacheprovider", "--golden-dir", str(pytester.path / "golden"), "-k",
            "audioldm2-scaled-hifigan:chain or decode-scaled"]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*no goldens in *golden: run `harness golden --model tiny --out *golden`*"])
    assert result.ret != 0

    skipped = pytester.runpytest_subprocess(*args, "--allow-missing-goldens", "-rs")
    skipped.assert_outcomes(skipped=2)
    assert skipped.ret == 0


def test_missing_thresholds_fail_with_the_command(pytester, harness_options):
    import shutil

    golden = pytester.path / "golden"
    shutil.copytree(harness_options["golden_dir"], golden)
    (golden / "thresholds.toml").unlink()
    pytester.makepyfile(test_quality=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--golden-dir", str(golden), "-k",
                                           "audioldm2-scaled-hifigan:chain")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no thresholds in *thresholds.toml: run `harness thresholds --calibrate*"])
