"""The report's modules in layers, on the import graph of ``tests/test_architecture.py`` (which also checks that
no import cycle exists anywhere in ``mmrec/``, the report included): a module imports only its own layer or lower
ones."""

from __future__ import annotations

from tests.test_architecture import import_graph

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


def test_report_layers_import_downwards_only() -> None:
    graph = import_graph()
    report = {m for m in graph if m.startswith("mmrec.report.")} | {"mmrec.report"}
    for module in sorted(report):
        short = "__init__" if module == "mmrec.report" else module.removeprefix("mmrec.report.")
        assert short in REPORT_LAYERS, f"{module}: add it to REPORT_LAYERS"
        for target in graph[module] & report:
            t_short = "__init__" if target == "mmrec.report" else target.removeprefix("mmrec.report.")
            assert REPORT_LAYERS[t_short] <= REPORT_LAYERS[short], f"{module} imports higher {target}"
