"""``harness list``: the registered front-ends, VAE and vocoder variants."""
from __future__ import annotations

from harness.surfaces.cli.common import command


def add_parser(sub) -> None:
    """Declare ``harness list`` and its options."""
    p = command(sub, "list", "list front-ends and VAE/vocoder variants (correct ones and known mistakes)", """
harness list""")
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness list``: the registered front-ends, VAE and vocoder variants."""
    from harness.signal import frontend
    from harness.model import variants

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
