"""Reading run folders: recorded paths resolved robustly, metric columns in both spellings."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from mmrec.errors import DataError
from mmrec.report.collect import collect, read_per_user, read_val_curve, resolve_path, summary_metric

from .fake_study import FakeStudy


def test_resolve_path_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "outputs" / "study" / "repeats" / "seed=1"
    run.mkdir(parents=True)
    target = run / "per_user_test.csv"
    target.write_text("user,recall@20\n")
    assert resolve_path(str(target), run, "x.csv") == target  # absolute
    assert resolve_path("per_user_test.csv", run, "x.csv") == target  # relative to the run dir
    monkeypatch.chdir(tmp_path)
    rel_to_cwd = "outputs/study/repeats/seed=1/per_user_test.csv"  # relative to where the run started
    assert resolve_path(rel_to_cwd, run, "x.csv").resolve() == target.resolve()
    monkeypatch.chdir(run.parent)
    assert resolve_path(rel_to_cwd, run, "x.csv", bases=(tmp_path / "outputs" / "study",)) is not None
    assert resolve_path("/old/machine/seed=1/per_user_test.csv", run, "x.csv") == target  # moved run
    assert resolve_path(None, run, "per_user_test.csv") == target  # not recorded: default name
    assert resolve_path("gone.csv", run, "nothing.csv") is None


def test_per_user_and_val_curve_columns(tmp_path: Path) -> None:
    pu = tmp_path / "pu.csv"
    pd.DataFrame({"user": [3, 1], "test/recall@20": [0.5, 0.25]}).to_csv(pu, index=False)
    series = read_per_user(pu, "recall@20")
    assert series.index.tolist() == [1, 3] and series.tolist() == [0.25, 0.5]
    with pytest.raises(DataError, match="no column 'ndcg@10'"):
        read_per_user(pu, "ndcg@10")
    pd.DataFrame({"user": [1, 1], "recall@20": [0.5, 0.25]}).to_csv(pu, index=False)
    with pytest.raises(DataError, match="twice"):
        read_per_user(pu, "recall@20")
    for col in ("val/recall@20", "recall@20"):
        vc = tmp_path / "vc.csv"
        pd.DataFrame({"epoch": [0, 1, 2], col: [0.1, 0.2, 0.3], "val/loss": [1, 1, 1]}).to_csv(vc, index=False)
        curve = read_val_curve(vc, "recall@20")
        assert curve.index.tolist() == [0, 1, 2] and curve.tolist() == [0.1, 0.2, 0.3]
    assert read_val_curve(vc, "ndcg@20") is None


def test_summary_metric_spellings() -> None:
    assert summary_metric({"recall@20": 0.3}, "recall@20") == 0.3
    assert summary_metric({"test/recall@20": 0.4}, "recall@20") == 0.4
    assert math.isnan(summary_metric({"recall@20": None}, "recall@20"))
    assert math.isnan(summary_metric({"ndcg@20": 0.1}, "recall@20"))


def test_collect_resolves_relative_and_absolute_paths(fake_study: FakeStudy) -> None:
    coll = collect(fake_study.root)
    done = coll.runs[coll.runs["status"] == "completed"]
    assert done["per_user_path"].map(lambda p: p is not None and os.path.isfile(p)).all()
    assert done["val_curve_path"].map(lambda p: p is not None and os.path.isfile(p)).all()
    assert set(coll.ignored["reason"]) == {"tuning trial"}
    assert (coll.runs["knockout"].map(sorted) == [["image", "text"]] * len(coll.runs)).all()


def test_collect_fills_kept_modalities(tmp_path: Path) -> None:
    study = FakeStudy(tmp_path / "s")
    study.add_run("vbpr", "text-only", 1, knockout={"image": "noise"})  # text not named: kept
    coll = collect(study.root)
    assert coll.runs["knockout"].iloc[0] == {"image": "noise", "text": "keep"}
