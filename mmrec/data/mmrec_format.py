"""MMRec layout: ``<name>.inter`` (userID, itemID, x_label [, rating, timestamp]) + ``<modality>_feat.npy``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.data.validate import (
    check_features,
    check_id_range,
    check_int_column,
    check_splits,
    require_columns,
)
from mmrec.errors import DataError

REQUIRED = ["userID", "itemID", "x_label"]


def find_inter_file(data_dir: Path, name: str) -> Path:
    candidates = [data_dir / f"{name}.inter"] + sorted(data_dir.glob("*.inter"))
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(data_dir, f"no '{name}.inter' (or any .inter file) in the MMRec-layout folder", "check data_dir")


def load_mmrec(data_dir: str | Path, name: str, modalities: Sequence[str] | None = None, fill: str = "mean") -> Dataset:
    """Read an MMRec-layout folder. ``modalities``: feature files to load (None = every ``*_feat.npy``)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(data_dir, "dataset folder does not exist", "set dataset.data_dir=...")
    path = find_inter_file(data_dir, name)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(path, f"malformed TSV: {e}") from None
    require_columns(path, REQUIRED, list(df.columns))
    if len(df) == 0:
        raise DataError(path, "has no interaction rows")
    users = check_int_column(path, "userID", df["userID"].to_numpy())
    items = check_int_column(path, "itemID", df["itemID"].to_numpy())
    labels = check_int_column(path, "x_label", df["x_label"].to_numpy())
    check_id_range(path, "userID", users)
    check_id_range(path, "itemID", items)
    bad = ~np.isin(labels, [0, 1, 2])
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(path, f"line {i + 2}: x_label {labels[i]} is not 0 (train), 1 (val) or 2 (test)")

    feat_paths = _feature_paths(data_dir, modalities)
    n_items = int(items.max()) + 1
    raw = {}
    for m, p in feat_paths.items():
        try:
            raw[m] = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(p, f"cannot read .npy: {e}") from None
    if raw:  # feature rows define the item universe (items with no interaction at all are allowed)
        n_items = max(n_items, max(a.shape[0] for a in raw.values()))
    n_users = int(users.max()) + 1
    tensors = {m: torch.from_numpy(check_features(feat_paths[m], a, n_items)) for m, a in raw.items()}
    features = ItemFeatures(tensors) if tensors else None

    pairs = np.stack([users, items], axis=1)
    splits = {s: pairs[labels == k] for k, s in enumerate(("train", "val", "test"))}
    check_splits(path, {s: len(v) for s, v in splits.items()})
    inter = Interactions(n_users, n_items, splits["train"], splits["val"], splits["test"])
    return Dataset(name=name, interactions=inter, data_dir=data_dir, features=features, fill=fill)


def _feature_paths(data_dir: Path, modalities: Sequence[str] | None) -> dict[str, Path]:
    if modalities is None:
        return {p.name[: -len("_feat.npy")]: p for p in sorted(data_dir.glob("*_feat.npy"))}
    paths = {}
    for m in modalities:
        p = data_dir / f"{m}_feat.npy"
        if not p.is_file():
            present = sorted(q.name for q in data_dir.glob("*_feat.npy"))
            raise DataError(p, f"missing feature file for modality '{m}' (present: {present})")
        paths[m] = p
    return paths
