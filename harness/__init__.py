"""audioldm2-harness: a pytest regression harness for the AudioLDM2 reconstruction chain.

waveform -> log-mel front-end -> VAE encode/decode -> vocoder -> waveform, stage by stage.

``harness.__all__`` is the public API: its names keep working across minor versions (a renamed one stays as
a deprecated alias that warns, naming the new name, for at least one minor version; see
:mod:`harness.deprecation`). Everything else may change.
"""
import importlib
import importlib.abc
import importlib.util
import sys

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
    "MatrixRun": "judging.quality", "QualityCheck": "judging.quality", "GoldenTarget": "judging.quality",
    # errors
    "HarnessError": "errors", "InputError": "errors", "AudioError": "errors", "GoldenError": "errors",
}
__all__ = [*_EXPORTS, "__version__"]

#: the modules' paths before the package was split into its layers: they name the same module objects
#: (``harness.suite`` is ``harness.surfaces.suite``), so projects that import or patch them keep working
MOVED = {
    **{m: f"signal.{m}" for m in ("audio", "frontend", "metrics", "griffinlim", "synth")},
    **{m: f"model.{m}" for m in ("loading", "chain", "variants", "entry_points")},
    **{m: f"judging.{m}" for m in ("matrix", "thresholds", "quality", "golden", "calibration", "evidence", "report",
                                   "dataset", "metamorphic")},
    **{m: f"surfaces.{m}" for m in ("plugin", "suite", "job_summary", "cli", "diagnose", "bench")},
    **{m: f"builders.{m}" for m in ("bundled", "realsize", "family")},
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``harness.<old path>[.<submodule>]`` as the module that now lives in a layer subpackage."""

    @staticmethod
    def _target(fullname: str):
        head, _, rest = fullname[len(__name__) + 1:].partition(".")
        if not fullname.startswith(__name__ + ".") or head not in MOVED:
            return None
        return f"{__name__}.{MOVED[head]}" + (f".{rest}" if rest else "")

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if self._target(fullname) else None

    def create_module(self, spec):
        return importlib.import_module(self._target(spec.name))  # the module itself, under its old name too

    def exec_module(self, module):
        pass  # already executed under its new name

    def get_code(self, fullname):
        """``python -m harness.<old path>``: the moved module's code (runpy asks for it)."""
        target = self._target(fullname)
        return importlib.util.find_spec(target).loader.get_code(target)


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
