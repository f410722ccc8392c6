"""``harness golden``: a model's goldens (the shipped copy of a bundled model, else its full pipeline's),"""
from __future__ import annotations

import sys
from pathlib import Path

from harness.surfaces.cli.common import add_model_args, add_scope, command


def add_parser(sub) -> None:
    """Declare ``harness golden`` and its options."""
    p = command(sub, "golden", "run the full pipeline on the fixed prompts and write a golden set", """
harness golden --model tiny --out golden/tiny       the bundled model's shipped goldens, checked (seconds)
harness golden --model cvssp/audioldm2              golden/cvssp--audioldm2: cases, clips, thresholds.toml
harness golden --model ./my-finetune --device cuda  a local diffusers directory, on the GPU
harness golden --clips my_clips/ take1.wav          add your own clips to the golden set (re-calibrates)""")
    add_model_args(p)
    p.add_argument("--out", default=None, help="golden directory (default: golden/<model-slug> here)")
    p.add_argument("--seconds", type=float, default=None, help="clip length (default: the UNet's sample size)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps")
    p.add_argument("--no-calibrate", action="store_true", help="do not re-calibrate thresholds afterwards")
    p.add_argument("--regenerate", action="store_true", help="a bundled model: recompute its goldens with the full "
                   "pipeline and calibrate (minutes) instead of copying the shipped, hash-checked set (seconds)")
    add_scope(p, None, "absolute for a bundled model, reference for any other: what pytest needs for your own "
              "variants")
    p.add_argument("--clips", nargs="+", metavar="FILE_OR_DIR", help="add your own reference clips to the golden "
                   "set (generated first if missing) instead of re-running the pipeline; calibration then gives "
                   "them per-clip regression ceilings and pytest runs the matrix on them")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness golden``: a model's goldens (the shipped copy of a bundled model, else its full pipeline's),
    calibrated, written whole or not at all."""
    from harness.errors import CalibrationError
    from harness.judging import calibration, golden
    from harness.model import loading
    from harness.model.chain import Chain

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
    except CalibrationError as exc:
        print(f"harness: calibration problems (the previous goldens in {out} are kept):\n{exc}", file=sys.stderr)
        return 1
    manifest = golden.check(out)
    print(f"wrote {out}: {len(manifest['cases'])} pipeline cases, {len(manifest['clips'])} reference clips, "
          f"{len(manifest['files'])} files hashed in manifest.json"
          + (f", thresholds calibrated ({args.scope})" if finish else ""))
    return 0
