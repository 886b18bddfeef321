"""The package's layering, read from the source: no import cycle among ``mmrec`` modules (the report's included),
lower layers never import higher ones. Every import counts, also those inside functions and under ``TYPE_CHECKING``
(a lazy import hides a cycle, it does not remove it). ``tests/report/test_layers.py`` orders the report's modules
on this graph."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mmrec"

# (lower package, higher package): the lower one never imports the higher one.
LAYERS = [
    ("mmrec.data", "mmrec.features"),
    ("mmrec.data", "mmrec.nn"),
    ("mmrec.data", "mmrec.models"),
    ("mmrec.nn", "mmrec.models"),
    ("mmrec.nn", "mmrec.features"),
    ("mmrec.features", "mmrec.models"),
    ("mmrec.models", "mmrec.run"),
    ("mmrec.models", "mmrec.report"),
    ("mmrec.evaluation", "mmrec.models"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ``mmrec`` modules ``path`` imports, anywhere in the file (``from pkg import sub`` counts as the submodule
    when it is one, else as ``pkg``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            while name and name not in modules:  # the deepest mmrec module the name refers to
                name = name.rpartition(".")[0]
            if name.startswith("mmrec"):
                found.add(name)
    found.discard(_module_name(path))
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_reads_the_imports_of_a_module() -> None:
    graph = import_graph()
    assert "mmrec.data.datamodule" in graph["mmrec.models.base"]  # from mmrec.data.datamodule import GraphData
    assert "mmrec.models.base" in graph["mmrec.models.multimodal"]
    assert "mmrec.models" not in graph["mmrec.nn.modality_gcn"]
    # from mmrec.data import graphs: the submodule, not the package's __init__
    assert "mmrec.data.graphs" in graph["mmrec.data.datamodule"]
    assert "mmrec.data" not in graph["mmrec.data.datamodule"]
    assert all(name.startswith("mmrec") for deps in graph.values() for name in deps)


def _report(found: list[list[str]]) -> str:
    return "import cycles (each list imports itself round):\n" + "\n".join(map(str, found))


def test_no_import_cycle_in_mmrec() -> None:
    found = cycles(import_graph())
    assert not found, _report(found)


@pytest.mark.parametrize(("lower", "higher"), LAYERS)
def test_lower_layers_never_import_higher_ones(lower: str, higher: str) -> None:
    bad = {
        m: sorted(d for d in deps if d == higher or d.startswith(higher + "."))
        for m, deps in import_graph().items()
        if m == lower or m.startswith(lower + ".")
    }
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"{lower} imports {higher}: {bad}"
