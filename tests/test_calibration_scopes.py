"""``--scope reference``: the correct combinations' limits (what a project's own variants are judged by) in a
fraction of the time; the known mistakes then skip, naming the wider calibration, instead of failing."""
import pytest

from harness import vocabulary
from harness.judging import calibration, golden, matrix, stages, thresholds
from harness.model.chain import Chain
from harness.surfaces.quality_check import QualityCheck


def test_the_reference_scope_calibrates_the_correct_combinations_and_skips_the_mistakes(tmp_path):
    out = tmp_path / "tiny"
    golden.copy_bundled("tiny", out)
    path = calibration.calibrate(Chain.load("tiny"), out, progress=False, scope="reference")
    data = thresholds.load(path)
    assert data["meta"]["scope"] == "reference"
    combos = matrix.combinations()
    correct = [c for c in combos if c.culprit() is None]
    assert 0 < len(correct) < len(combos) / 5
    assert all(thresholds.table_key(c.id, "chain") in data for c in correct)
    assert not any(thresholds.table_key(c.id, s) in data
                   for c in combos if c.culprit() for s in vocabulary.CLIP_STAGES)
    # the golden stages of the correct variants, none of the known mistakes'
    pairs = [(s, n) for s in vocabulary.GOLDEN_STAGES for n in stages.golden_variant_names(s)]
    assert all((thresholds.table_key(f"golden-{s}-{n}", s) in data) == (matrix.golden_expected(s, n) != "detect")
               for s, n in pairs)
    check = QualityCheck(data, golden_dir=out)
    with pytest.raises(pytest.skip.Exception, match="--scope absolute"):
        check.golden_expected("decode", "double-scale")
    assert check.golden_expected("decode", "scaled") == "pass"
    mistake = next(c for c in combos if c.culprit() == "vae")
    with pytest.raises(pytest.skip.Exception, match="--scope absolute"):
        check.expected(mistake, "vae")
    assert check.expected(correct[0], "chain") == "pass"
