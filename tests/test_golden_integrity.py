"""Golden files are data with provenance: hashes, shapes and manifest completeness are enforced."""
import json
import shutil

import numpy as np
import pytest

from harness.judging import golden
from harness.errors import GoldenError


def test_manifest_has_provenance(golden_set):
    m = golden_set.manifest
    for key in golden.REQUIRED_KEYS:
        assert key in m
    for pkg in ("torch", "diffusers", "transformers", "librosa"):
        assert pkg in m["versions"]
    assert all("seed" in c and "prompt" in c for c in m["cases"])


def test_shapes_agree(golden_set, harness_chain):
    f = harness_chain.vae_factor
    for c in golden_set.cases:
        frames = c.mel.shape[0]
        assert c.mel.shape == (frames, harness_chain.n_mels)
        assert c.latents.shape == (harness_chain.vae.config.latent_channels, frames // f, harness_chain.n_mels // f)
        assert len(c.audio) == frames * 160


@pytest.fixture
def golden_copy(golden_set, tmp_path):
    dest = tmp_path / "golden"
    shutil.copytree(golden_set.root, dest)
    return dest


def _first(root, suffix):
    return sorted(root.glob(f"cases/*/*{suffix}"))[0]


def test_edited_array_is_named(golden_copy):
    path = _first(golden_copy, "mel.npy")
    arr = np.load(path)
    arr[0, 0] += 0.01
    np.save(path, arr)
    with pytest.raises(GoldenError, match=f"{path.name}.*sha256"):
        golden.check(golden_copy)


def test_truncated_audio_is_named(golden_copy):
    path = _first(golden_copy, "audio.wav")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GoldenError, match=f"{path.name}.*truncated"):
        golden.check(golden_copy)


def test_missing_file_is_named(golden_copy):
    path = _first(golden_copy, "latents.npy")
    path.unlink()
    with pytest.raises(GoldenError, match="latents.npy.*missing"):
        golden.check(golden_copy)


def test_incomplete_manifest(golden_copy):
    mpath = golden_copy / "manifest.json"
    m = json.loads(mpath.read_text())
    del m["weights_sha256"]
    mpath.write_text(json.dumps(m))
    with pytest.raises(GoldenError, match="incomplete.*weights_sha256"):
        golden.check(golden_copy)


def test_corrupt_manifest(golden_copy):
    (golden_copy / "manifest.json").write_text("{not json")
    with pytest.raises(GoldenError, match="not valid JSON"):
        golden.check(golden_copy)


def test_thresholds_of_other_weights_are_refused(golden_copy, golden_set):
    """Limits calibrated on other weights describe another model: the quality tests must not judge by them."""
    from harness.judging import thresholds

    data = thresholds.load(golden_copy / "thresholds.toml")
    thresholds.check_weights(data, golden_set.manifest, golden_copy / "thresholds.toml")  # the shipped pair agrees
    data["meta"]["weights_sha256"] = "0" * 64
    with pytest.raises(GoldenError, match="thresholds.toml: calibrated on weights 000000000000.*"
                                          "harness thresholds --calibrate --model"):
        thresholds.check_weights(data, golden_set.manifest, golden_copy / "thresholds.toml")
