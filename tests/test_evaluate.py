"""``harness evaluate``: the held-out figures and the two figures it draws (training curves, spectrograms)."""
import json

import numpy as np
import pytest

from harness.model import loading
from harness.builders.bundled import evaluate
from harness.model.chain import Chain


@pytest.fixture(scope="module")
def chain():
    return Chain.load("tiny")


@pytest.fixture(scope="module")
def sets():
    t = np.arange(evaluate.FRAMES * 160) / 16000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t) * np.exp(-t)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    return {"made": {"00:synth:tone": tone, "01:noise": noise}}


def test_evaluate_gives_a_median_per_row_and_metric(chain, sets):
    results = evaluate.evaluate(chain, sets)
    rows = results["made"]
    assert rows["n_clips"] == {"count": 2}
    assert set(rows) >= {"VAE round trip", *evaluate.ROWS}
    assert {"mel_l1", "lsd", "mrstft"} <= set(rows["vocoder alone (true mel)"])
    # the report's broken front-end is far worse than the correct chain on any audio
    assert rows["seed-librosa-db chain"]["mel_l1"] > 2 * rows["full chain"]["mel_l1"]
    assert "made (2 clips)" in evaluate.format_table(results)


def test_spectrogram_figure_draws_the_chosen_clips(chain, sets, tmp_path):
    path = evaluate.plot_spectrograms(chain, str(tmp_path / "s.png"), sets, clips=("made/tone", "made/absent"))
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert path == str(tmp_path / "s.png")
    with pytest.raises(ValueError, match="none of the clips"):
        evaluate.plot_spectrograms(chain, str(tmp_path / "t.png"), sets, clips=("other/x",))


def test_training_curves_are_drawn_from_training_json(tmp_path):
    training = json.loads((loading.resolve_model("tiny").path / "training.json").read_text())
    evaluate.plot_training(training, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_runs_are_compared_from_their_logs_and_models_from_training_json(tmp_path):
    from harness.surfaces import cli

    run = tmp_path / "run"
    run.mkdir()
    records = [{"stage": "vae", "step": 5, "wall_s": 1.0, "vae_mel_l1": 0.5},
               {"stage": "vocoder", "fitted": {"minutes": 1.0, "steps": 20}},  # a budget fit, not a point
               {"stage": "vocoder", "step": 10, "wall_s": 60.0, "vocoder_mel_l1": 1.5},
               {"stage": "vocoder", "step": 20, "wall_s": 120.0, "vocoder_mel_l1": 1.2}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [r["step"] for r in evaluate.stage_records(run)] == [10, 20]
    shipped = loading.resolve_model("tiny").path
    assert evaluate.stage_records(shipped) == json.loads((shipped / "training.json").read_text())["vocoder_history"]
    png = tmp_path / "curves.png"
    assert cli.main(["train", "--out", str(run), "--compare", str(shipped), "--curves", str(png)]) == 0
    assert png.stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="neither a training run"):
        evaluate.stage_records(tmp_path / "nothing")
