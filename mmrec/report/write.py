"""Write a built report into a folder (default ``<runs folder>/report``). The file names are stable
(``<m>`` = the metric's file form, ``recall_at_20``); other tools rely on them:

- ``knockout_<m>.md|.csv|.tex``: the knockout table (mean ± std, Δ% [interval] + outcome mark, absolute Δ);
- ``delta_<m>.md|.csv``: compact: Δ%, absolute Δ (intervals), outcome, seeds used, seeds needed;
- ``cells_<m>.csv``: every number of every cell (long);
- ``statistics_<m>.md|.csv|.tex``: one row per cell and test of ``statistics.TESTS``;
- ``answers_<m>.md``: the research questions answered in words;
- ``heatmap_<dataset>_<m>.png``: Δ% per model × condition with intervals and outcome marks;
- ``bars_<dataset>_<model>_<m>.png``: mean ± std per condition, seeds as dots;
- ``valcurve_<dataset>_<model>_<m>.png``: validation curves;
- ``report_<m>.html``: one self-contained page with all of the above;
- ``settings_<m>.json``: the settings, the declared questions and their source;
- ``incomplete.csv``, ``ignored.csv``, ``runs.csv``: what is missing, what was skipped, every run.

Each file is written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import json
from pathlib import Path

from mmrec.atomic_io import atomic_write_text
from mmrec.report import html, tables
from mmrec.report import plots as plotting
from mmrec.report.collect import runs_for_csv
from mmrec.report.model import Report
from mmrec.report.settings import questions_dict, settings_dict
from mmrec.report.statistics import statistics_table


def write_tables(report: Report, out: Path) -> dict[str, Path]:
    """Write every table file; returns name → path."""
    tag = tables.slug(report.metric)
    files: dict[str, Path] = {}

    def put(name: str, filename: str, text: str) -> None:
        path = out / filename
        atomic_write_text(path, text)
        files[name] = path

    caption = tables.caption(report)
    put("table_csv", f"knockout_{tag}.csv", tables.knockout_table(report, "text", sep=" | ").to_csv())
    put(
        "table_md",
        f"knockout_{tag}.md",
        f"{caption}\n\n" + tables.to_markdown(tables.knockout_table(report, sep="\n")),
    )
    put(
        "table_tex",
        f"knockout_{tag}.tex",
        tables.to_latex(tables.knockout_table(report, sep="\n"), caption, f"tab:knockout-{tag}"),
    )
    delta = tables.delta_table(report)
    put("delta_csv", f"delta_{tag}.csv", delta.to_csv(index=False))
    put("delta_md", f"delta_{tag}.md", f"{caption}\n\n" + tables.to_markdown(delta))
    put("cells_csv", f"cells_{tag}.csv", tables.cells_frame(report).to_csv(index=False))
    st = statistics_table(report)
    put("statistics_csv", f"statistics_{tag}.csv", st.to_csv(index=False))
    put("statistics_md", f"statistics_{tag}.md", tables.to_markdown(st))
    put(
        "statistics_tex",
        f"statistics_{tag}.tex",
        tables.to_latex(st, f"Tests of test {report.metric} vs full.", f"tab:statistics-{tag}"),
    )
    put("incomplete_csv", "incomplete.csv", report.incomplete.to_csv(index=False))
    put("ignored_csv", "ignored.csv", report.ignored.to_csv(index=False))
    put("runs_csv", "runs.csv", runs_for_csv(report.runs).to_csv(index=False))
    put("answers_md", f"answers_{tag}.md", tables.answers_markdown(report))
    settings = {
        **settings_dict(report.settings),
        "questions": questions_dict(report.questions),
        "questions_source": report.questions_source,
    }
    put("settings_json", f"settings_{tag}.json", json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    return files


def write_report(report: Report, out_dir: str | Path | None = None, plots: bool = True) -> dict[str, Path]:
    """Write tables, statistics, answers, plots (PNG) and the HTML page; returns (and stores in
    ``report.files``) name → path."""
    out = Path(out_dir) if out_dir is not None else report.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    files = write_tables(report, out)
    if plots:
        files.update(plotting.write_plots(report, out))
    report.files = files
    files["html"] = html.write_html(report, out)
    report.files = files
    return files
