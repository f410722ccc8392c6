"""The training recipe runs and learns (CI never retrains the bundled model: this is a smoke test)."""
import json

import numpy as np
import pytest
import torch

from harness.builders.bundled import loops, tiny, train
from harness.builders.bundled.config import TrainConfig
from harness.builders.bundled.data import prepare_data, random_crops, read_data_pack, write_data_pack


def test_a_few_steps_reduce_the_loss(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(n_speech=0, n_synth=3, n_heldout_speech=0, n_heldout_synth=1, vae_batch=4,
                      vae_frames=32, vocoder_batch=2, vocoder_frames=16, warmup=1)
    data = prepare_data(cfg, tmp_path)
    vae = tiny.build_vae(0)
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3)
    losses = []
    for step in range(25):
        rng = np.random.default_rng([0, 0])  # the same batch each step: its loss must fall
        mel, _ = random_crops(data["train"], rng, cfg.vae_batch, cfg.vae_frames)
        rec = vae.decode(vae.encode(mel[:, None]).latent_dist.mode()).sample
        loss = (rec - mel[:, None]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


def test_recipe_resumes_and_exports(tmp_path):
    cfg = TrainConfig(n_speech=0, n_synth=3, n_heldout_speech=0, n_heldout_synth=1, vae_steps=2,
                      vocoder_steps=2, gan_steps=2, n_gan_clips=3, eval_every=2, vae_batch=2, vae_frames=32,
                      vocoder_batch=1, vocoder_frames=16, gan_batch=1, gan_frames=16, warmup=1)
    result = train.main(str(tmp_path / "run"), str(tmp_path / "model"), cfg)
    assert (tmp_path / "model" / "vae" / "config.json").exists()
    assert json.loads((tmp_path / "model" / "training.json").read_text())["scaling_factor"] > 0
    assert result["vae_history"][-1]["step"] == 2
    assert result["vocoder_gan_history"][-1]["step"] == 2  # the adversarial stage ran too
    # resuming a finished run does no further steps and keeps the history
    again = train.main(str(tmp_path / "run"), str(tmp_path / "model"), cfg)
    assert again["vocoder_history"] == result["vocoder_history"]
    assert again["vocoder_gan_history"] == result["vocoder_gan_history"]


def test_the_adversarial_stage_starts_from_a_trained_pipeline(tmp_path):
    """``init_from``: stages 1-2 are read from a pipeline directory (their history carried over), only
    the HiFi-GAN stage trains, and the exported vocoder differs from the one it started from."""
    from transformers import SpeechT5HifiGan

    first = TrainConfig(n_speech=0, n_synth=3, n_heldout_speech=0, n_heldout_synth=1, vae_steps=2,
                        vocoder_steps=2, gan_steps=0, n_gan_clips=3, eval_every=2, vae_batch=2,
                        vae_frames=32, vocoder_batch=1, vocoder_frames=16, warmup=1)
    train.main(str(tmp_path / "run1"), str(tmp_path / "model1"), first)
    cfg = TrainConfig(**{**first.__dict__, "gan_steps": 2, "gan_batch": 1, "gan_frames": 16,
                         "init_from": str(tmp_path / "model1")})
    result = train.main(str(tmp_path / "run2"), str(tmp_path / "model2"), cfg)
    assert result["taken_from"]["path"] == str(tmp_path / "model1")
    assert result["taken_from"]["parts"] == ["vae", "vocoder"]
    assert result["vocoder_gan_history"][-1]["step"] == 2 and result["vae_history"][-1]["step"] == 2
    before = SpeechT5HifiGan.from_pretrained(tmp_path / "model1", subfolder="vocoder").state_dict()
    after = SpeechT5HifiGan.from_pretrained(tmp_path / "model2", subfolder="vocoder").state_dict()
    assert before.keys() == after.keys()  # still a plain SpeechT5HifiGan (weight norm folded)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_discriminators_tell_their_inputs_apart_after_a_few_steps():
    """The MPD + MSD learn: a few least-squares steps separate real tones from white noise."""
    from harness.builders.bundled.discriminators import HifiGanDiscriminator, discriminator_loss

    torch.manual_seed(0)
    d = HifiGanDiscriminator()
    opt = torch.optim.AdamW(d.parameters(), lr=2e-3)
    t = torch.arange(4000) / 16000
    real = torch.stack([torch.sin(2 * torch.pi * f * t) * 0.5 for f in (220.0, 330.0, 440.0)])
    fake = torch.randn(3, 4000) * 0.3
    losses = []
    for _ in range(15):
        loss = discriminator_loss(d(real), d(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_rescale_latents_is_an_exact_change_of_variables():
    """The bundled VAE's latents are moved to cvssp/audioldm2's scale without changing any round trip."""
    import copy

    import torch

    from harness.builders.bundled.export import rescale_latents
    from harness.builders.bundled.loops import REAL_SCALING_FACTOR

    torch.manual_seed(0)
    vae = tiny.build_vae(0).eval()
    mel = torch.randn(2, 1, 32, 64) - 5
    old_s = 0.73
    new = rescale_latents(copy.deepcopy(vae), old_s)
    assert new.config.scaling_factor == REAL_SCALING_FACTOR
    with torch.no_grad():
        z_old = vae.encode(mel).latent_dist.mode() * old_s
        z_new = new.encode(mel).latent_dist.mode() * REAL_SCALING_FACTOR
        torch.testing.assert_close(z_new, z_old, rtol=1e-4, atol=1e-4)  # pipeline latents unchanged
        a = vae.decode(z_old / old_s).sample
        b = new.decode(z_new / REAL_SCALING_FACTOR).sample
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        # and the latents themselves are on the new scale
        ratio = (new.encode(mel).latent_dist.mode().std() / vae.encode(mel).latent_dist.mode().std()).item()
        assert abs(ratio - old_s / REAL_SCALING_FACTOR) < 1e-3


def _without_versions(path):
    import json

    return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("transformers_version",
                                                                              "_diffusers_version")}


def test_export_only_rebuilds_the_bundled_pipeline_byte_for_byte(tmp_path):
    """``harness train --export-only`` (no --seed given) rebuilds the seeded-random parts around the trained
    VAE and vocoder: on the bundled model nothing changes."""
    import shutil

    from harness.surfaces import cli
    from harness.model import loading

    model = tmp_path / "tiny"
    shutil.copytree(loading.resolve_model("tiny").path, model)
    assert cli.main(["train", "--export-only", "--model-out", str(model)]) == 0
    shipped = loading.resolve_model("tiny").path
    for part in ("vae/diffusion_pytorch_model.safetensors", "vocoder/model.safetensors",
                 "unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        assert (model / part).read_bytes() == (shipped / part).read_bytes(), part
    for part in ("vae/config.json", "vocoder/config.json", "unet/config.json"):
        # the same settings; the writing library's version, which each config records, may differ
        assert _without_versions(model / part) == _without_versions(shipped / part), part
    # no path of the exporting machine: the configs are part of the weights hash the goldens record
    assert not [c for c in model.glob("*/config.json") if "_name_or_path" in c.read_text()]


def test_the_vocoder_corpus_is_seeded_and_keeps_the_held_out_voices_out():
    from harness.signal import synth

    a, b = synth.vocoder_corpus(12, seed=5, progress=False), synth.vocoder_corpus(12, seed=5, progress=False)
    assert [d for _, d in a] == [d for _, d in b]
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b))
    assert all(x.dtype == np.float32 and np.isfinite(x).all() and np.abs(x).max() > 0 for x, _ in a)
    assert len({d.split(":")[0] for _, d in a}) >= 3  # several kinds of sound, not one
    assert not set(synth.EXTRA_TRAIN_LANGS) & set(synth.HELDOUT_LANGS)


SMALL = dict(n_speech=0, n_synth=3, n_heldout_speech=0, n_heldout_synth=1, vae_steps=2, vocoder_steps=2,
             gan_steps=2, n_gan_clips=3, eval_every=2, vae_batch=2, vae_frames=32, vocoder_batch=1,
             vocoder_frames=16, gan_batch=1, gan_frames=16, warmup=1)


def test_a_data_pack_carries_the_corpus_as_flac(tmp_path):
    """``write_data_pack`` / ``read_data_pack``: the same clips, 16-bit accurate, mels recomputed from them."""
    cfg = TrainConfig(**SMALL)
    data = prepare_data(cfg, tmp_path)
    path = write_data_pack(data, tmp_path / "pack.npz")
    assert path.stat().st_size < 0.5 * (tmp_path / "data.npz").stat().st_size
    back = prepare_data(TrainConfig(**SMALL, data_pack=str(path)), tmp_path / "elsewhere")
    assert set(back) == {"train", "heldout"}
    for name in back:
        np.testing.assert_array_equal(back[name]["offsets"], data[name]["offsets"])
        np.testing.assert_array_equal(back[name]["desc"], data[name]["desc"])
        np.testing.assert_allclose(back[name]["wave"], data[name]["wave"], atol=2 / 32767)
        assert np.abs(back[name]["mel"] - data[name]["mel"]).mean() < 0.05  # nats; the floor bins move most
    missing = tmp_path / "none.npz"
    with pytest.raises(FileNotFoundError, match="--write-pack"):
        read_data_pack(missing)


def test_a_stage_fitted_to_minutes_sets_its_steps_from_its_pace(tmp_path, monkeypatch):
    """``vocoder_minutes``: the step count comes from the first steps' pace, is recorded, and a re-run
    (resume) keeps it instead of fitting again."""
    ticks = iter(range(10 ** 9))
    monkeypatch.setattr(loops, "_clock", lambda: next(ticks) * 0.01)  # a clock the test controls: 10 ms a reading
    monkeypatch.setattr(loops, "PACE_WARMUP", 1)
    monkeypatch.setattr(loops, "PACE_STEPS", 4)
    settings = {**SMALL, "vocoder_steps": 10 ** 6, "vocoder_minutes": 0.006, "eval_every": 50, "stages": "vocoder"}
    result = train.main(str(tmp_path / "run"), str(tmp_path / "model"), TrainConfig(**settings),
                        export_model=False)
    fitted = result["config"]["vocoder_steps"]
    assert loops.PACE_WARMUP + loops.PACE_STEPS < fitted < 30  # 0.36 s at a few 10-ms readings per step
    assert result["vocoder_history"][-1]["step"] == fitted
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["fitted"]["steps"] for r in log if "fitted" in r] == [fitted]
    again = train.main(str(tmp_path / "run"), str(tmp_path / "model"), TrainConfig(**settings),
                       export_model=False)
    assert again["vocoder_history"] == result["vocoder_history"]


def test_a_run_trained_without_export_is_exported_from_its_portable_checkpoints(tmp_path):
    """The GPU-machine flow: train stages 2-3 with no export (no diffusers needed), strip the checkpoints,
    then export here from them with the run's config and a pipeline for the VAE."""
    from transformers import SpeechT5HifiGan

    from harness.surfaces import cli
    from harness.model import loading

    tiny_dir = str(loading.resolve_model("tiny").path)
    arch = {"upsample_rates": [8, 4, 5], "upsample_kernel_sizes": [16, 8, 10], "resblock_kernel_sizes": [3, 7],
            "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]]}
    cfg = TrainConfig(**{**SMALL, "stages": "vocoder,gan", "vocoder_width": 32, "vocoder_arch": arch})
    with pytest.raises(ValueError, match="init_from"):
        train.main(str(tmp_path / "run"), str(tmp_path / "model"), cfg)
    trained = train.main(str(tmp_path / "run"), str(tmp_path / "unused"), cfg, export_model=False)
    assert not (tmp_path / "unused").exists() and trained["stages_trained"] == ["vocoder", "gan"]
    assert cli.main(["train", "--out", str(tmp_path / "run"), "--portable", str(tmp_path / "back")]) == 0
    assert all("opts" not in torch.load(p, weights_only=False) for p in (tmp_path / "back").glob("*.ckpt"))
    assert cli.main(["train", "--out", str(tmp_path / "back"), "--config", str(tmp_path / "back" / "config.json"),
                     "--init-from", tiny_dir, "--model-out", str(tmp_path / "model")]) == 0
    exported = json.loads((tmp_path / "model" / "training.json").read_text())
    assert exported["vocoder_gan_history"] == trained["vocoder_gan_history"]  # nothing retrained on export
    assert exported["taken_from"]["parts"] == ["vae"]
    vocoder = SpeechT5HifiGan.from_pretrained(tmp_path / "model", subfolder="vocoder")
    assert vocoder.config.upsample_initial_channel == 32
    assert {k: getattr(vocoder.config, k) for k in arch} == arch  # the architecture travels in config.json
    assert (tmp_path / "model" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (loading.resolve_model("tiny").path / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_unknown_stages_and_settings_are_refused_clearly(tmp_path):
    from harness.surfaces import cli

    with pytest.raises(ValueError, match="unknown training stage"):
        TrainConfig(stages="vocoder,hifigan").stage_list()
    assert TrainConfig(init_from="x").stage_list() == ["gan"]
    with pytest.raises(SystemExit, match="no such setting"):
        cli.main(["train", "--out", str(tmp_path), "--set", "vocoder_wdth=192"])
    with pytest.raises(ValueError, match="not the hop of 160"):
        tiny.build_vocoder(arch={"upsample_rates": [8, 4, 4]})


def test_the_mrstft_log_magnitude_term_has_its_own_weight():
    """With the log-magnitude term off, a half-level copy costs exactly its spectral convergence, 0.5."""
    target = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    ffts = [256, 1024]
    assert loops.mrstft_loss(0.5 * target, target, ffts, w_log_mag=0.0).item() == pytest.approx(0.5, abs=1e-5)
    with_log = loops.mrstft_loss(0.5 * target, target, ffts).item()
    assert with_log == pytest.approx(0.5 + np.log(2), abs=1e-4)  # + |ln 0.5| in every bin
