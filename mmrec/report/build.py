"""Build the report from a folder of runs: collect → cells (:mod:`.model`) → decisions (:mod:`.statistics`)
→ answers (:mod:`.answers`). Writes nothing; :mod:`mmrec.report.write` writes.

Research questions (the Holm families) come from, in this order: ``settings.questions`` (API: tests and
simulations), the ``report.questions`` recorded in the runs' ``summary.json`` configs (every run that records
one must record the same), the repository's study config ``conf/experiment/knockout_study.yaml``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Set as AbstractSet
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from mmrec.errors import ConfigError, DataError
from mmrec.report.answers import research_answers
from mmrec.report.collect import collect, read_per_user, read_val_curve, summary_metric
from mmrec.report.conditions import label_runs
from mmrec.report.model import INCOMPLETE_COLUMNS, Report, incomplete_row, make_cells, modality_order
from mmrec.report.settings import Question, ReportSettings, parse_questions
from mmrec.report.statistics import compare

REPO = Path(__file__).resolve().parents[2]
STUDY_CONFIG = REPO / "conf" / "experiment" / "knockout_study.yaml"


def _incomplete(rows: list[dict[str, Any]], **row: Any) -> None:
    rows.append(incomplete_row(**row))


def _run_incomplete(rows: list[dict[str, Any]], run: Any, kind: str, detail: str, path: object) -> None:
    """An incomplete entry about one run (``run``: a row of the runs frame)."""
    rows.append(
        incomplete_row(
            dataset=run.dataset,
            model=run.model,
            condition=run.condition,
            seed=run.seed,
            kind=kind,
            detail=detail,
            path=path,
        )
    )


def study_config_questions(path: Path = STUDY_CONFIG) -> Any:
    """``report.questions`` of the study config file (None when the file or the key is absent)."""
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    # A study config is a mapping at the top level (to_container is typed for any container).
    cfg = cast("dict[str, Any] | None", OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    return ((cfg or {}).get("report") or {}).get("questions")


def resolve_questions(
    runs: pd.DataFrame, settings: ReportSettings, study_config: Path = STUDY_CONFIG
) -> tuple[dict[str, tuple[Question, ...]], str]:
    """Dataset → its declared questions, and where they came from (see the module doc)."""
    if settings.questions is not None:
        raw_by_source: tuple[Any, str] = (None, "the report's settings (API)")
        declared = dict(settings.questions)
    else:
        recorded = [
            (json.dumps(q, sort_keys=True), q, p)
            for q, p in zip(runs.get("report_questions", []), runs.get("summary_path", []))
            if q
        ]
        if recorded:
            first = recorded[0]
            for key, _, path in recorded[1:]:
                if key != first[0]:
                    raise ConfigError(
                        f"runs disagree on report.questions: {first[2]} and {path} record different ones; "
                        "render them as separate studies"
                    )
            raw_by_source = (first[1], f"the runs' recorded config (report.questions, {first[2]})")
        else:
            shown = study_config.relative_to(REPO) if study_config.is_relative_to(REPO) else study_config
            raw_by_source = (study_config_questions(study_config), f"the study config {shown}")
        raw, where = raw_by_source
        declared = parse_questions(raw, where) if raw is not None else {}
    source = raw_by_source[1] if declared else "nowhere (no report.questions declared)"
    datasets = sorted(set(runs["dataset"])) if len(runs) else []
    default = declared.get("default", ())
    return {d: tuple(declared.get(d, default)) for d in datasets}, source


def build_report(folder: str | Path, settings: ReportSettings | None = None, **overrides: Any) -> Report:
    """Collect the runs below ``folder`` and compute every number of the report (writes nothing)."""
    settings = replace(settings or ReportSettings(), **overrides)
    coll = collect(folder)
    incomplete: list[dict[str, Any]] = []
    for prob in coll.problems:
        incomplete.append(incomplete_row(kind=prob["kind"], detail=prob["detail"], path=prob["summary_path"]))
    if coll.runs.empty and not coll.problems:
        raise DataError(folder, "holds no repeat or single summary.json", "run the study (or its repeats) first")

    runs = label_runs(coll.runs)
    runs["value"] = [summary_metric(m, settings.metric) for m in runs["test_metrics"]]
    runs["used"] = runs["status"] == "completed"
    for r in runs[~runs["used"]].itertuples():
        _run_incomplete(incomplete, r, f"run {r.status}", r.error or "", r.summary_path)

    # duplicates: the same (dataset, model, condition, seed) twice → keep the newest, report the others
    done = runs[runs["used"]].sort_values("created")
    dup = done.duplicated(["dataset", "model", "condition", "seed"], keep="last")
    for r in done[dup].itertuples():
        _run_incomplete(
            incomplete,
            r,
            "duplicate run",
            "a newer run of the same condition and seed is used",
            r.summary_path,
        )
    runs.loc[done.index[dup.to_numpy()], "used"] = False

    # test-time knockout of a model that uses no features at inference: recorded as not applicable
    not_applicable = runs["used"] & runs["note"].map(lambda n: isinstance(n, str) and n.startswith("not applicable"))
    for r in runs[not_applicable].itertuples():
        _run_incomplete(incomplete, r, "not applicable", r.note, r.summary_path)
    runs.loc[not_applicable, "used"] = False

    completed = runs["used"].any()
    per_user = _load_per_user(runs, settings.metric, incomplete)
    if completed and not runs["used"].any():
        seen = sorted({k.removeprefix("test/") for m in runs["test_metrics"] for k in m})
        raise ConfigError(
            f"no completed run under {folder} has test metric '{settings.metric}' "
            f"(the summaries have: {', '.join(seen) or 'none'}); choose one with --metric/--k"
        )
    val_curves = _load_val_curves(runs, settings.metric, incomplete)
    used = runs[runs["used"]]
    seed_values = (
        used[["dataset", "model", "condition", "seed", "value"]]
        .sort_values(["dataset", "model", "condition", "seed"])
        .reset_index(drop=True)
    )
    questions, source = resolve_questions(runs, settings)
    cells = compare(make_cells(used, per_user), settings, questions)
    cells = _sorted(cells, modality_order(runs))
    na_cells = set(zip(*(runs.loc[not_applicable, c] for c in ("dataset", "model", "condition"))))
    _completeness(runs[~not_applicable], cells, incomplete, na_cells)
    report = Report(
        folder=Path(folder),
        settings=settings,
        runs=runs,
        cells=cells,
        seed_values=seed_values,
        val_curves=val_curves,
        incomplete=pd.DataFrame(incomplete, columns=INCOMPLETE_COLUMNS).astype({"seed": "Int64"}),
        ignored=coll.ignored,
        questions=questions,
        questions_source=source,
    )
    report.answers = research_answers(report)
    return report


def _sorted(cells: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    from mmrec.report.conditions import order_conditions

    if cells.empty:
        return cells
    order = {c: i for i, c in enumerate(order_conditions(cells["condition"], modalities))}
    keys = pd.DataFrame(
        {"d": cells["dataset"], "m": cells["model"], "c": cells["condition"].map(order)}, index=cells.index
    )
    return cells.loc[keys.sort_values(["d", "m", "c"], kind="stable").index].reset_index(drop=True)


def _load_per_user(runs: pd.DataFrame, metric: str, incomplete: list) -> dict[int, pd.Series]:
    """Per-user series of every used run (by row index); fills missing summary values from them."""
    out: dict[int, pd.Series] = {}
    for idx in runs.index[runs["used"]]:
        r = runs.loc[idx]
        if pd.isna(r.per_user_path):
            _run_incomplete(
                incomplete,
                r,
                "missing per-user metrics",
                "no per-user file: no user-level interval or test for this cell",
                r.run_dir,
            )
        else:
            try:
                out[idx] = read_per_user(r.per_user_path, metric)
            except DataError as e:
                _run_incomplete(incomplete, r, "unreadable per-user metrics", e.problem, r.per_user_path)
        if not np.isfinite(r.value):
            if idx in out and len(out[idx]):
                runs.loc[idx, "value"] = float(out[idx].mean())
                _run_incomplete(
                    incomplete,
                    r,
                    "metric missing in summary",
                    f"{metric} taken as the mean of the per-user file",
                    r.summary_path,
                )
            else:
                runs.loc[idx, "used"] = False
                out.pop(idx, None)
                _run_incomplete(
                    incomplete,
                    r,
                    "metric missing",
                    f"the summary has no test {metric} and no per-user file has it",
                    r.summary_path,
                )
        elif idx in out and len(out[idx]):
            pu_mean = float(out[idx].mean())
            if not math.isclose(pu_mean, r.value, rel_tol=1e-4, abs_tol=1e-6):
                _run_incomplete(
                    incomplete,
                    r,
                    "inconsistent per-user metrics",
                    f"per-user mean {pu_mean:.6g} != summary {r.value:.6g}",
                    r.per_user_path,
                )
    return out


def _load_val_curves(runs: pd.DataFrame, metric: str, incomplete: list) -> pd.DataFrame:
    frames = []
    for r in runs[runs["used"]].itertuples():
        where = {"dataset": r.dataset, "model": r.model, "condition": r.condition, "seed": r.seed}
        curve = None
        if not pd.isna(r.val_curve_path):
            try:
                curve = read_val_curve(r.val_curve_path, metric)
            except DataError as e:
                _run_incomplete(incomplete, r, "unreadable validation curve", e.problem, r.val_curve_path)
                continue
        if curve is None:
            if r.knockout_phase == "test":  # test-time knockouts do not train: no curve expected
                continue
            detail = "no val_curve file" if pd.isna(r.val_curve_path) else f"no column val/{metric} or {metric}"
            _run_incomplete(incomplete, r, "missing validation curve", detail, r.run_dir)
            continue
        frames.append(pd.DataFrame({**where, "epoch": curve.index.to_numpy(), "value": curve.to_numpy()}))
    cols = ["dataset", "model", "condition", "seed", "epoch", "value"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def _completeness(
    runs: pd.DataFrame, cells: pd.DataFrame, incomplete: list, skip: AbstractSet[tuple] = frozenset()
) -> None:
    """Missing conditions (per dataset: every model should have every condition seen) and short seeds.

    ``skip``: (dataset, model, condition) recorded as not applicable (never "missing").
    """
    for dataset, dcells in cells.groupby("dataset") if not cells.empty else []:
        models = sorted(runs.loc[runs["dataset"] == dataset, "model"].unique())
        conditions = sorted(runs.loc[runs["dataset"] == dataset, "condition"].unique())
        seeds = sorted(set().union(*dcells["seeds"].map(set)))
        have = {(m, c): s for m, c, s in zip(dcells["model"], dcells["condition"], dcells["seeds"])}
        for model in models:
            for cond in conditions:
                if (dataset, model, cond) in skip:
                    continue
                if (model, cond) not in have:
                    _incomplete(
                        incomplete,
                        dataset=dataset,
                        model=model,
                        condition=cond,
                        kind="missing condition",
                        detail="no completed run of this condition for this model",
                    )
                    continue
                for s in sorted(set(seeds) - set(have[(model, cond)])):
                    _incomplete(
                        incomplete,
                        dataset=dataset,
                        model=model,
                        condition=cond,
                        seed=s,
                        kind="missing seed",
                        detail=f"has seeds {have[(model, cond)]}, the dataset's runs use {seeds}",
                    )
        for r in dcells.itertuples():
            if not r.is_full and not pd.isna(cast(Any, r.reference)) and r.design == "none":
                _incomplete(
                    incomplete,
                    dataset=dataset,
                    model=r.model,
                    condition=r.condition,
                    kind="too few seeds",
                    detail=f"fewer than 2 seeds shared with '{r.reference}' and fewer than 2 in one of the "
                    "two cells: no interval and no test",
                )
            if not r.is_full and pd.isna(cast(Any, r.reference)):
                _incomplete(
                    incomplete,
                    dataset=dataset,
                    model=r.model,
                    condition=r.condition,
                    kind="no reference",
                    detail="no completed 'full' cell for this model: no delta and no tests",
                )
    # datasets whose runs all failed have no cells at all
    for dataset in sorted(set(runs["dataset"]) - set(cells.get("dataset", pd.Series(dtype=str)))):
        _incomplete(incomplete, dataset=dataset, kind="no completed run", detail="every run of this dataset failed")
