"""``python -m mmrec.sweeps.repeat``: the best trial over fresh seeds, and transfer repeats (toy app)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmrec.errors import ConfigError
from mmrec.sweeps.repeat import choose_seeds, merge_overrides
from tests.sweeps.toy import STUDY_QUAD, TOY, env, load_study, run_toy, summary_of


def repeat(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmrec.sweeps.repeat", "--script", str(TOY), *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_choose_seeds_never_reuses_the_tuning_seed() -> None:
    assert choose_seeds("5", 0) == [1, 2, 3, 4, 5]
    assert choose_seeds("3", 2) == [1, 3, 4]
    assert choose_seeds("7,9", 0) == [7, 9]
    with pytest.raises(ConfigError, match="tuning seed"):
        choose_seeds("1,2", 2)
    with pytest.raises(ConfigError):
        choose_seeds("0", 0)


def test_merge_overrides_replaces_by_key() -> None:
    base = ["model=freedom", "knockout=none", "trainer.max_epochs=5"]
    assert merge_overrides(base, ["knockout=text_noise", "+x=1"]) == [
        "model=freedom",
        "trainer.max_epochs=5",
        "knockout=text_noise",
        "+x=1",
    ]


def test_repeat_runs_the_best_trial_over_fresh_seeds_and_transfers(tmp_path: Path) -> None:
    # hparams_search chosen explicitly: it is one of the study's overrides and sets hydra.sweeper.* keys, which
    # the repeat's plain grid (hydra.sweeper.mode=grid, unlike hydra/sweeper=basic) must still compose
    run_toy(tmp_path, "hydra.sweeper.n_trials=3", "hydra/sweeper/pruner=none", "seed=1", "hparams_search=quad")
    best = load_study(STUDY_QUAD, cwd=tmp_path).best_trial
    proc = repeat(tmp_path, "--study", STUDY_QUAD, "--seeds", "2", "--transfer-to", "dataset.name=toy2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study_dir = tmp_path / "outputs" / STUDY_QUAD
    runs = sorted(p.name for p in (study_dir / "repeats").glob("seed=*"))
    assert runs == ["seed=2", "seed=3"]  # the tuning seed (1) is skipped
    for seed in (2, 3):
        record = summary_of(study_dir / "repeats" / f"seed={seed}")
        assert record["role"] == "repeat" and record["status"] == "completed" and record["seeds"]["seed"] == seed
        assert record["study"] == STUDY_QUAD and record["transfer_from"] is None
        assert record["hparams"] == best.params  # the best trial's parameters, unchanged
        assert record["metrics"]["test"]  # repeats do test
        assert record["seeds"]["split"] == 0
    target = "toy2" + STUDY_QUAD[len("toy") :]
    transfer_dir = tmp_path / "outputs" / target / f"transfer_from={STUDY_QUAD}"
    for seed in (2, 3):
        record = summary_of(transfer_dir / f"seed={seed}")
        assert record["study"] == target and record["transfer_from"] == STUDY_QUAD
        assert record["config"]["dataset"]["name"] == "toy2" and record["hparams"] == best.params
    # again: nothing left to run
    stamp = (study_dir / "repeats" / "seed=2" / "summary.json").stat().st_mtime_ns
    again = repeat(tmp_path, "--study", STUDY_QUAD, "--seeds", "2")
    assert again.returncode == 0 and "already completed" in again.stdout
    assert (study_dir / "repeats" / "seed=2" / "summary.json").stat().st_mtime_ns == stamp


def test_repeat_errors(tmp_path: Path) -> None:
    missing = repeat(tmp_path, "--study", "nope")
    assert missing.returncode == 2 and "no study 'nope'" in missing.stderr
    run_toy(tmp_path, "hydra.sweeper.n_trials=1", "hydra/sweeper/pruner=none")
    clash = repeat(tmp_path, "--study", STUDY_QUAD, "--seeds", "0,1")
    assert clash.returncode == 2 and "tuning seed 0" in clash.stderr
