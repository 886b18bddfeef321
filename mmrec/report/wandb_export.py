"""``python -m mmrec.report <folder> --wandb``: the rendered report as W&B runs, one per study group.

Reads only the files the report wrote (``<folder>/report``): the knockout table CSV, the answers Markdown, the
heat-map and bar PNGs and ``runs.csv`` (which study each run belongs to). Each study (a W&B group: the training
runs of one condition log into the group named after their study) gets one ``job_type=report`` run holding its
dataset's knockout table as a ``wandb.Table``, the heat-map and its model's bars as images and the answers as
text, so every group's dashboard shows the comparison. Offline by default (``wandb sync <dir>`` uploads later).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from mmrec.errors import DataError


@dataclass
class RenderedReport:
    """The report's files, found by name under its output folder."""

    folder: Path
    table: pd.DataFrame  # index (dataset, model), one column per condition, cell text
    answers: str
    images: dict[str, Path] = field(default_factory=dict)  # file stem -> PNG
    studies: pd.DataFrame = field(default_factory=pd.DataFrame)  # study, dataset, model

    @classmethod
    def read(cls, folder: str | Path) -> RenderedReport:
        folder = Path(folder)
        tables = sorted(folder.glob("knockout_*.csv"))
        if not tables:
            raise DataError(
                folder,
                "no knockout_<metric>.csv: not a rendered report folder",
                "run `python -m mmrec.report <runs folder>` first",
            )
        table = pd.read_csv(tables[0], index_col=[0, 1], dtype=str, keep_default_na=False)
        answers = sorted(folder.glob("answers_*.md"))
        runs_path = folder / "runs.csv"
        studies = pd.DataFrame(columns=["study", "dataset", "model"])
        if runs_path.is_file():
            runs = pd.read_csv(runs_path, dtype=str, keep_default_na=False)
            if {"study", "dataset", "model"} <= set(runs.columns):
                studies = runs[["study", "dataset", "model"]].drop_duplicates().reset_index(drop=True)
        return cls(
            folder,
            table,
            answers[0].read_text(encoding="utf-8") if answers else "",
            {p.stem: p for p in sorted(folder.glob("*.png"))},
            studies,
        )

    def dataset_table(self, dataset: str) -> pd.DataFrame:
        """One dataset's rows, ``model`` as a column (conditions with no cell for it dropped)."""
        sub = self.table.xs(dataset, level=0) if dataset in self.table.index.get_level_values(0) else self.table[:0]
        sub = sub.loc[:, cast(pd.Series, (sub != "").any(axis=0))] if len(sub) else sub
        return sub.rename_axis("model").reset_index()

    def image(self, prefix: str) -> Path | None:
        """The PNG ``<prefix>_<metric>.png`` (``heatmap_<dataset>``, ``bars_<dataset>_<model>``)."""
        return next((p for stem, p in self.images.items() if stem.startswith(prefix + "_")), None)


def _safe(text: str) -> str:
    from mmrec.report.plots import safe_name

    return safe_name(text)


def export_to_wandb(
    report_dir: str | Path,
    project: str = "mmrec",
    mode: str = "offline",
    entity: str | None = None,
    wandb_dir: str | Path | None = None,
) -> list[str]:
    """Log one report run per study group; returns the run ids (empty, with a warning, when W&B fails)."""
    rendered = RenderedReport.read(report_dir)
    try:
        import wandb
    except ImportError:
        warnings.warn("wandb is not installed: the report is not logged", RuntimeWarning, stacklevel=2)
        return []
    groups = (
        rendered.studies
        if len(rendered.studies)
        else pd.DataFrame(
            [
                {"study": f"report-{d}", "dataset": d, "model": ""}
                for d in rendered.table.index.get_level_values(0).unique()
            ]
        )
    )
    ids: list[str] = []
    for row in cast("Iterable[Any]", groups.itertuples(index=False)):  # namedtuples with the columns' names
        run = None
        try:
            run = wandb.init(
                project=project,
                entity=entity,
                mode=cast(Any, mode),  # wandb's Literal modes; wandb itself rejects an unknown one
                group=row.study,
                job_type="report",
                name=f"report {row.dataset}",
                dir=str(wandb_dir or rendered.folder),
                config={"report_folder": str(rendered.folder), "dataset": row.dataset},
                reinit="create_new",
                settings=wandb.Settings(silent=True),
            )
            payload: dict[str, Any] = {
                "report/knockout_table": wandb.Table(dataframe=rendered.dataset_table(row.dataset)),
                "report/answers": wandb.Table(
                    columns=["answer"], data=[[line] for line in _answer_lines(rendered.answers)]
                ),
            }
            heatmap = rendered.image(f"heatmap_{_safe(row.dataset)}")
            if heatmap is not None:
                payload["report/heatmap"] = wandb.Image(str(heatmap))
            bars = rendered.image(f"bars_{_safe(row.dataset)}_{_safe(row.model)}") if row.model else None
            if bars is not None:
                payload["report/bars"] = wandb.Image(str(bars))
            run.log(payload)
            run.summary["answers"] = rendered.answers
            ids.append(run.id)
            run.finish()
        except Exception as e:  # noqa: BLE001 - tracking never breaks the report
            warnings.warn(f"W&B logging of the report failed: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
            if run is not None:
                run.finish(exit_code=1)
    return ids


def _answer_lines(markdown: str) -> list[str]:
    lines = [line.strip().removeprefix("- ").removeprefix("* ") for line in markdown.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
