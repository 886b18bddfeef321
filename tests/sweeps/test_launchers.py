"""Sweeps through Hydra's submitit launcher (``submitit_local`` here; ``submitit_slurm`` on a cluster)."""

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

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

REPO = Path(__file__).resolve().parents[2]
STUDY = "synthetic__bpr__precomputed__ko=none@train__freeze=default__protocol=ours"


@pytest.mark.slow
def test_optuna_trials_run_as_submitit_local_jobs(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            "hydra/sweeper=mmrec_optuna",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "hydra.launcher.cpus_per_task=1",
            "model=bpr",
            "dataset=synthetic",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "logger=none",
            "hydra.sweeper.n_trials=2",
            "hydra/sweeper/pruner=none",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    study = optuna.load_study(study_name=STUDY, storage=open_storage(resolve_url(None, tmp_path / "outputs")))
    assert sorted(t.number for t in study.trials) == [0, 1]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for t in study.trials:  # each trial ran in a submitit job (its own process) and wrote its record
        record = json.loads((tmp_path / "outputs" / STUDY / "trials" / str(t.number) / "summary.json").read_text())
        assert record["status"] == "completed" and record["metrics"]["val"]["recall@20"] == pytest.approx(t.value)
    assert list((tmp_path / "multirun" / ".submitit").glob("*/*_result.pkl"))  # submitit's own job records
