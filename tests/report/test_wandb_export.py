"""``python -m mmrec.report <folder> --wandb``: one offline report run per study group, read back from its files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mmrec.errors import DataError
from mmrec.report.__main__ import main
from mmrec.report.wandb_export import RenderedReport, export_to_wandb
from tests.wandb_offline import read_wandb_offline, run_info

from .fake_study import CONDITIONS, MODELS, build_study


def test_report_runs_land_in_each_study_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    study = build_study(tmp_path / "study", defects=False)
    assert main([str(study.root), "--wandb"]) == 0
    assert "W&B: 6 report runs logged (offline" in capsys.readouterr().out
    report_dir = study.root / "report"
    runs = pd.read_csv(report_dir / "runs.csv")
    studies = set(runs["study"])
    assert len(studies) == len(MODELS) * len(CONDITIONS)
    files = sorted(report_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == len(studies)
    groups = set()
    answers = next(report_dir.glob("answers_*.md")).read_text(encoding="utf-8")
    table = pd.read_csv(next(report_dir.glob("knockout_*.csv")), index_col=[0, 1])
    for path in files:
        info = run_info(path)
        assert info["job_type"] == "report"
        groups.add(info["group"])
        logged = read_wandb_offline(path)
        assert logged["answers"] == answers
        assert logged["report/knockout_table/_type"] == "table-file"
        assert logged["report/knockout_table/ncols"] == 1 + table.shape[1]  # model + one column per condition
        assert logged["report/heatmap/_type"] == logged["report/bars/_type"] == "image-file"
        assert logged["report/answers/nrows"] == sum(
            1 for line in answers.splitlines() if line.strip() and not line.startswith("#")
        )
        # the table's media file holds the rendered cells of the run's dataset
        media = json.loads((path.parent / "files" / logged["report/knockout_table/path"]).read_text())
        assert media["columns"] == ["model", *table.columns]
        assert [row[1:] for row in media["data"]] == table.astype(str).values.tolist()
    assert groups == studies


def test_rendered_report_reads_the_written_files(tmp_path: Path) -> None:
    study = build_study(tmp_path / "study", defects=False)
    assert main([str(study.root), "--no-plots"]) == 0
    rendered = RenderedReport.read(study.root / "report")
    assert rendered.image("bars_synth_vbpr") is None  # --no-plots: no PNG, and the export logs none
    assert set(rendered.dataset_table("synth")["model"]) == set(MODELS)
    with pytest.raises(DataError, match="not a rendered report"):
        export_to_wandb(tmp_path)
