"""The report's answers on real training runs of the planted synthetic set (text signal 0.95, audio pure
noise): 3 conditions × 5 seeds of VBPR, small data, 15 epochs (49 s on the shared 2-core machine at load 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEEDS = (1, 2, 3, 4, 5)
CONDITIONS = {"full": "none", "no_text": "text:noise", "no_audio": "audio:noise"}
SMALL = [
    "dataset.synthetic.n_users=300",
    "dataset.synthetic.n_items=200",
    "dataset.synthetic.n_factors=8",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "model=vbpr",
    "model.lr=0.01",
    "trainer.max_epochs=15",
    "role=repeat",
    f"paths.root_dir={REPO}",
    f"paths.shared_datasets={REPO}/../shared/datasets",
    "knockout=none",
]


@pytest.mark.slow
def test_without_text_is_worse_and_without_audio_never_worse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra import compose, initialize_config_dir

    from mmrec.report import Question, build_report
    from mmrec.report.answers import answer_lines
    from mmrec.run import train

    monkeypatch.setenv("WANDB_MODE", "disabled")
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        for label, spec in CONDITIONS.items():
            for seed in SEEDS:
                out = tmp_path / label / f"seed_{seed}"
                cfg = compose(
                    "train",
                    overrides=[*SMALL, f"knockout.spec={spec}", f"seed={seed}", f"paths.output_dir={out}"],
                )
                train(cfg)
    questions = {"default": (Question("no-text", "worse"), Question("no-audio", "equivalent"))}
    report = build_report(tmp_path, questions=questions)
    cells = report.cells.set_index("condition")
    assert (cells["n_seeds"] == len(SEEDS)).all() and report.incomplete.empty
    assert cells.loc["no-text", "design"] == "paired" and cells.loc["no-text", "unit"] == "seeds × users"
    assert cells.loc["no-text", "outcome"] == "worse"
    assert cells.loc["no-audio", "outcome"] in ("equivalent", "inconclusive")
    lines = answer_lines(report)
    text = next(line for line in lines if "without text" in line)
    audio = next(line for line in lines if "without audio" in line)
    no_text = cells.loc["no-text"]
    assert f"vbpr worse by more than 2%: {no_text['delta_pct']:+.1f}% [{no_text['ci_low']:+.1f}, " in text
    assert "worse" not in audio.split("(declared equivalent):")[1] and "%" in audio
    if os.environ.get("MMREC_SHOW"):
        print("\n".join(lines))
