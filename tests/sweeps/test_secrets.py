"""Storage passwords never reach a file: redaction rules, and a real PostgreSQL sweep + repeat grepped for one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmrec import credentials

REPO = Path(__file__).resolve().parents[2]
PLANTED = "Planted-s3cret-4791"
STUDY = "synthetic__bpr__precomputed__ko=none@train__freeze=default__protocol=ours"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://bob:pw@db:5432/o", "postgresql://bob:***@db:5432/o"),
        ("postgresql+psycopg2://bob:p:w@h/o", "postgresql+psycopg2://bob:***@h/o"),
        (
            "sweep.storage='mysql://u:x%40y@h/o' and http://a:b@c",
            "sweep.storage='mysql://u:***@h/o' and http://a:***@c",
        ),
        ("postgresql://bob@db/o", "postgresql://bob@db/o"),  # no password: unchanged
        ("journal:/tmp/a:b@c.log", "journal:/tmp/a:b@c.log"),  # not a URL with credentials
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert credentials.redact(text) == expected


def test_connection_url_takes_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(credentials.ENV_VAR, "postgresql://bob:pw@db/o")
    assert credentials.connection_url("postgresql://bob:***@db/o") == "postgresql://bob:pw@db/o"
    # another URL: the placeholder is dropped and libpq reads PGPASSWORD / ~/.pgpass
    assert credentials.connection_url("postgresql://eve:***@db/o") == "postgresql://eve@db/o"
    assert credentials.connection_url("postgresql://bob@db/o") == "postgresql://bob@db/o"
    from mmrec.sweeps.storage import resolve_url

    assert resolve_url(None) == "postgresql://bob:pw@db/o"  # null storage = $MMREC_STORAGE when set
    assert credentials.redact_tree({"a": ["x postgresql://bob:pw@db/o"]}) == {"a": ["x postgresql://bob:***@db/o"]}


def _files_containing(root: Path, secret: str) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and secret.encode() in p.read_bytes():
            hits.append(str(p.relative_to(root)))
    return hits


@pytest.mark.slow
def test_no_file_of_a_postgres_sweep_and_repeat_holds_the_password(tmp_path: Path, pg_database: str) -> None:
    # the fixture's server trusts local connections, so any password is accepted: plant one in the URL
    url = pg_database.replace("postgres@", f"postgres:{PLANTED}@", 1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop(credentials.ENV_VAR, None)
    small = [
        "model=bpr",
        "dataset.synthetic.n_users=200",
        "dataset.synthetic.n_items=150",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    ]
    sweep = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            "hydra/sweeper=mmrec_optuna",
            *small,
            "hydra.sweeper.n_trials=2",
            f"hydra.sweeper.storage={url}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert sweep.returncode == 0, sweep.stdout[-4000:] + sweep.stderr[-4000:]
    repeat = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmrec.sweeps.repeat",
            "--study",
            STUDY,
            "--storage",
            url,
            "--seeds",
            "1",
            "--output-root",
            "outputs",
            "--script",
            str(REPO / "train.py"),
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert repeat.returncode == 0, repeat.stdout[-4000:] + repeat.stderr[-4000:]
    study_dir = tmp_path / "outputs" / STUDY
    trial_records = sorted(study_dir.glob("trials/*/summary.json"))
    assert len(trial_records) == 2 and list(study_dir.glob("repeats/*/summary.json"))
    assert list(tmp_path.rglob("wandb/offline-run-*/files/*")), "the offline W&B runs were not written"
    assert list(study_dir.glob("trials/*/.hydra/overrides.yaml")) and (study_dir / "multirun.yaml").exists()
    # the redacted URL is where the password would have been: the grep below looks in the right places
    assert "postgres:***@" in trial_records[0].read_text()
    assert "postgres:***@" in (study_dir / "trials" / "0" / ".hydra" / "overrides.yaml").read_text()
    wandb_files = [p for p in tmp_path.rglob("wandb/offline-run-*/*") if p.is_file()]
    assert any(b"postgres:***@" in p.read_bytes() for p in wandb_files), "no W&B run config was written"
    assert _files_containing(tmp_path, PLANTED) == []
    assert PLANTED not in sweep.stdout + sweep.stderr + repeat.stdout + repeat.stderr
