"""``harness build-real-size``: a real-size pipeline with seeded random weights."""
from __future__ import annotations

import json

from harness.surfaces.cli.common import command


def add_parser(sub) -> None:
    """Declare ``harness build-real-size`` and its options."""
    p = command(sub, "build-real-size", "write a real-size pipeline of random weights (no download needed)", """
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
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness build-real-size``: a real-size pipeline with seeded random weights."""
    import time

    from harness.builders import realsize

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
