"""The decision rule: every test declared once (:data:`TESTS`), families, Holm, the four-way outcome.

For each non-reference cell, on the tables of :func:`mmrec.report.model.comparison` (the training run is
the unit; users folded in as a crossed random effect, see :mod:`mmrec.report.stats`):

1. the three margin tests of :data:`TESTS` (worse / better / equivalent at δ relative to full);
2. the cell's **claim** is the test with the smallest p (at most one has p < 0.5) and its p the cell's
   decision p-value;
3. **families**: a cell answering a declared question (train-phase, non-transfer cell whose base label is the
   question's condition, on a dataset that declares it) belongs to that question's family, across datasets
   and models; every other cell (test-time, transfer, all-noise, ...) to its dataset's ``other`` family, so
   extra conditions never weaken the answers;
4. Holm–Bonferroni over each family's decision p-values; the **outcome** is the claim when its Holm p < α,
   else ``inconclusive``; ``equivalent`` also needs at least :func:`~mmrec.report.stats.seeds_needed` seeds
   (for the observed spread), else it is reported as ``inconclusive`` with the number of seeds it needs;
5. the table's mark is the outcome's symbol (:data:`MARKS`), the same rule everywhere a word is printed.

Shown with every cell: absolute Δ and Δ% with their 1 − 2α intervals (the interval the decision reads).
The Wilcoxon signed-rank over users is descriptive only (it ignores seed-to-seed variance and decides
nothing); its differences are rounded to the metric's resolution first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mmrec.report import stats
from mmrec.report.model import Comparison, Report, comparison, reference_of
from mmrec.report.settings import Question, ReportSettings

MARKS = {"equivalent": "≈", "worse": "↓", "better": "↑", "inconclusive": ""}


@dataclass(frozen=True)
class TestSpec:
    """One test of the report: its column in the cells, what it tests, its unit, what it decides."""

    key: str
    column: str
    name: str
    unit: str
    decides: str | None  # the outcome it can establish, None = descriptive


TESTS: tuple[TestSpec, ...] = (
    TestSpec("worse", "p_worse", "one-sided t, H0: cond >= (1 - delta) full", "runs (+ users)", "worse"),
    TestSpec("better", "p_better", "one-sided t, H0: cond <= (1 + delta) full", "runs (+ users)", "better"),
    TestSpec(
        "equivalent",
        "p_equivalent",
        "TOST, H0: cond <= (1 - delta) full or cond >= (1 + delta) full",
        "runs (+ users)",
        "equivalent",
    ),
    TestSpec(
        "wilcoxon_users",
        "p_wilcoxon_users",
        "Wilcoxon signed-rank over users (Pratt, rounded differences; descriptive)",
        "users",
        None,
    ),
)
DECIDING = tuple(t for t in TESTS if t.decides)
COMPARE_COLUMNS = [
    "reference",
    "design",
    "unit",
    "n_seeds_used",
    "n_users",
    "delta_abs",
    "delta_abs_low",
    "delta_abs_high",
    "delta_pct",
    "ci_low",
    "ci_high",
    "df",
    *(t.column for t in TESTS),
    "wilcoxon_stat",
    "rank_biserial",
    "seeds_needed",
    "claim",
    "p_claim",
    "family",
    "family_size",
    "p_holm",
    "outcome",
    "note",
    "mark",
]


def _empty_row() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COMPARE_COLUMNS, math.nan)
    row.update(reference=None, design="none", unit="none", n_seeds_used=0, n_users=0, claim="", family="")
    row.update(outcome="", note="", mark="")
    return row


def compare_tables(comp: Comparison, settings: ReportSettings, descriptive: bool = True) -> dict[str, Any]:
    """Δ, intervals, every test of :data:`TESTS` and the seeds needed for one comparison (no Holm).

    ``descriptive=False`` skips the tests that decide nothing (the simulations do)."""
    c, f = comp.cond, comp.full
    level = settings.level
    tables = stats.Crossed(c, f, comp.paired)
    est = tables.estimate(1.0)
    row: dict[str, Any] = {
        "design": "paired" if comp.paired else "unpaired",
        "unit": comp.unit,
        "n_seeds_used": comp.n_seeds,
        "n_users": comp.n_users,
        "delta_abs": est.estimate,
        "df": est.df,
        "delta_pct": stats.delta_pct(float(f.mean()), float(c.mean())),
    }
    row["delta_abs_low"], row["delta_abs_high"] = stats.difference_interval(tables, level)
    lo, hi = stats.ratio_interval(tables, level)
    row["ci_low"], row["ci_high"] = 100.0 * (lo - 1.0), 100.0 * (hi - 1.0)
    margin = stats.margin_tests(tables, settings.delta)
    row.update(p_worse=margin.p_worse, p_better=margin.p_better, p_equivalent=margin.p_equivalent)
    if comp.unit != "seeds" and descriptive:
        diff = c.mean(axis=0) - f.mean(axis=0)  # per user, averaged over the seeds
        row["wilcoxon_stat"], row["p_wilcoxon_users"] = stats.wilcoxon_users(diff)
        row["rank_biserial"] = stats.rank_biserial(stats.round_to_resolution(diff))
    else:
        row["wilcoxon_stat"] = row["p_wilcoxon_users"] = row["rank_biserial"] = math.nan
    row["seeds_needed"] = stats.seeds_needed(
        est.seed_var_one, est.user_var, settings.delta * float(f.mean()), settings.alpha, settings.power
    )
    ps = {t.decides: row[t.column] for t in DECIDING}
    finite = {k: p for k, p in ps.items() if math.isfinite(p)}
    if finite:
        row["claim"] = min(finite, key=finite.__getitem__)
        row["p_claim"] = finite[row["claim"]]
    return row


def question_for(cell: pd.Series, questions: dict[str, tuple[Question, ...]]) -> Question | None:
    """The declared question a cell answers (train phase, no transfer, base label = the condition)."""
    if cell["knockout_phase"] == "test" or bool(cell["transfer"]) or cell["is_full"]:
        return None
    for q in questions.get(cell["dataset"], ()):
        if q.condition == cell["base_label"]:
            return q
    return None


def compare(cells: pd.DataFrame, settings: ReportSettings, questions: dict[str, tuple[Question, ...]]) -> pd.DataFrame:
    """Add :data:`COMPARE_COLUMNS` to every cell (the module doc's steps 1–5)."""
    rows = []
    for _, cell in cells.iterrows():
        row = _empty_row()
        ref = None if cell["is_full"] else reference_of(cells, cell)
        if ref is not None:
            row["reference"] = ref["condition"]
            comp = comparison(cell, ref)
            if comp is not None:
                row.update(compare_tables(comp, settings))
            q = question_for(cell, questions)
            row["family"] = q.family if q else f"{cell['dataset']}: other cells"
        rows.append(row)
    out = pd.concat([cells.reset_index(drop=True), pd.DataFrame(rows, columns=COMPARE_COLUMNS)], axis=1)
    for _, idx in out[out["family"] != ""].groupby("family").groups.items():
        p = out.loc[idx, "p_claim"].to_numpy(dtype=float)
        out.loc[idx, "p_holm"] = stats.holm(p)
        out.loc[idx, "family_size"] = int(np.isfinite(p).sum())
    for i, r in out.iterrows():
        if r["is_full"] or r["reference"] is None:
            continue
        outcome, note = outcome_of(
            r["claim"], r["p_claim"], r["p_holm"], r["n_seeds_used"], r["seeds_needed"], settings.alpha
        )
        out.at[i, "outcome"], out.at[i, "note"], out.at[i, "mark"] = outcome, note, MARKS[outcome]
    return out


def outcome_of(
    claim: str, p_claim: float, p_holm: float, n_seeds: int, seeds_needed: float, alpha: float
) -> tuple[str, str]:
    """The four-way outcome and its note from a cell's claim, Holm p and power (module doc, step 4)."""
    if not math.isfinite(p_claim):
        return "inconclusive", "too few seeds to test"
    if not p_holm < alpha:
        return "inconclusive", ""
    if claim == "equivalent" and not n_seeds >= seeds_needed:
        return "inconclusive", f"underpowered: equivalence needs {_seeds_text(seeds_needed)}"
    return claim, ""


def _seeds_text(n: float) -> str:
    return "more seeds than users allow" if math.isinf(n) else f"{int(n)} seeds"


def statistics_table(report: Report) -> pd.DataFrame:
    """One row per (cell, test of :data:`TESTS`): unit, n, df, p, Holm p (the claimed test) and outcome."""
    rows = []
    cells = report.cells
    for cell in cells[~cells["is_full"]].itertuples() if not cells.empty else []:
        if cell.reference is None or pd.isna(cell.reference):
            continue
        for t in TESTS:
            rows.append(
                {
                    "dataset": cell.dataset,
                    "model": cell.model,
                    "condition": cell.condition,
                    "reference": cell.reference,
                    "family": cell.family,
                    "test": t.key,
                    "hypothesis": t.name.replace("delta", f"{report.settings.delta:g}"),
                    "unit": cell.unit if t.decides else "users",
                    "design": cell.design,
                    "n_seeds": cell.n_seeds_used,
                    "n_users": cell.n_users,
                    "df": cell.df if t.decides else math.nan,
                    "p": getattr(cell, t.column),
                    "p_holm": cell.p_holm if t.decides and t.decides == cell.claim else math.nan,
                    "family_size": cell.family_size if t.decides == cell.claim else math.nan,
                    "outcome": cell.outcome if t.decides else "",
                }
            )
    cols = [
        "dataset",
        "model",
        "condition",
        "reference",
        "family",
        "test",
        "hypothesis",
        "unit",
        "design",
        "n_seeds",
        "n_users",
        "df",
        "p",
        "p_holm",
        "family_size",
        "outcome",
    ]
    return pd.DataFrame(rows, columns=cols)
