"""The knockout study report: ``python -m mmrec.report <folder>``.

Layers (each imports only the ones above it; no cycle, checked by ``tests/report/test_layers.py``):

1. :mod:`.settings` (metric, δ, α, declared questions), :mod:`.collect` (summaries), :mod:`.conditions`
   (labels), :mod:`.stats` (numerics on arrays);
2. :mod:`.model` — cells, references and the tables a comparison uses;
3. :mod:`.statistics` — every test declared once (``TESTS``), families, Holm, the four-way outcome;
4. :mod:`.answers` — the questions in words; :mod:`.build` — :func:`build_report` (compute, write nothing);
5. writers: :mod:`.tables`, :mod:`.plots`, :mod:`.html`, :mod:`.printing`, :mod:`.tracking`, :mod:`.write`
   (:func:`write_report`; its docstring lists the file names).
"""

from mmrec.report.build import build_report
from mmrec.report.collect import collect
from mmrec.report.conditions import base_label, condition_label, label_runs, order_conditions
from mmrec.report.model import Report
from mmrec.report.plots import figures
from mmrec.report.printing import print_summary
from mmrec.report.settings import Question, ReportSettings, metric_name
from mmrec.report.statistics import TESTS, statistics_table
from mmrec.report.tables import answers_markdown, delta_table, knockout_table, to_latex, to_markdown
from mmrec.report.tracking import log_to_wandb
from mmrec.report.write import write_report

__all__ = [
    "TESTS",
    "Question",
    "Report",
    "ReportSettings",
    "answers_markdown",
    "base_label",
    "build_report",
    "collect",
    "condition_label",
    "delta_table",
    "figures",
    "knockout_table",
    "label_runs",
    "log_to_wandb",
    "metric_name",
    "order_conditions",
    "print_summary",
    "statistics_table",
    "to_latex",
    "to_markdown",
    "write_report",
]
