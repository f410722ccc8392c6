"""``harness matrix``: every combination on user files (or a dataset with ``--out``), judged."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.surfaces.cli.common import (
    GOLDEN_DIR_HELP, Inputs, add_components, add_max_seconds, add_model_args, command, report_nothing_evaluated,
)
from harness.vocabulary import AUDIO_SUFFIXES


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
                 "clip; 2 nothing evaluated (every path given missing, an empty directory, without an audio file, or "
                 "unreadable: each is named), or some files unusable.")
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
    from harness.surfaces.cli.common import use_threads

    if args.out:
        return _matrix_dataset(args)
    inputs = Inputs(args.files, AUDIO_SUFFIXES) if args.files else None
    if inputs is not None and not inputs.files:  # before the model loads: a wrong data path fails in a second
        if args.json:
            print("[]")
        else:
            print("verdict: NOTHING EVALUATED (no usable file)")
        return report_nothing_evaluated(inputs.skipped, "evaluated")
    use_threads("harness matrix", args.device, args.verbose)
    chain = Chain.load(args.model, args.device, args.dtype)
    records, errors = report.matrix_records(chain, inputs.files if inputs else [], golden_dir=args.golden_dir,
                                            frontends_=args.frontend, vaes=args.vae, vocoders=args.vocoder,
                                            progress=not args.json, max_seconds=args.max_seconds)
    # every path given and not evaluated is named: missing paths and empty directories first, then each unreadable
    # file, then a directory all of whose files were unreadable
    unread = errors  # one line per file that could not be read: what the summary counts as unusable files
    errors = (inputs.skipped if inputs else []) + errors + (inputs.unused_directories(errors) if inputs else [])
    for e in errors:
        print(f"harness: error: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=1))
    else:
        print(report.matrix_summary(records, unread))
        if args.verbose:
            print("\n" + report.matrix_table(records))
    if not records:  # nothing evaluated is never a pass
        return report_nothing_evaluated([], "evaluated")
    if any(r.status in verdicts.FAILING for r in records):
        return 1
    return 2 if errors else 0


def _matrix_dataset(args) -> int:
    """``harness matrix --out DIR``: sharded over a torchrun launch, resumable (:mod:`harness.judging.dataset`)."""
    from harness.judging import dataset, matrix, report
    from harness.model.chain import Chain

    shard = dataset.shard_from_env()
    device = dataset.init_distributed(shard, args.device)
    chain = Chain.load(args.model, device, args.dtype)
    inputs = Inputs(args.files or report.default_files(), AUDIO_SUFFIXES)
    for line in inputs.skipped:
        print(f"harness: error: {line}", file=sys.stderr)
    if not inputs.files:
        return report_nothing_evaluated([], "evaluated")
    files = inputs.files
    summary = dataset.evaluate(chain, files, args.out, args.golden_dir,
                               matrix.combinations(args.frontend, args.vae, args.vocoder), args.batch_size, shard,
                               progress=not args.json, max_seconds=args.max_seconds)
    if summary is None:  # not rank 0: rank 0 merges and reports
        return 0
    print(json.dumps(summary, indent=1) if args.json else dataset.summary_text(summary, Path(args.out)))
    if summary["failing_records"]:
        return 1
    return 2 if summary["unusable_files"] or inputs.skipped else 0
