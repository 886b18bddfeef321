r"""Full-ranking top-K metrics, vectorised in torch, with seeded random tie-breaking.

Protocol
--------
Every evaluated user ``u`` is scored against **all** items. Items the user must not be recommended
(training items always; validation items when testing, unless the protocol says otherwise) first get the
score ``-inf`` (:func:`mask_scores_`). The top-K list ``L_u = (l_1, ..., l_K)`` holds the K highest-scored
items in decreasing score. Items with exactly equal scores are ordered by a seeded pseudo-random key
(:func:`tie_break_keys`), never by item id. An item scored ``-inf`` is never *retrieved*: it cannot count as a
hit, even when a user has fewer than K finite scores (the list is then shorter than K). ``R_u`` is the user's
set of relevant (held-out) items and ``rel_i = 1[l_i in R_u]`` (0 at positions that hold a ``-inf`` item or
that do not exist).

Definitions (K in ``ks``, default {5, 10, 20, 50}; ``recall@20`` is Recall at K = 20)
--------------------------------------------------------------------------------------
- ``recall@K``    = |L_u ∩ R_u| / |R_u|
- ``precision@K`` = |L_u ∩ R_u| / K        (K, not |L_u|, even when fewer than K items are finite)
- ``hit@K``       = 1[|L_u ∩ R_u| > 0]       (HitRate)
- ``ndcg@K``      = DCG@K / IDCG@K,  DCG@K = Σ_{i=1..K} rel_i / log2(i + 1),
                    IDCG@K = Σ_{i=1..min(|R_u|, K)} 1 / log2(i + 1)        (binary relevance)
- ``map@K``       = (1 / min(|R_u|, K)) · Σ_{i=1..K} P@i · rel_i,  P@i = |{l_1..l_i} ∩ R_u| / i
                    (normaliser min(|R_u|, K), as in MMRec's and RecBole's ``map``)

The reported value of a metric is its mean over the evaluated users. Users with no relevant item
(|R_u| = 0) are not evaluated: :func:`rank_metrics` returns NaN for them in every metric, and
:class:`RankingEvaluator` skips them and counts them in ``n_skipped``. |R_u| counts every relevant item
given, including one that is also masked (it can never be a hit); the caller decides which items form the
ground truth.

Ties
----
Ranking sorts by (score descending, key ascending) where ``key = tie_break_keys(user, item, seed)`` is a
32-bit integer hash of (seed, user id, item id) (a counter-based random number, not a stateful generator), so
a user's order is the same whatever block of users it is evaluated in and on any device, and it differs
between users and between seeds. For one user the keys of distinct items are distinct, so the ranking is a
strict total order and fully deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import pandas as pd
import torch
from torch import Tensor

from mmrec.errors import ConfigError

_IntLike = TypeVar("_IntLike", Tensor, int)  # the mixers work alike on int tensors and Python ints

METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "map", "hit")
DEFAULT_KS: tuple[int, ...] = (5, 10, 20, 50)

_MASK32 = 0xFFFFFFFF
# Bytes per (user, item) cell of one evaluation block: float32 scores (4), dense relevance and comparison
# masks (bool, 3), int64 tie keys when a whole block is tied (8), and about 2x headroom for the model's own
# scoring temporaries (e.g. the matrix product that produces the scores).
_BYTES_PER_CELL = 48
# Per cell of a score tile when ranking tile by tile: the float32 tile (4) and torch.topk's work on it (~4).
_TILE_BYTES_PER_CELL = 8
_NAN_MESSAGE = "scores contain NaN; a model must return finite scores (or -inf for excluded items)"


def metric_names(ks: Iterable[int] = DEFAULT_KS, metrics: Iterable[str] = METRICS) -> list[str]:
    """Names such as ``recall@5``, metric-major: every K of the first metric, then the next metric."""
    return [f"{metric}@{k}" for metric in metrics for k in ks]


def _check_ks_metrics(ks: Iterable[int], metrics: Iterable[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    ks = tuple(ks)
    metrics = tuple(metrics)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ConfigError(f"evaluation ks must be a non-empty list of positive integers, got {list(ks)}")
    unknown = [m for m in metrics if m not in METRICS]
    if not metrics or unknown:
        raise ConfigError(f"unknown evaluation metric(s) {unknown or '(none given)'}; available: {list(METRICS)}")
    if len(set(ks)) != len(ks) or len(set(metrics)) != len(metrics):
        raise ConfigError(f"duplicate entries in evaluation ks {list(ks)} or metrics {list(metrics)}")
    return ks, metrics


# ------------------------------------------------------------------------------------------ tie-break keys
def _mul32(x: _IntLike, constant: int) -> _IntLike:
    """(x * constant) mod 2^32 for 0 <= x < 2^32 without int64 overflow (16-bit halves of the constant)."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + (((x * high) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: _IntLike) -> _IntLike:
    """Bijective 32-bit integer mixer (xor-shift/multiply finaliser) on tensors or Python ints < 2^32."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def tie_break_keys(users: Tensor, items: Tensor, seed: int) -> Tensor:
    """Pseudo-random int64 keys in [0, 2^32) for (user, item) pairs; ``users`` and ``items`` broadcast.

    ``key = (h(item) * a_u + b_u) mod 2^32`` with ``h`` a seeded bijective 32-bit hash of the item id and
    ``a_u`` (odd) and ``b_u`` hashed from (seed, user): three cheap operations over a dense [users, items]
    block, a different order for every user and seed, and injective in the item for a fixed user (item ids
    < 2^32), so no two items of one user share a key. Products stay below 2^63: no int64 overflow, the same
    keys on every device.
    """
    seed = int(seed) % (1 << 64)
    seed32 = _mix32((seed & _MASK32) ^ _mix32(seed >> 32))
    user_hash = _mix32((users.long() & _MASK32) ^ seed32)  # [..] per user
    multiplier = (user_hash >> 2) | 1  # odd, < 2^30
    offset = _mix32(user_hash ^ 0x9E3779B9)  # < 2^32
    item_hash = _mix32((items.long() & _MASK32) ^ _mix32(seed32 ^ 0x85EBCA6B))  # [..] per item, < 2^32
    keys = item_hash * multiplier  # broadcast [.., ..] < 2^62
    return keys.add_(offset).bitwise_and_(_MASK32)


# -------------------------------------------------------------------------------------------------- ranking
def _default_users(scores: Tensor, users: Tensor | None) -> Tensor:
    if users is None:
        return torch.arange(scores.shape[0], device=scores.device)
    users = torch.as_tensor(users, device=scores.device).long()
    if users.shape != scores.shape[:1]:
        raise ValueError(f"users has shape {tuple(users.shape)}, expected ({scores.shape[0]},)")
    return users


@torch.no_grad()
def topk_with_random_ties(scores: Tensor, k: int, *, users: Tensor | None = None, seed: int = 0) -> Tensor:
    """Indices [u, min(k, n_items)] of each row's top-k items, ordered by (score desc, tie key asc).

    ``users`` (default ``arange(u)``) are the user ids the tie keys derive from. One ``topk`` of k + 1 on the
    scores; only rows whose k-th and (k+1)-th scores are equal pay for a second, key-based selection.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be a 2-d [users, items] tensor, got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating-point tensor, got {scores.dtype}")
    users = _default_users(scores, users)
    n_rows, n_items = scores.shape
    k = min(int(k), n_items)
    if n_rows == 0 or k <= 0:
        return torch.empty(n_rows, max(k, 0), dtype=torch.long, device=scores.device)

    if k == n_items:  # every item is in the list: only the order is left to decide
        if torch.isnan(scores).any():
            raise ValueError(_NAN_MESSAGE)
        top = torch.arange(n_items, device=scores.device).expand(n_rows, n_items)
    else:
        top_values, top = torch.topk(scores, k + 1, dim=1)  # [u, k+1] descending; NaN counts as largest
        if torch.isnan(top_values[:, 0]).any():
            raise ValueError(_NAN_MESSAGE)
        threshold = top_values[:, k - 1 : k]  # [u, 1] k-th largest score
        ambiguous = (top_values[:, k] == threshold[:, 0]).nonzero().squeeze(1)  # tied items straddle place k
        top = top[:, :k]
        if ambiguous.numel():
            if ambiguous.numel() == n_rows:  # e.g. popularity scores: avoid copying the block
                block, block_threshold, block_users = scores, threshold, users  # [a, n], [a, 1], [a]
            else:
                block, block_threshold = scores[ambiguous], threshold[ambiguous]
                block_users = users[ambiguous]
            all_items = torch.arange(n_items, device=scores.device)
            priority = tie_break_keys(block_users[:, None], all_items[None, :], seed)  # [a, n]
            # strictly better items first (-1), then the tied ones by key, the rest never (2^32)
            priority.masked_fill_(block != block_threshold, 1 << 32).masked_fill_(block > block_threshold, -1)
            chosen = torch.topk(priority, k, dim=1, largest=False, sorted=False).indices  # [a, k]
            top = chosen if ambiguous.numel() == n_rows else top.index_copy(0, ambiguous, chosen)

    if k == n_items:
        force = torch.ones(n_rows, dtype=torch.bool, device=scores.device)
    else:
        force = torch.zeros(n_rows, dtype=torch.bool, device=scores.device)
        force[ambiguous] = True  # rows re-chosen by key come unsorted
    return _order_by_score_then_key(top, scores.gather(1, top), users, seed, force)


def _order_by_score_then_key(top: Tensor, values: Tensor, users: Tensor, seed: int, force: Tensor) -> Tensor:
    """``top`` [u, k] re-ordered by (score desc, tie key asc); ``values`` [u, k] are its scores.

    Rows whose values strictly decrease are already in that order; only rows with ties (or ``force``) pay for
    keys: sort by key, then a stable sort by score."""
    fix = force | (values[:, 1:] >= values[:, :-1]).any(dim=1) if values.shape[1] > 1 else force
    rows = fix.nonzero().squeeze(1)
    if rows.numel():
        sub, sub_values = top[rows], values[rows]
        by_key = tie_break_keys(users[rows, None], sub, seed).argsort(dim=1)  # [r, k]
        sub, sub_values = sub.gather(1, by_key), sub_values.gather(1, by_key)
        by_score = torch.sort(sub_values, dim=1, descending=True, stable=True).indices
        top = top.clone()
        top[rows] = sub.gather(1, by_score)
    return top


@torch.no_grad()
def streaming_topk(
    score_tile: Callable[[Tensor | None, int, int], Tensor],
    n_users: int,
    n_items: int,
    k: int,
    *,
    users: Tensor,
    seed: int,
    exclude: Tensor | None,
    tile_items: int,
    whole_rows: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Top-k items and their scores, ([u, k'], [u, k']) with k' = min(k, n_items), equal to
    ``topk_with_random_ties(mask_scores_(scores, exclude), k)`` without ever holding the [u, n_items] scores.

    ``score_tile(rows, lo, hi)`` returns the scores [r, hi - lo] of items ``lo:hi`` for the block's ``rows`` (None:
    all u; the result may be a reused buffer, written over by the next call). Tiles of
    ``tile_items`` items are masked, reduced to their top k + 1 and merged into a running top k + 1. A row is
    settled unless its k-th and (k+1)-th scores are equal (ties straddle place k): such rows are scored whole
    again, ``whole_rows`` rows at a time (default ``max(1, tile_items * u // n_items)``), and ranked by
    :func:`topk_with_random_ties`.
    """
    k = min(int(k), n_items)
    users = users.long()
    if n_users == 0 or k <= 0:
        empty = torch.empty(n_users, max(k, 0), dtype=torch.long, device=users.device)
        return empty, empty.float()
    if exclude is not None and exclude.shape != (n_users, n_items):
        raise ValueError(f"exclude has shape {tuple(exclude.shape)}, expected {(n_users, n_items)}")
    rows = cols = None
    if exclude is not None:
        rows, cols = _sparse_entries(exclude) if exclude.layout != torch.strided else exclude.nonzero().unbind(1)
        order = torch.argsort(cols)
        rows, cols = rows[order], cols[order]
    run_values = run_items = None
    tile_items = max(1, int(tile_items))
    for lo in range(0, n_items, tile_items):
        hi = min(lo + tile_items, n_items)
        tile = score_tile(None, lo, hi)  # [u, t]
        if rows is not None and cols is not None:
            a, b = (int(x) for x in torch.searchsorted(cols, torch.tensor([lo, hi], device=cols.device)))
            if b > a:
                tile[rows[a:b].to(tile.device), (cols[a:b] - lo).to(tile.device)] = -math.inf
        values, items = torch.topk(tile, min(k + 1, hi - lo), dim=1)
        items += lo
        if run_values is not None and run_items is not None:
            values, at = torch.topk(
                torch.cat([run_values, values], 1), min(k + 1, run_values.shape[1] + values.shape[1]), dim=1
            )
            items = torch.cat([run_items, items], 1).gather(1, at)
        run_values, run_items = values, items
    assert run_values is not None and run_items is not None
    if torch.isnan(run_values[:, 0]).any():
        raise ValueError(_NAN_MESSAGE)
    users = users.to(run_values.device)
    if k == n_items:  # every item is in the list: the whole row decides the order
        ambiguous = torch.arange(n_users, device=run_values.device)
    else:
        ambiguous = (run_values[:, k] == run_values[:, k - 1]).nonzero().squeeze(1)
    values = run_values[:, :k]  # descending, so also the values of the (score desc, key asc) order
    no_force = torch.zeros(n_users, dtype=torch.bool, device=values.device)
    top = _order_by_score_then_key(run_items[:, :k], values, users, seed, no_force)
    step = max(1, whole_rows or tile_items * n_users // n_items)  # rows scored whole at once
    for s in range(0, ambiguous.numel(), step):
        chunk = ambiguous[s : s + step]
        full = torch.empty(chunk.numel(), n_items, dtype=run_values.dtype, device=run_values.device)
        for lo in range(0, n_items, tile_items):
            hi = min(lo + tile_items, n_items)
            full[:, lo:hi] = score_tile(chunk, lo, hi)
        if exclude is not None:
            mask_scores_(full, _select_rows(exclude, chunk))
        chosen = topk_with_random_ties(full, k, users=users[chunk], seed=seed)
        top[chunk], values[chunk] = chosen, full.gather(1, chosen)
    return top, values


def slice_rows(matrix: Tensor, start: int, stop: int) -> Tensor:
    """Rows ``start:stop`` of a dense or torch-sparse CSR/COO [u, n] matrix, in the same layout (CSR for COO)."""
    if matrix.layout == torch.strided:
        return matrix[start:stop]
    if matrix.layout != torch.sparse_csr:
        matrix = matrix.to_sparse_csr()
    crow, col, val = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    a, b = int(crow[start]), int(crow[stop])
    return torch.sparse_csr_tensor(crow[start : stop + 1] - a, col[a:b], val[a:b], size=(stop - start, matrix.shape[1]))


def _select_rows(matrix: Tensor, rows: Tensor) -> Tensor:
    """Rows of a dense or torch-sparse (COO/CSR) [u, n] matrix, as a dense bool [len(rows), n]."""
    if matrix.layout == torch.strided:
        return matrix[rows.to(matrix.device)] != 0
    r, c = _sparse_entries(matrix)
    position = torch.full((matrix.shape[0],), -1, dtype=torch.long, device=r.device)
    position[rows.to(r.device)] = torch.arange(rows.numel(), device=r.device)
    keep = position[r] >= 0
    out = torch.zeros(rows.numel(), matrix.shape[1], dtype=torch.bool, device=r.device)
    out[position[r[keep]], c[keep]] = True
    return out


def _sparse_entries(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """(rows, cols) of the nonzero stored entries of a torch-sparse COO or CSR matrix."""
    if matrix.layout == torch.sparse_csr:
        crow, cols, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
        rows = torch.repeat_interleave(torch.arange(matrix.shape[0], device=crow.device), crow.diff())
    elif matrix.layout == torch.sparse_coo:
        matrix = matrix.coalesce()
        (rows, cols), values = matrix.indices(), matrix.values()
    else:
        raise TypeError(f"unsupported layout {matrix.layout} (use a dense bool tensor, sparse COO or CSR)")
    keep = values != 0  # explicitly stored zeros are not entries
    return rows[keep], cols[keep]


@torch.no_grad()
def rank_metrics(
    scores: Tensor,
    relevant: Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    metrics: Sequence[str] = METRICS,
    *,
    users: Tensor | None = None,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Per-user metrics {``metric@K``: float64 [u]} for already-masked ``scores`` [u, n_items].

    ``relevant`` is a bool (or 0/1) [u, n_items] matrix, dense or torch-sparse (COO/CSR). Users without any
    relevant item get NaN in every metric. ``users`` (default ``arange(u)``) and ``seed`` fix the tie order.
    """
    ks, metrics = _check_ks_metrics(ks, metrics)
    top = topk_with_random_ties(scores, max(ks), users=users, seed=seed)  # [u, k'], k' = min(max_k, n_items)
    retrieved = scores.gather(1, top) != -math.inf  # [u, k'] masked items are never retrieved
    return metrics_of_top(top, retrieved, relevant, scores.shape[1], ks, metrics)


def metrics_of_top(
    top: Tensor,
    retrieved: Tensor,
    relevant: Tensor,
    n_items: int,
    ks: Sequence[int] = DEFAULT_KS,
    metrics: Sequence[str] = METRICS,
) -> dict[str, Tensor]:
    """Per-user metrics of ranked lists ``top`` [u, k'] (item ids, best first; ``retrieved`` [u, k'] false where
    the item was masked) against ``relevant`` [u, n_items] (dense or torch-sparse), as :func:`rank_metrics`."""
    ks, metrics = _check_ks_metrics(ks, metrics)
    max_k = max(ks)
    shape = (top.shape[0], n_items)
    if tuple(relevant.shape) != shape:
        raise ValueError(f"relevant has shape {tuple(relevant.shape)}, expected {shape}")
    device = top.device
    if relevant.layout == torch.strided:
        dense = relevant.to(device)
        dense = dense if dense.dtype == torch.bool else dense != 0  # [u, n]
        in_relevant = dense.gather(1, top)
        n_relevant = dense.sum(dim=1, dtype=torch.int32).long()
    else:  # sparse: look the retrieved (user, item) keys up among the relevant ones; no dense [u, n] array
        rows, cols = (index.to(device) for index in _sparse_entries(relevant))
        relevant_keys = rows * n_items + cols  # ascending already when read from a canonical CSR matrix
        if relevant_keys.numel() > 1 and not bool((relevant_keys[1:] >= relevant_keys[:-1]).all()):
            relevant_keys = torch.sort(relevant_keys).values
        top_keys = torch.arange(top.shape[0], device=device)[:, None] * n_items + top  # [u, k']
        if relevant_keys.numel():  # binary search of each retrieved key (no sort of the retrieved ones)
            at = torch.searchsorted(relevant_keys, top_keys).clamp_(max=relevant_keys.numel() - 1)
            in_relevant = relevant_keys[at] == top_keys
        else:
            in_relevant = torch.zeros_like(top_keys, dtype=torch.bool)
        n_relevant = torch.bincount(rows, minlength=top.shape[0])
    hits = in_relevant & retrieved  # [u, k'] rel_i
    hits = hits.to(torch.float64)
    if hits.shape[1] < max_k:  # fewer items than K: the missing positions are never hits
        hits = torch.nn.functional.pad(hits, (0, max_k - hits.shape[1]))  # [u, max_k]

    has_relevant = n_relevant > 0
    n_relevant_f = n_relevant.clamp(min=1).to(torch.float64)
    positions = torch.arange(1, max_k + 1, device=device, dtype=torch.float64)  # [max_k] = 1..K
    cum_hits = hits.cumsum(dim=1)  # [u, max_k] |L@i ∩ R|
    discount = 1.0 / torch.log2(positions + 1.0)  # [max_k]
    cum_dcg = (hits * discount).cumsum(dim=1)  # [u, max_k]
    ideal_dcg = discount.cumsum(dim=0)  # [max_k] IDCG for 1..K ideal positions
    cum_ap = (cum_hits / positions * hits).cumsum(dim=1)  # [u, max_k] Σ P@i · rel_i

    nan = torch.tensor(math.nan, dtype=torch.float64, device=device)
    out: dict[str, Tensor] = {}
    for metric in metrics:
        for k in ks:
            n_hits = cum_hits[:, k - 1]  # [u]
            n_ideal = torch.minimum(n_relevant, torch.tensor(k, device=device))  # [u] min(|R|, K)
            if metric == "recall":
                value = n_hits / n_relevant_f
            elif metric == "precision":
                value = n_hits / k
            elif metric == "hit":
                value = (n_hits > 0).to(torch.float64)
            elif metric == "ndcg":
                value = cum_dcg[:, k - 1] / ideal_dcg[(n_ideal - 1).clamp(min=0)]
            else:  # map
                value = cum_ap[:, k - 1] / n_ideal.clamp(min=1).to(torch.float64)
            out[f"{metric}@{k}"] = torch.where(has_relevant, value, nan)
    return out


def mask_scores_(scores: Tensor, exclude: Tensor | None) -> Tensor:
    """Set ``scores[u, i] = -inf`` in place where ``exclude`` (bool dense or torch-sparse [u, n]) is set."""
    if exclude is None:
        return scores
    if exclude.shape != scores.shape:
        raise ValueError(f"exclude has shape {tuple(exclude.shape)}, expected {tuple(scores.shape)}")
    if exclude.layout == torch.strided:
        exclude = exclude.to(scores.device)
        return scores.masked_fill_(exclude if exclude.dtype == torch.bool else exclude != 0, -math.inf)
    rows, cols = (index.to(scores.device) for index in _sparse_entries(exclude))
    scores[rows, cols] = -math.inf
    return scores


# ------------------------------------------------------------------------------------------------- evaluator
class RankingEvaluator:
    """Accumulates per-user top-K metrics over blocks of users; ``compute()`` averages over evaluated users.

    Feed it blocks of at most ``block_size(n_items)`` users with scores already masked by :func:`mask_scores_`
    (:meth:`update`), or any block scored tile by tile (:meth:`update_scored_tiles`).
    Users without relevant items are skipped and counted in ``n_skipped``. ``reset()`` between evaluations.
    """

    def __init__(
        self,
        ks: Sequence[int] = DEFAULT_KS,
        metrics: Sequence[str] = METRICS,
        seed: int = 0,
        memory_budget_mb: float = 512,
    ):
        self.ks, self.metrics = _check_ks_metrics(ks, metrics)
        if not memory_budget_mb > 0:
            raise ConfigError(f"evaluation memory_budget_mb must be positive, got {memory_budget_mb}")
        self.seed = int(seed)
        self.memory_budget_mb = float(memory_budget_mb)
        self.names = metric_names(self.ks, self.metrics)
        self.reset()

    def reset(self) -> None:
        """Forget every accumulated user."""
        self._users: list[Tensor] = []
        self._values: list[Tensor] = []  # float64 [b, n_metrics] on CPU
        self.n_skipped = 0

    @property
    def n_evaluated(self) -> int:
        """Number of users with at least one relevant item seen since the last reset."""
        return sum(int(users.numel()) for users in self._users)

    def block_size(self, n_items: int) -> int:
        """Users per block so a [block, n_items] float32 score matrix plus the ranking work fit the budget."""
        bytes_per_user = _BYTES_PER_CELL * max(int(n_items), 1)
        return max(1, int(self.memory_budget_mb * 2**20 // bytes_per_user))

    def tile_items(self, n_users: int) -> int:
        """Items per tile so a [n_users, tile] float32 score tile plus the ranking work fit the budget."""
        return max(1, int(self.memory_budget_mb * 2**20 // (_TILE_BYTES_PER_CELL * max(int(n_users), 1))))

    @property
    def max_k(self) -> int:
        return max(self.ks)

    @torch.no_grad()
    def update(self, users: Tensor, scores: Tensor, relevant: Tensor) -> None:
        """Add a block: ``users`` [b], masked ``scores`` [b, n], ``relevant`` bool or sparse [b, n]."""
        users = torch.as_tensor(users, device=scores.device).long()
        self._add(users, rank_metrics(scores, relevant, self.ks, self.metrics, users=users, seed=self.seed))

    @torch.no_grad()
    def update_scored_tiles(
        self,
        users: Tensor,
        score_tile: Callable[[Tensor | None, int, int], Tensor],
        n_items: int,
        exclude: Tensor | None,
        relevant: Tensor,
    ) -> None:
        """Add a block scored tile by tile (:func:`streaming_topk`, ``tile_items(len(users))`` items a tile): the
        same metrics as :meth:`update` on the whole masked score matrix, in the memory of one tile."""
        tile = self.tile_items(len(users))
        top, values = streaming_topk(
            score_tile,
            len(users),
            n_items,
            self.max_k,
            users=users,
            seed=self.seed,
            exclude=exclude,
            tile_items=tile,
            whole_rows=self.block_size(n_items),  # rows with ties at place k, ranked whole
        )
        users = torch.as_tensor(users, device=top.device).long()
        metrics = metrics_of_top(top, values != -math.inf, relevant, n_items, self.ks, self.metrics)
        self._add(users, metrics)

    def _add(self, users: Tensor, values: dict[str, Tensor]) -> None:
        table = torch.stack([values[name] for name in self.names], dim=1)  # [b, n_metrics]
        evaluated = ~torch.isnan(table[:, 0])  # NaN exactly for users without relevant items
        self.n_skipped += int((~evaluated).sum())
        self._users.append(users[evaluated].cpu())
        self._values.append(table[evaluated].cpu())

    def gather(self) -> None:
        """Replace the accumulated users by those of every process (DDP: ranks evaluate disjoint users);
        a no-op in one process."""
        from mmrec.distributed import all_gather_rows, rank_and_world

        if rank_and_world()[1] == 1:
            return
        users = torch.cat(self._users) if self._users else torch.empty(0, dtype=torch.long)
        values = torch.cat(self._values) if self._values else torch.empty(0, len(self.names), dtype=torch.float64)
        users, values = all_gather_rows(users, values)
        self._users, self._values = [users], [values]

    def _collect(self) -> tuple[Tensor, Tensor]:
        """Users [m] (sorted) and their metric values [m, n_metrics]."""
        if not self._users:
            return torch.empty(0, dtype=torch.long), torch.empty(0, len(self.names), dtype=torch.float64)
        users, values = torch.cat(self._users), torch.cat(self._values)
        users, order = users.sort()  # user order makes the means independent of the block order
        if bool((users[1:] == users[:-1]).any()):
            raise ValueError("a user was evaluated twice since the last reset(); call reset() per evaluation")
        return users, values[order]

    def compute(self) -> dict[str, float]:
        """Mean of every metric over the evaluated users (NaN when no user was evaluated)."""
        _, values = self._collect()
        means = values.mean(dim=0) if values.shape[0] else torch.full((len(self.names),), math.nan)
        return {name: float(mean) for name, mean in zip(self.names, means.tolist())}

    def per_user(self) -> pd.DataFrame:
        """One row per evaluated user, sorted by user: column ``user`` then one column per metric name."""
        users, values = self._collect()
        frame = pd.DataFrame(values.numpy(), columns=self.names)
        frame.insert(0, "user", users.numpy())
        return frame
