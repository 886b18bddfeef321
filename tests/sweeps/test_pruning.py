"""OptunaPruning: reports each validation to the trial rebuilt from storage, prunes when the pruner says so."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch

from mmrec.sweeps import storage as st
from mmrec.sweeps.link import PRUNER_ATTR, TrialLink
from mmrec.sweeps.pruning import OptunaPruning

MONITOR = "val/recall@20"


def trainer(epoch: int, value: float | None, sanity: bool = False) -> SimpleNamespace:
    metrics = {} if value is None else {MONITOR: torch.tensor(value)}
    return SimpleNamespace(
        sanity_checking=sanity,
        callback_metrics=metrics,
        current_epoch=epoch,
        is_global_zero=True,
        strategy=SimpleNamespace(broadcast=lambda obj: obj),
    )


@pytest.fixture
def running_trial(tmp_path: Path) -> tuple[str, optuna.Study]:
    url = st.resolve_url(str(tmp_path / "j.log"))
    study = optuna.create_study(study_name="p", storage=st.open_storage(url), direction="maximize")
    study.set_user_attr(PRUNER_ATTR, {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.05})
    study.ask()  # trial 0: the one the job reports to
    study.ask()  # trial 1: another running trial, to check the callback finds its own by number
    return url, study


def test_reports_each_epoch_and_prunes(running_trial: tuple[str, optuna.Study]) -> None:
    url, study = running_trial
    callback = OptunaPruning(url, "p", 1, MONITOR)
    callback.on_validation_end(trainer(0, 0.0, sanity=True), None)  # sanity checks are not epochs
    callback.on_validation_end(trainer(0, 0.20), None)
    callback.on_validation_end(trainer(1, 0.08), None)
    callback.on_validation_end(trainer(2, None), None)  # metric missing: warned, nothing reported
    with pytest.raises(optuna.TrialPruned, match="epoch 3"):
        callback.on_validation_end(trainer(3, 0.01), None)  # below the pruner's threshold
    trials = optuna.load_study(study_name="p", storage=st.open_storage(url)).trials
    assert trials[1].intermediate_values == pytest.approx({0: 0.20, 1: 0.08, 3: 0.01})
    assert trials[0].intermediate_values == {}
    assert all(t.state == optuna.trial.TrialState.RUNNING for t in trials)  # the sweeper tells, not the job


def test_without_a_pruner_attribute_nothing_is_pruned(tmp_path: Path) -> None:
    url = st.resolve_url(str(tmp_path / "j.log"))
    study = optuna.create_study(study_name="q", storage=st.open_storage(url))
    study.ask()
    link = TrialLink(url, "q", 0)
    assert [link.report(v, step) for step, v in enumerate([0.3, 0.0, -1.0])] == [False, False, False]
