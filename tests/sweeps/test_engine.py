"""The ask-and-tell loop (mmrec.sweeps.optimize) and the storage protocol, without Hydra."""

from __future__ import annotations

import math
import multiprocessing
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from mmrec.errors import ConfigError, MMRecError
from mmrec.sweeps import storage as st
from mmrec.sweeps.optimize import Outcome, StudyPlan, optimize
from mmrec.sweeps.space import parse_space

SPACE = parse_space({"x": "interval(0, 1)", "k": "choice(a, b, c)"})
TPE = {"_target_": "optuna.samplers.TPESampler", "seed": 0, "n_startup_trials": 3, "constant_liar": True}


def plan(url: str, n_trials: int, **kw: object) -> StudyPlan:
    return StudyPlan(
        name=str(kw.pop("name", "s")),
        storage_url=url,
        n_trials=n_trials,
        space=SPACE,
        sampler=dict(kw.pop("sampler", TPE)),
        **kw,
    )  # type: ignore[arg-type]


def ok(batch):  # noqa: ANN001, ANN201 - a launcher whose objective is known
    return [Outcome(TrialState.COMPLETE, value=-((p["x"] - 0.3) ** 2)) for _, p in batch]


def journal(tmp_path: Path) -> str:
    return st.resolve_url(str(tmp_path / "j.log"))


def test_runs_exactly_n_trials_in_batches_and_resumes(tmp_path: Path) -> None:
    url, sizes = journal(tmp_path), []

    def launch(batch):  # noqa: ANN001, ANN202
        sizes.append(len(batch))
        return ok(batch)

    report = optimize(plan(url, 5, n_jobs=2), launch)
    assert sizes == [2, 2, 1] and report["states"]["complete"] == 5
    study = optuna.load_study(study_name="s", storage=st.open_storage(url))
    assert report["best_value"] == pytest.approx(max(t.value for t in study.trials))
    assert report["best_value"] == pytest.approx(-((report["best_params"]["x"] - 0.3) ** 2))
    optimize(plan(url, 7), launch)  # resume with a larger budget: two more
    assert sizes[3:] == [1, 1]
    assert sorted(t.number for t in optuna.load_study(study_name="s", storage=st.open_storage(url)).trials) == list(
        range(7)
    )


def test_sampling_is_reproducible_across_resumes(tmp_path: Path) -> None:
    url = journal(tmp_path)
    optimize(plan(url, 6, name="straight"), ok)
    optimize(plan(url, 2, name="resumed"), ok)
    optimize(plan(url, 6, name="resumed"), ok)
    a, b = (optuna.load_study(study_name=n, storage=st.open_storage(url)).trials for n in ("straight", "resumed"))
    assert [t.params for t in a] == [t.params for t in b]
    assert len({t.params["x"] for t in a}) == 6  # and no repeated points


def test_outcomes_map_to_states_and_errors(tmp_path: Path) -> None:
    url = journal(tmp_path)
    outcomes = iter(
        [
            Outcome(TrialState.COMPLETE, value=0.5),
            Outcome(TrialState.COMPLETE, value=math.nan),
            Outcome(TrialState.PRUNED),
            Outcome(TrialState.FAIL, error="boom"),
        ]
    )
    optimize(plan(url, 4), lambda batch: [next(outcomes) for _ in batch])
    trials = optuna.load_study(study_name="s", storage=st.open_storage(url)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.FAIL]
    assert "not a finite number" in trials[1].user_attrs["mmrec:error"]
    assert trials[3].user_attrs["mmrec:error"] == "boom"


def test_a_broken_setup_stops_after_consecutive_failures(tmp_path: Path) -> None:
    url = journal(tmp_path)
    with pytest.raises(MMRecError, match="last 3 trials failed"):
        optimize(
            plan(url, 10, max_consecutive_failures=3),
            lambda batch: [Outcome(TrialState.FAIL, error="no GPU") for _ in batch],
        )
    assert len(optuna.load_study(study_name="s", storage=st.open_storage(url)).trials) == 3


def test_launcher_errors_fail_the_batch_and_the_sweep_goes_on(tmp_path: Path) -> None:
    url, calls = journal(tmp_path), []

    def launch(batch):  # noqa: ANN001, ANN202
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("worker died")
        return ok(batch)

    optimize(plan(url, 3), launch)
    trials = optuna.load_study(study_name="s", storage=st.open_storage(url)).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "worker died" in trials[0].user_attrs["mmrec:error"]


def test_an_existing_study_must_match(tmp_path: Path) -> None:
    url = journal(tmp_path)
    optimize(plan(url, 1, attrs={"mmrec:overrides": ["epochs=4"]}, must_match=("mmrec:overrides",)), ok)
    with pytest.raises(ConfigError, match="not be comparable"):
        optimize(plan(url, 2, attrs={"mmrec:overrides": ["epochs=2"]}, must_match=("mmrec:overrides",)), ok)
    with pytest.raises(ConfigError, match="minimize"):
        optimize(plan(url, 2, direction="minimize"), ok)


def test_budget_counts_retries_once() -> None:
    study = optuna.create_study()
    dist = {"x": FloatDistribution(0, 1)}
    study.add_trial(optuna.create_trial(state=TrialState.FAIL, params={"x": 0.1}, distributions=dist))
    study.add_trial(optuna.create_trial(state=TrialState.COMPLETE, value=1.0, params={"x": 0.2}, distributions=dist))
    assert st.budget_used(study.trials) == 2
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params={"x": 0.1},
            distributions=dist,
            system_attrs={"failed_trial": 0, "retry_history": [0]},
        )
    )
    assert st.budget_used(study.trials) == 1  # the failed trial is replaced by its (not yet run) retry
    study.add_trial(
        optuna.create_trial(
            state=TrialState.FAIL,
            params={"x": 0.1},
            distributions=dist,
            system_attrs={"failed_trial": 0, "retry_history": [0]},
        )
    )
    assert st.budget_used(study.trials) == 2  # trial 2's retry (trial 3) is what counts now


def test_journal_heartbeats_fail_and_retry_stale_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = journal(tmp_path)
    storage = st.open_storage(url, heartbeat_interval=1, grace_period=5)
    assert isinstance(storage, st.HeartbeatJournalStorage)
    study = optuna.create_study(study_name="hb", storage=storage)
    with pytest.warns(UserWarning, match="Heartbeat"):
        beating, _silent = study.ask(), study.ask()
    beating.suggest_float("x", 0, 1)
    now = time.time()
    monkeypatch.setattr(st.time, "time", lambda: now - 60)
    storage.record_heartbeat(beating._trial_id)  # its last beat: a minute ago
    monkeypatch.setattr(st.time, "time", lambda: now + 3)
    st.fail_stale_trials(study)
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2  # started < grace_period ago
    monkeypatch.setattr(st.time, "time", lambda: now + 60)
    st.fail_stale_trials(study)
    trials = study.trials
    assert trials[0].state == TrialState.FAIL  # stale: failed ...
    assert trials[1].state == TrialState.RUNNING  # never beat (no heartbeat protocol): left alone
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert retry.state == TrialState.WAITING and retry.params == trials[0].params  # ... and re-enqueued
    # the retry carries the old beat in its copied attributes; its fresh start protects it
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="Heartbeat"):
        popped = study.ask()
    assert popped.number == retry.number
    assert study.trials[retry.number].system_attrs[st.HEARTBEAT_ATTR] == pytest.approx(now - 60)
    st.fail_stale_trials(study)
    assert study.trials[retry.number].state == TrialState.RUNNING


def _worker(url: str, n_trials: int, seconds: float) -> None:
    def launch(batch):  # noqa: ANN001, ANN202
        time.sleep(seconds)
        return ok(batch)

    optimize(plan(url, n_trials, heartbeat_interval=None), launch)


def _race(url: str, workers: int = 3, n_trials: int = 12) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, n_trials, 0.05)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * workers
    trials = optuna.load_study(study_name="s", storage=st.open_storage(url)).trials
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_concurrent_workers_on_a_journal_reach_exactly_n_trials(tmp_path: Path) -> None:
    _race(journal(tmp_path))


@pytest.mark.slow
def test_concurrent_workers_on_postgres_reach_exactly_n_trials(pg_database: str) -> None:
    _race(pg_database)


def test_storage_urls(tmp_path: Path) -> None:
    assert st.resolve_url(None, tmp_path) == "journal:" + str(tmp_path.resolve() / "optuna-journal.log")
    assert st.resolve_url(str(tmp_path / "a.log")) == "journal:" + str(tmp_path / "a.log")
    assert st.resolve_url("journal:///" + str(tmp_path / "b")) == "journal:" + str(tmp_path / "b")
    url = "postgresql://u:secret@db:5432/optuna"
    assert st.resolve_url(url) == url and "secret" not in st.display(url)
    with pytest.raises(ConfigError, match="SQLAlchemy URL"):
        st.resolve_url("my-study-storage")


def test_storage_listing(tmp_path: Path) -> None:
    url = journal(tmp_path)
    optimize(plan(url, 3, name="a", attrs={"mmrec:n_trials": 3}), ok)
    optimize(plan(url, 1, name="b"), lambda batch: [Outcome(TrialState.PRUNED) for _ in batch])
    rows = {r["study"]: r for r in st.summarize(url)}
    assert rows["a"]["complete"] == 3 and rows["a"]["n_trials"] == 3
    study = optuna.load_study(study_name="a", storage=st.open_storage(url))
    assert rows["a"]["best_value"] == study.best_value and rows["a"]["best_trial"] == study.best_trial.number
    assert rows["b"]["pruned"] == 1 and rows["b"]["best_value"] is None
