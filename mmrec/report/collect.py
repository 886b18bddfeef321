"""Read every run below a folder: summaries (schema-validated) → one pandas row per run; per-user files.

Which summaries count: ``role == "repeat"``; where a study (``summary["study"]``) has no repeat at all, its
``role == "single"`` runs. Tuning trials (``role == "trial"``) and singles of studies that have repeats are
listed in ``Collection.ignored``, never used. A summary that cannot be read is listed in
``Collection.problems`` (and from there in the report's incomplete section).

Paths recorded in a summary (``paths.per_user_metrics``, ``paths.val_curve``) may be absolute, relative to the
run directory, or relative to the directory the run was started from; runs may also have been moved. They are
resolved by :func:`resolve_path`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec import summary as summary_io
from mmrec.errors import DataError

DEFAULT_FILES = {"per_user_metrics": "per_user_test.csv", "val_curve": "val_curve.csv"}
RUN_COLUMNS = [
    "summary_path",
    "run_dir",
    "study",
    "role",
    "status",
    "error",
    "dataset",
    "model",
    "encoder",
    "knockout",
    "knockout_phase",
    "freeze_features",
    "protocol",
    "modalities",
    "transfer_from",
    "seed",
    "created",
    "per_user_path",
    "val_curve_path",
    "test_metrics",
    "note",
    "report_questions",
]


@dataclass
class Collection:
    """What :func:`collect` found: usable runs, ignored summaries, unreadable ones."""

    folder: Path
    runs: pd.DataFrame
    ignored: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["summary_path", "role", "reason"]))
    problems: list[dict[str, Any]] = field(default_factory=list)


def resolve_path(recorded: str | None, run_dir: Path, default_name: str, bases: tuple[Path, ...] = ()) -> Path | None:
    """The existing file a summary's recorded path refers to, or ``None``.

    Tried in order: the path as recorded (absolute, or relative to the current directory), relative to the run
    directory, relative to each of ``bases`` and its parents, the recorded file name in the run directory,
    ``default_name`` in the run directory.
    """
    candidates: list[Path] = []
    if recorded:
        rec = Path(recorded).expanduser()
        candidates.append(run_dir / rec if not rec.is_absolute() else rec)
        candidates.append(rec)
        if not rec.is_absolute():
            for base in bases:
                candidates += [parent / rec for parent in (base, *base.parents)]
        candidates.append(run_dir / rec.name)
    candidates.append(run_dir / default_name)
    for cand in candidates:
        if cand.is_file():
            return cand
    return None


def _row(summary: dict[str, Any], path: Path, folder: Path) -> dict[str, Any]:
    cond = summary["condition"]
    paths = summary.get("paths") or {}
    run_dir = path.parent
    modalities = list(cond.get("modalities") or [])
    knockout = dict(cond.get("knockout") or {})
    for m in modalities:
        knockout.setdefault(m, "keep")
    if not modalities:
        modalities = list(knockout)
    bases = (Path.cwd(), folder)
    return {
        "summary_path": str(path),
        "run_dir": str(run_dir),
        "study": summary["study"],
        "role": summary["role"],
        "status": summary["status"],
        "error": summary.get("error"),
        "dataset": cond["dataset"],
        "model": cond["model"],
        "encoder": cond["encoder"],
        "knockout": knockout,
        "knockout_phase": cond["knockout_phase"],
        "freeze_features": cond["freeze_features"],
        "protocol": cond["protocol"],
        "modalities": modalities,
        "transfer_from": summary.get("transfer_from") or None,
        "seed": int(summary["seeds"]["run"]),
        "created": summary.get("created", ""),
        "per_user_path": _str_or_none(
            resolve_path(paths.get("per_user_metrics"), run_dir, DEFAULT_FILES["per_user_metrics"], bases)
        ),
        "val_curve_path": _str_or_none(
            resolve_path(paths.get("val_curve"), run_dir, DEFAULT_FILES["val_curve"], bases)
        ),
        "test_metrics": dict(summary["metrics"].get("test") or {}),
        "note": (summary.get("notes") or {}).get("test_time_knockout"),
        "report_questions": ((summary.get("config") or {}).get("report") or {}).get("questions"),
    }


def _str_or_none(p: Path | None) -> str | None:
    return None if p is None else str(p)


def collect(folder: str | Path) -> Collection:
    """Read every ``summary.json`` below ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "is not a folder", "pass the folder that holds the study's run directories")
    rows, ignored, problems = [], [], []
    for path in summary_io.find(folder):
        try:
            summary = summary_io.read(path)
        except DataError as e:
            problems.append({"summary_path": str(path), "kind": "invalid summary", "detail": e.problem})
            continue
        if summary["role"] == "trial":
            ignored.append({"summary_path": str(path), "role": "trial", "reason": "tuning trial"})
            continue
        rows.append(_row(summary, path, folder))
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    studies_with_repeats = set(runs.loc[runs["role"] == "repeat", "study"])
    superseded = (runs["role"] == "single") & runs["study"].isin(studies_with_repeats)
    for p in runs.loc[superseded, "summary_path"]:
        ignored.append({"summary_path": p, "role": "single", "reason": "study has repeats"})
    runs = runs[~superseded].reset_index(drop=True)
    return Collection(folder, runs, pd.DataFrame(ignored, columns=["summary_path", "role", "reason"]), problems)


def metric_column(columns: list[str] | pd.Index, metric: str, prefixes: tuple[str, ...]) -> str | None:
    """The column holding ``metric``: bare or prefixed (``test/recall@20``, ``val/recall@20``)."""
    cols = {str(c).strip().lower(): str(c) for c in columns}
    for name in (metric, *(f"{p}/{metric}" for p in prefixes), *(f"{p}_{metric}" for p in prefixes)):
        if name in cols:
            return cols[name]
    return None


def summary_metric(test_metrics: dict[str, Any], metric: str) -> float:
    """A summary's test value of ``metric`` (``recall@20`` or ``test/recall@20`` keys); NaN when absent."""
    key = metric_column(list(test_metrics), metric, ("test",))
    value = test_metrics.get(key) if key else None
    return float(value) if value is not None else float("nan")


def read_per_user(path: str | Path, metric: str) -> pd.Series:
    """Per-user values of ``metric`` from a per-user CSV, indexed by user (float64, sorted by user)."""
    path = Path(path)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(path, f"cannot read per-user metrics: {e}") from None
    user_col = metric_column(header, "user", ())
    col = metric_column(header, metric, ("test",))
    if user_col is None:
        raise DataError(path, "has no 'user' column", "write the per-user file with a 'user' column first")
    if col is None:
        raise DataError(
            path,
            f"has no column '{metric}' (columns: {', '.join(map(str, header))})",
            "choose a metric the runs evaluated (--metric/--k)",
        )
    frame = pd.read_csv(path, usecols=[user_col, col])
    if frame[user_col].duplicated().any():
        raise DataError(path, "lists a user twice", "write one row per evaluated user")
    return frame.set_index(user_col)[col].astype(np.float64).sort_index().rename(metric)


def read_val_curve(path: str | Path, metric: str) -> pd.Series | None:
    """Validation values of ``metric`` per epoch (column ``val/<metric>`` or ``<metric>``); None if absent."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(path, f"cannot read the validation curve: {e}") from None
    col = metric_column(frame.columns, metric, ("val",))
    if col is None:
        return None
    epoch_col = metric_column(frame.columns, "epoch", ())
    epochs = frame[epoch_col] if epoch_col else pd.Series(np.arange(len(frame)))
    series = pd.Series(frame[col].to_numpy(dtype=np.float64), index=epochs.to_numpy(), name=metric)
    series.index.name = "epoch"
    series = series[~series.index.duplicated(keep="last")].dropna()
    return series.sort_index()


def runs_for_csv(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs frame with dict/list columns turned into JSON text (for CSV and HTML)."""
    out = runs.copy()
    for col in ("knockout", "modalities", "test_metrics", "report_questions"):
        if col in out:
            out[col] = out[col].map(lambda v: json.dumps(v, sort_keys=isinstance(v, dict)))
    return out
