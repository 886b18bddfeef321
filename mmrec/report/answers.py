"""The declared research questions answered in words, from the outcomes of :mod:`mmrec.report.statistics`.

Per dataset and question: a headline (how many models came out as the question expected), then one sentence
per model with the outcome, Δ% and absolute Δ with their 1 − 2α intervals, the Holm p and the family's
size, the seeds and users used, and the seeds equivalence would need. Nothing here decides anything: the
words are the outcomes' words.
"""

from __future__ import annotations

import math

import pandas as pd

from mmrec.report.model import Report
from mmrec.report.settings import Question


def p_text(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def outcome_words(outcome: str, delta: float) -> str:
    margin = f"{100 * delta:g}%"
    return {
        "equivalent": f"equivalent within ±{margin}",
        "worse": f"worse by more than {margin}",
        "better": f"better by more than {margin}",
    }.get(outcome, "inconclusive")


def interval_text(value: float, low: float, high: float, fmt: str, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:{fmt}}{unit}"
    if low is not None and math.isfinite(low) or high is not None and math.isfinite(high):
        text += f" [{low:{fmt}}, {high:{fmt}}]"
    return text


def delta_words(cell: pd.Series | dict, level: float) -> str:
    """``Δ% = -12.3% [90% CI -14.0, -10.6], Δ = -0.0123 [-0.0140, -0.0106]``."""
    pct = interval_text(cell["delta_pct"], cell["ci_low"], cell["ci_high"], "+.1f", "%")
    ab = interval_text(cell["delta_abs"], cell["delta_abs_low"], cell["delta_abs_high"], "+.4f")
    return f"Δ% = {pct} ({level:.0%} CI), Δ = {ab}"


def _design_words(cell: pd.Series) -> str:
    if cell["design"] == "none":
        return "no test (fewer than 2 seeds)"
    users = f" × {int(cell['n_users'])} users" if cell["unit"] != "seeds" else " (no per-user files)"
    return f"{int(cell['n_seeds_used'])} {cell['design']} seeds{users}"


def cell_sentence(cell: pd.Series, report: Report) -> str:
    s = report.settings
    who = f"{cell['model']} `{cell['condition']}`"
    words = outcome_words(cell["outcome"], s.delta)
    if cell["note"]:
        words += f" ({cell['note']})"
    holm = (
        f"Holm {p_text(cell['p_holm'])} for '{cell['claim']}' over {int(cell['family_size'])} "
        f"cell{'s' * (cell['family_size'] != 1)}"
        if math.isfinite(cell["p_holm"])
        else "untested"
    )
    need = cell["seeds_needed"]
    power = (
        ""
        if not isinstance(need, float) or math.isnan(need)
        else (
            "; no number of seeds shows equivalence at this spread"
            if math.isinf(need)
            else f"; equivalence within ±{100 * s.delta:g}% needs ≥ {int(need)} seeds at this spread"
        )
    )
    return f"{who}: {words}; {delta_words(cell, s.level)}; {holm}; {_design_words(cell)}{power}."


def question_cells(report: Report, dataset: str, question: Question) -> pd.DataFrame:
    cells = report.cells
    return cells[(cells["dataset"] == dataset) & (cells["family"] == question.family)]


def _question_sentences(report: Report, dataset: str, q: Question) -> list[str]:
    s = report.settings
    head = f"**{q.subject} on {dataset}** (declared: {outcome_words(q.expect, s.delta)})"
    sel = question_cells(report, dataset, q)
    if sel.empty:
        return [f"{head}: not measured (no `{q.condition}` cell with a full reference)."]
    hits = [c["model"] for _, c in sel.iterrows() if c["outcome"] == q.expect]
    summary = f"{head}: {outcome_words(q.expect, s.delta)} for {len(hits)} of {len(sel)} model" + (
        "s" * (len(sel) != 1)
    )
    summary += f" ({', '.join(hits)})." if hits else "."
    return [summary, *(cell_sentence(c, report) for _, c in sel.iterrows())]


def research_answers(report: Report) -> dict[str, list[str]]:
    """Dataset → Markdown sentences answering its declared questions, with their numbers and caveats."""
    out: dict[str, list[str]] = {}
    for dataset in report.datasets:
        questions = report.questions.get(dataset, ())
        lines: list[str] = []
        for q in questions:
            lines += _question_sentences(report, dataset, q)
        if not questions:
            lines.append(f"**{dataset}**: no research question declared (`report.questions`).")
        cells = report.cells[report.cells["dataset"] == dataset]
        n_missing = int((report.incomplete["dataset"] == dataset).sum())
        caveat = (
            f"Caveats: {cells['n_seeds'].min()}–{cells['n_seeds'].max()} seeds per cell; the unit is the "
            f"training run (users of one test split folded in as a random effect); questions from "
            f"{report.questions_source}; these answers hold for {dataset} with encoder "
            f"{', '.join(sorted(map(str, cells['encoder'].unique())))} and protocol "
            f"{', '.join(sorted(map(str, cells['protocol'].unique())))}, not beyond."
        )
        if n_missing:
            caveat += f" {n_missing} incomplete or missing entr{'ies' if n_missing != 1 else 'y'} (see Incomplete)."
        out[dataset] = [*lines, caveat]
    return out


def answer_lines(report: Report) -> list[str]:
    """One plain line per (dataset, question): ``tiktok · audio alone: vbpr worse by more than 2% -8.1% [...]``."""
    s = report.settings
    lines = []
    for dataset in report.datasets:
        for q in report.questions.get(dataset, ()):
            sel = question_cells(report, dataset, q)
            parts = []
            for _, c in sel.iterrows():
                pct = interval_text(c["delta_pct"], c["ci_low"], c["ci_high"], "+.1f", "%")
                note = f" ({c['note']})" if c["note"] else ""
                parts.append(f"{c['model']} {outcome_words(c['outcome'], s.delta)}{note}: {pct}")
            body = "; ".join(parts) if parts else "not measured"
            lines.append(f"{dataset} · {q.subject} (declared {q.expect}): {body}")
    return lines
