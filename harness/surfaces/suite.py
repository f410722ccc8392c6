"""The standard quality tests, shipped so a project runs them without copying any test code.

In your project, one test file is enough::

    # tests/test_audioldm2_quality.py
    from harness.surfaces.suite import (  # noqa: F401,F403  the harness's quality tests, on your registered variants
        *,
    )

With your front-ends, VAE wrappers and vocoders registered (in ``conftest.py`` or through the
``audioldm2_harness.variants`` entry point), pytest then runs for every combination:

* ``test_matrix``: each clip stage (front-end, VAE, vocoder, chain) on the goldens and reference
  clips (yours too, ``harness golden --clips``) against the per-clip thresholds; a failure downstream
  of a failing stage says so and names the culprit component;
* ``test_golden_stage``: the sample-exact golden stages: the pipeline's latents through your VAE's
  decode against the golden mel, the golden mel through your vocoder against the golden waveform
  (waveform SNR), the golden waveform through your front-end;
* ``test_frontend_invariances``: every correct front-end (yours too) is invariant to the input's gain and DC
  offset and to its batch, and gives AudioLDM2's frame count at any length: a forgotten normalisation or
  mean removal fails there, whatever the clip's level;
* ``test_every_known_mistake_has_a_detecting_stage``: the matrix asserts each known mistake somewhere.

This repository's own ``tests/`` import them the same way.
"""
from harness.judging.metamorphic import check_frontend
from harness.judging.quality import GoldenTarget

__all__ = ["test_matrix", "test_golden_stage", "test_frontend_invariances",
           "test_every_known_mistake_has_a_detecting_stage"]


# The goldens and thresholds fixtures come before the model's: what is missing fails before a model loads.
def test_matrix(harness_quality, harness_matrix, combination, clip_stage):
    """One combination at one clip stage: correct ones within their ceilings, mistakes detected (at their
    culprit stage, and at the chain where calibration found them clearly separated there)."""
    expected = harness_quality.expected(combination, clip_stage)  # first: a skipped chain stage computes nothing
    upstream = harness_matrix.result(combination, upto=clip_stage)  # no stage after it is computed
    harness_quality.check(combination, clip_stage, upstream[clip_stage], expected, upstream=upstream,
                          clip_names=harness_matrix.clip_names, evidence=harness_matrix.evidence(combination))


def test_golden_stage(harness_quality, golden_set, harness_matrix, harness_chain, golden_stage):
    """One variant at one golden stage (decode, roundtrip, vocoder, frontend) on the pipeline's goldens."""
    stage, name = golden_stage
    expected = harness_quality.golden_expected(stage, name)  # first: a skipped known mistake computes nothing
    result = harness_matrix.golden(harness_chain, golden_set, [stage], [name])[stage][name]
    clip_names = [f"golden:{c.name}" for c in golden_set.cases]
    harness_quality.check(GoldenTarget(stage, name), stage, result, expected,
                          clip_names=clip_names,
                          evidence=harness_matrix.golden_evidence(harness_chain, golden_set, stage, name))


def test_frontend_invariances(harness_frontend):
    """A correct front-end gives the same mel at any input gain, with a DC offset, in a batch or alone, and
    AudioLDM2's frame count at any length (:func:`harness.judging.metamorphic.check_frontend`, inputs drawn by
    hypothesis): what the matrix, which hands every front-end normalised audio on the grid, cannot see."""
    check_frontend(harness_frontend)


def test_every_known_mistake_has_a_detecting_stage(combination):
    """Each broken combination is asserted *detected* at the stage of its first mistaken component."""
    expected = combination.verdicts()
    if expected["chain"] == "pass":
        assert set(expected.values()) == {"pass"}
    else:
        assert combination.culprit() in ("frontend", "vae", "vocoder")
        assert expected[combination.culprit()] == "detect"
