"""The mmrec_optuna Hydra sweeper end to end, on the toy app (real Hydra multiruns, no training)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from optuna.trial import TrialState

from mmrec.sweeps.storage import resolve_url
from tests.sweeps.toy import (
    STUDY_CUBE,
    STUDY_QUAD,
    best_value,
    load_study,
    objective,
    run_toy,
    study_names,
    summary_of,
)

NO_PRUNE = "hydra/sweeper/pruner=none"
THRESHOLD_0 = ("hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.lower=0.0")


def test_grid_makes_one_study_per_point_with_its_own_search_space(tmp_path: Path) -> None:
    run_toy(tmp_path, "model=quad,cube", "hydra.sweeper.n_trials=3", NO_PRUNE)
    url = resolve_url(None, tmp_path / "outputs")
    assert study_names(url) == sorted([STUDY_QUAD, STUDY_CUBE])
    for name, y_values in ((STUDY_QUAD, {0, 1, 2}), (STUDY_CUBE, {0, 1, 2})):
        study = load_study(name, cwd=tmp_path)
        trials = study.get_trials()
        assert sorted(t.number for t in trials) == [0, 1, 2]
        assert all(t.state == TrialState.COMPLETE for t in trials)
        assert all(len(t.intermediate_values) == 4 for t in trials)  # per-epoch curves, even without pruner
        # the search space comes from hparams_search/<model>.yaml; the command-line list is not a parameter
        assert all(set(t.params) == {"model.x", "model.y"} for t in trials)
        assert all(t.params["model.y"] in y_values for t in trials)
        for t in trials:
            assert t.value == pytest.approx(best_value(t.params["model.x"], t.params["model.y"]))
        assert study.best_value == pytest.approx(max(t.value for t in trials))
        run_dir = tmp_path / "outputs" / name / "trials"
        assert sorted(p.name for p in run_dir.iterdir()) == ["0", "1", "2"]
        for t in trials:
            record = summary_of(run_dir / str(t.number))
            assert record["role"] == "trial" and record["study"] == name and record["trial_number"] == t.number
            assert record["metrics"]["test"] == {}  # trials never test
            assert record["hparams"] == t.params
    cube = load_study(STUDY_CUBE, cwd=tmp_path)
    assert all(0.0 <= t.params["model.x"] <= 2.0 for t in cube.trials)  # cube's own interval


def test_resume_runs_only_the_missing_trials(tmp_path: Path) -> None:
    run_toy(tmp_path, "hydra.sweeper.n_trials=3", NO_PRUNE)
    first = {t.number: t.params for t in load_study(STUDY_QUAD, cwd=tmp_path).trials}
    marker = tmp_path / "outputs" / STUDY_QUAD / "trials" / "0" / "summary.json"
    mtime = marker.stat().st_mtime_ns
    run_toy(tmp_path, "hydra.sweeper.n_trials=5", NO_PRUNE)
    trials = load_study(STUDY_QUAD, cwd=tmp_path).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.number: t.params for t in trials if t.number < 3} == first
    assert marker.stat().st_mtime_ns == mtime  # trial 0 did not run again
    xs = [t.params["model.x"] for t in trials]
    assert len(set(xs)) == len(xs)  # a resumed sampler does not replay the first random points
    # the same command once more: nothing left to do
    run_toy(tmp_path, "hydra.sweeper.n_trials=5", NO_PRUNE)
    assert len(load_study(STUDY_QUAD, cwd=tmp_path).trials) == 5


def test_a_crashing_trial_is_failed_with_its_error_and_the_sweep_goes_on(tmp_path: Path) -> None:
    run_toy(tmp_path, "hydra.sweeper.n_trials=4", NO_PRUNE, "crash_trials=[1]")
    trials = {t.number: t for t in load_study(STUDY_QUAD, cwd=tmp_path).trials}
    assert sorted(trials) == [0, 1, 2, 3]
    assert trials[1].state == TrialState.FAIL
    assert "deliberate crash of trial 1" in trials[1].user_attrs["mmrec:error"]
    assert all(trials[n].state == TrialState.COMPLETE for n in (0, 2, 3))
    assert summary_of(tmp_path / "outputs" / STUDY_QUAD / "trials" / "1")["status"] == "failed"


def test_pruned_trials_are_recorded_as_pruned(tmp_path: Path) -> None:
    # x=-1 gives a negative value at every epoch: a ThresholdPruner(lower=0) prunes after the first report;
    # x=0.3 stays positive and completes.
    run_toy(
        tmp_path, "model.x=-1.0,0.3", "hydra.sweeper.n_trials=2", *THRESHOLD_0, "hydra.sweeper.study_name=x${model.x}"
    )
    pruned = load_study("x-1.0", cwd=tmp_path).trials
    assert [t.state for t in pruned] == [TrialState.PRUNED, TrialState.PRUNED]
    assert all(list(t.intermediate_values) == [0] for t in pruned)  # stopped at the first epoch
    assert all(t.value == pytest.approx(objective(-1.0, t.params["model.y"]) / 4) for t in pruned)
    assert summary_of(tmp_path / "outputs" / "x-1.0" / "trials" / "0")["status"] == "pruned"
    kept = load_study("x0.3", cwd=tmp_path).trials
    assert [t.state for t in kept] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert all(len(t.intermediate_values) == 4 for t in kept)
    assert all("model.x" not in t.params for t in pruned + kept)  # pinned on the command line: not searched


def test_seed_list_in_a_tuning_sweep_points_to_the_repeat_command(tmp_path: Path) -> None:
    proc = run_toy(tmp_path, "seed=1,2", check=False)
    assert proc.returncode != 0
    assert "mmrec.sweeps.repeat" in proc.stderr + proc.stdout
    assert not (tmp_path / "outputs" / "optuna-journal.log").exists()


@pytest.mark.parametrize("bad", ["model.x=interval(0,1)", "role=repeat", "sweep.trial_number=3"])
def test_overrides_the_sweeper_cannot_take(tmp_path: Path, bad: str) -> None:
    proc = run_toy(tmp_path, bad, check=False)
    assert proc.returncode != 0
    assert "ConfigError" in proc.stderr + proc.stdout or "sweeper sets" in proc.stderr + proc.stdout


def test_resuming_with_other_overrides_is_refused(tmp_path: Path) -> None:
    run_toy(tmp_path, "hydra.sweeper.n_trials=1", NO_PRUNE)
    proc = run_toy(tmp_path, "hydra.sweeper.n_trials=2", NO_PRUNE, "epochs=2", check=False)
    assert proc.returncode != 0 and "not be comparable" in proc.stderr + proc.stdout
    assert len(load_study(STUDY_QUAD, cwd=tmp_path).trials) == 1


def test_grid_sampler_walks_the_grid_once(tmp_path: Path) -> None:
    run_toy(tmp_path, "hydra.sweeper.n_trials=50", "hydra.sweeper.pruner=null", "hydra/sweeper/sampler=grid")
    trials = load_study(STUDY_QUAD, cwd=tmp_path).trials
    points = {(t.params["model.x"], t.params["model.y"]) for t in trials}
    assert len(trials) == 6  # capped at the grid's size (3 x 2)
    assert points == {(x, y) for x in (-0.5, 0.0, 0.5) for y in (0, 1)}


def test_study_name_template_and_collisions(tmp_path: Path) -> None:
    run_toy(
        tmp_path,
        "model=quad,cube",
        "hydra.sweeper.n_trials=1",
        NO_PRUNE,
        "hydra.sweeper.study_name=${model.name}-custom",
    )
    assert study_names(resolve_url(None, tmp_path / "outputs")) == ["cube-custom", "quad-custom"]
    proc = run_toy(tmp_path, "model=quad,cube", "hydra.sweeper.study_name=same", check=False)
    assert proc.returncode != 0 and "same study" in proc.stderr + proc.stdout


def test_parallel_jobs_through_the_joblib_launcher(tmp_path: Path) -> None:
    run_toy(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "model.x=-1.0,0.3",
        "hydra.sweeper.study_name=x${model.x}",
        *THRESHOLD_0,
    )
    states = {name: [t.state for t in load_study(name, cwd=tmp_path).trials] for name in ("x-1.0", "x0.3")}
    assert states == {"x-1.0": [TrialState.PRUNED] * 4, "x0.3": [TrialState.COMPLETE] * 4}
    values = [t.value for t in load_study("x0.3", cwd=tmp_path).trials]
    assert all(math.isfinite(v) for v in values)
