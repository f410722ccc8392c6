"""audioldm2-harness: a pytest regression harness for the AudioLDM2 reconstruction chain.

waveform -> log-mel front-end -> VAE encode/decode -> vocoder -> waveform, stage by stage.
"""
import importlib

__version__ = "0.1.0"
#: public name -> the module that defines it; imported on first use, so that loading the pytest plugin
#: (and the pytest-xdist controller, which runs no test) does not import torch
_EXPORTS = {"get_frontend": "frontend", "list_frontends": "frontend", "register_frontend": "frontend",
            "VaeVariant": "variants", "get_vae": "variants", "get_vocoder": "variants", "register_vae": "variants",
            "register_vocoder": "variants"}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
