"""Synthetic data with planted modality signal, so tests and the demo know the truth.

Item latent factors ``V`` drive interactions: user ``u`` picks items by Gumbel-top-k over ``U_u · V_i / T``
(no item bias, so popularity is nearly flat and MostPop is a weak baseline). Each modality ``m`` is a noisy
linear view of ``V``: ``x_i = s_m · V_i W_m + sqrt(1 - s_m²) · ε_i`` (standardised), where ``s_m`` in [0, 1] is the
modality's informativeness: 1 = the content determines the item's latent factors, 0 = pure noise.

Two samplers draw the same thing. ``dense`` (the original; small sets) perturbs a dense users × items logit
matrix with Gumbel noise. ``blocked`` (large sets) never holds more than a block of users × items: Gumbel-top-k
is sampling without replacement with probabilities ∝ ``exp(U_u · V_i / T)``, which equals drawing i.i.d. from
that categorical distribution and keeping the first ``n_u`` distinct items; each block of users draws so from
its own softmax rows. Both samplers consume the root generator identically, so ``U``, ``V``, the per-user counts
and every feature table are bit-identical under both; only which items a user picks differs (same law).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmrec.cache import cached_tensor, hash_parts
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.data.split import split_per_user
from mmrec.errors import ConfigError

DEFAULT_MODALITIES = {
    "text": {"dim": 64, "signal": 0.95},
    "image": {"dim": 128, "signal": 0.4},
    "audio": {"dim": 32, "signal": 0.0},
}
SAMPLERS = ("auto", "dense", "blocked")
DENSE_LIMIT_CELLS = 20_000_000  # auto: the dense sampler up to this many users × items cells (~160 MB float64)


def _advance(rng: np.random.Generator, draws: int) -> None:
    """Skip ``draws`` doubles of the root stream (what a dense ``rng.gumbel`` of that size consumes)."""
    advance = getattr(rng.bit_generator, "advance", None)
    if advance is None:
        raise ConfigError("synthetic: the blocked sampler needs an advanceable bit generator (PCG64)")
    advance(draws)


def _dense_interactions(
    rng: np.random.Generator, U: np.ndarray, V: np.ndarray, temperature: float, interactions_per_user: int
) -> tuple[np.ndarray, np.ndarray]:
    n_users, n_items = U.shape[0], V.shape[0]
    logits = U @ V.T / temperature  # [n_users, n_items]
    gumbel = rng.gumbel(size=logits.shape)
    counts = np.clip(rng.poisson(interactions_per_user, n_users), 3, n_items - 1)
    order = np.argsort(-(logits + gumbel), axis=1)
    take = np.arange(n_items)[None, :] < counts[:, None]
    return np.repeat(np.arange(n_users), counts), order[take]


def _first_distinct(draws: np.ndarray, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``draws`` [b, n], a mask of the first ``need[row]`` distinct values in draw order, and the
    rows that have fewer distinct values than they need."""
    b, n = draws.shape
    order = np.argsort(draws, axis=1, kind="stable")  # equal values keep draw order: the first comes first
    sorted_draws = np.take_along_axis(draws, order, axis=1)
    first_sorted = np.ones((b, n), dtype=bool)
    first_sorted[:, 1:] = sorted_draws[:, 1:] != sorted_draws[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    rank = np.cumsum(first, axis=1)  # distinct values seen so far, in draw order
    keep = first & (rank <= need[:, None])
    short = np.nonzero(rank[:, -1] < need)[0]
    return keep, short


def _blocked_items(
    U: np.ndarray,
    V: np.ndarray,
    temperature: float,
    counts: np.ndarray,
    data_seed: int,
    block_cells: int = 4_000_000,
) -> np.ndarray:
    """Per user block: softmax rows over all items, i.i.d. categorical draws, first ``n_u`` distinct kept.

    Peak memory: one ``[block, n_items]`` float32 block (``block_cells`` cells, 16 MB) and what
    ``torch.multinomial`` needs per row; time is linear in users × items.
    """
    n_users, n_items = U.shape[0], V.shape[0]
    Vt = torch.from_numpy(np.ascontiguousarray(V.T, dtype=np.float32) / np.float32(temperature))  # [f, I]
    Ut = torch.from_numpy(U.astype(np.float32))
    block = max(1, block_cells // n_items)
    buffer = torch.empty((block, n_items), dtype=torch.float32)
    items_out = []
    for b, start in enumerate(range(0, n_users, block)):
        stop = min(start + block, n_users)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([data_seed, 1, b]).generate_state(1)[0]))
        weights = buffer[: stop - start]
        torch.mm(Ut[start:stop], Vt, out=weights)  # logits [b, I]
        weights.sub_(weights.max(dim=1, keepdim=True).values).exp_()
        need = counts[start:stop]
        n_draw = int(need.max() * 1.25) + 8
        draws = torch.multinomial(weights, n_draw, replacement=True, generator=gen).numpy()
        keep, short = _first_distinct(draws, need)
        picked = [draws[row][keep[row]] for row in range(stop - start)] if len(short) else None
        for row in short:  # rare: too many repeats in the row; keep drawing from the same row
            assert picked is not None  # built above whenever short is non-empty
            row_draws = draws[row]
            while True:
                more = torch.multinomial(weights[row], 4 * n_draw, replacement=True, generator=gen).numpy()
                row_draws = np.concatenate([row_draws, more])
                row_keep, row_short = _first_distinct(row_draws[None, :], need[row : row + 1])
                if not len(row_short):
                    picked[row] = row_draws[row_keep[0]]
                    break
        items_out.append(np.concatenate(picked) if picked is not None else draws[keep])
    return np.concatenate(items_out).astype(np.int64)


def _modality_table(
    rng: np.random.Generator, V: np.ndarray, signal: float, dim: int, block_rows: int = 65536
) -> torch.Tensor:
    """``s · standardise(V W) + sqrt(1 - s²) · ε`` as float32, built in item blocks (draws as one big call)."""
    n_items = V.shape[0]
    W = rng.standard_normal((V.shape[1], dim))
    if n_items <= block_rows:
        projected = V @ W
        projected = (projected - projected.mean(0)) / (projected.std(0) + 1e-12)
        noise = rng.standard_normal((n_items, dim))
        return torch.from_numpy((signal * projected + np.sqrt(1.0 - signal * signal) * noise).astype(np.float32))
    # mean and std of V W per column from V's first two moments (exact, no [I, dim] float64 array)
    mean_v = V.mean(0)
    cov_v = np.cov(V, rowvar=False, bias=True)
    mean = mean_v @ W
    std = np.sqrt(np.maximum(np.einsum("fd,fg,gd->d", W, cov_v, W), 0.0))
    out = torch.empty((n_items, dim), dtype=torch.float32)
    scale_noise = np.sqrt(1.0 - signal * signal)
    for start in range(0, n_items, block_rows):
        stop = min(start + block_rows, n_items)
        projected = (V[start:stop] @ W - mean) / (std + 1e-12)
        noise = rng.standard_normal((stop - start, dim))  # row blocks continue the same stream
        out[start:stop] = torch.from_numpy((signal * projected + scale_noise * noise).astype(np.float32))
    return out


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
    sampler: str = "auto",
) -> Dataset:
    """Generate interactions and features (deterministic in ``data_seed``), then split with ``split.seed``.

    ``sampler``: ``dense`` | ``blocked`` | ``auto`` (dense up to ``DENSE_LIMIT_CELLS`` users × items).
    """
    modalities = DEFAULT_MODALITIES if modalities is None else modalities
    for m, spec in modalities.items():
        if not 0.0 <= float(spec.get("signal", 0.0)) <= 1.0:
            raise ConfigError(f"synthetic modality '{m}': signal must be in [0, 1], got {spec.get('signal')}")
    if interactions_per_user >= n_items:
        raise ConfigError("synthetic: interactions_per_user must be smaller than n_items")
    if sampler not in SAMPLERS:
        raise ConfigError(f"dataset.synthetic.sampler={sampler!r}; choose one of {list(SAMPLERS)}")
    if sampler == "auto":
        sampler = "dense" if n_users * n_items <= DENSE_LIMIT_CELLS else "blocked"
    split = dict(split or {})
    if split.get("method", "random") != "random":
        raise ConfigError(
            f"dataset.split.method={split['method']!r}: the synthetic set has no timestamps and is "
            "split at random only; use random"
        )
    rng = np.random.default_rng(data_seed)
    U = rng.standard_normal((n_users, n_factors)) / np.sqrt(n_factors) ** 0.5
    V = rng.standard_normal((n_items, n_factors)) / np.sqrt(n_factors) ** 0.5
    if sampler == "dense":
        users, items = _dense_interactions(rng, U, V, temperature, interactions_per_user)
    else:
        _advance(rng, n_users * n_items)  # the root stream continues where the dense sampler leaves it
        counts = np.clip(rng.poisson(interactions_per_user, n_users), 3, n_items - 1)
        users = np.repeat(np.arange(n_users), counts)
        key = hash_parts(
            "synthetic-blocked-v1", n_users, n_items, n_factors, interactions_per_user, float(temperature), data_seed
        )
        items = cached_tensor("synthetic", key, lambda: _blocked_items(U, V, temperature, counts, data_seed))

    tensors = {}
    for m, spec in modalities.items():
        tensors[m] = _modality_table(rng, V, float(spec.get("signal", 0.0)), int(spec.get("dim", 32)))

    import pandas as pd

    df = pd.DataFrame({"user": users, "item": items})
    labels = split_per_user(
        df,
        method="random",
        ratios=tuple(split.get("ratios", (0.8, 0.1, 0.1))),
        seed=int(split.get("seed", 0)),
        min_interactions=int(split.get("min_interactions", 3)),
    )
    del df
    pairs = np.stack([users, items], axis=1).astype(np.int64)
    inter = Interactions(n_users, n_items, pairs[labels == 0], pairs[labels == 1], pairs[labels == 2])
    truth = {
        "user_factors": U,
        "item_factors": V,
        "signal": {m: float(s["signal"]) for m, s in modalities.items()},
        "sampler": sampler,
    }
    return Dataset(name=name, interactions=inter, features=ItemFeatures(tensors), truth=truth)
