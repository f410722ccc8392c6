"""audioldm2-harness: a pytest regression harness for the AudioLDM2 reconstruction chain.

waveform -> log-mel front-end -> VAE encode/decode -> vocoder -> waveform, stage by stage.

``harness.__all__`` is the public API: each of its names is defined in one module of the layers and read
from there on first use. Everything else may change.
"""
import importlib

__version__ = "0.1.0"
#: public name -> the module that defines it; imported on first use, so that loading the pytest plugin
#: (and the pytest-xdist controller, which runs no test) does not import torch
_EXPORTS = {
    # registering a project's own components
    "register_frontend": "signal.frontend", "register_vae": "model.variants", "register_vocoder": "model.variants",
    "VaeVariant": "model.variants",
    # looking them up
    "get_frontend": "signal.frontend", "list_frontends": "signal.frontend", "get_vae": "model.variants",
    "get_vocoder": "model.variants", "list_vaes": "model.variants", "list_vocoders": "model.variants",
    # the model under test and the matrix
    "Chain": "model.chain", "Combination": "judging.matrix", "combinations": "judging.matrix",
    # judging
    "MatrixRun": "judging.quality", "QualityCheck": "surfaces.quality_check", "GoldenTarget": "judging.quality",
    # errors
    "HarnessError": "errors", "InputError": "errors", "AudioError": "errors", "GoldenError": "errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
