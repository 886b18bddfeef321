"""One worker's ask-and-tell loop over one study; the Hydra sweeper plugin supplies the ``launch`` function.

Each iteration: under the study lock (:func:`mmrec.sweeps.storage.study_lock`) fail stale trials, count the
budget used, ask up to ``n_jobs`` trials while the count stays below ``n_trials``; release the lock; launch
the batch (heartbeats running); tell each trial COMPLETE / PRUNED / FAIL. A failed trial keeps its error in
the ``mmrec:error`` user attribute and the loop goes on; ``max_consecutive_failures`` failures in a row
(a broken setup, not a bad hyper-parameter) stop the worker with an error. An interrupted batch (Ctrl-C,
SIGTERM) is told FAIL and re-enqueued, so running the same command again finishes exactly those trials.

Sampling is reproducible and safe for many workers: before each ``ask`` the sampler is rebuilt with the seed
``SeedSequence([seed, trial_number])`` (for samplers whose only state is their RNG: TPE, random, GP, NSGA-II/
III, brute force), so a resumed or parallel sweep does not repeat the random start-up points of another
worker, and a given history gives the same next trial. Other samplers (grid, CMA-ES, QMC) are built once
per worker with the configured seed.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from mmrec.errors import ConfigError, MMRecError
from mmrec.sweeps import storage as st
from mmrec.sweeps.link import PRUNER_ATTR, build_pruner
from mmrec.sweeps.space import SearchSpace, suggest

log = logging.getLogger("mmrec.sweeps")

ERROR_ATTR = "mmrec:error"
RUN_DIR_ATTR = "mmrec:run_dir"
_RESEED_SAFE = {"TPESampler", "RandomSampler", "GPSampler", "NSGAIISampler", "NSGAIIISampler", "BruteForceSampler"}


@dataclass
class StudyPlan:
    """Everything one worker needs to run (its share of) one study."""

    name: str
    storage_url: str
    n_trials: int
    space: SearchSpace
    direction: str = "maximize"
    n_jobs: int = 1
    sampler: dict[str, Any] | None = None
    pruner: dict[str, Any] | None = None
    grid: dict[str, list[Any]] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)  # stored as study user attrs ("mmrec:...")
    must_match: tuple[str, ...] = ()  # attrs that must equal those of an existing study of this name
    heartbeat_interval: int | None = 60
    grace_period: int | None = None
    max_retry: int | None = 1
    max_consecutive_failures: int | None = 5
    run_dir_of: Callable[[int], str] | None = None


@dataclass
class Outcome:
    """What a launched job came to."""

    state: TrialState
    value: float | None = None
    error: str | None = None


# (trial number, parameter values) of each trial of a batch → one Outcome each, same order
Launch = Callable[[Sequence[tuple[int, dict[str, Any]]]], Sequence[Outcome]]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=".*Heartbeat of storage.*")
        warnings.filterwarnings("ignore", message=".*is deprecated.*")
        yield


def sampler_class(spec: dict[str, Any] | None) -> type:
    from hydra.utils import get_class

    target = (spec or {}).get("_target_", "optuna.samplers.TPESampler")
    cls = get_class(target)
    if not (isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler)):
        raise ConfigError(f"hydra.sweeper.sampler._target_={target!r} is not an optuna sampler class")
    return cls


def uses_grid(spec: dict[str, Any] | None) -> bool:
    return "search_space" in inspect.signature(sampler_class(spec)).parameters


def make_sampler(
    spec: dict[str, Any] | None, seed: int | None, grid: dict[str, list[Any]] | None
) -> optuna.samplers.BaseSampler:
    """Instantiate the configured sampler with ``seed`` (and the grid, for a grid sampler)."""
    from hydra.utils import instantiate

    spec = dict(spec or {"_target_": "optuna.samplers.TPESampler"})
    cls = sampler_class(spec)
    params = inspect.signature(cls).parameters
    if "search_space" in params:
        if not grid:
            raise ConfigError(f"{cls.__name__} needs hydra.sweeper.grid (the values to walk), which is empty")
        spec["search_space"] = grid
    if "seed" in params:
        spec["seed"] = seed
    else:
        spec.pop("seed", None)
    with _quiet():
        return instantiate(spec, _convert_="all")


def trial_seed(seed: int | None, number: int) -> int | None:
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


def _describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def open_study(plan: StudyPlan) -> optuna.Study:
    """Create or load the study, check it matches the plan, record the plan's attributes."""
    storage = st.open_storage(plan.storage_url, plan.heartbeat_interval, plan.grace_period, plan.max_retry)
    with st.study_lock(plan.storage_url, plan.name), _quiet():
        study = optuna.create_study(
            storage=storage,
            study_name=plan.name,
            direction=cast(Literal["minimize", "maximize"], plan.direction),  # optuna checks the string
            load_if_exists=True,
            pruner=build_pruner(plan.pruner),
        )
        if study.direction.name.lower() != plan.direction.lower():
            raise ConfigError(
                f"study {plan.name!r} in {st.display(plan.storage_url)} was created to "
                f"{study.direction.name.lower()}; this sweep asks to {plan.direction}"
            )
        existing = study.user_attrs
        for key in plan.must_match:
            if key in existing and existing[key] != plan.attrs.get(key):
                raise ConfigError(
                    f"study {plan.name!r} in {st.display(plan.storage_url)} was created with {key} = "
                    f"{existing[key]!r}; this sweep has {plan.attrs.get(key)!r}. Its trials would not be "
                    "comparable: use the same settings, another storage or hydra.sweeper.study_name"
                )
        for key, value in {**plan.attrs, PRUNER_ATTR: plan.pruner}.items():
            if existing.get(key, object()) != value:
                study.set_user_attr(key, value)
    return study


def optimize(plan: StudyPlan, launch: Launch) -> dict[str, Any]:
    """Run trials of ``plan`` until the study holds ``n_trials`` (see the module docstring)."""
    if plan.n_trials < 0 or plan.n_jobs < 1:
        raise ConfigError(f"n_trials={plan.n_trials}, n_jobs={plan.n_jobs}: need n_trials >= 0 and n_jobs >= 1")
    study = open_study(plan)
    base_seed = (plan.sampler or {}).get("seed")
    cls = sampler_class(plan.sampler)
    reseed = cls.__name__ in _RESEED_SAFE
    if not reseed:
        study.sampler = make_sampler(plan.sampler, base_seed, plan.grid)
    failures_in_a_row = 0
    ran = 0
    while True:
        batch: list[tuple[optuna.trial.Trial, dict[str, Any]]] = []
        with st.study_lock(plan.storage_url, plan.name), _quiet():
            st.fail_stale_trials(study)
            for _ in range(plan.n_jobs):
                trials = study.get_trials(deepcopy=False)
                if st.budget_used(trials) >= plan.n_trials:
                    break
                if reseed:
                    study.sampler = make_sampler(plan.sampler, trial_seed(base_seed, len(trials)), plan.grid)
                trial = study.ask()
                params = suggest(trial, plan.space)
                if plan.run_dir_of is not None:
                    trial.set_user_attr(RUN_DIR_ATTR, plan.run_dir_of(trial.number))
                batch.append((trial, params))
        if not batch:
            break
        log.info("study %s: launching trial(s) %s", plan.name, ", ".join(str(t.number) for t, _ in batch))
        try:
            with st.Heartbeat(study._storage, [t._trial_id for t, _ in batch]):
                outcomes = list(launch([(t.number, p) for t, p in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"launcher returned {len(outcomes)} results for {len(batch)} jobs")
        except Exception as e:  # the launcher itself failed (e.g. a dead joblib worker): fail the batch
            log.exception("study %s: launching the batch failed", plan.name)
            outcomes = [Outcome(TrialState.FAIL, error=f"launch failed: {_describe_exception(e)}")] * len(batch)
        except BaseException:  # Ctrl-C, SystemExit: hand the trials back so that a rerun finishes them
            _requeue(study, [t for t, _ in batch], "interrupted before the trial finished")
            raise
        for (trial, _), outcome in zip(batch, outcomes):
            _tell(study, trial, outcome)
            ran += 1
            failures_in_a_row = failures_in_a_row + 1 if outcome.state == TrialState.FAIL else 0
        limit = plan.max_consecutive_failures
        if limit is not None and failures_in_a_row >= limit:
            raise MMRecError(
                f"study {plan.name!r}: the last {failures_in_a_row} trials failed (last error: "
                f"{outcomes[-1].error}); stopping this sweep. Fix the cause and run the same command to resume "
                "(failed trials count towards n_trials), or raise hydra.sweeper.max_consecutive_failures"
            )
    return study_report(study, plan)


def _tell(study: optuna.Study, trial: optuna.trial.Trial, outcome: Outcome) -> None:
    state, value, error = outcome.state, outcome.value, outcome.error
    if state == TrialState.COMPLETE and (value is None or not math.isfinite(float(value))):
        state, error = TrialState.FAIL, f"objective value {value!r} is not a finite number"
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, float(value))  # type: ignore[arg-type]
            log.info("study %s: trial %d finished: %.6g %s", study.study_name, trial.number, value, trial.params)
        elif state == TrialState.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
            log.info("study %s: trial %d pruned %s", study.study_name, trial.number, trial.params)
        else:
            trial.set_user_attr(ERROR_ATTR, (error or "unknown error")[-4000:])
            study.tell(trial, state=TrialState.FAIL)
            log.warning("study %s: trial %d failed: %s", study.study_name, trial.number, error)
    except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError) as e:
        # Another worker declared this trial dead (no heartbeat for grace_period) and retried it.
        log.warning(
            "study %s: trial %d was already finished elsewhere (%s); result dropped", study.study_name, trial.number, e
        )


def _requeue(study: optuna.Study, trials: Sequence[optuna.trial.Trial], reason: str) -> None:
    """FAIL running trials and enqueue copies with the same parameters (as a dead worker's are)."""
    with _quiet():
        retry = RetryHeartbeatStaleTrialCallback()
        for trial in trials:
            try:
                if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
                    continue
                trial.set_user_attr(ERROR_ATTR, reason)
                study.tell(trial, state=TrialState.FAIL)
                retry(study, study._storage.get_trial(trial._trial_id))
                log.warning("study %s: trial %d re-enqueued (%s)", study.study_name, trial.number, reason)
            except Exception:  # the storage is gone too; heartbeats will catch the trial instead
                log.exception("study %s: could not re-enqueue trial %d", study.study_name, trial.number)


def study_report(study: optuna.Study, plan: StudyPlan | None = None) -> dict[str, Any]:
    """Counts by state, budget used, best trial — what the sweeper prints and saves per study."""
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(1 for t in trials if t.state == s) for s in TrialState}
    report: dict[str, Any] = {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        "n_trials": None if plan is None else plan.n_trials,
        "budget_used": st.budget_used(trials),
        "states": counts,
        "best_trial": None,
        "best_value": None,
        "best_params": None,
    }
    if plan is not None:
        report["storage"] = st.display(plan.storage_url)
    if counts["complete"]:
        best = study.best_trial
        report.update(best_trial=best.number, best_value=best.value, best_params=best.params)
        if RUN_DIR_ATTR in best.user_attrs:
            report["best_run_dir"] = best.user_attrs[RUN_DIR_ATTR]
    return report
