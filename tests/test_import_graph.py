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
FOUNDATION = ["errors", "deprecation", "machine", "atomic"]
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
