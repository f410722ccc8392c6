"""``harness`` command line: thin wrappers around the library, one sub-command each.

Every user-facing failure (bad audio, unknown name, weights not available) prints one line
``harness: error: <file>: <reason> (<hint>)`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import machine


#: harness.calibration.SCOPES, spelled out so that `harness --help` imports no torch (a test keeps them equal)
SCOPES = ("all", "chain", "absolute", "reference", "golden")
SCOPE_HELP = ("what calibration measures: golden = the golden stages only (seconds); reference = also the correct "
              "combinations' limits on the golden set, which judge your own variants (16 combinations; a few "
              "minutes at real size on 2 cores); absolute = also the 110 known mistakes, asserted detected, what "
              "the whole matrix judges (minutes; about 26 min at real size on a slow 2-core machine); chain = also "
              "the whole chains of the known mistakes heard through HiFi-GAN, asserted where clearly separated "
              "(about a quarter more; ~70 s a chain at real size); all = also the relative margins that judge audio "
              "without a stored baseline, `harness matrix` on your files (the longest part: 69 more clips)")


def _add_max_seconds(p: argparse.ArgumentParser) -> None:
    from .audio import MAX_SECONDS

    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="refuse longer files from their header, "
                   f"unread (memory grows with the length; default: {MAX_SECONDS:g} s)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tiny", help=MODEL_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="model dtype; the VAE stays fp32 under fp16 (force_upcast)")


def cmd_list(args) -> int:
    """``harness list``: the registered front-ends, VAE and vocoder variants."""
    from . import frontend, variants

    print("front-ends:")
    for f in frontend.list_frontends():
        print(f"  {f.name:20s} {'correct' if f.correct else 'MISTAKE':8s} {f.description}")
    print("VAE variants:")
    for v in variants.list_vaes():
        print(f"  {v.name:20s} {'correct' if v.correct else 'MISTAKE':8s} {v.description}")
    print("vocoder variants:")
    for v in variants.list_vocoders():
        print(f"  {v.name:20s} {'correct' if v.correct else 'MISTAKE':8s} {v.description}")
    return 0


def cmd_mel(args) -> int:
    """``harness mel``: write a file's log-mel (a front-end's) as ``.npy``."""
    import numpy as np
    import torch

    from . import audio, frontend

    fe = frontend.get_frontend(args.frontend)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    stems = [Path(p).stem for p in args.files]
    # a.mp3 and a.ogg in one call would both be a.npy: such files keep their extension (a.mp3.npy)
    dests = {p: out / ((Path(p).stem if stems.count(Path(p).stem) == 1 else Path(p).name) + ".npy")
             for p in args.files}
    sources = {}  # destination -> the distinct files that would write it
    for p, d in dests.items():
        sources.setdefault(d, {}).setdefault(Path(p).resolve(), p)
    clash = [p for files in sources.values() if len(files) > 1 for p in files.values()]
    if clash:
        raise ValueError(f"{', '.join(clash)}: same file name in different folders, their mels would overwrite "
                         "each other in --out; run them in separate calls with different --out directories")
    for path in args.files:
        try:
            x = audio.load_audio(path, channel=args.channel, max_seconds=args.max_seconds)
            x = audio.pad_or_crop(x.astype(np.float64), args.frames)
            # float64 arithmetic: the written mel is exact to ~1e-9 nats, not to float32 FFT round-off
            mel = fe(torch.from_numpy(x)[None])[0, 0].numpy().astype(np.float32)
        except (audio.AudioError, ValueError) as exc:
            print(f"harness: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        dest = dests[path]
        np.save(dest, mel)
        print(f"{dest}  [{mel.shape[0]} frames, 64 mels]  min {mel.min():.2f}  max {mel.max():.2f}  "
              f"mean {mel.mean():.2f} nats")
    return 2 if failed else 0


def cmd_reconstruct(args) -> int:
    """``harness reconstruct``: a file through one combination, written as a WAV."""
    import torch

    from . import audio
    from .chain import Chain

    x = audio.load_audio(args.file, channel=args.channel, max_seconds=args.max_seconds)
    n = len(x)
    chain = Chain.load(args.model, args.device, args.dtype)
    wave = torch.from_numpy(audio.pad_or_crop(x))[None]
    out = chain.run(wave, args.frontend, args.vae, args.vocoder, seed=args.seed)
    y = out.wave_out[0, :n].cpu().numpy()
    audio.write_audio(args.out, y)
    print(f"wrote {args.out}: {n} samples at 16 kHz ({args.frontend}-{args.vae}-{args.vocoder}, model {args.model})")
    return 0


def cmd_train(args) -> int:
    """``harness train``: the bundled model's recipe (:mod:`harness.bundled.train`), resumable."""
    import dataclasses
    import json

    from .bundled import train

    if args.model_out is None:
        if args.export_only:
            raise SystemExit("harness train --export-only: name the pipeline to rebuild with --model-out DIR")
        args.model_out = str(Path(args.out) / "model")
    if args.export_only:
        seed = train.TrainConfig.seed if args.seed is None else args.seed
        print(f"re-exported {train.reexport(args.model_out, seed, args.scaling_factor)}")
        return 0
    if args.curves:
        from .bundled import evaluate

        runs = {d: evaluate.stage_records(d) for d in [args.out, *(args.compare or [])]}
        print(f"wrote {evaluate.plot_runs(runs, args.curves)}")
        return 0
    if args.portable:
        for path in train.portable_checkpoints(args.out, args.portable):
            print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    fields = {f.name: f for f in dataclasses.fields(train.TrainConfig)}
    given = json.loads(Path(args.config).read_text()) if args.config else {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"harness train: --set {item}: no such setting; TrainConfig has {', '.join(fields)}")
        default = fields[key].default
        given[key] = json.loads(value) if not isinstance(default, str) else value
    # the options named like a TrainConfig field (--vocoder-steps, --device, ...) set it when given
    given.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    cfg = train.TrainConfig(**given)
    if args.smoke:
        cfg = train.TrainConfig(n_speech=2, n_synth=4, n_heldout_speech=1, n_heldout_synth=1, vae_steps=4,
                                vocoder_steps=4, gan_steps=2, n_gan_clips=4, eval_every=2, vae_batch=2,
                                vocoder_batch=2, gan_batch=1, warmup=1, init_from=args.init_from or "")
    if args.write_pack:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        data = train.prepare_data(dataclasses.replace(cfg, data_pack=""), out)
        if args.pack_gan:
            data["gan"] = train.prepare_gan_data(cfg, out)
        path = train.write_data_pack(data, args.write_pack)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): sets {', '.join(data)}")
        return 0
    result = train.main(args.out, args.model_out, cfg, export_model=not args.no_export)
    where = f"exported {args.model_out}" if not args.no_export else f"trained (not exported) in {args.out}"
    print(f"{where}: scaling_factor {result['scaling_factor']}, final {result['final']}")
    return 0


def cmd_golden(args) -> int:
    """``harness golden``: a model's goldens (the shipped copy of a bundled model, else its full pipeline's),
    calibrated, written whole or not at all."""
    from . import calibration, golden, loading, thresholds
    from .chain import Chain

    out = Path(golden.locate(args.model, args.out, writing=True))
    if args.scope is None:  # a bundled model is small enough for the whole matrix; a real one calibrates what
        # a project's own variants are judged by, and the known mistakes on request (--scope absolute)
        args.scope = "absolute" if args.model in loading.BUNDLED else "reference"

    def calibrate(stage: Path) -> None:  # on the new set, before it replaces the old one
        calibration.calibrate(Chain.load(args.model, args.device, args.dtype), stage, scope=args.scope)

    finish = None if args.no_calibrate else calibrate
    shipped = (args.model in loading.BUNDLED and not args.regenerate and args.seconds is None
               and args.steps == golden.STEPS and args.dtype == "fp32")
    try:
        if args.clips:
            if not (out / "manifest.json").exists():
                if shipped:
                    golden.copy_bundled(args.model, out)
                else:
                    golden.generate(args.model, out, args.device, args.dtype, seconds=args.seconds, steps=args.steps)
            names = golden.add_clips(out, args.clips, finish=finish)
            print(f"added {len(names)} clip(s) to {out}/clips: {', '.join(names)}")
        elif shipped:
            golden.copy_bundled(args.model, out)
            print(f"copied the goldens and thresholds shipped with {args.model!r} (checked against their manifest); "
                  "--regenerate recomputes them with the full pipeline")
            finish = None  # the shipped thresholds come with them
        else:
            golden.generate(args.model, out, args.device, args.dtype, seconds=args.seconds, steps=args.steps,
                            finish=finish)
    except thresholds.CalibrationError as exc:
        print(f"harness: calibration problems (the previous goldens in {out} are kept):\n{exc}", file=sys.stderr)
        return 1
    manifest = golden.check(out)
    print(f"wrote {out}: {len(manifest['cases'])} pipeline cases, {len(manifest['clips'])} reference clips, "
          f"{len(manifest['files'])} files hashed in manifest.json"
          + (f", thresholds calibrated ({args.scope})" if finish else ""))
    return 0


def cmd_build_real_size(args) -> int:
    """``harness build-real-size``: a real-size pipeline with seeded random weights."""
    import time

    from . import realsize

    start = time.perf_counter()
    out = realsize.build(args.out, args.variant, args.seed, ("vae", "vocoder") if args.chain_only else ("all",))
    info = json.loads((out / "training.json").read_text())
    total = info.get("parameters_total")
    print(f"wrote {out} ({args.variant}, random weights, seed {args.seed}"
          + (f", {total / 1e9:.2f} B parameters" if total else ", VAE + vocoder only")
          + f") in {time.perf_counter() - start:.0f} s; vocoder output {info['vocoder_rms_dbfs_after']} dBFS rms, "
          f"VAE scaling factor {info['vae_scaling_factor']:.4f}")
    if not args.chain_only:
        print(f"next: harness golden --model {out} --out golden/{out.name}")
    return 0


def cmd_thresholds(args) -> int:
    """``harness thresholds``: calibrate, show or validate the thresholds."""
    from . import atomic, calibration, golden, thresholds
    from .chain import Chain

    golden_dir = golden.locate(args.model, args.golden_dir, writing=args.calibrate)
    if args.validate:
        return _validate(args, golden_dir)
    if not args.calibrate:
        data = thresholds.load(Path(golden_dir) / thresholds.file_name(args.dtype))
        print(thresholds.summary_table(data))
        return 0
    chain = Chain.load(args.model, args.device, args.dtype)
    try:
        with atomic.locked(golden_dir):  # one calibration of a directory at a time; the file is replaced atomically
            path = calibration.calibrate(chain, golden_dir, scope=args.scope)
    except thresholds.CalibrationError as exc:
        print(f"harness: calibration problems:\n{exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _validate(args, golden_dir: str) -> int:
    """False-alarm and miss rates of the verdicts on the judging sets (and FILES), printed as a table."""
    from . import calibration, report, synth
    from .chain import Chain

    chain = Chain.load(args.model, args.device, args.dtype)
    sets = {split: dict(synth.judging_set(split)) for split in synth.JUDGING_SEEDS}
    results = {}
    for name, clips in sets.items():
        records, _ = report.matrix_records(chain, golden_dir=golden_dir, clips=clips, progress=False,
                                           judged_only=True)
        results[name] = calibration.verdict_rates(records)
    if args.files:
        records, errors = report.matrix_records(chain, args.files, golden_dir=golden_dir, progress=False,
                                                judged_only=True)
        results["your files"] = calibration.verdict_rates(records)
        for e in errors:
            print(f"harness: error: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"{'set':12s} {'records':>8s} {'false alarms':>16s} {'misses':>14s}")
        for name, r in results.items():
            print(f"{name:12s} {r['records']:8d} {r['false_alarms']:5d} ({100 * r['false_alarm_rate']:5.2f} %) "
                  f"{r['misses']:4d} ({100 * r['miss_rate']:5.2f} %)")
            for w in r["wrong"][:20]:
                print(f"    {Path(w['file']).name}: {w['combination']} at {', '.join(w['stages'])}")
    return 1 if any(r["false_alarms"] or r["misses"] for r in results.values()) else 0


def cmd_matrix(args) -> int:
    """``harness matrix``: every combination on user files (or a dataset with ``--out``), judged."""
    from . import report
    from .chain import Chain

    if args.out:
        return _matrix_dataset(args)
    chain = Chain.load(args.model, args.device, args.dtype)
    records, errors = report.matrix_records(chain, args.files, golden_dir=args.golden_dir,
                                            frontends_=args.frontend, vaes=args.vae, vocoders=args.vocoder,
                                            progress=not args.json, max_seconds=args.max_seconds)
    for e in errors:
        print(f"harness: error: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps(records, indent=1))
    else:
        print(report.matrix_summary(records, errors))
        if args.verbose:
            print("\n" + report.matrix_table(records))
    if any(r["status"] in report.FAILING for r in records):
        return 1
    return 2 if errors else 0


def _matrix_dataset(args) -> int:
    """``harness matrix --out DIR``: sharded over a torchrun launch, resumable (:mod:`harness.dataset`)."""
    from . import dataset, golden, matrix, report
    from .chain import Chain

    shard = dataset.shard_from_env()
    device = dataset.init_distributed(shard, args.device)
    chain = Chain.load(args.model, device, args.dtype)
    files = [str(f) for f in golden.audio_files(args.files or report.default_files())]
    if not files:
        raise ValueError(f"no audio files in {' '.join(args.files)} (looked for {', '.join(golden.AUDIO_SUFFIXES)})")
    summary = dataset.evaluate(chain, files, args.out, args.golden_dir,
                               matrix.combinations(args.frontend, args.vae, args.vocoder), args.batch_size, shard,
                               progress=not args.json, max_seconds=args.max_seconds)
    if summary is None:  # not rank 0: rank 0 merges and reports
        return 0
    print(json.dumps(summary, indent=1) if args.json else dataset.summary_text(summary, Path(args.out)))
    if summary["failing_records"]:
        return 1
    return 2 if summary["unusable_files"] else 0


def cmd_evaluate(args) -> int:
    """``harness evaluate``: held-out figures of a model (:mod:`harness.bundled.evaluate`)."""
    from .bundled import evaluate
    from .chain import Chain

    chain = Chain.load(args.model, args.device, args.dtype)
    if args.plot:
        path = chain.source.path / "training.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no training.json to draw curves from (only a model trained by "
                                    "`harness train` has one)")
        print(f"wrote {evaluate.plot_training(json.loads(path.read_text()), args.plot)}")
        return 0
    if args.spectrograms:
        print(f"wrote {evaluate.plot_spectrograms(chain, args.spectrograms)}")
        return 0
    results = evaluate.evaluate(chain)
    print(evaluate.format_table(results))
    if args.record:
        path = chain.source.path / "training.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data["heldout_eval"] = results
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"recorded in {path}")
    return 0


def cmd_bench(args) -> int:
    """``harness bench``: the benchmark table, a gated timed run, or the history plot."""
    from . import bench

    if args.run is not None:
        return bench.run(args.run, storage=args.storage)
    path = bench.newest_json(args.path or args.storage)
    print(bench.summarize(json.loads(path.read_text()), str(path)))
    if args.plot:
        from .bench.plot import plot_storage

        plot_storage(args.plot, str(path), args.storage)
        print(f"\nwrote {args.plot}")
    return 0


def cmd_diagnose(args) -> int:
    """``harness diagnose``: which stage loses the quality, per file; text and HTML report."""
    from . import audio, diagnose, frontend, variants
    from .diagnose import report as diagnose_report
    from .chain import Chain

    # unknown names and unusable inputs fail before the model loads (seconds)
    for get, name in ((frontend.get_frontend, args.frontend), (variants.get_vae, args.vae),
                      (variants.get_vocoder, args.vocoder)):
        get(name)
    unusable = {}
    for path in args.files:
        try:
            diagnose.load_mel(path) if str(path).lower().endswith(".npy") else \
                audio.load_audio(path, max_seconds=max(args.seconds, 0.1), truncate=True)
        except ValueError as exc:  # AudioError, or a mel of the wrong shape
            unusable[path] = str(exc) if isinstance(exc, audio.AudioError) else f"{path}: {exc}"
    if len(unusable) == len(args.files):
        for e in unusable.values():
            print(f"harness: error: {e}", file=sys.stderr)
        return 2
    chain = Chain.load(args.model, args.device, args.dtype)
    try:  # the relative margins judge usage mistakes; without them, the reference's own margin does
        from . import report, thresholds

        margins = thresholds.load(report.find_thresholds(chain.source, args.golden_dir, args.dtype))
    except FileNotFoundError:
        margins = {}
    diags = diagnose.run_files(chain, args.files, progress=not args.json and len(args.files) > 1,
                               frontend_name=args.frontend, vae=args.vae, vocoder=args.vocoder, seconds=args.seconds,
                               thresholds_data=margins)
    path = diagnose_report.write_html(diags, args.out, model=args.model)
    errors = [d.record["error"] for d in diags if "error" in d.record]
    if args.json:
        print(json.dumps([d.record for d in diags], indent=1))
    else:
        print("\n\n".join(diagnose_report.format_table(d.record) for d in diags if "error" not in d.record))
    print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    for e in errors:
        print(f"harness: error: {e}", file=sys.stderr)
    if errors:
        return 2
    blamed = {"usage", "model"} if args.strict else {"usage"}
    return 1 if any(d.record["verdict"].get("kind") in blamed for d in diags) else 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; every option's default shown unless it says its own or has none."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _command(sub, name: str, help: str, examples: str, description: str = "") -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=_HelpFormatter,
                          epilog="examples:\n" + "\n".join("  " + line for line in examples.strip().splitlines()))


MODEL_HELP = "bundled name (tiny), local diffusers directory or hub id (cvssp/audioldm2)"
GOLDEN_DIR_HELP = ("golden directory with thresholds.toml (default: golden/<model-slug> if it exists, else the "
                   "copy shipped with a bundled model)")
CHANNEL_HELP = "how a multi-channel file becomes mono: its first channel, or the mean of all"


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` command line: commands in the order a user needs them."""
    parser = argparse.ArgumentParser(
        prog="harness", formatter_class=_HelpFormatter,
        description="AudioLDM2 reconstruction-chain regression harness: which stage (front-end, VAE, vocoder) "
                    "loses quality, on your files and in CI.",
        epilog="examples:\n"
               "  harness matrix my.wav                      every combination on your file: a summary, exit 1 on "
               "a failure\n"
               "  harness diagnose my.wav --out report/      which stage loses quality, with report/report.html\n"
               "  harness mel my.wav --out mels/             the right AudioLDM2 log-mel as .npy\n"
               "  harness golden --model cvssp/audioldm2     goldens + thresholds for pytest (golden/<model-slug>)\n"
               "  python -m pytest                           the quality tests (the pytest plugin)\n"
               "run 'harness COMMAND -h' for a command's options and examples")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # 1. your own audio
    p = _command(sub, "matrix", "evaluate every front-end x VAE x vocoder combination on your files", """
harness matrix my.wav other.flac           summary: correct combinations per stage, known mistakes detected
harness matrix -v my.wav                   ... and the full table (key metric of each stage, with units)
harness matrix --json my.wav > out.json    one JSON record per file x combination
harness matrix --frontend ours --vae scaled --vocoder hifigan my.wav
harness matrix --out runs/ds data/            a dataset: records.jsonl + summary.json in runs/ds, resumable
torchrun --standalone --nproc_per_node 4 -m harness matrix --out runs/ds data/   ... over 4 processes""",
                 description="Evaluate every front-end x VAE x vocoder combination on your files (default: the "
                 "shipped clips). Exit status: 0 all correct combinations pass and every known mistake is detected "
                 "or not separable on your clips; 1 a correct combination fails or a mistake is missed on a golden "
                 "clip; 2 only unusable files.")
    _add_model_args(p)
    p.add_argument("files", nargs="*", help="audio files or directories (default: the shipped reference clips)")
    p.add_argument("--json", action="store_true", help="print one JSON record per file x combination")
    p.add_argument("--verbose", "-v", action="store_true", help="after the summary, the full table (a row per "
                   "file x combination, key metric of each stage)")
    p.add_argument("--golden-dir", default=None, help=GOLDEN_DIR_HELP)
    p.add_argument("--frontend", action="append", help="restrict to these front-ends (repeatable; default: all)")
    p.add_argument("--vae", action="append", help="restrict to these VAE variants (repeatable; default: all)")
    p.add_argument("--vocoder", action="append", help="restrict to these vocoder variants (repeatable; default: all)")
    p.add_argument("--out", default=None, metavar="DIR", help="dataset mode: stream the files in batches of one "
                   "length, write DIR/records.jsonl (one record per file x combination, broken combinations measured "
                   "up to their culprit stage), DIR/errors.jsonl and DIR/summary.json; shards across the processes "
                   "of a torchrun launch; the same command after a kill finishes what is left (default: off, "
                   "records in memory)")
    p.add_argument("--batch-size", type=int, default=16, help="dataset mode: files per batch (default: 16)")
    _add_max_seconds(p)
    p.set_defaults(fn=cmd_matrix)

    p = _command(sub, "diagnose", "run the chain stage by stage on files and say which stage loses quality", """
harness diagnose my.wav --out report/                tables, and report/report.html (mels, differences, players)
harness diagnose my.wav --frontend seed-librosa-db   try a front-end/VAE/vocoder variant
harness diagnose my_mel.npy --json                   statistics check of a mel you made yourself""",
                 description="Run the chain stage by stage on your files (or .npy mels) and name the stage that "
                 "loses the most, with the likely cause. Exit status: 0 nothing you can fix; 1 a usage mistake is "
                 "blamed (front-end, VAE or vocoder call), with --strict also a weak model stage; 2 an input could "
                 "not be used.")
    _add_model_args(p)
    p.add_argument("files", nargs="+", help="audio files, or log-mel .npy files [frames, 64]")
    p.add_argument("--frontend", default="audioldm2", help="front-end to check")
    p.add_argument("--vae", default="scaled", help="VAE variant")
    p.add_argument("--vocoder", default="hifigan", help="vocoder variant")
    p.add_argument("--seconds", type=float, default=10.24, help="analyse at most this many seconds of each file")
    p.add_argument("--out", default="diagnose-report", help="directory of report.html")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    p.add_argument("--golden-dir", default=None, help=GOLDEN_DIR_HELP + "; its relative margins judge a variant "
                   "against the correct call")
    p.add_argument("--strict", action="store_true", help="also exit 1 when the model itself, called correctly, "
                   "is blamed (default: exit 1 only for a usage mistake: front-end, VAE or vocoder call)")
    p.set_defaults(fn=cmd_diagnose)

    p = _command(sub, "mel", "write each file's log-mel as a [frames, 64] float32 .npy", """
harness mel my.wav --out mels/                     mels/my.npy, AudioLDM2's own front-end
harness mel *.wav --out mels/ --frames 1024        padded/cropped to 1024 frames (10.24 s)
harness mel a.mp3 a.ogg --out mels/                same stem: a.mp3.npy and a.ogg.npy""")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("--frontend", default="audioldm2", help="front-end (see 'harness list')")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--frames", type=int, default=None, help="pad/crop to this many frames (default: cover the "
                   "file, rounded up to a multiple of 4)")
    p.add_argument("--channel", default="first", choices=["first", "mean"], help=CHANNEL_HELP)
    _add_max_seconds(p)
    p.set_defaults(fn=cmd_mel)

    p = _command(sub, "reconstruct", "run one front-end/VAE/vocoder combination on one file", """
harness reconstruct my.wav --out rec.wav
harness reconstruct my.wav --vae unscaled --vocoder griffin-lim --out rec.wav""")
    p.add_argument("file", help="audio file")
    _add_model_args(p)
    p.add_argument("--frontend", default="audioldm2", help="front-end (see 'harness list')")
    p.add_argument("--vae", default="scaled", help="VAE variant (see 'harness list')")
    p.add_argument("--vocoder", default="hifigan", help="vocoder variant (see 'harness list')")
    p.add_argument("--channel", default="first", choices=["first", "mean"], help=CHANNEL_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the VAE's latent sampling (variants that sample)")
    p.add_argument("--out", required=True, help="output WAV (16 kHz, the input's length)")
    _add_max_seconds(p)
    p.set_defaults(fn=cmd_reconstruct)

    # 2. goldens and thresholds for the pytest plugin
    p = _command(sub, "golden", "run the full pipeline on the fixed prompts and write a golden set", """
harness golden --model tiny --out golden/tiny       the bundled model's shipped goldens, checked (seconds)
harness golden --model cvssp/audioldm2              golden/cvssp--audioldm2: cases, clips, thresholds.toml
harness golden --model ./my-finetune --device cuda  a local diffusers directory, on the GPU
harness golden --clips my_clips/ take1.wav          add your own clips to the golden set (re-calibrates)""")
    _add_model_args(p)
    p.add_argument("--out", default=None, help="golden directory (default: golden/<model-slug> here)")
    p.add_argument("--seconds", type=float, default=None, help="clip length (default: the UNet's sample size)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps")
    p.add_argument("--no-calibrate", action="store_true", help="do not re-calibrate thresholds afterwards")
    p.add_argument("--regenerate", action="store_true", help="a bundled model: recompute its goldens with the full "
                   "pipeline and calibrate (minutes) instead of copying the shipped, hash-checked set (seconds)")
    p.add_argument("--scope", default=None, choices=SCOPES,
                   help=SCOPE_HELP + " (default: absolute for a bundled model, reference for any other: what "
                   "pytest needs for your own variants)")
    p.add_argument("--clips", nargs="+", metavar="FILE_OR_DIR", help="add your own reference clips to the golden "
                   "set (generated first if missing) instead of re-running the pipeline; calibration then gives "
                   "them per-clip regression ceilings and pytest runs the matrix on them")
    p.set_defaults(fn=cmd_golden)

    p = _command(sub, "thresholds", "show, --calibrate or --validate the quality thresholds of a golden set", """
harness thresholds                                  the limits of golden/tiny (or the shipped copy)
harness thresholds --calibrate --model tiny         re-measure and rewrite golden/tiny/thresholds.toml
harness thresholds --validate /usr/share/sounds     false-alarm and miss rates, also on your files""")
    _add_model_args(p)
    p.add_argument("--golden-dir", default=None, help=GOLDEN_DIR_HELP)
    p.add_argument("--calibrate", action="store_true", help="measure the current chain and rewrite thresholds.toml")
    p.add_argument("--scope", default="all", choices=SCOPES, help=SCOPE_HELP + " (default: all)")
    p.add_argument("--validate", action="store_true", help="false-alarm and miss rates of the verdicts on the "
                   "calibration clip set and the disjoint validation and test sets (and on FILES, if given)")
    p.add_argument("files", nargs="*", help="with --validate: your own audio files or directories, judged too")
    p.add_argument("--json", action="store_true", help="with --validate: print the rates as JSON")
    p.set_defaults(fn=cmd_thresholds)

    p = _command(sub, "list", "list front-ends and VAE/vocoder variants (correct ones and known mistakes)", """
harness list""")
    p.set_defaults(fn=cmd_list)

    p = _command(sub, "build-real-size", "write a real-size pipeline of random weights (no download needed)", """
harness build-real-size /tmp/audioldm2-real                           about 1.1 B parameters, 4.3 GB
harness build-real-size /tmp/large --variant audioldm2-large
harness build-real-size /tmp/chain --chain-only                       VAE + vocoder only, for benchmarks""",
                 description="Write a complete pipeline of the real architecture (cvssp/audioldm2 or -large: every "
                 "component at its real size), seeded random weights conditioned to give audible output, in the "
                 "diffusers layout. Every command then runs on it as on a downloaded checkpoint; quality checks that "
                 "need trained weights say so.")
    p.add_argument("out", help="directory to write")
    p.add_argument("--variant", default="audioldm2", choices=["audioldm2", "audioldm2-large"], help="architecture")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--chain-only", action="store_true", help="only the VAE and the vocoder (seconds, not a minute)")
    p.set_defaults(fn=cmd_build_real_size)

    # 3. speed, and the bundled model
    p = _command(sub, "bench", "print the newest throughput benchmark run as a table (or --run the suite)", """
harness bench --run                        time tests/benchmarks, fail on a regression, print the table
harness bench --run -k tiny --run-slow     pytest arguments after --run
harness bench .benchmarks --plot bench.png   the newest saved run and its history as a plot""",
                 description="Without --run: print the table of a pytest-benchmark JSON (PATH, or the newest "
                 "under --storage). With --run: time tests/benchmarks, save the run, fail on a regression against "
                 "the last saved run of this machine (none on a first run), print the table.")
    p.add_argument("path", nargs="?", help="a pytest-benchmark JSON file or a directory (default: --storage)")
    p.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage directory")
    p.add_argument("--plot", metavar="PNG", help="also draw the run and the history of the saved runs of its host "
                   "(throughput relative to each benchmark's first run, with the regression gate) into PNG")
    p.add_argument("--run", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                   help="run the timed suite; everything after --run goes to pytest (e.g. --run -k tiny --run-slow)")
    p.set_defaults(fn=cmd_bench)

    p = _command(sub, "evaluate", "held-out figures of a model (code-made and Debian sound clips)", """
harness evaluate --model tiny
harness evaluate --model tiny --record     store them in the model's training.json
harness evaluate --plot curves.png         draw the training curves recorded in training.json
harness evaluate --spectrograms vocoder.png  where the vocoder differs from its input and from Griffin-Lim""")
    _add_model_args(p)
    p.add_argument("--record", action="store_true", help="store the results in the model's training.json")
    p.add_argument("--plot", metavar="PNG", help="draw the training curves of the model's training.json instead")
    p.add_argument("--spectrograms", metavar="PNG", help="draw input / vocoder / Griffin-Lim spectrograms of a few "
                   "held-out clips instead")
    p.set_defaults(fn=cmd_evaluate)

    p = _command(sub, "train", "train the bundled tiny model (resumable)", """
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
    p.set_defaults(fn=cmd_train)

    return parser


def main(argv=None) -> int:
    """The ``harness`` command: parse ``argv``, run the command; a :class:`~harness.errors.HarnessError` is one line on stderr and exit status 2."""
    from .errors import HarnessError
    from .entry_points import load_entry_points

    load_entry_points()
    args = build_parser().parse_args(argv)
    # this process is the harness's own: reusing freed memory spares the kernel zeroing every large
    # activation afresh (8-10 % of a real-size VAE or vocoder call; the process keeps its peak memory)
    machine.keep_freed_memory()
    try:
        return args.fn(args)
    except (HarnessError, ValueError, FileNotFoundError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
