"""The quality matrix: every front-end x VAE variant x vocoder on the goldens and reference clips.

Each test is one combination at one stage, so a failure names the stage that lost the quality.
Correct combinations must stay within their calibrated ceilings; known mistakes must stay
*detected* (clearly worse than the correct sibling, or stopped by a clear error). The tests are the
shipped suite (:mod:`harness.surfaces.suite`), imported exactly as a user's project imports them.
"""
from harness.surfaces.suite import test_every_known_mistake_has_a_detecting_stage, test_matrix  # noqa: F401
