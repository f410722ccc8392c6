"""``harness matrix``: every combination on user files (or a dataset with ``--out``), judged."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.surfaces.cli.common import GOLDEN_DIR_HELP, add_components, add_max_seconds, add_model_args, command


def add_parser(sub) -> None:
    """Declare ``harness matrix`` and its options."""
    p = command(sub, "matrix", "evaluate every front-end x VAE x vocoder combination on your files", """
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
    add_model_args(p)
    p.add_argument("files", nargs="*", help="audio files or directories (default: the shipped reference clips)")
    p.add_argument("--json", action="store_true", help="print one JSON record per file x combination")
    p.add_argument("--verbose", "-v", action="store_true", help="after the summary, the full table (a row per "
                   "file x combination, key metric of each stage)")
    p.add_argument("--golden-dir", default=None, help=GOLDEN_DIR_HELP)
    add_components(p, restrict=True)
    p.add_argument("--out", default=None, metavar="DIR", help="dataset mode: stream the files in batches of one "
                   "length, write DIR/records.jsonl (one record per file x combination, broken combinations measured "
                   "up to their culprit stage), DIR/errors.jsonl and DIR/summary.json; shards across the processes "
                   "of a torchrun launch; the same command after a kill finishes what is left (default: off, "
                   "records in memory)")
    p.add_argument("--batch-size", type=int, default=16, help="dataset mode: files per batch (default: 16)")
    add_max_seconds(p)
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness matrix``: every combination on user files (or a dataset with ``--out``), judged."""
    from harness.judging import report, verdicts
    from harness.model.chain import Chain

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
    if any(r["status"] in verdicts.FAILING for r in records):
        return 1
    return 2 if errors else 0


def _matrix_dataset(args) -> int:
    """``harness matrix --out DIR``: sharded over a torchrun launch, resumable (:mod:`harness.judging.dataset`)."""
    from harness.judging import dataset, golden, matrix, report
    from harness.model.chain import Chain

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
