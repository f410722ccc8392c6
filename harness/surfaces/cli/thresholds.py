"""``harness thresholds``: calibrate, show or validate the thresholds."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.surfaces.cli.common import GOLDEN_DIR_HELP, add_model_args, add_scope, command


def add_parser(sub) -> None:
    """Declare ``harness thresholds`` and its options."""
    p = command(sub, "thresholds", "show, --calibrate or --validate the quality thresholds of a golden set", """
harness thresholds                                  the limits of golden/tiny (or the shipped copy)
harness thresholds --calibrate --model tiny         re-measure and rewrite golden/tiny/thresholds.toml
harness thresholds --validate /usr/share/sounds     false-alarm and miss rates, also on your files""")
    add_model_args(p)
    p.add_argument("--golden-dir", default=None, help=GOLDEN_DIR_HELP)
    p.add_argument("--calibrate", action="store_true", help="measure the current chain and rewrite thresholds.toml")
    add_scope(p, "all", "all")
    p.add_argument("--validate", action="store_true", help="false-alarm and miss rates of the verdicts on the "
                   "calibration clip set and the disjoint validation and test sets (and on FILES, if given)")
    p.add_argument("files", nargs="*", help="with --validate: your own audio files or directories, judged too")
    p.add_argument("--json", action="store_true", help="with --validate: print the rates as JSON")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness thresholds``: calibrate, show or validate the thresholds."""
    from harness import atomic
    from harness.errors import CalibrationError
    from harness.judging import calibration, golden, thresholds
    from harness.model.chain import Chain

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
    except CalibrationError as exc:
        print(f"harness: calibration problems:\n{exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _validate(args, golden_dir: str) -> int:
    """False-alarm and miss rates of the verdicts on the judging sets (and FILES), printed as a table."""
    from harness.judging import report, verdicts
    from harness.signal import synth
    from harness.model.chain import Chain

    chain = Chain.load(args.model, args.device, args.dtype)
    sets = {split: dict(synth.judging_set(split)) for split in synth.JUDGING_SEEDS}
    results = {}
    for name, clips in sets.items():
        records, _ = report.matrix_records(chain, golden_dir=golden_dir, clips=clips, progress=False,
                                           judged_only=True)
        results[name] = verdicts.Judge.rates(records)
    if args.files:
        records, errors = report.matrix_records(chain, args.files, golden_dir=golden_dir, progress=False,
                                                judged_only=True)
        results["your files"] = verdicts.Judge.rates(records)
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
