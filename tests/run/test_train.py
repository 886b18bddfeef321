"""End-to-end jobs through train.py: composition of every config group, validation, grids, resume, knockouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mmrec import summary
from mmrec.config import validate
from mmrec.errors import ConfigError
from tests.wandb_offline import read_wandb_offline

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
SMALL = [
    "dataset.synthetic.n_users=300",
    "dataset.synthetic.n_items=200",
    "dataset.synthetic.n_factors=8",
    "logger=none",
    "trainer.enable_progress_bar=false",
]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=False)


def run_train(
    args: list[str], run_dir: Path, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "train.py"), *SMALL, f"hydra.run.dir={run_dir}", *args]
    e = {**os.environ, "WANDB_MODE": "disabled", **(env or {})}
    p = subprocess.run(cmd, cwd=run_dir.parent, capture_output=True, text=True, env=e, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout[-3000:] + p.stderr[-3000:])
    return p


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group",
    [
        "dataset",
        "encoder",
        "knockout",
        "model",
        "optimizer",
        "trainer",
        "logger",
        "callbacks",
        "protocol",
        "experiment",
        "hparams_search",
    ],
)
def test_every_config_of_every_group_composes(group: str) -> None:
    options = group_options(group)
    assert options, group
    for option in options:
        cfg = compose_cfg([f"{group}={option}"])
        OmegaConf.resolve(OmegaConf.create(OmegaConf.to_container(cfg.model)))
        # the option's own values are what the job gets (global packages at the root, others under the group)
        path = CONF / group / f"{option}.yaml"
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        composed = OmegaConf.to_container(cfg, resolve=False)
        is_global = "# @package _global_" in path.read_text(encoding="utf-8")
        _assert_contains(composed if is_global else composed[group], raw, f"{group}={option}")


def _assert_contains(node: dict, expected: dict, where: str) -> None:
    for key, value in expected.items():
        if key in ("defaults", "hydra"):  # composition instructions and Hydra's own config
            continue
        assert key in node, f"{where}: {key} missing from the composed config"
        if isinstance(value, dict):
            _assert_contains(node[key], value, f"{where}.{key}")
        else:
            assert node[key] == value, f"{where}.{key}: composed {node[key]!r}, the file says {value!r}"


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_config_validates_against_its_class(model: str) -> None:
    cfg = compose_cfg([f"model={model}"])
    assert validate(cfg).model_cls.__name__


def test_misspelt_keys_and_impossible_conditions_fail_early() -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="lrr"):  # on the command line Hydra's struct mode
        compose_cfg(["model.lrr=0.1"])
    cfg = compose_cfg([])  # a misspelt key inside a YAML file
    OmegaConf.set_struct(cfg, False)
    cfg.model.lrr = 0.1
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lrr'\].*accepted"):
        validate(cfg)
    with pytest.raises(ConfigError, match="image, audio|'image', 'audio'"):
        validate(compose_cfg(["dataset=tiktok", "knockout=text_noise"]))
    with pytest.raises(ConfigError, match="not computed"):
        validate(compose_cfg(["monitor=val/recall@7"]))
    with pytest.raises(ConfigError, match="drops every modality"):
        validate(compose_cfg(["model=vbpr", "knockout=none", "knockout.spec=all:drop+text:drop"]))


def test_single_run_writes_a_valid_record(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_train(["model=lightgcn", "trainer.max_epochs=3", "seed=4"], run)
    s = summary.read(run)
    assert s["status"] == "completed" and s["role"] == "single"
    assert s["seeds"]["seed"] == 4 and s["seeds"]["split"] == 0
    assert set(s["metrics"]["test"]) >= {"recall@20", "ndcg@10", "map@50", "hit@5", "precision@20"}
    per_user = pd.read_csv(run / s["paths"]["per_user_metrics"])
    assert len(per_user) == s["n_eval_users"]["test"]
    assert per_user["recall@20"].mean() == pytest.approx(s["metrics"]["test"]["recall@20"])
    curve = pd.read_csv(run / s["paths"]["val_curve"])
    assert list(curve["epoch"]) == [0, 1, 2]
    assert s["metrics"]["val"]["recall@20"] == pytest.approx(curve["val/recall@20"].max())
    assert (run / s["paths"]["checkpoint"]).exists()
    assert s["dataset_stats"]["n_users"] == 300 and s["hashes"]["interactions"]


def test_plain_grid_multirun(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/sweeper=basic",
        *SMALL,
        "model=mostpop,bpr",
        "seed=1,2",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path / 'grid'}",
    ]
    p = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"}, timeout=600
    )
    assert p.returncode == 0, p.stderr[-3000:]
    records = [summary.read(f) for f in summary.find(tmp_path / "grid")]
    assert sorted((r["condition"]["model"], r["seeds"]["seed"]) for r in records) == [
        ("bpr", 1),
        ("bpr", 2),
        ("mostpop", 1),
        ("mostpop", 2),
    ]


@pytest.mark.slow
def test_resume_after_kill_gives_identical_metrics(tmp_path: Path) -> None:
    args = ["model=lightgcn", "trainer.max_epochs=12", "model.lr=0.01"]
    run_train(args, tmp_path / "straight")
    straight = summary.read(tmp_path / "straight")
    killed = tmp_path / "killed"
    killed.mkdir()
    cmd = [sys.executable, str(REPO / "train.py"), *SMALL, f"hydra.run.dir={killed}", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env={**os.environ, "WANDB_MODE": "disabled"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        last = killed / "checkpoints" / "last.ckpt"
        if last.exists() and torch.load(last, weights_only=True)["epoch"] >= 2:  # written atomically
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the job finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists() or summary.read(killed)["status"] != "completed"
    run_train([*args, "resume=true"], killed)
    resumed = summary.read(killed)
    assert resumed["metrics"]["test"] == straight["metrics"]["test"]
    assert resumed["best_epoch"] == straight["best_epoch"]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    p = run_train(["model=bpr", "resume=true"], tmp_path / "fresh", check=False)
    assert p.returncode != 0 and "last.ckpt does not exist" in p.stderr


@pytest.mark.slow
def test_test_time_knockout(tmp_path: Path) -> None:
    run_train(["model=vbpr", "trainer.max_epochs=3", "model.lr=0.01"], tmp_path / "vbpr")
    source = summary.read(tmp_path / "vbpr")
    run_train(
        ["knockout=text_shuffle", "knockout.phase=test", f"knockout.from_run={tmp_path / 'vbpr'}"], tmp_path / "ko"
    )
    ko = summary.read(tmp_path / "ko")
    assert ko["condition"]["knockout_phase"] == "test" and ko["condition"]["knockout"]["text"] == "shuffle"
    assert ko["condition"]["model"] == "vbpr"
    assert ko["metrics"]["test"]["recall@20"] != source["metrics"]["test"]["recall@20"]
    # a model that uses no features at inference: "not applicable", not an unchanged score
    run_train(["model=lightgcn", "trainer.max_epochs=1"], tmp_path / "lgcn")
    run_train(
        ["knockout=text_shuffle", "knockout.phase=test", f"knockout.from_run={tmp_path / 'lgcn'}"], tmp_path / "ko2"
    )
    ko2 = summary.read(tmp_path / "ko2")
    assert "not applicable" in ko2["notes"]["test_time_knockout"] and ko2["metrics"]["test"] == {}


def test_stale_cache_rebuilds_graphs_after_knockout(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {"MMREC_CACHE": str(cache)}
    run_train(["model=freedom", "trainer.max_epochs=1", "knockout=text_noise"], tmp_path / "a", env=env)
    knn_after_knockout = set((cache / "knn").glob("*.pt"))
    run_train(["model=freedom", "trainer.max_epochs=1"], tmp_path / "b", env=env)
    knn_after_real = set((cache / "knn").glob("*.pt"))
    assert len(knn_after_real - knn_after_knockout) >= 1  # the real text graph was built, not reused
    a, b = summary.read(tmp_path / "a"), summary.read(tmp_path / "b")
    assert a["hashes"]["features"] != b["hashes"]["features"]


def test_wandb_offline_run_files_hold_the_metrics(tmp_path: Path) -> None:
    run = tmp_path / "wb"
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        *[a for a in SMALL if a != "logger=none"],
        f"hydra.run.dir={run}",
        "model=bpr",
        "trainer.max_epochs=2",
        "logger.wandb.mode=offline",
    ]
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    p = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, env={**env, "WANDB_SILENT": "true"}, timeout=600
    )
    assert p.returncode == 0, p.stderr[-3000:]
    files = list(run.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, list(run.rglob("*"))
    logged = read_wandb_offline(files[0])
    s = summary.read(run)
    assert logged["test/recall@20"] == pytest.approx(s["metrics"]["test"]["recall@20"], rel=1e-6)
    assert logged["val/recall@20"] == pytest.approx(s["metrics"]["val"]["recall@20"], rel=1e-6)


@pytest.mark.parametrize(("protocol", "val_masked"), [([], True), (["protocol=mmrec"], False)])
def test_protocol_decides_whether_validation_items_are_masked_at_test_time(
    protocol: list[str], val_masked: bool
) -> None:
    """Composed config → validation → the run's own data wiring → the test batches' masks."""
    from mmrec.config import derive_seeds
    from mmrec.run import build_data

    cfg = compose_cfg([*SMALL, "model=mostpop", *protocol])
    facts = validate(cfg)
    dm = build_data(cfg, facts, derive_seeds(cfg)).datamodule
    train, val = dm.train.toarray() > 0, dm.val.toarray() > 0
    assert val.any()
    seen = 0
    for batch in dm.test_dataloader():
        mask = batch["exclude"]
        exclude = (mask.to_dense() if mask.layout != torch.strided else mask).numpy() > 0
        users = batch["users"].numpy()
        expected = train[users] | val[users] if val_masked else train[users]
        assert (exclude == expected).all()
        seen += len(users)
    assert seen > 0


def test_the_optimizer_comes_from_its_config_with_the_model_learning_rate(tmp_path: Path) -> None:
    from mmrec.config import derive_seeds
    from mmrec.run import build_data, build_model

    opt_dir = tmp_path / "optimizer"
    opt_dir.mkdir()
    (opt_dir / "sgd.yaml").write_text("_target_: torch.optim.SGD\n_partial_: true\nmomentum: 0.5\n")
    for overrides, kind in (
        ([], torch.optim.Adam),
        ([f"hydra.searchpath=[file://{tmp_path}]", "optimizer=sgd"], torch.optim.SGD),
    ):
        cfg = compose_cfg([*SMALL, "model=bpr", "model.lr=0.02", *overrides])
        facts = validate(cfg)
        dm = build_data(cfg, facts, derive_seeds(cfg)).datamodule
        optimizer = build_model(cfg, dm.data, derive_seeds(cfg)).configure_optimizers()
        assert type(optimizer) is kind
        assert optimizer.param_groups[0]["lr"] == 0.02
    assert optimizer.param_groups[0]["momentum"] == 0.5
