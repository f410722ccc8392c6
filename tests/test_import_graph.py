"""The package's import graph, read from its source (imports inside functions included): no circles."""
import ast
import pathlib

import harness

PACKAGE = pathlib.Path(harness.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = ("harness",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """``{module: {modules of the package it imports}}``, every import statement wherever it stands."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # `from . import x` imports the module x; `from .m import name` the module m
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in paths)
        graph[name] = {m for m in found if m in paths} - {name}
    return graph


def circles(graph: dict) -> list:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_reader_sees_relative_and_in_function_imports():
    graph = import_graph()
    assert "harness.signal.audio" in graph["harness.signal.frontend"]
    assert "harness.builders.realsize" in graph["harness.surfaces.cli.build_real_size"]  # imported inside a command's function


def test_no_import_circles():
    assert circles(import_graph()) == []


#: the package's layers, lowest first: a module imports from its own layer and the ones before it. The foundation
#: modules sit at the top of the package; every other module lives in its layer's subpackage. The model builders
#: (``harness.builders``: the bundled tiny model and its training, real size, the checkpoint family) sit beside the
#: layers: they use any of them, and only the surfaces (the CLI's commands) use them.
FOUNDATION = ["errors", "machine", "atomic", "vocabulary"]
LAYERS = ["foundation", "signal", "model", "judging", "surfaces"]


def _layer_of(module: str):
    short = module[len("harness."):] if module.startswith("harness.") else module
    head = short.partition(".")[0]
    if module in ("harness", "harness.__main__"):
        return LAYERS.index("surfaces")  # the public names and `python -m harness`
    if head in FOUNDATION:
        return LAYERS.index("foundation")
    if head == "builders":
        return "builders"
    return LAYERS.index(head) if head in LAYERS else None


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if _layer_of(m) is None] == []
    # the tree shows the layers: nothing but the foundation, the package's name space and its data at the top
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == set(FOUNDATION)
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} == {*LAYERS[1:], "builders"}


def test_imports_point_down_the_layers():
    surfaces = LAYERS.index("surfaces")
    upward = []
    for module, imported in import_graph().items():
        mine = _layer_of(module)
        for other in imported:
            theirs = _layer_of(other)
            if theirs == "builders":
                ok = mine in ("builders", surfaces)
            else:
                ok = mine == "builders" or theirs <= mine
            if not ok:
                upward.append(f"{module} -> {other}")
    assert upward == []


# --- where an import may stand inside a function ------------------------------------------------

#: the entry points: the pytest plugin (loaded by every pytest run of a project, harness tests or not) and the
#: CLI's command modules (``harness --help`` stays fast). They import what they use inside the hook, fixture
#: or command that uses it, so a run loads only what it needs.
ENTRY_POINTS = {"harness.surfaces.plugin", "harness.surfaces.cli"} | {
    f"harness.surfaces.cli.{p.stem}" for p in (PACKAGE / "surfaces" / "cli").glob("*.py") if p.stem != "__init__"}
#: modules that load no torch when imported: the entry points, the golden files' reader and the audio I/O it
#: uses, and the foundation. Inside their functions they import what loads torch.
TORCH_FREE = ENTRY_POINTS | {
    "harness", "harness.errors", "harness.atomic", "harness.machine", "harness.vocabulary",
    "harness.signal", "harness.signal.audio", "harness.model", "harness.judging", "harness.judging.golden",
    "harness.surfaces", "harness.surfaces.job_summary", "harness.surfaces.bench", "harness.surfaces.bench.gate",
    "harness.surfaces.bench.history", "harness.surfaces.bench.runner",
}
#: third-party packages imported inside the one function that needs them, each for its reason
DEFERRED = {
    "diffusers": "seconds to import: only the functions that build or load a pipeline",
    "transformers": "seconds to import: only the functions that build or load a pipeline",
    "tokenizers": "only building a tokenizer for the bundled and real-size pipelines",
    "huggingface_hub": "only resolving a hub id",
    "matplotlib": "only drawing a figure",
    "librosa": "a second to import (numba): only the reference implementations compared with",
    "scipy": "only the code-made audio's filters",
    "hypothesis": "only the metamorphic checks",
    "pytest": "the speed gate's timing runs outside pytest too (harness bench): only a benchmark's failure",
    "xdist": "optional (the test extra): only when pytest-xdist schedules",
    "tomli": "only on Python before 3.11",
    "tomllib": "Python 3.11 and later; the fallback is tomli",
    "torch": "in a torch-free module (TORCH_FREE) only, or a part of torch loaded on demand "
             "(distributed, flop counter)",
}


def _imports(path: pathlib.Path, modules=()):
    """``(lineno, imported module, at module level)`` of every import statement of a file (absolute names;
    ``from package import module`` names the module when it is one of ``modules``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name, id(node) in top) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {f"{node.module}.{a.name}" for a in node.names} & set(modules) or {node.module}
            yield from ((node.lineno, name, id(node) in top) for name in sorted(names))


def loads_torch() -> set:
    """The package's modules whose module-level imports reach torch (read from the source, transitively)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    direct = {name: {m for _, m, top in _imports(path, paths) if top} for name, path in paths.items()}

    def reaches(name, seen):
        for m in direct.get(name, ()):
            if m.partition(".")[0] in ("torch", "diffusers", "transformers"):
                return True
            # `import harness.x.y` runs the packages above it too
            parts = m.split(".")
            for i in range(1, len(parts) + 1):
                sub = ".".join(parts[:i])
                if sub in direct and sub not in seen and (seen.add(sub) or reaches(sub, seen)):
                    return True
        return False

    return {name for name in direct if reaches(name, {name})}


def test_torch_free_modules_import_no_torch():
    assert sorted(TORCH_FREE & loads_torch()) == []


def test_imports_stand_at_module_level_unless_a_reason_keeps_them_in_a_function():
    torch_loading = loads_torch()
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    misplaced = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for line, imported, top in _imports(path, modules):
            package = imported.partition(".")[0]
            if top or package == "__future__" or module in ENTRY_POINTS:
                continue
            if package == "harness":
                ok = module in TORCH_FREE and imported in torch_loading
            elif package == "torch":
                ok = module in TORCH_FREE or imported != "torch"
            else:
                ok = package in DEFERRED
            if not ok:
                misplaced.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {imported}")
    assert misplaced == [], "move these imports to the top of their module (or give the reason in DEFERRED)"


def test_pytest_is_imported_only_by_the_surfaces():
    """Judging, the model and the signal run outside pytest too (the CLI, datasets, diagnose): they answer with
    values (a check's :class:`harness.judging.quality.CheckOutcome`); the surfaces skip or fail a test."""
    found = [(path.relative_to(PACKAGE), line) for path in PACKAGE.rglob("*.py")
             for line, imported, _ in _imports(path) if imported.partition(".")[0] in ("pytest", "_pytest")]
    assert [f"{path.as_posix()}:{line}" for path, line in found if path.parts[0] != "surfaces"] == []
    # the reader sees them: the plugin's and the quality check's
    assert {path.as_posix() for path, _ in found} >= {"surfaces/plugin.py", "surfaces/quality_check.py"}


def test_no_function_of_the_judging_layer_is_over_60_lines():
    """Where most changes land, each function does one thing: long ones are split into named steps."""
    long = []
    for path in sorted((pathlib.Path(__file__).resolve().parents[1] / "harness" / "judging").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
