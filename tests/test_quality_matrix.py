"""The quality matrix: every front-end x VAE variant x vocoder on the goldens and reference clips.

Each test is one combination at one stage, so a failure names the stage that lost the quality.
Correct combinations must stay within their calibrated ceilings; known mistakes must stay
*detected* (clearly worse than the correct sibling, or stopped by a clear error).
"""


def test_matrix(harness_matrix, harness_quality, combination, clip_stage):
    result = harness_matrix.result(combination)[clip_stage]
    harness_quality.check(combination, clip_stage, result, combination.expected()[clip_stage],
                          clip_names=harness_matrix.clip_names, evidence=harness_matrix.evidence(combination))


def test_every_mistake_is_caught_at_its_own_stage(harness_matrix, harness_quality, combination):
    """A broken combination is detected at the stage of its first mistaken component, not only somewhere."""
    culprit = combination.culprit()
    if culprit is None:
        return
    result = harness_matrix.result(combination)[culprit]
    harness_quality.check(combination, culprit, result, "detect", clip_names=harness_matrix.clip_names)
