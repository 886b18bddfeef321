"""Fake study folders for the report tests: schema-valid summaries + per-user CSVs with known numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec import summary as summary_io

DATASET = "synth"
MODALITIES = ("text", "image")
MODELS = ("vbpr", "freedom")
CONDITIONS = {
    "full": {"text": "keep", "image": "keep"},
    "text-only": {"text": "keep", "image": "noise"},
    "image-only": {"text": "noise", "image": "keep"},
}
IMAGE_ONLY_SHIFT = -0.12  # image alone loses; text alone ≈ full (see per_user_frame)
SEEDS = (1, 2)
N_USERS = 60
METRICS = ("recall@20", "ndcg@20", "ndcg@10")
N_EPOCHS = 5


def make_summary(
    *,
    run_dir: Path,
    model: str,
    knockout: dict[str, str],
    seed: int,
    test: dict[str, float],
    role: str = "repeat",
    status: str = "completed",
    phase: str = "train",
    transfer_from: str | None = None,
    dataset: str = DATASET,
    modalities: tuple[str, ...] = MODALITIES,
    per_user: str | None = "per_user_test.csv",
    val_curve: str | None = "val_curve.csv",
    study: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """A summary with every required field of the schema filled."""
    return {
        "schema_version": 1,
        "role": role,
        "status": status,
        "error": error,
        "study": study or f"{dataset}-{model}-{'-'.join(f'{m}_{s}' for m, s in knockout.items())}",
        "trial_number": 0 if role == "trial" else None,
        "transfer_from": transfer_from,
        "condition": {
            "dataset": dataset,
            "model": model,
            "encoder": "precomputed",
            "knockout": dict(knockout),
            "knockout_phase": phase,
            "freeze_features": None,
            "protocol": "mmrec",
            "modalities": list(modalities),
        },
        "seeds": {"seed": 0, "split": 0, "run": seed, "knockout": seed},
        "hashes": {"interactions": "abc", "features": "def"},
        "config": {},
        "hparams": {},
        "dataset_stats": {"n_users": N_USERS, "n_items": 100, "n_train": 800, "n_val": 100, "n_test": 100},
        "best_epoch": 3,
        "epochs_run": N_EPOCHS,
        "monitor": "val/recall@20",
        "metrics": {"val": {"recall@20": 0.1}, "test": dict(test)},
        "n_eval_users": {"test": N_USERS},
        "timing": {"fit_s": 1.0},
        "memory": {"peak_mb": None},
        "versions": {"mmrec": "0.1.0"},
        "git_sha": None,
        "paths": {
            "run_dir": str(run_dir),
            "per_user_metrics": per_user,
            "checkpoint": None,
            "val_curve": val_curve,
        },
        "created": f"2026-01-01T00:00:{seed:02d}",
    }


def per_user_frame(model: str, condition: str, seed: int) -> pd.DataFrame:
    """Known per-user metrics on a 0.05 grid (many exact ties and zero differences, as in real top-K metrics).

    full: user difficulty shared by a model's cells + seed noise; text-only: the same seed's full values with
    6 users moved by ±0.05 (text carries the signal); image-only: full shifted down with extra noise.
    """
    m_idx = MODELS.index(model) if model in MODELS else 7
    base = np.random.default_rng([11, m_idx]).choice([0.0, 0.0, 0.2, 0.4, 0.6, 0.8], size=N_USERS)
    full = base + np.random.default_rng([m_idx, seed]).normal(0, 0.04, N_USERS)
    rng = np.random.default_rng([m_idx, list(CONDITIONS).index(condition), seed])
    if condition == "text-only":
        full[rng.choice(N_USERS, 6, replace=False)] += rng.choice([-0.05, 0.05], 6)
    elif condition == "image-only":
        full += IMAGE_ONLY_SHIFT + rng.normal(0, 0.04, N_USERS)
    recall = np.clip(np.round(full / 0.05) * 0.05, 0.0, 1.0)
    frame = pd.DataFrame({"user": np.arange(N_USERS) * 3 + 5})  # user ids are not 0..n-1
    frame["recall@20"] = recall
    frame["ndcg@20"] = np.clip(recall * 0.7 + 0.01 * seed, 0, 1)
    frame["ndcg@10"] = np.clip(recall * 0.6, 0, 1)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # row order is not user order


@dataclass
class FakeStudy:
    root: Path
    per_user: dict[tuple[str, str, int], pd.DataFrame] = field(default_factory=dict)
    test_values: dict[tuple[str, str, int], dict[str, float]] = field(default_factory=dict)
    run_dirs: dict[tuple[str, str, int], Path] = field(default_factory=dict)

    def add_run(
        self,
        model: str,
        condition: str,
        seed: int,
        *,
        status: str = "completed",
        role: str = "repeat",
        knockout: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Path:
        sub = "trials/0" if role == "trial" else f"repeats/seed={seed}"
        run_dir = self.root / f"{DATASET}_{model}_{condition}{kwargs.pop('suffix', '')}" / sub
        run_dir.mkdir(parents=True, exist_ok=True)
        knockout = knockout or CONDITIONS[condition]
        if status != "completed":
            summary = make_summary(
                run_dir=run_dir,
                model=model,
                knockout=knockout,
                seed=seed,
                test={},
                status=status,
                role=role,
                per_user=None,
                val_curve=None,
                error="RuntimeError: out of memory",
                **kwargs,
            )
            summary_io.write(summary, run_dir)
            return run_dir
        frame = per_user_frame(model, condition, seed)
        test = {m: float(frame[m].mean()) for m in METRICS}
        # vbpr records paths relative to the run dir, freedom absolute ones; val-curve columns differ too
        absolute = model == "freedom"
        frame.to_csv(run_dir / "per_user_test.csv", index=False)
        epochs = np.arange(N_EPOCHS)
        curve = pd.DataFrame({"epoch": epochs})
        prefix = "" if absolute else "val/"
        for m in METRICS:
            curve[f"{prefix}{m}"] = test[m] * (1 - 0.5 ** (epochs + 1)) + 0.001 * seed
        curve.to_csv(run_dir / "val_curve.csv", index=False)
        summary = make_summary(
            run_dir=run_dir,
            model=model,
            knockout=knockout,
            seed=seed,
            test=test,
            role=role,
            per_user=str(run_dir / "per_user_test.csv") if absolute else "per_user_test.csv",
            val_curve=str(run_dir / "val_curve.csv") if absolute else "val_curve.csv",
            **kwargs,
        )
        summary_io.write(summary, run_dir)
        if role != "trial":
            self.per_user[(model, condition, seed)] = frame
            self.test_values[(model, condition, seed)] = test
            self.run_dirs[(model, condition, seed)] = run_dir
        return run_dir

    def seeds(self, model: str, condition: str) -> list[int]:
        """The seeds of the cell's completed runs."""
        return sorted(s for (m, c, s) in self.test_values if (m, c) == (model, condition))

    def user_mean(self, model: str, condition: str, seeds: list[int], metric: str = "recall@20") -> pd.Series:
        """Per-user metric averaged over ``seeds``, indexed by user."""
        series = [self.per_user[(model, condition, s)].set_index("user")[metric] for s in seeds]
        return pd.concat(series, axis=1).mean(axis=1).sort_index()


def build_study(root: Path, defects: bool = True) -> FakeStudy:
    """2 models × 3 conditions × 2 seeds; with ``defects``: freedom image-only seed 2 failed, vbpr text-only
    seed 2 never ran, and two trial summaries (one with an absurd 0.99 test value) that must be ignored."""
    study = FakeStudy(root)
    for model in MODELS:
        for condition in CONDITIONS:
            for seed in SEEDS:
                if defects and (model, condition, seed) == ("freedom", "image-only", 2):
                    study.add_run(model, condition, seed, status="failed")
                elif defects and (model, condition, seed) == ("vbpr", "text-only", 2):
                    continue
                else:
                    study.add_run(model, condition, seed)
    if defects:
        trial_dir = study.add_run("vbpr", "full", 7, role="trial")
        s = summary_io.read(trial_dir)
        s["metrics"]["test"] = {"recall@20": 0.99}
        summary_io.write(s, trial_dir)
        study.add_run("vbpr", "full", 8, role="trial", knockout={"text": "noise", "image": "noise"}, suffix="_all")
    return study
