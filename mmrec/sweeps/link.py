"""A job's handle on its Optuna trial: report per-epoch values and ask whether to stop.

The sweeper creates the trial (ask) and finishes it (tell); the job, possibly another process or machine,
only reports intermediate values. It rebuilds the trial from the shared storage::

    storage → study id (by name) → trial id (by number) → optuna.trial.Trial(study, trial_id)

with the study's pruner rebuilt from the ``mmrec:pruner`` study attribute the sweeper stored (Optuna keeps
no pruner in its storage). Lightning users want :class:`mmrec.sweeps.pruning.OptunaPruning`; this module
has no Lightning import so that plain scripts (and tests) stay light.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna

from mmrec.sweeps.storage import find_trial_id, open_storage

PRUNER_ATTR = "mmrec:pruner"


def build_pruner(spec: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    """An Optuna pruner from a ``{_target_: ..., **kwargs}`` mapping; ``NopPruner`` for ``None``."""
    if not spec:
        return optuna.pruners.NopPruner()
    from hydra.utils import instantiate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pruner = instantiate(dict(spec), _convert_="all")
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise TypeError(f"pruner {spec.get('_target_')!r} is not an optuna.pruners.BasePruner")
    return pruner


class TrialLink:
    """Report to trial ``trial_number`` of ``study_name`` on ``storage`` (a URL from the sweeper)."""

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        self.storage_url = storage
        self.study_name = study_name
        self.trial_number = int(trial_number)
        self._trial: optuna.trial.Trial | None = None

    @property
    def trial(self) -> optuna.trial.Trial:
        if self._trial is None:
            storage = open_storage(self.storage_url)
            trial_id = find_trial_id(storage, self.study_name, self.trial_number)
            study_id = storage.get_study_id_from_name(self.study_name)
            pruner = build_pruner(storage.get_study_user_attrs(study_id).get(PRUNER_ATTR))
            study = optuna.load_study(
                study_name=self.study_name,
                storage=storage,
                pruner=pruner,
                sampler=optuna.samplers.RandomSampler(seed=0),  # never samples here; avoids building TPE
            )
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def report(self, value: float, step: int) -> bool:
        """Record ``value`` at ``step`` (an epoch); True when the pruner says to stop this trial."""
        value = float(value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step already reported" after a resume
            self.trial.report(value if math.isfinite(value) else float("nan"), int(step))
        return self.trial.should_prune()

    def report_or_prune(self, value: float, step: int) -> None:
        """:meth:`report`, raising ``optuna.TrialPruned`` when the trial should stop."""
        if self.report(value, step):
            raise optuna.TrialPruned(
                f"trial {self.trial_number} of {self.study_name} pruned at step {step} (value {value:.6g})"
            )
