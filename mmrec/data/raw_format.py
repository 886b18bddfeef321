"""Raw layout: ``interactions.tsv`` (user_id, item_id [, rating, timestamp]) + ``items.jsonl`` [+ ``images/``].

Loading filters (rating threshold, iterative k-core), remaps ids densely and splits per user with a seed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.data.split import k_core, remap_ids, split_per_user
from mmrec.data.validate import check_features, check_splits, require_columns, require_file
from mmrec.errors import DataError


def read_items(path: Path) -> pd.DataFrame:
    """items.jsonl: one JSON object per line with at least ``item_id``."""
    require_file(path, "item metadata (items.jsonl)")
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(path, f"line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict) or "item_id" not in obj:
                raise DataError(path, f"line {lineno}: expected an object with an 'item_id' field")
            obj["item_id"] = str(obj["item_id"])
            rows.append(obj)
    items = pd.DataFrame(rows, dtype=object)
    dup = items["item_id"].duplicated()
    if dup.any():
        raise DataError(path, f"item_id {items['item_id'][dup].iloc[0]!r} appears more than once")
    return items.set_index("item_id", drop=False)


def load_raw(
    data_dir: str | Path,
    name: str,
    k_core_min: int = 5,
    min_rating: float | None = None,
    split: Mapping[str, Any] | None = None,
    text_template: str | None = None,
    fill: str = "mean",
) -> Dataset:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(data_dir, "dataset folder does not exist", "set dataset.data_dir=...")
    split = dict(split or {})
    path = require_file(data_dir / "interactions.tsv", "interactions file (interactions.tsv)")
    try:
        df = pd.read_csv(path, sep="\t", dtype={"user_id": str, "item_id": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(path, f"malformed TSV: {e}") from None
    require_columns(path, ["user_id", "item_id"], list(df.columns))
    for col in ("rating", "timestamp"):
        if col in df.columns and not pd.api.types.is_numeric_dtype(df[col]):
            bad = pd.to_numeric(df[col], errors="coerce").isna().to_numpy().nonzero()[0]
            raise DataError(path, f"line {bad[0] + 2}: column '{col}' has non-numeric value {df[col].iloc[bad[0]]!r}")
    if df[["user_id", "item_id"]].isna().any().any():
        bad = int(np.argmax(df[["user_id", "item_id"]].isna().any(axis=1).to_numpy()))
        raise DataError(path, f"line {bad + 2}: empty user_id or item_id")
    items = read_items(data_dir / "items.jsonl")
    unknown = ~df["item_id"].isin(items.index)
    if unknown.any():
        i = int(np.argmax(unknown.to_numpy()))
        raise DataError(path, f"line {i + 2}: item_id {df['item_id'].iloc[i]!r} is not in items.jsonl")

    n_raw = len(df)
    if min_rating is not None and "rating" in df.columns:
        df = df[df["rating"] >= min_rating]
    df = df.drop_duplicates(["user_id", "item_id"], keep="last")
    df = df.rename(columns={"user_id": "user", "item_id": "item"})
    df = k_core(df, k_core_min)
    if len(df) == 0:
        raise DataError(path, f"no interaction survives {k_core_min}-core filtering", "lower dataset.k_core")
    df, user_ids, item_ids = remap_ids(df)
    labels = split_per_user(
        df,
        method=split.get("method", "random"),
        ratios=tuple(split.get("ratios", (0.8, 0.1, 0.1))),
        seed=int(split.get("seed", 0)),
        min_interactions=int(split.get("min_interactions", 3)),
    )
    pairs = df[["user", "item"]].to_numpy(np.int64)
    splits = {s: pairs[labels == k] for k, s in enumerate(("train", "val", "test"))}
    check_splits(path, {s: len(v) for s, v in splits.items()})
    inter = Interactions(len(user_ids), len(item_ids), splits["train"], splits["val"], splits["test"])
    kept_items = items.loc[item_ids].reset_index(drop=True)
    features = _shipped_features(data_dir, item_ids)
    stats = {"n_raw_interactions": int(n_raw), "k_core": k_core_min}
    return Dataset(
        name=name,
        interactions=inter,
        data_dir=data_dir,
        user_ids=user_ids,
        item_ids=item_ids,
        items=kept_items,
        text_template=text_template,
        fill=fill,
        stats=stats,
        features=features,
    )


def _shipped_features(data_dir: Path, item_ids: np.ndarray) -> ItemFeatures | None:
    """``<modality>_feat.npy`` shipped beside items.jsonl (rows in items.jsonl order, optional
    ``<modality>_feat_mask.npy``), re-indexed to the kept items; e.g. Amazon 2014's 4096-d image features."""
    paths = sorted(data_dir.glob("*_feat.npy"))
    if not paths:
        return None
    with (data_dir / "items.jsonl").open(encoding="utf-8") as f:
        order = [str(json.loads(line)["item_id"]) for line in f if line.strip()]
    rows = pd.Series(np.arange(len(order)), index=order).loc[item_ids].to_numpy()
    tensors, masks = {}, {}
    for p in paths:
        m = p.name[: -len("_feat.npy")]
        arr = np.load(p, mmap_mode="r")
        arr = check_features(p, np.asarray(arr), len(order))
        tensors[m] = torch.from_numpy(np.ascontiguousarray(arr[rows]))
        mask_path = data_dir / f"{m}_feat_mask.npy"
        present = np.load(mask_path)[rows] if mask_path.is_file() else np.ones(len(rows), bool)
        masks[m] = torch.from_numpy(present.astype(bool))
    return ItemFeatures(tensors, masks)
