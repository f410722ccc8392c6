"""The AudioLDM family, each member a tiny offline-built pipeline of its real classes (harness.builders.family):
golden generation, the golden-stage tests, and loading by hub id from a Hugging Face cache laid out as
the hub leaves it, fully offline. A change that breaks one of them fails here."""
import shutil

import pytest

from harness.judging import calibration, golden, quality
from harness.builders import family
from harness.model import loading
from harness.errors import ModelNotAvailable
from harness.surfaces import suite
from harness.surfaces.quality_check import QualityCheck
from harness.model.chain import Chain
from harness.judging.matrix import golden_stage_names


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    return {v: family.build_tiny(v, root / v) for v in family.VARIANTS if v != "audioldm2"}


@pytest.mark.parametrize("variant", ["audioldm2-large", "audioldm2-tts", "audioldm", "musicldm"])
def test_member_goes_through_goldens_and_the_golden_stage_tests(built, tmp_path, variant):
    model = str(built[variant])
    gdir = golden.generate(model, tmp_path / "golden", steps=5, progress=False)  # fewer steps: same code path
    manifest = golden.check(gdir)
    assert manifest["pipeline"] == {"audioldm": "AudioLDMPipeline", "musicldm": "MusicLDMPipeline"}.get(
        variant, "AudioLDM2Pipeline")
    assert manifest["settings"]["scaling_factor"] == pytest.approx(
        family.MUSICLDM_SCALING_FACTOR if variant == "musicldm" else Chain.load("tiny").scaling_factor)
    assert ("transcription" in manifest) == (variant == "audioldm2-tts")
    chain = Chain.load(model)
    path = calibration.calibrate(chain, gdir, progress=False, scope="golden")
    from harness.judging import thresholds

    check = QualityCheck(thresholds.load(path))
    gset = golden.load(gdir)
    run = quality.MatrixRun(chain, gset)
    pairs = golden_stage_names()
    assert len(pairs) >= 10
    for pair in pairs:  # the shipped test, as pytest runs it for this model
        suite.test_golden_stage(harness_quality=check, golden_set=gset, harness_matrix=run, harness_chain=chain,
                                golden_stage=pair)


def test_large_has_two_transformer_layers_per_block(built):
    from diffusers import AudioLDM2UNet2DConditionModel

    unet = AudioLDM2UNet2DConditionModel.from_pretrained(built["audioldm2-large"], subfolder="unet")
    attentions = [a for b in unet.down_blocks for a in getattr(b, "attentions", [])]
    assert attentions and all(len(a.transformer_blocks) == 2 for a in attentions)


def test_loading_by_hub_id_from_an_offline_cache(built, tmp_path, monkeypatch):
    """``models--org--name/snapshots/<rev>`` + ``refs/main``, as ``hf download`` leaves it; no network."""
    import huggingface_hub.constants as hub

    rev = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "hub" / "models--cvssp--audioldm-tiny" / "snapshots" / rev
    shutil.copytree(built["audioldm"], snap)
    (tmp_path / "hub" / "models--cvssp--audioldm-tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--cvssp--audioldm-tiny" / "refs" / "main").write_text(rev)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = loading.resolve_model("cvssp/audioldm-tiny", subfolders=("vae", "vocoder", "unet"))
    assert source.kind == "hub" and source.path == snap and source.slug == "cvssp--audioldm-tiny"
    chain = Chain.load("cvssp/audioldm-tiny")
    assert chain.scaling_factor == pytest.approx(Chain.load("tiny").scaling_factor)
    pipe = loading.load_pipeline(source)
    assert type(pipe).__name__ == "AudioLDMPipeline"
    with pytest.raises(ModelNotAvailable, match="not in the local cache and HF_HUB_OFFLINE"):
        loading.resolve_model("cvssp/not-cached")


@pytest.mark.slow
def test_musicldm_matrix_detects_every_known_mistake_and_passes_every_correct_combination(built, tmp_path):
    """`harness golden --scope absolute` then `harness matrix` on MusicLDM: at its scaling factor (1.0753, near 1)
    a forgotten factor changes the latents by 7.5 %, and must still be detected at its culprit stage."""
    from harness.judging import report
    from harness.judging.verdicts import Judge

    model = str(built["musicldm"])
    chain = Chain.load(model)
    gdir = golden.generate(model, tmp_path / "golden", steps=5, progress=False,
                           finish=lambda stage: calibration.calibrate(chain, stage, progress=False, scope="absolute"))
    records, errors = report.matrix_records(chain, golden_dir=str(gdir), progress=False)
    rates = Judge.rates(records)
    assert errors == [] and rates["correct"] > 0 and rates["broken"] > 0
    assert (rates["false_alarms"], rates["misses"]) == (0, 0), rates["wrong"]
