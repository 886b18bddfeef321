"""Plots of the report (matplotlib, rendered off-screen by Agg: no pyplot, no global backend change).

Sizes in pixels at ``DPI`` = 100 (the PNG has exactly this size):

- heat-map of Δ% per dataset (models × non-reference conditions):
  width = max(600, 200 + 110 · n_conditions), height = max(300, 140 + 60 · n_models);
- bars per (dataset, model) (mean ± std over seeds per condition, seeds as dots, marks above):
  width = max(500, 160 + 90 · n_conditions), height = 400;
- validation curves per (dataset, model) (mean over seeds per epoch, band = min..max over seeds): 640 × 420.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mmrec.atomic_io import atomic_write_bytes
from mmrec.report.model import Report
from mmrec.report.tables import delta_text, slug

DPI = 100
VAL_CURVE_SIZE = (640, 420)


def heatmap_size(n_models: int, n_conditions: int) -> tuple[int, int]:
    return max(600, 200 + 110 * n_conditions), max(300, 140 + 60 * n_models)


def bars_size(n_conditions: int) -> tuple[int, int]:
    return max(500, 160 + 90 * n_conditions), 400


def _figure(size_px: tuple[int, int]) -> Figure:
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def _dataset_cells(report: Report, dataset: str) -> pd.DataFrame:
    return report.cells[report.cells["dataset"] == dataset]


def heatmap_figure(report: Report, dataset: str) -> Figure | None:
    """Δ% of each (model, condition) vs its reference, coloured, annotated with Δ% and significance marks."""
    cells = _dataset_cells(report, dataset)
    compared = cells[~cells["is_full"]]
    if compared.empty:
        return None
    conditions = [c for c in report.conditions(dataset) if c in set(compared["condition"])]
    models = sorted(cells["model"].unique())
    delta = np.full((len(models), len(conditions)), np.nan)
    marks = np.full(delta.shape, "", dtype=object)
    intervals = np.full(delta.shape, "", dtype=object)
    pos_m, pos_c = {m: i for i, m in enumerate(models)}, {c: j for j, c in enumerate(conditions)}
    for c in compared.itertuples():
        delta[pos_m[c.model], pos_c[c.condition]] = c.delta_pct
        marks[pos_m[c.model], pos_c[c.condition]] = c.mark
        if not (math.isnan(c.ci_low) or math.isnan(c.ci_high)):
            intervals[pos_m[c.model], pos_c[c.condition]] = f"\n[{c.ci_low:+.1f}, {c.ci_high:+.1f}]"
    fig = _figure(heatmap_size(len(models), len(conditions)))
    ax = fig.add_subplot()
    finite = np.abs(delta[np.isfinite(delta)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(delta), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
    for i in range(len(models)):
        for j in range(len(conditions)):
            v = delta[i, j]
            text = "n/a" if not math.isfinite(v) else f"{v:+.1f}%{marks[i, j]}{intervals[i, j]}"
            dark = math.isfinite(v) and abs(v) > 0.6 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(conditions)), conditions, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(models)), models, fontsize=9)
    ax.set_title(
        f"{dataset}: Δ% of test {report.metric} vs full [{report.settings.level:.0%} interval]\n"
        f"≈ equivalent, ↓ worse, ↑ better by more than {100 * report.settings.delta:g}% (Holm per question)",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax, label="Δ% vs full")
    return fig


def bars_figure(report: Report, dataset: str, model: str) -> Figure | None:
    """Mean ± std over seeds per condition of one model, seeds as dots, Δ% and marks above the bars."""
    cells = _dataset_cells(report, dataset)
    cells = cells[cells["model"] == model]
    if cells.empty:
        return None
    order = {c: i for i, c in enumerate(report.conditions(dataset))}
    cells = cells.sort_values("condition", key=lambda s: s.map(order))
    fig = _figure(bars_size(len(cells)))
    ax = fig.add_subplot()
    x = np.arange(len(cells))
    means = cells["mean"].to_numpy(dtype=float)
    errs = np.nan_to_num(cells["std"].to_numpy(dtype=float))
    colors = ["#7f7f7f" if full else f"C{i % 10}" for i, full in enumerate(cells["is_full"])]
    ax.bar(x, means, yerr=errs, color=colors, capsize=4, alpha=0.85, edgecolor="black", linewidth=0.5)
    for xi, seed_values in zip(x, cells["seed_values"]):
        vals = np.array(list(seed_values.values()), dtype=float)
        offsets = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
        ax.scatter(xi + offsets, vals, s=12, color="black", zorder=3)
    top = float(np.nanmax(means + errs)) if len(means) else 1.0
    for xi, c in zip(x, cells.itertuples()):
        label = delta_text(c.delta_pct, math.nan, math.nan, c.mark)
        if label:
            ax.text(
                float(xi),
                c.mean + (0 if not math.isfinite(c.std) else c.std) + 0.02 * top,
                label,
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(x, cells["condition"].tolist(), rotation=30, ha="right", fontsize=9)
    ax.set_ylabel(f"test {report.metric}")
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
    ax.set_title(f"{dataset} · {model}: mean ± std over seeds", fontsize=10)
    return fig


def val_curves_figure(report: Report, dataset: str, model: str) -> Figure | None:
    """Validation metric per epoch, one line per condition (mean over seeds, band = min..max)."""
    curves = report.val_curves
    curves = curves[(curves["dataset"] == dataset) & (curves["model"] == model)]
    if curves.empty:
        return None
    fig = _figure(VAL_CURVE_SIZE)
    ax = fig.add_subplot()
    for i, cond in enumerate(c for c in report.conditions(dataset) if c in set(curves["condition"])):
        grp = curves[curves["condition"] == cond].groupby("epoch")["value"]
        agg = grp.agg(["mean", "min", "max"])
        color = "#4d4d4d" if cond == "full" else f"C{i % 10}"
        ax.plot(agg.index, agg["mean"], label=cond, color=color, linewidth=1.5)
        ax.fill_between(agg.index, agg["min"], agg["max"], color=color, alpha=0.15, linewidth=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {report.metric}")
    ax.set_title(f"{dataset} · {model}: validation curves (mean over seeds, band = min..max)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def figures(report: Report) -> dict[str, Figure]:
    """Every figure of the report by file stem (``heatmap_<dataset>``, ``bars_<dataset>_<model>``, ...)."""
    out: dict[str, Figure] = {}
    for dataset in report.datasets:
        fig = heatmap_figure(report, dataset)
        if fig is not None:
            out[f"heatmap_{safe_name(dataset)}"] = fig
        for model in sorted(_dataset_cells(report, dataset)["model"].unique()):
            for kind, build in (("bars", bars_figure), ("valcurve", val_curves_figure)):
                fig = build(report, dataset, model)
                if fig is not None:
                    out[f"{kind}_{safe_name(dataset)}_{safe_name(model)}"] = fig
    return out


def write_plots(report: Report, out: Path) -> dict[str, Path]:
    """Write every figure as ``<stem>_<metric>.png`` under ``out``; returns ``png:<stem>`` → path."""
    files = {}
    for stem, fig in figures(report).items():
        path = Path(out) / f"{stem}_{slug(report.metric)}.png"
        atomic_write_bytes(path, png_bytes(fig))
        files[f"png:{stem}"] = path
    return files
