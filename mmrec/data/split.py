"""Iterative k-core filtering, dense id remapping and seeded per-user splits (vectorised with pandas/numpy)."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from mmrec.errors import ConfigError


def k_core(df: pd.DataFrame, k: int, user: str = "user", item: str = "item") -> pd.DataFrame:
    """Drop users and items with fewer than ``k`` interactions until none is left (iterative k-core)."""
    if k <= 1:
        return df
    while True:
        ucount = cast(pd.Series, df.groupby(user)[item].transform("size"))
        icount = cast(pd.Series, df.groupby(item)[user].transform("size"))
        keep = (ucount >= k) & (icount >= k)
        if keep.all():
            return df
        df = df.loc[keep]


def remap_ids(df: pd.DataFrame, user: str = "user", item: str = "item") -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Dense 0-based ids in order of first sorted raw id; returns (df with int ids, raw user ids, raw item ids)."""
    user_codes, user_ids = pd.factorize(df[user], sort=True)
    item_codes, item_ids = pd.factorize(df[item], sort=True)
    out = df.copy()
    out[user] = user_codes.astype(np.int64)
    out[item] = item_codes.astype(np.int64)
    return out, np.asarray(user_ids), np.asarray(item_ids)


def split_counts(n: np.ndarray, ratios: tuple[float, float, float], min_interactions: int = 3) -> tuple:
    """Per-user (n_train, n_val, n_test). The small-user rule (as in MMRec's preprocessing): a user with fewer
    than ``min_interactions`` interactions keeps them all in training; others get at least one validation and one
    test interaction, ``round(ratio * n)`` otherwise."""
    r_train, r_val, r_test = ratios
    total = r_train + r_val + r_test
    n_val = np.maximum(1, np.round(n * r_val / total)).astype(np.int64)
    n_test = np.maximum(1, np.round(n * r_test / total)).astype(np.int64)
    small = n < min_interactions
    n_val[small] = 0
    n_test[small] = 0
    n_train = n - n_val - n_test
    return n_train, n_val, n_test


def split_per_user(
    df: pd.DataFrame,
    method: str = "random",
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    user: str = "user",
    time: str = "timestamp",
    min_interactions: int = 3,
) -> np.ndarray:
    """Label each row 0/1/2 (train/val/test) per user: ``random`` (seeded shuffle) or ``temporal`` (oldest to train,
    newest to test; ties in time broken by the seeded order). Returns the label array aligned with ``df``."""
    if method not in ("random", "temporal"):
        raise ConfigError(f"unknown split method {method!r}; choose random or temporal")
    rng = np.random.default_rng(seed)
    key = rng.random(len(df))
    users = df[user].to_numpy()
    if method == "temporal":
        if time not in df.columns:
            raise ConfigError("split.method=temporal needs a timestamp column in the interactions")
        order = np.lexsort((key, df[time].to_numpy(), users))
    else:
        order = np.lexsort((key, users))
    sorted_users = users[order]
    _, starts, counts = np.unique(sorted_users, return_index=True, return_counts=True)
    n_train, n_val, _ = split_counts(counts, ratios, min_interactions)
    position = np.arange(len(df)) - np.repeat(starts, counts)  # rank of each row within its user
    label_sorted = np.zeros(len(df), dtype=np.int64)
    label_sorted[position >= np.repeat(n_train, counts)] = 1
    label_sorted[position >= np.repeat(n_train + n_val, counts)] = 2
    labels = np.empty(len(df), dtype=np.int64)
    labels[order] = label_sorted
    return labels
