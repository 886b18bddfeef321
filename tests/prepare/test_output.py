"""All-or-nothing folders, k-core, the CLI and the dataset configs of prepared sets."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from mmrec.errors import ConfigError, DataError
from mmrec.prepare import prepare
from mmrec.prepare.__main__ import main
from mmrec.prepare.output import AlreadyPrepared, data_root, k_core, staging
from mmrec.prepare.registry import DATASETS
from tests.prepare.builders import ml100k_zip

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"
CONFIGS = [
    "baby",
    "sports",
    "clothing",
    "elec",
    "microlens",
    "amazon2023_baby",
    "amazon2023_pets",
    "amazon2023_clothing",
    "ml1m",
]


def test_k_core_iterates_to_a_fixed_point() -> None:
    frame = pd.DataFrame({"user_id": ["a", "a", "b", "b", "b", "c"], "item_id": ["x", "y", "x", "y", "z", "z"]})
    kept, rounds = k_core(frame, 2)
    # z has 2 rows (b, c) but c has 1 row -> c removed, then z has 1 row -> z removed
    assert sorted(zip(kept.user_id, kept.item_id)) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    assert rounds == 2
    assert k_core(frame, 1)[0] is frame


def test_staging_leaves_nothing_behind_on_error(tmp_path) -> None:
    with pytest.raises(RuntimeError), staging(tmp_path, "set") as tmp:
        (tmp / "half.tsv").write_text("partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == [tmp_path / ".set.lock"]


def test_staging_replaces_only_on_success(tmp_path) -> None:
    with staging(tmp_path, "set") as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(AlreadyPrepared), staging(tmp_path, "set"):
        pass
    with pytest.raises(ValueError), staging(tmp_path, "set", force=True) as tmp:
        (tmp / "a").write_text("2")
        raise ValueError
    assert (tmp_path / "set" / "a").read_text() == "1"
    with staging(tmp_path, "set", force=True) as tmp:
        (tmp / "a").write_text("3")
    assert (tmp_path / "set" / "a").read_text() == "3"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "set").stat().st_mode) == 0o777 & ~mask  # not the private temp mode
    assert sorted(p.name for p in tmp_path.iterdir()) == [".set.lock", "set"]


def test_stale_temp_folders_are_cleaned(tmp_path) -> None:
    (tmp_path / ".set.tmp-killed").mkdir(parents=True)
    with staging(tmp_path, "set"):
        pass
    assert not (tmp_path / ".set.tmp-killed").exists()


def test_failed_download_mid_preparation_writes_nothing(server, settings, root) -> None:
    # ratings served, metadata missing: the preparation stops after the first file
    server.add(DATASETS["amazon2014_baby"].files["ratings"].url, b"U1,I1,5.0,1\n")
    with pytest.raises(DataError, match="HTTP 404"):
        prepare("amazon2014_baby", root, settings=settings)
    assert not (root / "amazon2014_baby").exists()
    assert not list(root.glob(".amazon2014_baby.tmp-*"))
    assert (root / "_downloads" / "amazon2014" / "ratings_Baby.csv").exists()  # kept for the next attempt


def test_unknown_name_and_foreign_folder(root) -> None:
    with pytest.raises(ConfigError, match="unknown data set 'nope'"):
        prepare("nope", root)
    (root / "ml1m").mkdir(parents=True)
    with pytest.raises(DataError, match="no manifest.json"):
        prepare("ml1m", root)


def test_data_root_setting(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MMREC_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MMREC_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "mmrec" / "data"


def test_cli_prepares_and_reports(server, root, monkeypatch, capsys) -> None:
    body = ml100k_zip()
    remote = DATASETS["ml100k"].files["archive"]
    server.add(remote.url, body)
    monkeypatch.setitem(
        DATASETS["ml100k"].files,
        "archive",
        type(remote)(remote.url, remote.filename, md5=hashlib.md5(body).hexdigest()),
    )
    monkeypatch.setenv("MMREC_PREPARE_MIRROR", server.url)
    code = main(["ml100k", "--root", str(root), "--no-progress", "--retries", "1"])
    assert code == 0
    assert "ml100k ready" in capsys.readouterr().out
    manifest = json.loads((root / "ml100k" / "manifest.json").read_text())
    assert manifest["command"] == f"python -m mmrec.prepare ml100k --root {root} --no-progress --retries 1"
    assert manifest["settings"]["mirror"] == server.url
    assert main(["nope", "--root", str(root)]) == 1
    assert "unknown data set" in capsys.readouterr().err
    assert main(["list"]) == 0
    assert "amazon2023_pets" in capsys.readouterr().out


@pytest.mark.parametrize("name", CONFIGS)
def test_dataset_configs_point_at_the_prepared_folder(name, monkeypatch, tmp_path) -> None:
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert set(cfg) == {
        "name",
        "_target_",
        "format",
        "data_dir",
        "modalities",
        "fill",
        "text_template",
        "k_core",
        "min_rating",
        "split",
        "synthetic",
    }
    assert cfg.name == name and cfg._target_ == "mmrec.data.load_dataset"
    assert cfg.format == DATASETS[name].layout
    monkeypatch.setenv("MMREC_DATA", str(tmp_path))
    assert cfg.data_dir == f"{tmp_path}/{name}"
    monkeypatch.delenv("MMREC_DATA")
    monkeypatch.setenv("HOME", "/home/someone")
    assert cfg.data_dir == f"/home/someone/.cache/mmrec/data/{name}"
