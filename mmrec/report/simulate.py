"""Simulated knockout studies with a known true effect (no training), for calibrating the decision rule.

Generative model of one (dataset, model): users u have a true hit rate p_u ~ Beta(2, 18) and |R_u| ∈ 1..10
relevant test items; run (condition c, seed s) hits item i of user u when U_cs,ui < p_u · m_cs · g_cu, and
recall = hits / |R_u| (grid-valued, as real top-K metrics). The uniforms U_ui are the user's items'
"difficulty", shared by every run, except that a share ``run_noise`` of them is redrawn in each run (runs
disagree on some items, not on all). Here

- m_cs = (1 + Δ·[c = cond]) · (1 + a_cs), the seed effect a_cs ~ N(0, seed_sd²), a share ``seed_shared`` of
  its variance common to both conditions of seed s (same initialisation);
- g_cu = 1 + γ_u · [c = cond], γ_u ~ N(0, user_sd²): users react differently to the knockout.

So the true relative effect of cond vs full is Δ (up to clipping at 1, negligible here). :func:`write_study`
writes schema-valid ``summary.json`` + ``per_user_test.csv`` folders straight from the model;
:func:`simulate_tables` returns the same draws as ``[seeds, users]`` tables without touching the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec import summary as summary_io

CONDITIONS = {"full": {"text": "keep", "image": "keep"}, "text-only": {"text": "keep", "image": "noise"}}


@dataclass(frozen=True)
class StudyModel:
    """Parameters of the generative model (module doc)."""

    n_users: int = 1000
    seed_sd: float = 0.015  # seed-to-seed spread of a run's mean, relative
    seed_shared: float = 0.5  # share of the seed variance common to cond and full of the same seed
    user_sd: float = 0.05  # user × knockout interaction, relative
    run_noise: float = 0.01  # share of a user's item draws redrawn in each run


def simulate_tables(
    model: StudyModel, effect: float, n_seeds: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(cond, full)`` per-user recall tables ``[seeds, users]`` of one simulated (dataset, model)."""
    n_u = model.n_users
    p = rng.beta(2.0, 18.0, n_u)
    n_rel = rng.integers(1, 11, n_u)
    gamma = rng.normal(0.0, model.user_sd, n_u)
    shared = rng.normal(0.0, 1.0, n_seeds) * np.sqrt(model.seed_shared)
    own = rng.normal(0.0, 1.0, (2, n_seeds)) * np.sqrt(1.0 - model.seed_shared)
    seed_effect = model.seed_sd * (shared[None, :] + own)  # [condition, seed]
    items = np.arange(10)[None, :] < n_rel[:, None]  # [users, 10]: the user's relevant items
    difficulty = rng.random((n_u, 10))
    tables = []
    for ci, is_cond in enumerate((True, False)):
        m = (1.0 + effect * is_cond) * (1.0 + seed_effect[ci])  # [seeds]
        g = 1.0 + gamma * is_cond  # [users]
        table = np.empty((n_seeds, n_u))
        for s in range(n_seeds):
            redraw = rng.random((n_u, 10)) < model.run_noise
            u = np.where(redraw, rng.random((n_u, 10)), difficulty)
            rate = (p * m[s] * g)[:, None]
            table[s] = ((u < rate) & items).sum(axis=1) / n_rel
        tables.append(table)
    return tables[0], tables[1]


def _summary(run_dir: Path, dataset: str, model: str, condition: str, seed: int, value: float) -> dict:
    return {
        "schema_version": 1,
        "role": "repeat",
        "status": "completed",
        "error": None,
        "study": f"{dataset}-{model}-{condition}",
        "trial_number": None,
        "transfer_from": None,
        "condition": {
            "dataset": dataset,
            "model": model,
            "encoder": "precomputed",
            "knockout": dict(CONDITIONS[condition]),
            "knockout_phase": "train",
            "freeze_features": None,
            "protocol": "mmrec",
            "modalities": ["text", "image"],
        },
        "seeds": {"seed": 0, "split": 0, "run": seed, "knockout": seed},
        "hashes": {"interactions": "sim", "features": "sim"},
        "config": {},
        "hparams": {},
        "dataset_stats": {"n_users": 0, "n_items": 0, "n_train": 0, "n_val": 0, "n_test": 0},
        "best_epoch": 0,
        "epochs_run": 1,
        "monitor": "val/recall@20",
        "metrics": {"val": {}, "test": {"recall@20": value}},
        "n_eval_users": {"test": 0},
        "timing": {},
        "memory": {},
        "versions": {},
        "git_sha": None,
        "paths": {"run_dir": str(run_dir), "per_user_metrics": "per_user_test.csv", "val_curve": None},
        "created": f"2026-01-01T00:00:{seed % 60:02d}",
    }


def write_study(root: Path, cond: np.ndarray, full: np.ndarray, dataset: str = "sim", model: str = "m") -> Path:
    """Write one (dataset, model) of ``full`` and ``text-only`` runs, one per seed row, under ``root``."""
    users = np.arange(cond.shape[1])
    for condition, table in (("full", full), ("text-only", cond)):
        for s, row in enumerate(table, start=1):
            run_dir = root / f"{dataset}_{model}_{condition}" / f"seed={s}"
            run_dir.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"user": users, "recall@20": row}).to_csv(run_dir / "per_user_test.csv", index=False)
            value = float(row.mean())
            summary_io.write(_summary(run_dir, dataset, model, condition, s, value), run_dir)
    return root
