"""Where users' own front-ends and VAE/vocoder variants come from.

Three ways, all equivalent: call the ``register_*`` functions (e.g. in your ``conftest.py``), or
expose a module in the ``audioldm2_harness.variants`` entry-point group of your package; importing
that module registers its variants when pytest (or the ``harness`` CLI) starts.
"""
from __future__ import annotations

from importlib.metadata import entry_points


ENTRY_POINT_GROUP = "audioldm2_harness.variants"
_loaded = False


def load_entry_points() -> list:
    """Import every module registered under :data:`ENTRY_POINT_GROUP` (once); returns their names."""
    global _loaded
    if _loaded:
        return []
    _loaded = True
    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
        names.append(ep.name)
    return names
