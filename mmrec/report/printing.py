"""The report on the terminal (rich): per dataset a compact table of Δ% vs full with its interval, outcome,
seeds used and seeds equivalence would need (absolute Δ is in ``delta_<metric>.md``), then one line per
declared question, the incomplete entries and the HTML page's path."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmrec.report.answers import answer_lines
from mmrec.report.model import Report
from mmrec.report.tables import delta_table

_STYLE = {"equivalent": "green", "worse": "red", "better": "cyan"}


def print_summary(report: Report, console: Console | None = None) -> None:
    """Print the Δ table per dataset, the answers, the incomplete list and the written files."""
    console = console or Console()
    s = report.settings
    console.rule(f"[bold]Knockout report: test {report.metric}")
    console.print(
        f"{int(report.runs['used'].sum())} runs used, {len(report.ignored)} ignored summaries, "
        f"{len(report.incomplete)} incomplete entries; folder {report.folder}; δ = {100 * s.delta:g}%, "
        f"α = {s.alpha:g} (Holm per question), {s.level:.0%} intervals"
    )
    delta = delta_table(report)
    for dataset in report.datasets:
        sub = delta[delta["dataset"] == dataset]
        t = Table(title=f"{dataset}: Δ vs full")
        level = f"Δ% [{s.level:.0%} CI]"
        for col in ("model", "condition", level, "outcome", "seeds", "needed"):
            t.add_column(col, justify="left" if col in ("model", "condition", "outcome") else "right", no_wrap=True)
        for r in sub.itertuples():
            style = _STYLE.get(r.outcome.split(" ")[0], "")
            t.add_row(
                escape(str(r.model)),
                escape(str(r.condition)),
                escape(r.delta_pct),
                f"[{style}]{escape(r.outcome)}[/{style}]" if style else escape(r.outcome),
                str(r.seeds),
                str(r.seeds_needed),
            )
        console.print(t)
    for line in answer_lines(report):
        console.print(" • " + escape(line))
    if len(report.incomplete):
        t = Table(title="Incomplete", title_style="bold red")
        for c in ("dataset", "model", "condition", "seed", "kind", "detail"):
            t.add_column(c)
        for r in report.incomplete.itertuples():
            t.add_row(
                *(
                    "" if v is None or pd.isna(cast(Any, v)) else escape(str(v))
                    for v in (r.dataset, r.model, r.condition, r.seed, r.kind, r.detail)
                )
            )
        console.print(t)
    if report.files:
        console.print(
            f"[green]Wrote {len(report.files)} files[/green] under {next(iter(report.files.values())).parent}"
        )
        if "html" in report.files:
            console.print(f"HTML report: {report.files['html']}")
