"""A small real sweep: train.py, BPR on the synthetic set, 2 epochs per trial (slow: real training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mmrec.sweeps.storage import open_storage, resolve_url

REPO = Path(__file__).resolve().parents[2]
STUDY = "synthetic__bpr__precomputed__ko=none@train__freeze=default__protocol=ours"
BASE = [
    "-m",
    "hydra/sweeper=mmrec_optuna",
    "model=bpr",
    "dataset=synthetic",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
]


def sweep(cwd: Path, *overrides: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *BASE, *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]


@pytest.mark.slow
def test_real_sweep_trials_validate_only_and_prune(tmp_path: Path) -> None:
    sweep(tmp_path, "hydra.sweeper.n_trials=3", "hydra/sweeper/pruner=none")
    storage = open_storage(resolve_url(None, tmp_path / "outputs"))
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trials = study.trials
    assert sorted(t.number for t in trials) == [0, 1, 2] and all(t.state == TrialState.COMPLETE for t in trials)
    assert study.best_value == max(t.value for t in trials)
    for t in trials:
        run_dir = tmp_path / "outputs" / STUDY / "trials" / str(t.number)
        record = json.loads((run_dir / "summary.json").read_text())
        assert record["role"] == "trial" and record["status"] == "completed"
        assert record["study"] == STUDY and record["trial_number"] == t.number
        assert record["metrics"]["test"] == {} and not (run_dir / "per_user_test.csv").exists()  # no test
        assert record["metrics"]["val"]["recall@20"] == pytest.approx(t.value)
        assert record["hparams"]["reg_weight"] == pytest.approx(t.params["model.reg_weight"])
        assert 1e-5 <= t.params["model.reg_weight"] <= 2.0  # conf/hparams_search/bpr.yaml
    # a pruner no trial can satisfy: every trial stops after its first validation and is recorded PRUNED
    sweep(
        tmp_path,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.study_name=bpr-pruned",
        "hydra/sweeper/pruner=threshold",
        "hydra.sweeper.pruner.lower=1.0",
    )
    pruned = optuna.load_study(study_name="bpr-pruned", storage=storage).trials
    assert [t.state for t in pruned] == [TrialState.PRUNED, TrialState.PRUNED]
    assert all(list(t.intermediate_values) == [0] for t in pruned)
    for t in pruned:
        record = json.loads(
            (tmp_path / "outputs" / "bpr-pruned" / "trials" / str(t.number) / "summary.json").read_text()
        )
        assert record["status"] == "pruned" and record["metrics"]["test"] == {}
