"""``harness evaluate``: held-out figures of a model (:mod:`harness.builders.bundled.evaluate`)."""
from __future__ import annotations

import json

from harness.surfaces.cli.common import add_model_args, command


def add_parser(sub) -> None:
    """Declare ``harness evaluate`` and its options."""
    p = command(sub, "evaluate", "held-out figures of a model (code-made and Debian sound clips)", """
harness evaluate --model tiny
harness evaluate --model tiny --record     store them in the model's training.json
harness evaluate --plot curves.png         draw the training curves recorded in training.json
harness evaluate --spectrograms vocoder.png  where the vocoder differs from its input and from Griffin-Lim""")
    add_model_args(p)
    p.add_argument("--record", action="store_true", help="store the results in the model's training.json")
    p.add_argument("--plot", metavar="PNG", help="draw the training curves of the model's training.json instead")
    p.add_argument("--spectrograms", metavar="PNG", help="draw input / vocoder / Griffin-Lim spectrograms of a few "
                   "held-out clips instead")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness evaluate``: held-out figures of a model (:mod:`harness.builders.bundled.evaluate`)."""
    from harness.builders.bundled import evaluate
    from harness.model.chain import Chain

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
