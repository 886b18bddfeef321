"""Several workers on one study: exact trial counts, no duplicates, dead workers detected (journal and
PostgreSQL storages; the PostgreSQL server is started by tests/sweeps/conftest.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from mmrec.sweeps.space import quote
from mmrec.sweeps.storage import budget_used, resolve_url
from tests.sweeps.toy import STUDY_QUAD, load_study, run_toy, spawn

NO_PRUNE = "hydra/sweeper/pruner=none"
BACKENDS = ["journal", "postgres"]


def _storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        return request.getfixturevalue("pg_database")
    return resolve_url(None, tmp_path / "outputs")


def _wait_for(predicate, timeout: float = 90.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # the study does not exist yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_finish_exactly_n_trials_without_duplicates(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = _storage(backend, tmp_path, request)
    args = [f"hydra.sweeper.storage={quote(url)}", "hydra.sweeper.n_trials=6", NO_PRUNE, "sleep=0.5"]
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [spawn(tmp_path, *args, log=log) for log in logs]
    codes = [w.wait(timeout=240) for w in workers]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], texts
    trials = load_study(STUDY_QUAD, storage=url).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    launched = [text.count("launching trial(s)") for text in texts]
    assert sum(launched) == 6 and min(launched) >= 1, launched  # both workers took part
    # every trial ran exactly once: one run directory each
    assert sorted(p.name for p in (tmp_path / "outputs" / STUDY_QUAD / "trials").iterdir()) == [
        str(n) for n in range(6)
    ]


@pytest.mark.parametrize("backend", ["journal", pytest.param("postgres", marks=pytest.mark.slow)])
def test_a_killed_worker_is_detected_and_its_trial_retried(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = _storage(backend, tmp_path, request)
    common = [
        f"hydra.sweeper.storage={quote(url)}",
        "hydra.sweeper.n_trials=2",
        NO_PRUNE,
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=2",
        "hydra.sweeper.check_overrides=false",
    ]
    doomed = spawn(tmp_path, *common, "sleep=60", log=tmp_path / "doomed.log")
    try:
        _wait_for(
            lambda: load_study(STUDY_QUAD, storage=url).trials[0].state == TrialState.RUNNING, what="trial 0 to start"
        )
        time.sleep(1.5)  # at least one heartbeat
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
    params = load_study(STUDY_QUAD, storage=url).trials[0].params
    time.sleep(2.5)  # longer than grace_period since the last beat
    run_toy(tmp_path, *common)
    trials = load_study(STUDY_QUAD, storage=url).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert trials[0].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE and retries[0].params == params
    assert budget_used(trials) == 2 and sum(t.state == TrialState.COMPLETE for t in trials) == 2


def test_an_interrupted_sweep_resumes_the_interrupted_trial(tmp_path: Path) -> None:
    url = resolve_url(None, tmp_path / "outputs")
    proc = spawn(
        tmp_path,
        "hydra.sweeper.n_trials=2",
        NO_PRUNE,
        "sleep=60",
        "hydra.sweeper.check_overrides=false",
        log=tmp_path / "interrupted.log",
    )
    try:
        _wait_for(
            lambda: load_study(STUDY_QUAD, storage=url).trials[0].state == TrialState.RUNNING, what="trial 0 to start"
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=180)  # SIGINT hand-back; slow when the machine is loaded
    trials = load_study(STUDY_QUAD, storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # handed back, not left RUNNING
    run_toy(tmp_path, "hydra.sweeper.n_trials=2", NO_PRUNE, "hydra.sweeper.check_overrides=false")
    trials = load_study(STUDY_QUAD, storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[1].params == trials[0].params and trials[1].system_attrs["failed_trial"] == 0
