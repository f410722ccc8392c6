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
    assert "harness.frontend" in graph["harness.audio"] or "harness.audio" in graph["harness.frontend"]
    assert "harness.realsize" in graph["harness.cli"]  # imported inside a command's function


def test_no_import_circles():
    assert circles(import_graph()) == []


#: the package's layers, lowest first: a module imports from its own layer and the ones before it. The model
#: builders (the bundled tiny model and its training, real size, the checkpoint family) sit beside them: they use
#: any layer, and only the surfaces (the CLI's commands) use them.
LAYERS = {
    "signal": ["errors", "deprecation", "machine", "atomic", "audio", "frontend", "metrics", "griffinlim", "synth"],
    "model": ["loading", "chain", "variants", "entry_points"],
    "judging": ["matrix", "thresholds", "quality", "golden", "calibration", "evidence", "report", "dataset",
                "metamorphic"],
    "surfaces": ["harness", "__main__", "plugin", "suite", "job_summary", "cli", "diagnose", "diagnose.findings",
                 "diagnose.stages", "diagnose.report",
                 "bench", "bench.plot", "bench.suite", "bench.timing"],
}
BUILDERS = ["bundled", "bundled.tiny", "bundled.train", "bundled.evaluate", "bundled.discriminators", "realsize",
            "family"]


def _layer_of(module: str):
    short = module[len("harness."):] if module.startswith("harness.") else module
    if short in BUILDERS:
        return "builders"
    return next((i for i, names in enumerate(LAYERS.values()) if short in names), None)


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if _layer_of(m) is None] == []


def test_imports_point_down_the_layers():
    surfaces = list(LAYERS).index("surfaces")
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
