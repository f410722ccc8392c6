"""``harness.__all__`` is the public API, and every name has one home: the module that defines it."""
import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.judging import matrix

PACKAGE = Path(harness.__file__).parent


def test_every_public_name_resolves_and_is_documented():
    for name in harness.__all__:
        obj = getattr(harness, name)
        if name != "__version__":
            assert inspect.getdoc(obj), f"harness.{name} has no docstring"


def test_an_unknown_name_is_a_plain_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'expected_verdicts'"):
        harness.expected_verdicts  # noqa: B018


#: the modules' paths before the package was split into its layers: none of them is a module
FORMER_PATHS = ["audio", "frontend", "metrics", "griffinlim", "synth", "loading", "chain", "variants", "entry_points",
                "matrix", "thresholds", "quality", "golden", "calibration", "evidence", "report", "dataset",
                "metamorphic", "plugin", "suite", "job_summary", "cli", "diagnose", "bench", "bundled", "realsize",
                "family", "bench.suite", "deprecation"]


@pytest.mark.parametrize("path", FORMER_PATHS)
def test_a_module_has_one_path(path):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"harness.{path}")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("harness",) + path.relative_to(PACKAGE).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), ast.parse(path.read_text())


def _defined(tree) -> set:
    """The names a module binds itself at its top level (not by importing them)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def test_every_name_is_imported_from_its_one_home():
    """No module re-exports a name of another: each ``from harness.x import name`` in the package names the
    module that defines it (or a submodule), and no module imports a name of the package it does not use."""
    modules = dict(_modules())
    defined = {m: _defined(tree) for m, tree in modules.items()}
    elsewhere, unused = [], []
    for module, tree in modules.items():
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("harness")):
                continue
            for alias in node.names:
                home = f"{node.module}.{alias.name}"
                if node.module in defined and home not in modules and alias.name not in defined[node.module]:
                    elsewhere.append(f"{module}: {home}")
                if node in tree.body and (alias.asname or alias.name) not in used:
                    unused.append(f"{module}: {home}")
    assert elsewhere == [] and unused == []


def test_the_package_maps_no_path_and_warns_of_no_name():
    assert not hasattr(harness, "MOVED")
    assert [f for f in sys.meta_path if type(f).__module__.startswith("harness")] == []
    found = subprocess.run(["grep", "-rnI", "-e", "MOVED", "-e", "DeprecationWarning", "-e", "imported from here",
                            "--include=*.py", str(PACKAGE)], capture_output=True, text=True)
    assert found.stdout == ""


def test_each_component_spells_its_expected_verdict_one_way():
    from harness.model import variants
    from harness.signal import frontend

    for component, stage in ((frontend.get_frontend("seed-librosa-db"), "frontend"),
                             (variants.get_vocoder("hifigan-transposed"), "vocoder"),
                             (variants.get_vae("double-scale"), "roundtrip")):
        assert component.expected_at(stage) == "detect"
    assert not hasattr(frontend.get_frontend("audioldm2"), "expected")
    assert not hasattr(variants.get_vocoder("hifigan"), "expected")
    assert not hasattr(matrix.Combination("audioldm2", "scaled", "hifigan"), "expected")
