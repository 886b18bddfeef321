"""notebooks/knockout_study.ipynb: valid notebook JSON that only drives the mmrec.report API, and runs."""

from __future__ import annotations

import ast
import json
import sys
import types
from pathlib import Path

import pytest

from .fake_study import FakeStudy

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "knockout_study.ipynb"
ALLOWED_MODULES = {"mmrec.report", "IPython.display", "os", "pathlib"}


def _code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_notebook_is_valid_json_notebook() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and isinstance(nb["cells"], list) and nb["cells"]
    for cell in nb["cells"]:
        assert cell["cell_type"] in {"markdown", "code"} and isinstance(cell["source"], list | str)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []  # stored without outputs (no stale numbers)
    try:
        import nbformat
    except ImportError:  # nbformat is a dev extra; the structural checks above still ran
        return
    nbformat.validate(nbformat.reads(NOTEBOOK.read_text(encoding="utf-8"), as_version=4))


def test_notebook_code_only_calls_the_report_api() -> None:
    imported: set[str] = set()
    report_names: set[str] = set()
    for source in _code_cells():
        tree = ast.parse(source)
        for node in ast.walk(tree):
            assert not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda), "logic belongs in mmrec.report"
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
                if node.module == "mmrec.report":
                    report_names |= {a.name for a in node.names}
    assert imported <= ALLOWED_MODULES, imported - ALLOWED_MODULES
    assert "mmrec.report" in imported
    import mmrec.report

    assert report_names <= set(mmrec.report.__all__)
    assert {"build_report", "write_report"} <= report_names


def test_notebook_runs_on_a_study(fake_study: FakeStudy, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[object] = []
    display_mod = types.ModuleType("IPython.display")
    display_mod.display = shown.append
    for name in ("HTML", "Image", "Markdown"):
        setattr(display_mod, name, lambda *a, _n=name, **k: (_n, a, k))
    ipython = types.ModuleType("IPython")
    ipython.version_info = (9, 0, 0)  # matplotlib inspects a loaded IPython
    ipython.get_ipython = lambda: None
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    monkeypatch.setenv("MMREC_REPORT_FOLDER", str(fake_study.root))
    namespace: dict[str, object] = {}
    for source in _code_cells():
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)  # noqa: S102 - the notebook under test
    report = namespace["report"]
    assert report.folder == fake_study.root
    images = [s for s in shown if isinstance(s, tuple) and s[0] == "Image"]
    assert len(images) == sum(k.startswith("png:") for k in report.files)
    assert (fake_study.root / "report" / "report_recall_at_20.html").exists()
