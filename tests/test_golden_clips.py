"""Users' own clips in a golden set: ``harness golden --clips`` (:func:`harness.judging.golden.add_clips`)."""
import shutil

import numpy as np
import pytest
import soundfile as sf

from harness.errors import AudioError
from harness.judging import calibration, golden, quality
from harness.surfaces.quality_check import QualityCheck


@pytest.fixture
def golden_copy(tmp_path, harness_options):
    src = harness_options["golden_dir"]
    if not (src / "manifest.json").exists():
        pytest.skip("no goldens for this model")
    dst = tmp_path / "golden"
    shutil.copytree(src, dst)
    return dst


def tone(seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)).astype(np.float32)


def test_added_clips_are_hashed_with_provenance_and_join_the_matrix(golden_copy, tmp_path, harness_chain):
    mine = tmp_path / "mine"
    mine.mkdir()
    sf.write(mine / "door bell.wav", tone(0.3, 44100), 44100)   # resampled on the way in
    sf.write(mine / "hum.flac", tone(1.234), 16000)
    (mine / "notes.txt").write_text("not audio: ignored in a directory")
    names = golden.add_clips(golden_copy, [mine])
    assert names == ["user-door-bell", "user-hum"]
    manifest = golden.check(golden_copy)  # every file hashed: an edit would fail here
    assert manifest["clips"][-2:] == names
    assert manifest["user_clips"]["user-hum"]["source"].endswith("hum.flac")
    assert "clips/user-hum.flac" in manifest["files"]
    gset = golden.load(golden_copy)
    assert abs(len(gset.clips["user-door-bell"]) - 0.3 * 16000) <= 1
    run = quality.MatrixRun(harness_chain, gset, judged_only=True)
    assert {"clip:user-door-bell", "clip:user-hum"} <= set(run.clip_names)
    # adding the same file again gets a new name, never overwrites
    assert golden.add_clips(golden_copy, [mine / "hum.flac"]) == ["user-hum-2"]


def test_a_bad_clip_writes_nothing(golden_copy, tmp_path):
    before = (golden_copy / "manifest.json").read_text()
    sf.write(tmp_path / "ok.wav", tone(1.0), 16000)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silent.wav"):
        golden.add_clips(golden_copy, [tmp_path / "ok.wav", tmp_path / "silent.wav"])
    assert (golden_copy / "manifest.json").read_text() == before
    assert not list((golden_copy / "clips").glob("user-*"))


@pytest.mark.slow
def test_added_clips_get_per_clip_ceilings_and_catch_a_regression(golden_copy, tmp_path, harness_chain):
    """Add a clip, re-calibrate: the clip has its own ceilings, and a slip on it fails the matrix check."""
    from harness.judging import matrix, thresholds
    from harness.signal.synth import judging_set

    sf.write(tmp_path / "take.wav", tone(1.5), 16000)
    (name,) = golden.add_clips(golden_copy, [tmp_path / "take.wav"])
    small = dict(list(judging_set("validation"))[-3:])  # the relative margins are not under test here
    calibration.calibrate(harness_chain, golden_copy, progress=False, relative_clips=small)
    data = thresholds.load(golden_copy / "thresholds.toml")
    assert f"clip:{name}" in data["meta"]["clips"]
    index = data["meta"]["clips"].index(f"clip:{name}")
    entry = data[thresholds.table_key("audioldm2-scaled-hifigan", "chain")]
    assert len(entry["mel_l1_max"]) == len(data["meta"]["clips"]) and entry["mel_l1_max"][index] > 0
    run = quality.MatrixRun(harness_chain, golden.load(golden_copy))
    check = QualityCheck(data)
    combo = matrix.REFERENCE
    check.check(combo, "chain", run.result(combo)["chain"], "pass", clip_names=run.clip_names)
    # the same stage 20 % worse on that clip only is a regression
    worse = run.result(combo)["chain"]
    worse.metrics["mel_l1"] = worse.metrics["mel_l1"].copy()
    worse.metrics["mel_l1"][run.clip_names.index(f"clip:{name}")] *= 1.2
    with pytest.raises(AssertionError, match=name):
        check.check(combo, "chain", worse, "pass", clip_names=run.clip_names)
