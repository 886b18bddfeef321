"""Tables of the report: the knockout table (wide) and the statistics (long), as CSV, Markdown and LaTeX.

Knockout cell text: ``mean ± std`` over seeds (``(n=1)`` instead of the std for a single seed), then, for
non-reference cells, ``Δ% [CI low, CI high]`` (the 1 − 2α interval the decision reads), the outcome's
mark (``≈`` equivalent within ±δ, ``↓`` worse by more than δ, ``↑`` better by more than δ, none:
inconclusive; see :mod:`mmrec.report.statistics`) and the absolute ``Δ [low, high]`` in metric units.
A condition a model lacks shows ``—``; one recorded as not applicable (a test-time knockout of a model that
uses no features at inference) shows ``n/a``.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from mmrec.report.model import Report

MISSING = "—"
NOT_APPLICABLE = "n/a"


def slug(metric: str) -> str:
    """File-name form of a metric: ``recall@20`` → ``recall_at_20``."""
    return metric.replace("@", "_at_").replace("/", "_")


def mean_std_text(mean: float, std: float, n_seeds: int) -> str:
    return f"{mean:.4f} (n=1)" if n_seeds < 2 or not math.isfinite(std) else f"{mean:.4f} ± {std:.4f}"


def delta_text(delta: float, low: float, high: float, mark: str = "") -> str:
    """``-3.2% [-4.1, -2.3]↓`` (interval omitted when unknown; ``±inf`` when unbounded)."""
    if delta is None or not math.isfinite(delta):
        return ""
    text = f"{delta:+.1f}%"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{low:+.1f}, {high:+.1f}]"
    return text + (mark or "")


def abs_delta_text(delta: float, low: float, high: float) -> str:
    """``Δ -0.0040 [-0.0051, -0.0029]`` (metric units); ``""`` when unknown."""
    if delta is None or not math.isfinite(delta):
        return ""
    text = f"Δ {delta:+.4f}"
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        text += f" [{low:+.4f}, {high:+.4f}]"
    return text


def cell_text(cell: pd.Series | dict, sep: str = " ") -> str:
    """``mean ± std``, then (compared cells) ``Δ% [interval]mark`` and ``Δ abs [interval]``, joined by ``sep``."""
    parts = [mean_std_text(cell["mean"], cell["std"], cell["n_seeds"])]
    pct = delta_text(cell["delta_pct"], cell["ci_low"], cell["ci_high"], cell["mark"])
    if pct:
        parts += [pct, abs_delta_text(cell["delta_abs"], cell["delta_abs_low"], cell["delta_abs_high"])]
    return sep.join(p for p in parts if p)


def knockout_table(report: Report, kind: str = "text", sep: str = " ") -> pd.DataFrame:
    """Rows (dataset, model) × condition columns.

    ``kind``: ``text`` (mean ± std and Δ% with interval and mark, joined by ``sep``), ``mean``, ``std``,
    ``delta`` (Δ% vs the reference), ``ci_low``, ``ci_high``, ``n_seeds``, ``mark``, ``outcome``.
    """
    cells = report.cells
    columns = report.conditions()
    index = pd.MultiIndex.from_tuples(
        list(dict.fromkeys(zip(cells["dataset"], cells["model"]))), names=["dataset", "model"]
    )
    if kind == "text":
        values = [cell_text(c, sep) for _, c in cells.iterrows()]
        fill: object = MISSING
    else:
        field = {"delta": "delta_pct"}.get(kind, kind)
        if field not in cells:
            raise KeyError(f"unknown table kind '{kind}'")
        values = cells[field].tolist()
        fill = "" if kind in ("mark", "outcome") else math.nan
    long = pd.DataFrame(
        {
            "dataset": cells["dataset"],
            "model": cells["model"],
            "condition": cells["condition"],
            "value": values,
        }
    )
    wide = long.pivot(index=["dataset", "model"], columns="condition", values="value")
    wide = wide.reindex(index=index, columns=columns)
    wide.columns.name = None
    if kind not in ("text", "mark", "outcome"):
        return wide
    wide = wide.astype(object).fillna(fill)
    if kind == "text":  # conditions recorded as not applicable (e.g. no features used at inference)
        runs = report.runs
        na = runs["note"].map(lambda n: isinstance(n, str) and n.startswith("not applicable"))
        for d, m, c in zip(runs.loc[na, "dataset"], runs.loc[na, "model"], runs.loc[na, "condition"]):
            if (d, m) in wide.index and c in wide.columns and wide.loc[(d, m), c] == MISSING:
                wide.loc[(d, m), c] = NOT_APPLICABLE
    return wide


def cells_frame(report: Report) -> pd.DataFrame:
    """The long numeric table of cells (CSV-ready: lists and dicts as text, no per-user arrays)."""
    cells = report.cells.drop(columns=["_per_user"], errors="ignore").copy()
    if not cells.empty:
        cells["seeds"] = cells["seeds"].map(lambda s: ";".join(map(str, s)))
        cells["seed_values"] = cells["seed_values"].map(lambda d: json.dumps({str(k): v for k, v in d.items()}))
    cells.insert(3, "metric", report.metric)
    return cells


# ---------------------------------------------------------------------------------------------- Markdown
def _md_escape(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def to_markdown(frame: pd.DataFrame, float_format: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table (index levels become the first columns)."""
    flat = frame.reset_index() if _has_named_index(frame) else frame
    header = [str(c) for c in flat.columns]
    lines = ["| " + " | ".join(map(_md_escape, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in flat.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(_value_text(v, float_format)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _has_named_index(frame: pd.DataFrame) -> bool:
    return any(name is not None for name in frame.index.names)


def _value_text(v: object, float_format: str) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else format(v, float_format)
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------------------------- LaTeX
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "—": "---",
    "†": r"$^\dagger$",
    "Δ": r"$\Delta$",
    "≈": r"$\approx$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "∞": r"$\infty$",
    "δ": r"$\delta$",
    "−": "-",
    "<": r"$<$",
    ">": r"$>$",
}


def latex_escape(text: object) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def _latex_cell(text: str) -> str:
    parts = [latex_escape(p) for p in text.split("\n")]
    if len(parts) == 1:
        return parts[0]
    return r"\begin{tabular}[c]{@{}c@{}}" + r" \\ ".join(parts) + r"\end{tabular}"


def to_latex(frame: pd.DataFrame, caption: str = "", label: str = "", float_format: str = ".4g") -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``); cells with newlines become stacked lines."""
    flat = frame.reset_index() if _has_named_index(frame) else frame
    cols = [str(c) for c in flat.columns]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "l" * min(2, len(cols)) + "c" * max(0, len(cols) - 2) + "}",
        r"\toprule",
        " & ".join(_latex_cell(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    for row in flat.itertuples(index=False):
        lines.append(" & ".join(_latex_cell(_value_text(v, float_format)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def caption(report: Report) -> str:
    s = report.settings
    return (
        f"Test {report.metric}: mean ± std over seeds; Δ% vs full with its {s.level:.0%} interval (crossed "
        f"seeds × users model, paired by seed; the interval the decision reads). Marks, after Holm within "
        f"each declared question's family: ≈ equivalent within ±{100 * s.delta:g}%, ↓ worse by more than "
        f"{100 * s.delta:g}%, ↑ better by more than {100 * s.delta:g}%, none: inconclusive (α = {s.alpha:g})."
    )


def delta_table(report: Report) -> pd.DataFrame:
    """One row per compared cell: Δ% [interval], absolute Δ [interval], outcome, seeds (needed) — compact."""
    cells = report.cells
    rows = []
    for c in cells[~cells["is_full"]].itertuples() if not cells.empty else []:
        if c.reference is None or pd.isna(c.reference):
            continue
        need = c.seeds_needed
        rows.append(
            {
                "dataset": c.dataset,
                "model": c.model,
                "condition": c.condition,
                "delta_pct": delta_text(c.delta_pct, c.ci_low, c.ci_high),
                "delta_abs": abs_delta_text(c.delta_abs, c.delta_abs_low, c.delta_abs_high).removeprefix("Δ "),
                "outcome": c.outcome + (f" ({c.note})" if c.note else ""),
                "seeds": c.n_seeds_used,
                "seeds_needed": "" if math.isnan(need) else ("∞" if math.isinf(need) else int(need)),
                "family": c.family,
            }
        )
    cols = ["dataset", "model", "condition", "delta_pct", "delta_abs", "outcome", "seeds", "seeds_needed"]
    return pd.DataFrame(rows, columns=[*cols, "family"])


def answers_markdown(report: Report) -> str:
    lines = [f"# Research questions ({report.metric})", ""]
    for dataset, sentences in report.answers.items():
        lines += [f"## {dataset}", ""] + [f"- {s}" for s in sentences] + [""]
    return "\n".join(lines)
