"""A small version of benchmarks/sweep_load.py: 4 workers share one study of 12 trials (journal file), 3 workers
one of 9 (PostgreSQL)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("sweep_load", REPO / "benchmarks" / "sweep_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("backend", ["journal", pytest.param("postgres", marks=pytest.mark.slow)])
def test_many_workers_run_exactly_the_requested_trials(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    storage = request.getfixturevalue("pg_database") if backend == "postgres" else None
    workers, trials = (3, 9) if backend == "postgres" else (4, 12)
    result = _benchmark().run(workers=workers, trials=trials, storage=storage, work=tmp_path)  # asserts inside
    assert result["trials"] == result["complete"] == trials
    assert result["duplicates"] == 0 and result["corrupt_journal_lines"] == 0
    assert result["workers_that_ran_trials"] >= 2  # the study really was shared
