"""The loaded data set: interactions with a split, id maps, item metadata and any shipped features."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmrec.cache import hash_parts
from mmrec.data.item_features import ItemFeatures


@dataclass
class Interactions:
    """Dense 0-based ids; each split is an int64 ``[n, 2]`` array of (user, item) pairs."""

    n_users: int
    n_items: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def matrix(self, split: str = "train") -> sp.csr_matrix:
        pairs = getattr(self, split)
        data = np.ones(len(pairs), dtype=np.float32)
        m = sp.csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def content_hash(self) -> str:
        return hash_parts(self.n_users, self.n_items, self.train, self.val, self.test)


@dataclass
class Dataset:
    """Everything a loader produces; encoders turn ``items`` (metadata) or ``features`` into ItemFeatures.

    ``items``: one row per internal item id (raw layout; may be None), with the raw item id in ``item_id``.
    ``features``: modality features shipped with the data (MMRec ``<modality>_feat.npy`` or synthetic).
    ``truth``: for synthetic data, the planted latent factors and per-modality informativeness.
    ``text_template``: how an item's text is built from ``items`` columns, e.g. ``"{title} ({year})"``.
    ``fill``: how encoders fill items that lack a modality (``mean`` | ``zero``); a mask records them.
    """

    name: str
    interactions: Interactions
    data_dir: Path | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    items: pd.DataFrame | None = None
    features: ItemFeatures | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    text_template: str | None = None
    fill: str = "mean"

    @property
    def n_users(self) -> int:
        return self.interactions.n_users

    @property
    def n_items(self) -> int:
        return self.interactions.n_items
