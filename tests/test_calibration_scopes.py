"""``--scope reference``: the correct combinations' limits (what a project's own variants are judged by) in a
fraction of the time; the known mistakes then skip, naming the wider calibration, instead of failing."""
import pytest

from harness import calibration, golden, matrix, thresholds
from harness.chain import Chain
from harness.quality import QualityCheck


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
    assert not any(thresholds.table_key(c.id, s) in data for c in combos if c.culprit() for s in matrix.CLIP_STAGES)
    assert any(k.startswith("golden-") for k in data)  # the golden stages are in every scope
    check = QualityCheck(data, golden_dir=out)
    mistake = next(c for c in combos if c.culprit() == "vae")
    with pytest.raises(pytest.skip.Exception, match="--scope absolute"):
        check.expected(mistake, "vae")
    assert check.expected(correct[0], "chain") == "pass"
