"""One self-contained HTML page: settings, answers, tables, plots (PNG as base64), incomplete runs."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from pathlib import Path
from typing import cast

import pandas as pd

from mmrec.atomic_io import atomic_write_text
from mmrec.report.collect import runs_for_csv
from mmrec.report.model import Report
from mmrec.report.statistics import statistics_table
from mmrec.report.tables import caption, delta_table, knockout_table, slug

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:center;vertical-align:middle}
th{background:#f2f2f2}td.label{text-align:left;font-weight:600}
.caption{color:#555;font-size:0.9em}.figs img{max-width:100%;margin:0.5em 0;border:1px solid #eee}
details{margin:1em 0}code{background:#f4f4f4;padding:0 3px}
"""


def _inline_markdown(text: str) -> str:
    """Escape, then render ``**bold**`` and ```code``` (all the answers use)."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def knockout_html(report: Report) -> str:
    """The knockout table as an HTML table (mean ± std, then Δ% line)."""
    table = knockout_table(report, "text", sep="\n")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ["dataset", "model", *table.columns])
    rows = []
    for key, row in table.iterrows():
        dataset, model = cast("tuple[str, str]", key)  # the index is (dataset, model)
        tds = "".join(f"<td>{'<br>'.join(html.escape(p) for p in str(v).split(chr(10)))}</td>" for v in row)
        rows.append(
            f"<tr><td class='label'>{html.escape(dataset)}</td><td class='label'>{html.escape(model)}</td>{tds}</tr>"
        )
    return f"<table class='knockout'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _frame_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>None.</p>"
    return frame.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="", border=0, escape=True)


def png_data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def render_html(report: Report) -> str:
    """The page as a string; images are the PNG files listed in ``report.files`` (``png:*``)."""
    s = report.settings
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Knockout report: {html.escape(report.metric)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Knockout study report: test {html.escape(report.metric)}</h1>",
        f"<p class='caption'>Runs from <code>{html.escape(str(report.folder))}</code>; "
        f"{int(report.runs['used'].sum())} runs used, {len(report.ignored)} summaries ignored (trials or "
        f"superseded singles), {len(report.incomplete)} incomplete entries. Margin δ = "
        f"{100 * s.delta:g}% of full (in the tests: cond vs (1 ∓ δ)·full); α = {s.alpha} after Holm within "
        f"each declared question; intervals {s.level:.0%}. Questions from {html.escape(report.questions_source)}. "
        f"Generated {dt.datetime.now().isoformat(timespec='seconds')}.</p>",
        "<h2>Research questions</h2>",
    ]
    for dataset, sentences in report.answers.items():
        parts.append(f"<h3>{html.escape(dataset)}</h3><ul>")
        parts += [f"<li>{_inline_markdown(x)}</li>" for x in sentences]
        parts.append("</ul>")
    parts += [
        "<h2>Knockout table</h2>",
        f"<p class='caption'>{html.escape(caption(report))}</p>",
        knockout_html(report),
        "<h2>Δ vs full</h2>",
        _frame_html(delta_table(report)),
    ]
    pngs = {k.removeprefix("png:"): p for k, p in report.files.items() if k.startswith("png:")}
    if pngs:
        parts.append("<h2>Plots</h2><div class='figs'>")
        for stem, path in pngs.items():
            parts.append(
                f"<figure><img alt='{html.escape(stem)}' src='{png_data_uri(path)}'>"
                f"<figcaption class='caption'>{html.escape(stem)}</figcaption></figure>"
            )
        parts.append("</div>")
    parts += [
        "<h2>Statistics</h2>",
        "<p class='caption'>Per cell vs its reference; the unit is the training run (seeds), users folded "
        "in as a crossed random effect; p_holm: Holm–Bonferroni of the claimed test within the cell's "
        "family (a declared question across datasets and models, or the dataset's other cells). The "
        "Wilcoxon over users is descriptive and decides nothing.</p>",
        _frame_html(statistics_table(report)),
        "<h2 id='incomplete'>Incomplete</h2>",
        _frame_html(report.incomplete),
        "<details><summary>Ignored summaries</summary>",
        _frame_html(report.ignored),
        "</details>",
        "<details><summary>All runs</summary>",
        _frame_html(runs_for_csv(report.runs).drop(columns=["test_metrics"], errors="ignore")),
        "</details></body></html>",
    ]
    return "\n".join(parts)


def write_html(report: Report, out: Path) -> Path:
    path = Path(out) / f"report_{slug(report.metric)}.html"
    atomic_write_text(path, render_html(report))
    return path
