"""``harness train``: the bundled model's recipe (:mod:`harness.builders.bundled.train`), resumable."""
from __future__ import annotations

from pathlib import Path

from harness.surfaces.cli.common import command


def add_parser(sub) -> None:
    """Declare ``harness train`` and its options."""
    p = command(sub, "train", "train the bundled tiny model (resumable)", """
harness train --smoke --out /tmp/run --model-out /tmp/model   a few steps: checks the recipe
harness train                                                 the full recipe (hours on 2 cores; resumes)
harness train --init-from harness/models/tiny --out runs/gan   only the adversarial vocoder stage
harness train --stages vocoder --init-from harness/models/tiny --vocoder-minutes 60   stage 2 fitted to an hour
harness train --stages vocoder --init-from harness/models/tiny --set vocoder_width=192    a wider vocoder
harness train --write-pack .pack/corpus.npz                   the corpus as FLAC, for a machine without espeak-ng
harness train --out runs/a --compare runs/b harness/models/tiny --curves curves.png   held-out curves of runs
harness train --export-only --scaling-factor 0.4110932946205139""")
    p.add_argument("--out", default="runs/tiny", help="checkpoint/log directory")
    p.add_argument("--model-out", default=None, help="where the trained pipeline is exported (default: "
                   "OUT/model; never the installed package unless named, e.g. harness/models/tiny in a checkout)")
    p.add_argument("--config", metavar="JSON", help="TrainConfig settings from a JSON file (e.g. a run's "
                   "config.json); flags and --set override them")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any TrainConfig setting, e.g. "
                   "--set vocoder_width=192 --set vocoder_batch=32 (repeatable; JSON values)")
    p.add_argument("--stages", help="stages to train, from vae,vocoder,gan (default: all; only gan with "
                   "--init-from); the others come from --init-from")
    p.add_argument("--vae-steps", type=int, help="VAE training steps (stage 1; default 1200)")
    p.add_argument("--vocoder-steps", type=int, help="vocoder training steps (stage 2; default 14000)")
    p.add_argument("--gan-steps", type=int,
                   help="adversarial vocoder training steps (stage 3, HiFi-GAN discriminators)")
    p.add_argument("--vocoder-minutes", type=float, help="fit stage 2 to this wall-clock budget (sets its steps "
                   "from the first steps' pace)")
    p.add_argument("--gan-minutes", type=float, help="fit stage 3 to this wall-clock budget")
    p.add_argument("--init-from", metavar="MODEL_DIR", help="trained pipeline whose VAE and vocoder are taken "
                   "where --stages does not train them (alone: only stage 3 runs)")
    p.add_argument("--device", help="torch device to train on (default cpu; e.g. cuda)")
    p.add_argument("--data-pack", metavar="NPZ", help="train on this corpus pack (--write-pack) instead of "
                   "synthesising the corpus")
    p.add_argument("--write-pack", metavar="NPZ", help="write the training and held-out corpus as a FLAC pack "
                   "and exit")
    p.add_argument("--pack-gan", action="store_true", help="with --write-pack: include stage 3's corpus")
    p.add_argument("--no-export", action="store_true", help="train and checkpoint only (no diffusers needed); "
                   "export later by re-running with --config OUT/config.json --init-from MODEL_DIR")
    p.add_argument("--portable", metavar="DIR", help="copy --out's checkpoints without optimiser state (plus "
                   "config.json, log.jsonl) to DIR and exit")
    p.add_argument("--curves", metavar="PNG", help="draw the held-out vocoder curves (per step, per minute) of "
                   "--out and the --compare runs or model directories, and exit")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="with --curves: more runs (--out of `harness "
                   "train`) or trained model directories (their training.json)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=int, help="seed of data synthesis and initialisation (default 0)")
    p.add_argument("--smoke", action="store_true", help="a few steps on tiny data (tests the recipe)")
    p.add_argument("--export-only", action="store_true", help="rebuild the pipeline around the trained VAE and "
                   "vocoder in --model-out (after changing the seeded-random parts)")
    p.add_argument("--scaling-factor", type=float, default=None, help="with --export-only: re-parametrise the VAE "
                   "latents to this scaling factor (exact; e.g. 0.4110932946205139, cvssp/audioldm2's)")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness train``: the bundled model's recipe (:mod:`harness.builders.bundled.train`), resumable."""
    import dataclasses
    import json

    from harness.builders.bundled import train
    from harness.builders.bundled.config import TrainConfig
    from harness.builders.bundled.data import prepare_data, prepare_gan_data, write_data_pack
    from harness.builders.bundled.export import portable_checkpoints, reexport

    if args.model_out is None:
        if args.export_only:
            raise SystemExit("harness train --export-only: name the pipeline to rebuild with --model-out DIR")
        args.model_out = str(Path(args.out) / "model")
    if args.export_only:
        seed = TrainConfig.seed if args.seed is None else args.seed
        print(f"re-exported {reexport(args.model_out, seed, args.scaling_factor)}")
        return 0
    if args.curves:
        from harness.builders.bundled import evaluate

        runs = {d: evaluate.stage_records(d) for d in [args.out, *(args.compare or [])]}
        print(f"wrote {evaluate.plot_runs(runs, args.curves)}")
        return 0
    if args.portable:
        for path in portable_checkpoints(args.out, args.portable):
            print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    given = json.loads(Path(args.config).read_text()) if args.config else {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"harness train: --set {item}: no such setting; TrainConfig has {', '.join(fields)}")
        default = fields[key].default
        given[key] = json.loads(value) if not isinstance(default, str) else value
    # the options named like a TrainConfig field (--vocoder-steps, --device, ...) set it when given
    given.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    cfg = TrainConfig(**given)
    if args.smoke:
        cfg = TrainConfig(n_speech=2, n_synth=4, n_heldout_speech=1, n_heldout_synth=1, vae_steps=4,
                          vocoder_steps=4, gan_steps=2, n_gan_clips=4, eval_every=2, vae_batch=2,
                          vocoder_batch=2, gan_batch=1, warmup=1, init_from=args.init_from or "")
    if args.write_pack:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        data = prepare_data(dataclasses.replace(cfg, data_pack=""), out)
        if args.pack_gan:
            data["gan"] = prepare_gan_data(cfg, out)
        path = write_data_pack(data, args.write_pack)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): sets {', '.join(data)}")
        return 0
    result = train.main(args.out, args.model_out, cfg, export_model=not args.no_export)
    where = f"exported {args.model_out}" if not args.no_export else f"trained (not exported) in {args.out}"
    print(f"{where}: scaling_factor {result['scaling_factor']}, final {result['final']}")
    return 0
