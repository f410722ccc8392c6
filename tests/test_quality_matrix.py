"""The quality matrix: every front-end x VAE variant x vocoder on the goldens and reference clips.

Each test is one combination at one stage, so a failure names the stage that lost the quality.
Correct combinations must stay within their calibrated ceilings; known mistakes must stay
*detected* (clearly worse than the correct sibling, or stopped by a clear error).
"""


def test_matrix(harness_matrix, harness_quality, combination, clip_stage):
    result = harness_matrix.result(combination)[clip_stage]
    harness_quality.check(combination, clip_stage, result, combination.expected()[clip_stage],
                          clip_names=harness_matrix.clip_names, evidence=harness_matrix.evidence(combination))


def test_every_known_mistake_has_a_detecting_stage(combination):
    """Each broken combination is asserted *detected* at the stage of its first mistaken component."""
    expected = combination.expected()
    if expected["chain"] == "pass":
        assert set(expected.values()) == {"pass"}
    else:
        assert combination.culprit() in ("frontend", "vae", "vocoder")
        assert expected[combination.culprit()] == "detect"
