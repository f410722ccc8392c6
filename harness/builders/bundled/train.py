"""Training recipe of the bundled ``tiny`` model: VAE first, then the HiFi-GAN vocoder.

Run ``harness train --out runs/tiny`` (resumable: re-running picks up from the last checkpoint
in ``--out``). Data is made by code at start (:mod:`harness.signal.synth`, cached in ``data.npz``),
seeds are fixed and each step's batch is drawn from a generator seeded by ``(seed, step)``, so a
resumed run sees the same batches as an uninterrupted one.

On a machine without espeak-ng (e.g. a GPU machine), the corpus travels as a FLAC pack
(:func:`write_data_pack`, ``TrainConfig.data_pack``); a stage can be fitted to a wall-clock budget
(``minutes``: the step count is set from the first steps' pace), and :func:`portable_checkpoints`
strips a run to what an export needs (docs/bundled-model.md, "Training the vocoder on a GPU").

Losses: VAE = L1 on the log-mel + 1e-6 KL (AudioLDM's weighting of the KL term);
vocoder = log-mel L1 + multi-resolution STFT (spectral convergence + log-magnitude L1).
Both use AdamW with a warm-up and cosine decay.

The recipe by concern: :mod:`.config` (settings, stages), :mod:`.data` (the corpus), :mod:`.loops` (losses and
training loops), :mod:`.export` (the pipeline it writes); this module runs them.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from harness.signal import synth
from harness.signal.audio import SAMPLE_RATE
from harness.builders.bundled import tiny
from harness.builders.bundled.config import TrainConfig
from harness.builders.bundled.data import prepare_data, prepare_gan_data
from harness.builders.bundled.export import export, load_trained
from harness.builders.bundled.loops import scaling_factor, train_vae, train_vocoder, train_vocoder_gan


def main(out: str, model_out: str, cfg: TrainConfig | None = None, export_model: bool = True) -> dict:
    """Train the stages of ``cfg.stage_list()`` (resuming where ``out`` has checkpoints) and export the pipeline.

    1. VAE; 2. vocoder on log-mel L1 + MR-STFT; 3. vocoder adversarially (HiFi-GAN). A stage that is
    not trained takes its component (and its history) from ``cfg.init_from``. ``export_model=False``
    (a machine without diffusers) trains and writes checkpoints only; re-running with the run's
    ``config.json`` and an ``init_from`` exports it. Returns the ``training.json`` content.
    """
    cfg = cfg or TrainConfig()
    stages = cfg.stage_list()
    needs = [x for x in ("vae", "vocoder") if x not in stages and (export_model or x == "vocoder")]
    if needs and not cfg.init_from:
        raise ValueError(f"stages {stages} do not train the {' and the '.join(needs)}: give init_from "
                         "(a trained pipeline directory, e.g. harness/models/tiny) to take them from")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"the training config asks for device {cfg.device!r}, which torch does not see here; "
                           "pass --device cpu (e.g. to export a run trained on a GPU)")
    torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # every step has the same crop shapes
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    (outp / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    logf = open(outp / "log.jsonl", "a")

    def log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    before = json.loads((Path(cfg.init_from) / "training.json").read_text()) if cfg.init_from else {}
    walls = dict(before.get("wall_time_s", {}))
    t0 = time.time()
    data = prepare_data(cfg, outp)
    if "gan" in stages and "gan" not in data:
        if cfg.data_pack:  # synthesising it here could silently lack speech (a machine without espeak-ng)
            log({"note": f"{cfg.data_pack} has no stage-3 corpus: stage 3 trains on its stage-2 set"})
            data["gan"] = data["train"]
        else:
            data["gan"] = prepare_gan_data(cfg, outp)
    walls["data"] = round(time.time() - t0, 1)
    # 1. the VAE (trained, then an interim export so the harness has it while the vocoder trains; or
    #    taken from init_from, already on its exported latent scale)
    vae, scale = None, before.get("scaling_factor")
    vae_hist = before.get("vae_history", [])
    if "vae" in stages:
        vae, vae_hist, walls["vae"] = train_vae(cfg, outp, data, log)
        scale = scaling_factor(vae, data["train"], cfg.seed)
        log({"scaling_factor": scale})
        if export_model:
            export(vae, tiny.build_vocoder(cfg.seed, cfg.vocoder_width, cfg.vocoder_arch), scale, cfg, Path(model_out),
                   {"status": "interim: vocoder untrained"})
    elif export_model:
        vae = load_trained(cfg.init_from, "vae")
        scale = float(vae.config.scaling_factor)
    # 2. the vocoder without discriminators
    if "vocoder" in stages:
        vocoder, voc_hist, walls["vocoder"] = train_vocoder(cfg, outp, data, log)
        gan_hist = []
    else:
        vocoder, voc_hist = load_trained(cfg.init_from, "vocoder"), before.get("vocoder_history", [])
        gan_hist = before.get("vocoder_gan_history", [])
    # 3. the vocoder with discriminators
    if "gan" in stages:
        vocoder, gan_hist, walls["vocoder_gan"] = train_vocoder_gan(cfg, outp, data, vocoder, log)
    (outp / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")  # with fitted step counts
    training = {
        "recipe": "harness train (harness/train.py): 1. VAE, 2. vocoder (log-mel L1 + MR-STFT), "
                  "3. vocoder adversarial (HiFi-GAN MPD + MSD, feature matching, 45 x log-mel L1)",
        "config": asdict(cfg),
        "stages_trained": stages,
        "data": {
            "train": f"{cfg.n_speech} espeak-ng utterances ({len(synth.TRAIN_LANGS)} languages x "
                     f"{len(synth.TRAIN_VARIANTS)} variants, random rate/pitch) + {cfg.n_synth} synthesised "
                     "music/effect clips (tones, chords, melodies, chirps, noise bursts, percussion), 1.6-4 s",
            "gan": f"{cfg.n_gan_clips} clips of harness.signal.synth.vocoder_corpus (seed {cfg.seed + 7}): speech in "
                   f"{len(synth.TRAIN_LANGS) + len(synth.EXTRA_TRAIN_LANGS)} languages, speech over noise/music "
                   "beds, music/effects, coloured noise, transient runs; silent gaps and level steps; 1.2-4 s"
                   if data.get("gan") is not data["train"] else "the stage-2 training set (the data pack has "
                   "no stage-3 corpus)",
            "heldout": f"{cfg.n_heldout_speech} utterances in other languages/voices "
                       f"({', '.join(synth.HELDOUT_LANGS)}; {', '.join(synth.HELDOUT_VARIANTS)}) + "
                       f"{cfg.n_heldout_synth} synth clips, seed {cfg.heldout_seed}",
            "train_seconds": round(len(data["train"]["wave"]) / SAMPLE_RATE, 1),
            **({"gan_seconds": round(len(data["gan"]["wave"]) / SAMPLE_RATE, 1)} if "gan" in data else {}),
            **({"pack": f"{cfg.data_pack} (16-bit FLAC of the corpus above; mels recomputed)"} if cfg.data_pack else {}),
        },
        "scaling_factor": scale,
        "wall_time_s": walls,
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {cfg.threads} threads, device {cfg.device}",
        "vae_history": vae_hist,
        "vocoder_history": voc_hist,
        "vocoder_gan_history": gan_hist,
        "final": {**(vae_hist[-1] if vae_hist else {}), **((gan_hist or voc_hist)[-1] if gan_hist or voc_hist else {})},
    }
    if cfg.init_from:
        training["taken_from"] = {"path": cfg.init_from, "parts": [x for x in ("vae", "vocoder") if x not in stages],
                                  "recipe": before.get("recipe"), "config": before.get("config"),
                                  "note": "weights taken as exported (vocoder weight norm re-applied; "
                                          "optimiser state not carried)"}
        if "latent_rescale" in before:
            training["latent_rescale"] = before["latent_rescale"]
    if export_model:
        export(vae, vocoder.cpu(), scale, cfg, Path(model_out), training)
    return training
