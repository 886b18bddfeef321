"""Where studies live, how workers share them, and how dead workers are detected.

Storage URLs (``hydra.sweeper.storage``, ``--storage``):

- ``null`` (default): one Optuna *journal* file, ``outputs/optuna-journal.log``. Several local processes
  share it safely (appends under a lock file); SQLite is avoided on purpose, it locks under parallel writers.
- ``journal:PATH`` or a path ending in ``.log``/``.journal``: a journal file elsewhere (e.g. on a shared disk).
- any SQLAlchemy URL, e.g. ``postgresql://user@host:5432/optuna``: many machines, one database
  (``pip install psycopg2-binary``, the ``postgres`` extra). ``sqlite:///path.db`` works for one process.
  Passwords come from ``PGPASSWORD``/``~/.pgpass`` or ``$MMREC_STORAGE`` (used when the storage is ``null``)
  and are never written anywhere (:mod:`mmrec.credentials`).

Look at a storage with ``optuna-dashboard outputs/optuna-journal.log`` (or ``optuna-dashboard <URL>``;
``pip install optuna-dashboard``), or list its studies with ``python -m mmrec.sweeps.storage [--storage URL]``.

Sharing a study without duplicate or lost trials: every worker takes a study-wide lock, then (1) fails trials
whose worker stopped beating (below), (2) counts the trials that use the budget (complete, pruned, failed,
running; a failed trial that was retried is replaced by its retry), (3) asks Optuna for a new trial only if
that count is below ``n_trials``, and releases the lock. Counting and asking are therefore atomic across
workers, so N workers end with exactly ``n_trials`` finished trials and unique trial numbers. The lock is a
``pg_advisory_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL, and a lock file next to a journal/SQLite file.

Dead workers: while a trial runs, its worker records a heartbeat every ``heartbeat_interval`` seconds. Optuna
implements heartbeats for RDB storages only (Optuna 5.0: ``JournalStorage`` is not a ``BaseHeartbeat``), so
journal storages here get the same mechanism through :class:`HeartbeatJournalStorage` (the beat is a trial
system attribute). A trial whose last beat is older than ``grace_period`` (default 2 × interval) is set to
FAIL by the next worker that takes the lock, and ``RetryHeartbeatStaleTrialCallback`` enqueues a copy with the
same parameters (up to ``max_retry`` times), so a ``kill -9`` never leaves a trial RUNNING.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from mmrec import credentials
from mmrec.atomic_io import atomic_write_text  # noqa: F401 - re-exported (older imports)
from mmrec.errors import ConfigError

DEFAULT_JOURNAL = "optuna-journal.log"
JOURNAL_PREFIX = "journal:"
HEARTBEAT_ATTR = "mmrec:heartbeat"
_JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")


def resolve_url(storage: str | None, root: str | Path = "outputs") -> str:
    """Canonical storage URL: ``journal:<absolute path>`` for journal files, SQLAlchemy URLs unchanged.

    ``null`` means ``$MMREC_STORAGE`` when set (see :mod:`mmrec.credentials`), else the default journal file.
    """
    if storage is None or str(storage).strip() in ("", "null", "None"):
        storage = credentials.from_environment()
    if storage is None:
        return JOURNAL_PREFIX + str((Path(root) / DEFAULT_JOURNAL).resolve())
    storage = str(storage).strip()
    if storage.startswith(JOURNAL_PREFIX):
        path = storage[len(JOURNAL_PREFIX) :]
        if path.startswith("///"):
            path = path[2:]
        return JOURNAL_PREFIX + str(Path(path).expanduser().resolve())
    if "://" in storage:
        return storage
    if storage.endswith(_JOURNAL_SUFFIXES):
        return JOURNAL_PREFIX + str(Path(storage).expanduser().resolve())
    raise ConfigError(
        f"storage {storage!r}: expected null (a journal file under outputs/), 'journal:<path>', a path ending in "
        f"{'/'.join(_JOURNAL_SUFFIXES)}, or an SQLAlchemy URL such as postgresql://user:pass@host/db"
    )


def journal_path(url: str) -> Path | None:
    return Path(url[len(JOURNAL_PREFIX) :]) if url.startswith(JOURNAL_PREFIX) else None


def display(url: str) -> str:
    """The URL without a password (for logs and for ``optuna-dashboard``'s argument)."""
    path = journal_path(url)
    if path is not None:
        return str(path)
    return credentials.redact(url)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal storage with Optuna's heartbeat protocol (Optuna ships it for RDB storages only).

    A beat is the trial system attribute ``mmrec:heartbeat`` (UNIX time). Stale = RUNNING, with at least one
    beat, and neither a beat nor its start within ``grace_period`` seconds. Clocks of the processes sharing
    the file must agree (same machine, or NTP on a shared disk).
    """

    def __init__(
        self,
        backend: JournalFileBackend,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        super().__init__(backend)
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ConfigError(f"heartbeat_interval={heartbeat_interval}: must be a positive number of seconds")
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self._stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert self.heartbeat_interval is not None
        grace = self.grace_period or 2 * self.heartbeat_interval
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:
                continue
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            if now - max(float(beat), started) > grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_trial_callback


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 1,
) -> BaseStorage:
    """An Optuna storage for ``url`` (see :func:`resolve_url`); heartbeats on when ``heartbeat_interval``."""
    with _quiet():
        callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None
    path = journal_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return HeartbeatJournalStorage(JournalFileBackend(str(path)), heartbeat_interval, grace_period, callback)
    if url in ("memory", "inmemory", ":memory:"):
        return optuna.storages.InMemoryStorage()
    engine_kwargs = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
    try:
        with _quiet(), _bootstrap_lock(url):  # concurrent first use of an empty database creates tables once
            return RDBStorage(
                credentials.connection_url(url),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=callback,
            )
    except ImportError as e:
        raise ConfigError(
            f"storage {display(url)}: its database driver is not installed ({e}); for PostgreSQL "
            "install the postgres extra: pip install 'mmrec[postgres]' (psycopg2-binary)"
        ) from None
    except Exception as e:  # noqa: BLE001 - sqlalchemy's OperationalError, ArgumentError, ...
        import sqlalchemy.exc

        if isinstance(e, sqlalchemy.exc.NoSuchModuleError | sqlalchemy.exc.ArgumentError):
            raise ConfigError(f"storage {display(url)}: not a usable database URL ({e})") from None
        if isinstance(e, sqlalchemy.exc.OperationalError):
            reason = str(getattr(e, "orig", e)).strip().splitlines()[0]
            raise ConfigError(
                f"storage {display(url)}: cannot connect ({credentials.redact(reason)}); check the "
                "host, port, database and user, and that the server is running"
            ) from None
        raise


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


# ---------------------------------------------------------------- study-wide locks

_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_ENGINES: dict[str, Any] = {}


def _lock_key(text: str) -> int:
    """A signed 64-bit integer for ``pg_advisory_lock``, the same in every process."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _engine(url: str) -> Any:
    if url not in _ENGINES:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        _ENGINES[url] = sqlalchemy.create_engine(credentials.connection_url(url), poolclass=NullPool)
    return _ENGINES[url]


@contextlib.contextmanager
def study_lock(url: str, study_name: str, timeout: float = 600.0) -> Iterator[None]:
    """Hold a lock shared by every worker of ``study_name`` on ``url`` (see the module docstring)."""
    path = journal_path(url)
    if path is not None or url.startswith("sqlite:///"):
        from filelock import FileLock

        target = path if path is not None else Path(url[len("sqlite:///") :])
        digest = hashlib.sha1(study_name.encode()).hexdigest()[:12]
        with FileLock(str(target.parent / f".{target.name}.{digest}.lock"), timeout=timeout):
            yield
        return
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    if dialect in ("postgresql", "postgres"):
        import sqlalchemy

        key = _lock_key("mmrec-study:" + study_name)
        with _engine(url).connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    if dialect in ("mysql", "mariadb"):
        import sqlalchemy

        name = "mmrec-" + hashlib.sha1(study_name.encode()).hexdigest()[:40]
        with _engine(url).connect() as conn:
            got = conn.execute(sqlalchemy.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": int(timeout)}).scalar()
            if got != 1:
                raise TimeoutError(f"could not take the study lock {name} on {display(url)}")
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        return
    # Anything else (in-memory storage): only threads of this process can share it.
    lock = _LOCAL_LOCKS.setdefault(f"{url}|{study_name}", threading.Lock())
    with lock:
        yield


@contextlib.contextmanager
def _bootstrap_lock(url: str) -> Iterator[None]:
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    if dialect not in ("postgresql", "postgres"):
        yield
        return
    import sqlalchemy

    key = _lock_key("mmrec-bootstrap")
    with _engine(url).connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


# ---------------------------------------------------------------- counting and heartbeats


def superseded_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that a retry replaced (``retry_history`` of their retries)."""
    out: set[int] = set()
    for t in trials:
        out.update(int(n) for n in t.system_attrs.get("retry_history", []))
    return out


def budget_used(trials: Sequence[FrozenTrial]) -> int:
    """Trials that use the study's budget: finished (complete/pruned/failed) or running, minus retried ones."""
    gone = superseded_numbers(trials)
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return sum(1 for t in trials if t.state in counted and t.number not in gone)


def fail_stale_trials(study: optuna.Study) -> None:
    with _quiet():
        optuna.storages.fail_stale_trials(study)


class Heartbeat:
    """Records a heartbeat for some trials every ``interval`` seconds while the ``with`` block runs."""

    def __init__(self, storage: BaseStorage, trial_ids: Sequence[int]) -> None:
        self._storage = storage
        self._trial_ids = list(trial_ids)
        interval = storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        for trial_id in self._trial_ids:
            with contextlib.suppress(Exception):  # finished meanwhile, or a transient storage error
                self._storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]

    def _run(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        if self._interval:
            self._beat()
            self._thread = threading.Thread(target=self._run, name="mmrec-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _storage_of(study: optuna.Study) -> BaseStorage:
    return study._storage  # the storage Optuna wraps (e.g. a cache around RDBStorage)


def find_trial_id(storage: BaseStorage, study_name: str, trial_number: int) -> int:
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)


# ---------------------------------------------------------------- python -m mmrec.sweeps.storage


def summarize(url: str) -> list[dict[str, Any]]:
    """One row per study: name, trials by state, best value and params."""
    storage = open_storage(url)
    rows = []
    for summary in optuna.study.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        states = {s.name.lower(): sum(1 for t in trials if t.state == s) for s in TrialState}
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = None
        if complete:
            best = study.best_trial
        rows.append(
            {
                "study": summary.study_name,
                "n_trials": study.user_attrs.get("mmrec:n_trials"),
                **{k: v for k, v in states.items() if v},
                "best_value": None if best is None else best.value,
                "best_trial": None if best is None else best.number,
                "best_params": None if best is None else best.params,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m mmrec.sweeps.storage",
        description="List the studies of a storage with their trial counts and best values.",
    )
    parser.add_argument("--storage", default=None, help="storage URL (default: outputs/optuna-journal.log)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    url = resolve_url(args.storage)
    if journal_path(url) is not None and not journal_path(url).exists():  # type: ignore[union-attr]
        print(f"no journal at {journal_path(url)}")
        return 1
    rows = summarize(url)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"studies in {display(url)}")
    for col in ("study", "complete", "pruned", "fail", "running", "best value", "best trial"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["study"],
            *(str(r.get(k, 0)) for k in ("complete", "pruned", "fail", "running")),
            "" if r["best_value"] is None else f"{r['best_value']:.5g}",
            "" if r["best_trial"] is None else str(r["best_trial"]),
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
