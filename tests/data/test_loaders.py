"""Loaders: MMRec layout, raw layout, synthetic; validation errors name the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmrec.data import load_dataset
from mmrec.data.split import k_core, split_per_user
from mmrec.errors import ConfigError, DataError
from tests.conftest import shared_path


def write_mmrec(folder: Path, rows: list[tuple[int, int, int]], feats: dict[str, np.ndarray] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["userID\titemID\tx_label"] + [f"{u}\t{i}\t{x}" for u, i, x in rows]
    (folder / "toy.inter").write_text("\n".join(lines) + "\n")
    for m, a in (feats or {}).items():
        np.save(folder / f"{m}_feat.npy", a)
    return folder


TOY = [(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 1, 0), (1, 2, 0), (1, 0, 2), (2, 2, 0), (2, 3, 1), (2, 0, 2)]


def test_mmrec_layout_roundtrip_and_float16(tmp_path: Path) -> None:
    feats = {"image": np.arange(8, dtype=np.float16).reshape(4, 2), "audio": np.ones((4, 3), dtype=np.float64)}
    ds = load_dataset("toy", format="mmrec", data_dir=str(write_mmrec(tmp_path, TOY, feats)))
    inter = ds.interactions
    assert (inter.n_users, inter.n_items) == (3, 4)
    assert len(inter.train) == 5 and len(inter.val) == 2 and len(inter.test) == 2
    assert sorted(ds.features.modalities) == ["audio", "image"]
    assert ds.features.tensors["image"].dtype.is_floating_point and ds.features.tensors["image"].dtype.itemsize == 4
    np.testing.assert_array_equal(ds.features.tensors["image"].numpy(), feats["image"].astype(np.float32))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: (d / "toy.inter").unlink(), "no 'toy.inter'"),
        (lambda d: (d / "toy.inter").write_text("userID\titemID\n0\t1\n"), "missing column"),
        (lambda d: (d / "toy.inter").write_text("userID\titemID\tx_label\n0\t1\t0\n0\tx\t0\n"), "line 3"),
        (lambda d: (d / "toy.inter").write_text("userID\titemID\tx_label\n0\t1\t0\n-1\t1\t1\n"), "negative"),
        (lambda d: (d / "toy.inter").write_text("userID\titemID\tx_label\n0\t1\t0\n1\t1\t7\n"), "x_label 7"),
        (lambda d: (d / "toy.inter").write_text("userID\titemID\tx_label\n0\t1\t0\n1\t1\t2\n"), "val split is empty"),
        (lambda d: np.save(d / "image_feat.npy", np.ones((3, 2))), "has 3 rows"),
        (lambda d: np.save(d / "image_feat.npy", np.full((4, 2), np.nan)), "NaN"),
        (lambda d: np.save(d / "image_feat.npy", np.ones(4)), "2-d"),
        (lambda d: (d / "image_feat.npy").write_bytes(b"garbage"), "cannot read"),
    ],
)
def test_mmrec_layout_errors_name_file_and_problem(tmp_path: Path, mutate, message: str) -> None:
    folder = write_mmrec(tmp_path / "ds", TOY, {"image": np.ones((4, 2), dtype=np.float32)})
    mutate(folder)
    with pytest.raises(DataError) as e:
        load_dataset("toy", format="mmrec", data_dir=str(folder))
    assert message in str(e.value)
    assert str(folder) in str(e.value)


def test_missing_folder_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("x", format="mmrec", data_dir=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="unknown format"):
        load_dataset("x", format="parquet", data_dir=str(tmp_path))


def write_raw(folder: Path, n_users: int = 12, n_items: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, size=7, replace=False):
            rows.append(f"u{u}\tm{i}\t{rng.integers(1, 6)}\t{rng.integers(1e9, 2e9)}")
    (folder / "interactions.tsv").write_text("user_id\titem_id\trating\ttimestamp\n" + "\n".join(rows) + "\n")
    items = [{"item_id": f"m{i}", "title": f"Movie {i}", "genres": ["Drama"]} for i in range(n_items)]
    (folder / "items.jsonl").write_text("\n".join(json.dumps(x) for x in items) + "\n")
    return folder


def test_raw_layout_kcore_remap_split(tmp_path: Path) -> None:
    ds = load_dataset("toy", format="raw", data_dir=str(write_raw(tmp_path)), k_core=5, split={"seed": 1})
    inter = ds.interactions
    assert inter.n_users == 12 and inter.n_items == len(ds.items) == len(ds.item_ids)
    assert list(ds.items["item_id"]) == list(ds.item_ids)
    all_pairs = np.concatenate([inter.train, inter.val, inter.test])
    assert len(np.unique(all_pairs, axis=0)) == len(all_pairs) == 84
    # every user (7 interactions) gets one val and one test interaction
    assert np.all(np.bincount(inter.val[:, 0], minlength=12) == 1)
    again = load_dataset("toy", format="raw", data_dir=str(tmp_path), k_core=5, split={"seed": 1})
    np.testing.assert_array_equal(again.interactions.test, inter.test)
    other = load_dataset("toy", format="raw", data_dir=str(tmp_path), k_core=5, split={"seed": 2})
    assert not np.array_equal(other.interactions.test, inter.test)


def test_raw_layout_errors(tmp_path: Path) -> None:
    folder = write_raw(tmp_path / "a")
    (folder / "items.jsonl").write_text('{"item_id": "m0"}\n{not json}\n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_dataset("toy", format="raw", data_dir=str(folder))
    folder = write_raw(tmp_path / "b")
    (folder / "items.jsonl").write_text('{"item_id": "m0"}\n')
    with pytest.raises(DataError, match="is not in items.jsonl"):
        load_dataset("toy", format="raw", data_dir=str(folder))
    folder = write_raw(tmp_path / "c")
    (folder / "items.jsonl").unlink()
    with pytest.raises(DataError, match="items.jsonl"):
        load_dataset("toy", format="raw", data_dir=str(folder))


def test_k_core_is_iterative() -> None:
    # item 3 has 1 interaction; removing it leaves user 2 with 1 -> removed too
    df = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2], "item": [0, 1, 0, 1, 1, 3]})
    out = k_core(df, 2)
    assert set(out["user"]) == {0, 1} and set(out["item"]) == {0, 1}


def test_split_small_users_and_temporal_order() -> None:
    df = pd.DataFrame(
        {"user": [0] * 10 + [1] * 2, "item": list(range(10)) + [0, 1], "timestamp": list(range(10)) + [5, 6]}
    )
    labels = split_per_user(df, method="temporal", seed=0)
    assert list(labels[:10]) == [0] * 8 + [1, 2]  # oldest to train, newest to test
    assert list(labels[10:]) == [0, 0]  # fewer than 3 interactions: all in training


def test_synthetic_is_deterministic_and_plants_signal() -> None:
    a = load_dataset("s", format="synthetic", split={"seed": 0}, synthetic={"n_users": 200, "n_items": 150})
    b = load_dataset("s", format="synthetic", split={"seed": 0}, synthetic={"n_users": 200, "n_items": 150})
    np.testing.assert_array_equal(a.interactions.train, b.interactions.train)
    assert a.features.modalities == ["text", "image", "audio"]
    V = a.truth["item_factors"]
    # informative text predicts the item factors; audio does not
    for m, lo, hi in (("text", 0.8, 1.01), ("audio", -0.01, 0.5)):
        X = a.features.tensors[m].numpy()
        coef, *_ = np.linalg.lstsq(X, V, rcond=None)
        r2 = 1 - ((V - X @ coef) ** 2).sum() / ((V - V.mean(0)) ** 2).sum()
        assert lo <= r2 <= hi, (m, r2)


def test_tiktok_real_data() -> None:
    ds = load_dataset("tiktok", format="mmrec", data_dir=str(shared_path("tiktok")))
    inter = ds.interactions
    assert (inter.n_users, inter.n_items) == (9308, 6710)
    assert len(inter.train) + len(inter.val) + len(inter.test) == 68722
    assert ds.features.dims() == {"audio": 128, "image": 128}


def test_ml100k_real_data() -> None:
    ds = load_dataset("ml100k_mm", format="raw", data_dir=str(shared_path("ml100k-mm")), k_core=1, split={"seed": 0})
    assert ds.n_users == 943 and ds.n_items == 1682
    assert ds.items["image"].isna().sum() == 65
