"""End-to-end jobs through train.py: composition of every config group, validation, grids, resume, knockouts."""

from __future__ import annotations

import json
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

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
SMALL = ["dataset.synthetic.n_users=300", "dataset.synthetic.n_items=200", "dataset.synthetic.n_factors=8",
         "logger=none", "trainer.enable_progress_bar=false"]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=False)


def run_train(args: list[str], run_dir: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "train.py"), *SMALL, f"hydra.run.dir={run_dir}", *args]
    e = {**os.environ, "WANDB_MODE": "disabled", **(env or {})}
    p = subprocess.run(cmd, cwd=run_dir.parent, capture_output=True, text=True, env=e, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout[-3000:] + p.stderr[-3000:])
    return p


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["dataset", "encoder", "knockout", "model", "trainer", "logger", "callbacks",
                                   "protocol", "experiment", "hparams_search"])
def test_every_config_of_every_group_composes(group: str) -> None:
    options = group_options(group)
    assert options, group
    for option in options:
        cfg = compose_cfg([f"{group}={option}"])
        OmegaConf.resolve(OmegaConf.create(OmegaConf.to_container(cfg.model)))
        assert cfg[group if group not in ("protocol", "experiment", "hparams_search") else "model"] is not None


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_config_validates_against_its_class(model: str) -> None:
    cfg = compose_cfg([f"model={model}"])
    facts = validate(cfg)
    assert facts["model_cls"].__name__


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
    cmd = [sys.executable, str(REPO / "train.py"), "-m", "hydra/sweeper=basic", *SMALL, "model=mostpop,bpr",
           "seed=1,2", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path / 'grid'}"]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"},
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    records = [summary.read(f) for f in summary.find(tmp_path / "grid")]
    assert sorted((r["condition"]["model"], r["seeds"]["seed"]) for r in records) == [
        ("bpr", 1), ("bpr", 2), ("mostpop", 1), ("mostpop", 2)]


@pytest.mark.slow
def test_resume_after_kill_gives_identical_metrics(tmp_path: Path) -> None:
    args = ["model=lightgcn", "trainer.max_epochs=12", "model.lr=0.01"]
    run_train(args, tmp_path / "straight")
    straight = summary.read(tmp_path / "straight")
    killed = tmp_path / "killed"
    killed.mkdir()
    cmd = [sys.executable, str(REPO / "train.py"), *SMALL, f"hydra.run.dir={killed}", *args]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "WANDB_MODE": "disabled"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    run_train(["knockout=text_shuffle", "knockout.phase=test", f"knockout.from_run={tmp_path / 'vbpr'}"],
              tmp_path / "ko")
    ko = summary.read(tmp_path / "ko")
    assert ko["condition"]["knockout_phase"] == "test" and ko["condition"]["knockout"]["text"] == "shuffle"
    assert ko["condition"]["model"] == "vbpr"
    assert ko["metrics"]["test"]["recall@20"] != source["metrics"]["test"]["recall@20"]
    # a model that uses no features at inference: "not applicable", not an unchanged score
    run_train(["model=lightgcn", "trainer.max_epochs=1"], tmp_path / "lgcn")
    run_train(["knockout=text_shuffle", "knockout.phase=test", f"knockout.from_run={tmp_path / 'lgcn'}"],
              tmp_path / "ko2")
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
    pytest.importorskip("wandb")
    run = tmp_path / "wb"
    cmd = [sys.executable, str(REPO / "train.py"), *[a for a in SMALL if a != "logger=none"], f"hydra.run.dir={run}",
           "model=bpr", "trainer.max_epochs=2", "logger.wandb.mode=offline"]
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env={**env, "WANDB_SILENT": "true"},
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    files = list(run.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, list(run.rglob("*"))
    logged = read_wandb_offline(files[0])
    s = summary.read(run)
    assert logged["test/recall@20"] == pytest.approx(s["metrics"]["test"]["recall@20"], rel=1e-6)
    assert logged["val/recall@20"] == pytest.approx(s["metrics"]["val"]["recall@20"], rel=1e-6)


def read_wandb_offline(path: Path) -> dict:
    """Logged history and summary values of an offline W&B run file (a LevelDB-style log of protobufs)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    raw, block = path.read_bytes(), 32768
    assert raw[:4] == b":W&B"

    def records():
        pos, buf = 7, b""
        while pos + 7 <= len(raw):
            left = block - pos % block
            if left < 7:
                pos += left
                continue
            _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
            pos += 7
            data = raw[pos : pos + length]
            pos += length
            if kind == 1:
                yield data
            elif kind == 2:
                buf = data
            elif kind == 3:
                buf += data
            elif kind == 4:
                yield buf + data

    values: dict = {}
    for data in records():
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        items = rec.history.item if kind == "history" else rec.summary.update if kind == "summary" else []
        for it in items:
            values[it.key or "/".join(it.nested_key)] = json.loads(it.value_json)
    return values
