"""``harness diagnose``: which stage loses the quality, per file; text and HTML report."""
from __future__ import annotations

import json
import sys

from harness.surfaces.cli.common import (
    GOLDEN_DIR_HELP, Inputs, add_components, add_model_args, command, report_nothing_evaluated, use_threads,
)
from harness.vocabulary import AUDIO_SUFFIXES


def add_parser(sub) -> None:
    """Declare ``harness diagnose`` and its options."""
    p = command(sub, "diagnose", "run the chain stage by stage on files and say which stage loses quality", """
harness diagnose my.wav --out report/                tables, and report/report.html (mels, differences, players)
harness diagnose my.wav --frontend seed-librosa-db   try a front-end/VAE/vocoder variant
harness diagnose my_mel.npy --json                   statistics check of a mel you made yourself""",
                 description="Run the chain stage by stage on your files (or .npy mels) and name the stage that "
                 "loses the most, with the likely cause. Exit status: 0 nothing you can fix; 1 a usage mistake is "
                 "blamed (front-end, VAE or vocoder call), with --strict also a weak model stage; 2 an input could "
                 "not be used (every path given and not diagnosed is named with its reason; nothing diagnosed is "
                 "always 2).")
    add_model_args(p)
    p.add_argument("files", nargs="+", help="audio files, or log-mel .npy files [frames, 64], or directories of them")
    add_components(p)
    p.add_argument("--seconds", type=float, default=10.24, help="analyse at most this many seconds of each file")
    p.add_argument("--out", default="diagnose-report", help="directory of report.html")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    p.add_argument("--golden-dir", default=None, help=GOLDEN_DIR_HELP + "; its relative margins judge a variant "
                   "against the correct call")
    p.add_argument("--verbose", "-v", action="store_true", help="also say how many torch threads were chosen")
    p.add_argument("--strict", action="store_true", help="also exit 1 when the model itself, called correctly, "
                   "is blamed (default: exit 1 only for a usage mistake: front-end, VAE or vocoder call)")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness diagnose``: which stage loses the quality, per file; text and HTML report."""
    from harness.errors import AudioError
    from harness.signal import audio, frontend
    from harness.surfaces.diagnose.findings import load_mel
    from harness.surfaces.diagnose.stages import run_files
    from harness.model import variants
    from harness.surfaces.diagnose import report as diagnose_report
    from harness.model.chain import Chain

    # unknown names and unusable inputs fail before the model loads (seconds)
    for get, name in ((frontend.get_frontend, args.frontend), (variants.get_vae, args.vae),
                      (variants.get_vocoder, args.vocoder)):
        get(name)
    inputs = Inputs(args.files, AUDIO_SUFFIXES + (".npy",))
    unusable = {}
    for path in inputs.files:
        try:
            load_mel(path) if str(path).lower().endswith(".npy") else \
                audio.load_audio(path, max_seconds=max(args.seconds, 0.1), truncate=True)
        except ValueError as exc:  # AudioError, or a mel of the wrong shape
            unusable[path] = str(exc) if isinstance(exc, AudioError) else f"{path}: {exc}"
    if len(unusable) == len(inputs.files):  # before the model loads: a wrong data path fails in a second
        return report_nothing_evaluated(inputs.skipped + list(unusable.values())
                                        + inputs.unused_directories(unusable), "diagnosed")
    files = inputs.files  # the unusable ones too: each gets its section in the report, with its error
    use_threads("harness diagnose", args.device, args.verbose)
    chain = Chain.load(args.model, args.device, args.dtype)
    try:  # the relative margins judge usage mistakes; without them, the reference's own margin does
        from harness.judging import report, thresholds

        margins = thresholds.load(report.find_thresholds(chain.source, args.golden_dir, args.dtype))
    except FileNotFoundError:
        margins = {}
    diags = run_files(chain, files, progress=not args.json and len(files) > 1,
                      frontend_name=args.frontend, vae=args.vae, vocoder=args.vocoder, seconds=args.seconds,
                      thresholds_data=margins)
    path = diagnose_report.write_html(diags, args.out, model=args.model)
    # every path given and not diagnosed is named: missing paths and empty directories, each unusable file, a
    # directory none of whose files could be used
    bad = [d.report["error"] for d in diags if "error" in d.report]
    errors = inputs.skipped + bad + inputs.unused_directories(bad)
    if args.json:
        print(json.dumps([d.report for d in diags], indent=1))
    else:
        print("\n\n".join(diagnose_report.format_table(d.report) for d in diags if "error" not in d.report))
    print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    for e in errors:
        print(f"harness: error: {e}", file=sys.stderr)
    if errors:
        return 2
    blamed = {"usage", "model"} if args.strict else {"usage"}
    return 1 if any(d.report["verdict"].get("kind") in blamed for d in diags) else 0
