"""A user's variants, registered from their own module, join the matrix with the same goldens and thresholds."""
import re

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import sys
sys.path.insert(0, {path!r})
import my_variants  # registers user-float64, user-db-bug, user-mode, user-hifigan
"""

TEST = """
def test_matrix(harness_matrix, harness_quality, combination, clip_stage):
    expected = harness_quality.expected(combination, clip_stage)
    result = harness_matrix.result(combination)[clip_stage]
    harness_quality.check(combination, clip_stage, result, expected)
"""


def test_user_variants_join_the_matrix(pytester, harness_options):
    import pathlib

    here = pathlib.Path(__file__).parent / "user_variants"
    pytester.makeconftest(CONFTEST.format(path=str(here)))
    pytester.makepyfile(test_user=TEST)
    golden = harness_options["golden_dir"].resolve()
    if not (golden / "thresholds.toml").exists():
        pytest.skip("no calibrated goldens for this model")
    args = ["-p", "no:cacheprovider", f"--harness-golden-dir={golden}", "--harness-model", harness_options["model"],
            "-k", "user-float64-scaled-hifigan or user-db-bug-scaled-hifigan or audioldm2-user-mode-hifigan "
                  "or audioldm2-scaled-user-hifigan"]
    # correct user variants pass against their sibling's thresholds; the declared bug is detected at its
    # front-end stage. 4 + 4 + 4 stages of the correct ones, 2 of the bug (its vae/vocoder are only
    # reported), and the -k patterns also select the 6 asserted stages of the *-hifigan-transposed ones;
    # the bug's chain stage is not generated: no calibration can decide whether to assert a project's own mistake
    result = pytester.runpytest_subprocess("-q", "-rA", *args)
    result.assert_outcomes(passed=4 + 4 + 4 + 2 + 6)
    out = result.stdout.str()
    for test_id in ("user-float64-scaled-hifigan:chain", "user-db-bug-scaled-hifigan:frontend",
                    "audioldm2-user-mode-hifigan:vae", "audioldm2-scaled-user-hifigan:vocoder"):
        assert re.search(rf"PASSED \S*::test_matrix\[{re.escape(test_id)}\]", out), test_id
    assert "user-db-bug-scaled-hifigan:chain" not in out


def test_every_component_spells_its_expected_verdict_one_way():
    """``expected_at(stage)``: a front-end and a vocoder variant have one verdict, a VAE variant one per golden stage."""
    from harness import get_frontend, get_vae, get_vocoder

    assert get_frontend("audioldm2").expected_at("frontend") == "pass"
    assert get_frontend("htk-mel").expected_at("frontend") == "detect"
    assert get_vocoder("hifigan-transposed").expected_at("vocoder") == "detect"
    assert get_vae("unscaled").expected_at("decode") == "detect"
    assert get_vae("unscaled").expected_at("roundtrip") == "pass"  # s cancels in a round trip
    assert get_vae("no-encode-scale").expected_at("roundtrip") == "detect"
    assert get_vae("no-encode-scale").expected_at("decode") == "pass"  # fine on the pipeline's latents
