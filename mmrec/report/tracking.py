"""Upload a report to Weights & Biases. Tracking problems warn and never raise."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from mmrec.report.collect import runs_for_csv
from mmrec.report.model import Report
from mmrec.report.settings import settings_dict
from mmrec.report.statistics import statistics_table
from mmrec.report.tables import answers_markdown, cells_frame, knockout_table


def log_to_wandb(report: Report, project: str, **init_kwargs: Any) -> str | None:
    """Log the report's tables, plots (those already written), HTML page and answers as one W&B run.

    ``init_kwargs`` go to ``wandb.init`` (``entity``, ``mode``, ``dir``, ``name``, ``group`` ...); the job
    type is ``report``. Returns the run's id, or ``None`` (with a warning) when W&B is unavailable or fails.
    """
    try:
        import wandb
    except ImportError:
        warnings.warn("wandb is not installed: the report is not uploaded", RuntimeWarning, stacklevel=2)
        return None
    run = None
    try:
        init = {
            "job_type": "report",
            "config": {**settings_dict(report.settings), "folder": str(report.folder)},
        }
        init.update(init_kwargs)
        run = wandb.init(project=project, **init)
        if run is None:
            return None
        table = knockout_table(report, "text", sep=" | ").reset_index()
        payload: dict[str, Any] = {
            "report/knockout_table": wandb.Table(dataframe=table.astype(str)),
            "report/cells": wandb.Table(dataframe=cells_frame(report).astype(str)),
            "report/statistics": wandb.Table(dataframe=statistics_table(report).astype(str)),
            "report/incomplete": wandb.Table(dataframe=report.incomplete.astype(str)),
            "report/runs": wandb.Table(dataframe=runs_for_csv(report.runs).astype(str)),
        }
        for key, path in report.files.items():
            if key.startswith("png:"):
                payload[f"report/{key.removeprefix('png:')}"] = wandb.Image(str(path))
        if "html" in report.files:
            payload["report/html"] = wandb.Html(Path(report.files["html"]).read_text(encoding="utf-8"))
        run.log(payload)
        run.summary["answers"] = answers_markdown(report)
        run_id = getattr(run, "id", None)
        run.finish()
        return run_id
    except Exception as e:  # noqa: BLE001 - tracking must never break the report
        warnings.warn(f"W&B upload of the report failed: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
        if run is not None:
            try:
                run.finish(exit_code=1)
            except Exception:  # noqa: BLE001
                pass
        return None
