"""Import structure: no import cycle in mmrec.report and its layers in order; cycles elsewhere in mmrec/ only
the known ones (issue 15 removes them), never new ones. Every import counts, also those inside functions and
under ``TYPE_CHECKING`` (a lazy import hides a cycle, it does not remove it)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "mmrec"

# report modules by layer: a module imports only modules of its own layer or lower ones
REPORT_LAYERS = {
    "settings": 0,
    "collect": 0,
    "conditions": 0,
    "stats": 0,
    "model": 1,
    "simulate": 1,
    "statistics": 2,
    "answers": 3,
    "build": 4,
    "tables": 5,
    "plots": 5,
    "html": 5,
    "printing": 5,
    "tracking": 5,
    "wandb_export": 5,
    "write": 6,
    "__init__": 7,
    "__main__": 8,
}
# cycles outside mmrec.report when this test was written: none (the report's own 5-module cycle is gone);
# a cycle another branch must keep for now goes here as a sorted tuple of module names
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """mmrec modules ``name`` imports (``from pkg import sub`` counts as the submodule when it is one)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in modules else target)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[str, ...]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(tuple(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [("a", "b", "c")]


def test_no_import_cycle_in_the_report_and_no_new_one_elsewhere() -> None:
    cycles = _cycles(_graph())
    report = [c for c in cycles if any(m.startswith("mmrec.report") for m in c)]
    assert report == [], f"import cycles in mmrec.report: {report}"
    new = set(cycles) - KNOWN_CYCLES
    assert not new, f"new import cycles in mmrec/: {sorted(new)}"


def test_report_layers_import_downwards_only() -> None:
    graph = _graph()
    report = {m for m in graph if m.startswith("mmrec.report.")} | {"mmrec.report"}
    for module in sorted(report):
        short = "__init__" if module == "mmrec.report" else module.removeprefix("mmrec.report.")
        assert short in REPORT_LAYERS, f"{module}: add it to REPORT_LAYERS"
        for target in graph[module] & report:
            t_short = "__init__" if target == "mmrec.report" else target.removeprefix("mmrec.report.")
            assert REPORT_LAYERS[t_short] <= REPORT_LAYERS[short], f"{module} imports higher {target}"
