"""The report's model: cells, their references and the tables a comparison is computed on (no statistics).

A **cell** is every completed run of one (dataset, model, condition): one value per run seed (the run's test
value of the metric from its ``summary.json``) and, where the runs wrote them, per-user values
(``[users, seeds]``). Shown: mean ± sample std (``ddof=1``) over seeds.

The **reference** of a cell is the ``full`` cell of the same (dataset, model) (see
:mod:`mmrec.report.conditions`). A **comparison** of a cell with its reference uses:

- seeds: the seeds both cells have, paired by seed (run seed *s* against run seed *s*) when there are at
  least 2; otherwise every seed of each, unpaired, when each has at least 2; otherwise none (no test);
- users: when every one of those runs has per-user values, the users present in all of them
  (``[seeds, users]`` tables, unit "seeds × users"); otherwise the runs' means (``[seeds, 1]``, unit "seeds").

The point estimate and the interval are both computed on exactly these tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.report.conditions import order_conditions
from mmrec.report.settings import Question, ReportSettings

INCOMPLETE_COLUMNS = ["dataset", "model", "condition", "seed", "kind", "detail", "path"]
CELL_COLUMNS = [
    "dataset",
    "model",
    "condition",
    "base_label",
    "is_full",
    "encoder",
    "protocol",
    "freeze_features",
    "knockout_phase",
    "transfer",
    "seeds",
    "n_seeds",
    "mean",
    "std",
    "seed_values",
    "_per_user",
]


@dataclass
class Report:
    """The computed report (pure data); :mod:`mmrec.report.write` writes it."""

    folder: Path
    settings: ReportSettings
    runs: pd.DataFrame  # one row per collected run (any status), with its condition label and metric value
    cells: pd.DataFrame  # one row per (dataset, model, condition): numbers, Δ, interval, tests, outcome
    seed_values: pd.DataFrame  # dataset, model, condition, seed, value (the runs each cell averages)
    val_curves: pd.DataFrame  # dataset, model, condition, seed, epoch, value
    incomplete: pd.DataFrame  # dataset, model, condition, seed, kind, detail, path
    ignored: pd.DataFrame  # summary_path, role, reason (trials, superseded singles)
    questions: dict[str, tuple[Question, ...]] = field(default_factory=dict)  # dataset → its questions
    questions_source: str = ""  # where the questions came from (recorded config, study config, settings)
    answers: dict[str, list[str]] = field(default_factory=dict)  # dataset → sentences (Markdown)
    files: dict[str, Path] = field(default_factory=dict)  # filled by write_report

    @property
    def metric(self) -> str:
        return self.settings.metric

    @property
    def datasets(self) -> list[str]:
        return sorted(self.cells["dataset"].unique()) if not self.cells.empty else []

    def conditions(self, dataset: str | None = None) -> list[str]:
        cells = self.cells if dataset is None else self.cells[self.cells["dataset"] == dataset]
        return order_conditions(cells["condition"], self.modality_order)

    @property
    def modality_order(self) -> list[str]:
        return modality_order(self.runs)


def modality_order(runs: pd.DataFrame) -> list[str]:
    """Modalities in the order the runs record them (first seen first)."""
    seen: dict[str, None] = {}
    for mods in runs.get("modalities", []):
        seen.update(dict.fromkeys(mods))
    return list(seen)


def incomplete_row(**row: Any) -> dict[str, Any]:
    return {c: row.get(c) for c in INCOMPLETE_COLUMNS}


def make_cells(used: pd.DataFrame, per_user: dict[int, pd.Series]) -> pd.DataFrame:
    """One row per (dataset, model, condition) of the used runs: seeds, values, mean, std, per-user table."""
    rows = []
    for (dataset, model, condition), grp in used.groupby(["dataset", "model", "condition"], sort=True):
        grp = grp.sort_values("seed")
        values = grp["value"].to_numpy(dtype=float)
        user_series = [per_user[i].rename(int(s)) for i, s in zip(grp.index, grp["seed"]) if i in per_user]
        users_by_seed = pd.concat(user_series, axis=1) if user_series else None  # [users, seeds]
        first = grp.iloc[0]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "condition": condition,
                "base_label": first.base_label,
                "is_full": bool(first.is_full),
                "encoder": first.encoder,
                "protocol": first.protocol,
                "freeze_features": first.freeze_features,
                "knockout_phase": first.knockout_phase,
                "transfer": bool(first.transfer),
                "seeds": [int(s) for s in grp["seed"]],
                "n_seeds": len(grp),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "seed_values": dict(zip((int(s) for s in grp["seed"]), values.tolist())),
                "_per_user": users_by_seed,
            }
        )
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def reference_of(cells: pd.DataFrame, cell: pd.Series) -> pd.Series | None:
    """The full cell of the same (dataset, model), preferring the same encoder, protocol and freeze setting."""
    cands = cells[(cells["dataset"] == cell["dataset"]) & (cells["model"] == cell["model"]) & cells["is_full"]]
    if cands.empty:
        return None
    same = sum((cands[f].astype(str) == str(cell[f])).astype(int) for f in ("encoder", "protocol", "freeze_features"))
    plain = (cands["condition"] == "full").astype(int)
    return cands.loc[(same * 2 + plain).sort_values(ascending=False, kind="stable").index[0]]


@dataclass(frozen=True)
class Comparison:
    """The tables one comparison is computed on (``[seeds, users]``, same users; see the module doc)."""

    cond: np.ndarray
    full: np.ndarray
    paired: bool
    seeds_cond: tuple[int, ...]
    seeds_full: tuple[int, ...]
    unit: str  # "seeds × users" | "seeds"

    @property
    def n_users(self) -> int:
        return int(self.cond.shape[1]) if self.unit != "seeds" else 0

    @property
    def n_seeds(self) -> int:
        """Seeds per condition (paired: the shared seeds; unpaired: the smaller of the two)."""
        return min(len(self.seeds_cond), len(self.seeds_full))


def _has_seeds(users_by_seed: pd.DataFrame | None, seeds: list[int]) -> bool:
    return users_by_seed is not None and all(s in users_by_seed.columns for s in seeds)


def comparison(cell: pd.Series, ref: pd.Series) -> Comparison | None:
    """The seeds and users a cell is compared with its reference on; None when there are too few seeds."""
    c_vals, f_vals = cell["seed_values"], ref["seed_values"]
    common = sorted(set(c_vals) & set(f_vals))
    if len(common) >= 2:
        seeds_c = seeds_f = common
        paired = True
    elif len(c_vals) >= 2 and len(f_vals) >= 2:
        seeds_c, seeds_f, paired = sorted(c_vals), sorted(f_vals), False
    else:
        return None
    cu, fu = cell["_per_user"], ref["_per_user"]
    if _has_seeds(cu, seeds_c) and _has_seeds(fu, seeds_f):
        joined = pd.concat([cu[seeds_c].add_prefix("c"), fu[seeds_f].add_prefix("f")], axis=1, join="inner")
        joined = joined.dropna()
        if len(joined) >= 2:
            cond = joined[[f"c{s}" for s in seeds_c]].to_numpy(dtype=float).T
            full = joined[[f"f{s}" for s in seeds_f]].to_numpy(dtype=float).T
            return Comparison(cond, full, paired, tuple(seeds_c), tuple(seeds_f), "seeds × users")
    cond = np.array([[c_vals[s]] for s in seeds_c], dtype=float)
    full = np.array([[f_vals[s]] for s in seeds_f], dtype=float)
    return Comparison(cond, full, paired, tuple(seeds_c), tuple(seeds_f), "seeds")
