"""Synthetic data with planted modality signal, so tests and the demo know the truth.

Item latent factors ``V`` drive interactions: user ``u`` picks items by Gumbel-top-k over ``U_u · V_i / T``
(no item bias, so popularity is nearly flat and MostPop is a weak baseline). Each modality ``m`` is a noisy
linear view of ``V``: ``x_i = s_m · V_i W_m + sqrt(1 - s_m²) · ε_i`` (standardised), where ``s_m`` in [0, 1] is the
modality's informativeness: 1 = the content determines the item's latent factors, 0 = pure noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.split import split_per_user
from mmrec.errors import ConfigError
from mmrec.features.item_features import ItemFeatures

DEFAULT_MODALITIES = {
    "text": {"dim": 64, "signal": 0.95},
    "image": {"dim": 128, "signal": 0.4},
    "audio": {"dim": 32, "signal": 0.0},
}


def make_synthetic(
    name: str = "synthetic",
    n_users: int = 1200,
    n_items: int = 1000,
    n_factors: int = 16,
    interactions_per_user: int = 16,
    temperature: float = 0.5,
    modalities: Mapping[str, Mapping[str, float]] | None = None,
    data_seed: int = 7,
    split: Mapping[str, Any] | None = None,
) -> Dataset:
    """Generate interactions and features (deterministic in ``data_seed``), then split with ``split.seed``."""
    modalities = DEFAULT_MODALITIES if modalities is None else modalities
    for m, spec in modalities.items():
        if not 0.0 <= float(spec.get("signal", 0.0)) <= 1.0:
            raise ConfigError(f"synthetic modality '{m}': signal must be in [0, 1], got {spec.get('signal')}")
    if interactions_per_user >= n_items:
        raise ConfigError("synthetic: interactions_per_user must be smaller than n_items")
    split = dict(split or {})
    if split.get("method", "random") != "random":
        raise ConfigError(f"dataset.split.method={split['method']!r}: the synthetic set has no timestamps and is "
                          "split at random only; use random")
    rng = np.random.default_rng(data_seed)
    U = rng.standard_normal((n_users, n_factors)) / np.sqrt(n_factors) ** 0.5
    V = rng.standard_normal((n_items, n_factors)) / np.sqrt(n_factors) ** 0.5
    logits = U @ V.T / temperature  # [n_users, n_items]
    gumbel = rng.gumbel(size=logits.shape)
    counts = np.clip(rng.poisson(interactions_per_user, n_users), 3, n_items - 1)
    order = np.argsort(-(logits + gumbel), axis=1)
    take = np.arange(n_items)[None, :] < counts[:, None]
    users = np.repeat(np.arange(n_users), counts)
    items = order[take]

    tensors = {}
    for m, spec in modalities.items():
        s, dim = float(spec.get("signal", 0.0)), int(spec.get("dim", 32))
        W = rng.standard_normal((n_factors, dim))
        signal = V @ W
        signal = (signal - signal.mean(0)) / (signal.std(0) + 1e-12)
        noise = rng.standard_normal((n_items, dim))
        tensors[m] = torch.from_numpy((s * signal + np.sqrt(1.0 - s * s) * noise).astype(np.float32))

    import pandas as pd

    df = pd.DataFrame({"user": users, "item": items})
    labels = split_per_user(
        df,
        method="random",
        ratios=tuple(split.get("ratios", (0.8, 0.1, 0.1))),
        seed=int(split.get("seed", 0)),
        min_interactions=int(split.get("min_interactions", 3)),
    )
    pairs = np.stack([users, items], axis=1).astype(np.int64)
    inter = Interactions(n_users, n_items, pairs[labels == 0], pairs[labels == 1], pairs[labels == 2])
    truth = {"user_factors": U, "item_factors": V, "signal": {m: float(s["signal"]) for m, s in modalities.items()}}
    return Dataset(name=name, interactions=inter, features=ItemFeatures(tensors), truth=truth)
