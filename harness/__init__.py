"""audioldm2-harness: a pytest regression harness for the AudioLDM2 reconstruction chain.

waveform -> log-mel front-end -> VAE encode/decode -> vocoder -> waveform, stage by stage.

``harness.__all__`` is the public API: its names keep working across minor versions (a renamed one stays as
a deprecated alias that warns, naming the new name, for at least one minor version; see
:mod:`harness.deprecation`). Everything else may change.
"""
import importlib

__version__ = "0.1.0"
#: public name -> the module that defines it; imported on first use, so that loading the pytest plugin
#: (and the pytest-xdist controller, which runs no test) does not import torch
_EXPORTS = {
    # registering a project's own components
    "register_frontend": "frontend", "register_vae": "variants", "register_vocoder": "variants",
    "VaeVariant": "variants",
    # looking them up
    "get_frontend": "frontend", "list_frontends": "frontend", "get_vae": "variants", "get_vocoder": "variants",
    "list_vaes": "variants", "list_vocoders": "variants",
    # the model under test and the matrix
    "Chain": "chain", "Combination": "matrix", "combinations": "matrix",
    # judging
    "MatrixRun": "quality", "QualityCheck": "quality", "GoldenTarget": "quality",
    # errors
    "HarnessError": "errors", "InputError": "errors", "AudioError": "errors", "GoldenError": "errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
