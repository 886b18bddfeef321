"""One line per knocked-out modality (``without text: worse for freedom (-15.5% [-21.8, -8.8]***) ...``).

A cell counts as a change when the table marks it (the Holm-adjusted mark test, ``--mark-test``, below
``--alpha``); otherwise it is "no detectable change", never "no effect".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mmrec.report.tables import delta_text

if TYPE_CHECKING:
    from mmrec.report.core import Report


def _verdict(cell: pd.Series) -> str:
    if not cell["mark"]:
        return "no detectable change"
    return "worse" if cell["delta_pct"] < 0 else "better"


def knockout_lines(report: Report) -> list[str]:
    """``<dataset>, without <m>: <verdict> for <model> (<Δ%> [CI]) ...`` for each ``no-<m>`` condition."""
    cells = report.cells
    sel = cells[
        cells["base_label"].astype(str).str.startswith("no-")
        & (cells["knockout_phase"] != "test")
        & ~cells["transfer"].astype(bool)
        & cells["reference"].notna()
    ]
    lines = []
    for (dataset, label), group in sel.groupby(["dataset", "base_label"], sort=False):
        by_verdict: dict[str, list[str]] = {}
        for _, cell in group.iterrows():
            delta = delta_text(cell["delta_pct"], cell["ci_low"], cell["ci_high"], cell["mark"], cell["ci_source"])
            by_verdict.setdefault(_verdict(cell), []).append(f"{cell['model']} ({delta or 'Δ n/a'})")
        parts = [f"{verdict} for {', '.join(models)}" for verdict, models in by_verdict.items()]
        lines.append(f"{dataset}, without {label.removeprefix('no-')}: {'; '.join(parts)}")
    return lines
