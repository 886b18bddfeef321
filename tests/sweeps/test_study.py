"""The one-command study (tune every model × condition, then repeat) and the report on its real runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mmrec import summary
from mmrec.sweeps.study import condition_specs

REPO = Path(__file__).resolve().parents[2]


def test_condition_specs_follow_the_dataset_modalities() -> None:
    specs = condition_specs(["full", "each_only", "all_constant", "audio:shuffle"], ["image", "audio"])
    assert specs == {
        "full": "none",
        "image_only": "all:noise+image:keep",
        "audio_only": "all:noise+audio:keep",
        "all_constant": "all:constant",
        "audio:shuffle": "audio:shuffle",
    }


@pytest.mark.slow
def test_study_then_report_on_real_runs(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    overrides = [
        "experiment=knockout_study",
        "knockout_study.models=[vbpr,lightgcn]",
        "knockout_study.conditions=[full,all_noise,text:shuffle]",
        "knockout_study.seeds=2",
        "knockout_study.transfer=false",
        "hydra.sweeper.n_trials=1",
        "trainer.max_epochs=2",
        "logger=none",
        "dataset.synthetic.n_users=200",
        "dataset.synthetic.n_items=150",
        f"paths.output_root={out}",
        "trainer.enable_progress_bar=false",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "MMREC_CACHE": str(tmp_path / "cache")}
    p = subprocess.run(
        [sys.executable, "-m", "mmrec.sweeps.study", *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    records = [summary.read(f) for f in summary.find(out)]
    repeats = [r for r in records if r["role"] == "repeat"]
    trials = [r for r in records if r["role"] == "trial"]
    assert len(trials) == 6 and all(r["metrics"]["test"] == {} for r in trials)  # trials never test
    assert len(repeats) == 12  # 2 models × 3 conditions × 2 seeds
    assert {r["seeds"]["seed"] for r in repeats} == {1, 2}  # fresh seeds, never the tuning seed 0
    assert {r["seeds"]["split"] for r in repeats} == {0}
    r = subprocess.run(
        [sys.executable, "-m", "mmrec.report", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    cells = pd.read_csv(next((out / "report").glob("cells_*.csv")))
    for rec in repeats:
        if rec["condition"]["model"] == "vbpr" and all(v == "keep" for v in rec["condition"]["knockout"].values()):
            row = cells[(cells["model"] == "vbpr") & (cells["condition"] == "full")].iloc[0]
            vals = [
                x["metrics"]["test"]["recall@20"]
                for x in repeats
                if x["condition"]["model"] == "vbpr" and x["study"] == rec["study"]
            ]
            assert row["mean"] == pytest.approx(sum(vals) / len(vals))
            break
    assert list((out / "report").glob("*.html"))
