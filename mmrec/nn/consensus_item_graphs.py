"""Item–item graphs of DA-MRS (Xv et al., KDD 2024): cross-modal consensus kNN graphs and a co-interaction graph.

- **Consensus ("denoised") modality graphs.** ``S_m = cos(x_m)`` per modality; an item pair ``(i, j)`` is kept
  only when every modality agrees it is above average, ``S_m[i, j] ≥ mean(S_m)`` for all ``m``; each modality's
  graph links ``i`` to its top-``k`` kept ``j`` (fewer when fewer are kept; self included as ``S[i, i] = 1``).
  The reference (authors' code, copied by MMRec) builds the dense ``I × I`` similarities; here the global mean is
  the closed form ``mean(S) = ‖Σ_i x̂_i‖² / I²`` and the rows are processed in chunks, so no ``I × I`` matrix
  exists. Similarities are rounded to 1e-5 (as in ``graphs.knn_indices``) so that mathematically equal values
  tie, and ties at the ``k``-th place follow the datamodule's ``knn.ties`` policy. A zero or constant modality
  has every similarity equal to its mean, so it vetoes nothing (the reference gives NaN for zero rows).
- **Item–item behaviour graph.** ``C = Rᵀ R`` co-interaction counts of the training matrix (self excluded); each
  item keeps its top-``k`` items with ``C ≥ min_count`` plus a self-loop (the reference's ``build_iib_graph.py``
  preprocessing step, ``--topk``; here built from the data on the sparse ``Rᵀ R``).

Both graphs have unit edge weights and are normalised ``D^-1/2 A D^-1/2`` with row-sum degrees (the reference's
``compute_normalized_laplacian``: it ignores the co-interaction counts it stores as values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.cache import cached_tensor, hash_parts
from mmrec.data.datamodule import GraphData
from mmrec.data.graphs import TIES, cosine_normalize, knn_adjacency
from mmrec.errors import ConfigError

ROUND = 1e5  # similarities are compared on a 1e-5 grid


def round_similarity(sim: torch.Tensor) -> torch.Tensor:
    return torch.round(sim * ROUND) / ROUND


def mean_cosine(x_normalized: torch.Tensor) -> torch.Tensor:
    """``mean_{i,j} x̂_iᵀ x̂_j`` over all ``n²`` pairs (diagonal included) without the ``n × n`` matrix."""
    total = x_normalized.double().sum(0)  # [d]
    n = x_normalized.shape[0]
    return (total @ total / float(n * n)).to(x_normalized.dtype)


def topk_with_ties(
    scores: torch.Tensor, k: int, ties: str = "random", generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` columns of each row of ``scores`` [c, n] (``-inf`` = excluded): (indices [c, k], keep [c, k]).

    ``keep`` is False for excluded entries (rows with fewer than ``k`` candidates). Ties at the ``k``-th place:
    ``random`` (``generator``), ``lowest_index`` or ``drop`` (all tied entries left out), as in
    ``graphs.knn_indices``.
    """
    if ties not in TIES:
        raise ConfigError(f"knn.ties={ties!r}; choose one of {list(TIES)}")
    c, n = scores.shape
    k = min(k, n)
    if k <= 0 or c == 0:
        empty = torch.zeros(c, 0, dtype=torch.long, device=scores.device)
        return empty, empty.bool()
    top_vals, top_idx = torch.topk(scores, min(k + 1, n), dim=1)  # [c, k(+1)]
    chosen, vals = top_idx[:, :k].clone(), top_vals[:, :k].clone()
    if k < n:
        at_boundary = (top_vals[:, k] == top_vals[:, k - 1]) & torch.isfinite(top_vals[:, k - 1])
        tied = at_boundary.nonzero().flatten()
        if len(tied):
            if ties == "drop":
                boundary = top_vals[tied, k - 1 : k]  # [t, 1]
                vals[tied] = torch.where(vals[tied] > boundary, vals[tied], torch.full_like(vals[tied], -torch.inf))
            else:
                sub = scores[tied]  # [t, n]
                if ties == "random":
                    host = generator.device if generator is not None else "cpu"  # the same ties on every device
                    key = torch.rand(sub.shape, generator=generator, device=host).to(sub.device)
                else:
                    key = torch.arange(n, device=sub.device, dtype=torch.float32).expand_as(sub)
                # sort by (score desc, key asc): stable sort on the key, then stable sort on -score
                order = torch.argsort(key, dim=1, stable=True)
                order = torch.gather(order, 1, torch.argsort(-torch.gather(sub, 1, order), dim=1, stable=True))
                chosen[tied] = order[:, :k]
                vals[tied] = torch.gather(sub, 1, order[:, :k])
    return chosen, torch.isfinite(vals)


def consensus_knn_edges(
    features: Sequence[torch.Tensor], k: int, ties: str = "random", seed: int = 0, chunk_size: int = 1024
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per modality, the (rows, cols) edges of its top-``k`` consensus graph (see module docstring).

    Args:
        features: one [n, d_m] tensor per modality (same ``n``).
    Returns: one (rows, cols) int64 CPU pair per modality, in the given order.
    """
    normalized = [cosine_normalize(x.detach().float()) for x in features]  # [n, d_m] each
    n = normalized[0].shape[0]
    means = [round_similarity(mean_cosine(xn)) for xn in normalized]
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    rows_out: list[list[torch.Tensor]] = [[] for _ in normalized]
    cols_out: list[list[torch.Tensor]] = [[] for _ in normalized]
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sims = [round_similarity(xn[start:stop] @ xn.T) for xn in normalized]  # [c, n] each
        valid = torch.ones_like(sims[0], dtype=torch.bool)
        for sim, mean in zip(sims, means):
            valid &= sim >= mean
        rows = torch.arange(start, stop, device=valid.device).unsqueeze(1)  # [c, 1]
        for j, sim in enumerate(sims):
            idx, keep = topk_with_ties(sim.masked_fill(~valid, -torch.inf), k, ties, gen)  # [c, k]
            rows_out[j].append(rows.expand_as(idx)[keep].cpu())
            cols_out[j].append(idx[keep].cpu())
    return [(torch.cat(r), torch.cat(c)) for r, c in zip(rows_out, cols_out)]


def cooccurrence_knn_edges(
    train: sp.csr_matrix, k: int, min_count: int = 2, ties: str = "random", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Item–item behaviour edges: each item's top-``k`` co-interacted items with at least ``min_count`` common
    users, plus a self-loop per item. Returns (rows, cols) int64 CPU tensors.

    Works on the sparse co-interaction matrix ``Rᵀ R`` by ``k`` (+1 for ``drop``) segment-maximum passes over its
    entries, each keyed by (count, tie key) — no ``I × I`` array and no full sort. Ties at the ``k``-th place
    as in ``topk_with_ties``."""
    if ties not in TIES:
        raise ConfigError(f"knn.ties={ties!r}; choose one of {list(TIES)}")
    r = sp.csr_matrix((sp.csr_matrix(train) > 0).astype(np.float32))  # [U, I] binary
    n = r.shape[1]
    counts = sp.coo_matrix(sp.csr_matrix(r.T @ r))  # [I, I] common users, row-major
    keep = (counts.row != counts.col) & (counts.data >= min_count)
    rows, cols = counts.row[keep].astype(np.int64), counts.col[keep].astype(np.int64)
    cnt = np.rint(counts.data[keep]).astype(np.int64)
    self_loops = np.arange(n, dtype=np.int64)
    if len(rows) == 0:
        return torch.from_numpy(self_loops), torch.from_numpy(self_loops.copy())
    if ties == "random":  # a unique key per entry: the larger key wins among equal counts
        key = np.random.default_rng(int(seed)).permutation(len(rows)).astype(np.int64)
    else:  # lowest_index (and drop, where the order inside a tie is irrelevant): the smaller column wins
        key = (n - 1 - cols).astype(np.int64)
    work = (cnt << 32) | key  # unique within a row
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # first entry of each non-empty row
    segment = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows)]))
    rank = np.full(len(rows), np.iinfo(np.int64).max)
    for t in range(k + (ties == "drop")):
        best = np.maximum.reduceat(work, starts)[segment]  # the row's best remaining entry, per entry
        hit = (work == best) & (best >= 0)
        rank[hit] = t
        work[hit] = -1
    chosen = rank < k
    if ties == "drop":  # rows whose k-th and (k+1)-th counts are equal lose every entry at that count
        kth = np.full(len(starts), -1)
        nxt = np.full(len(starts), -2)
        kth[segment[rank == k - 1]] = cnt[rank == k - 1]
        nxt[segment[rank == k]] = cnt[rank == k]
        tied = kth == nxt
        chosen &= ~(tied[segment] & (cnt == kth[segment]))
    return (
        torch.from_numpy(np.concatenate([self_loops, rows[chosen]])),
        torch.from_numpy(np.concatenate([self_loops, cols[chosen]])),
    )


def consensus_item_graphs(data: GraphData, modalities: Sequence[str], k: int) -> list[torch.Tensor]:
    """DA-MRS's denoised ``S_m`` (sparse [I, I], symmetric-normalised) in ``modalities`` order, cached by feature
    content."""
    feats = [data.feature(m) for m in modalities]
    key = hash_parts("damrs-consensus-knn", feats, k, data.knn_ties, data.seed)

    def build() -> list[torch.Tensor]:
        edges = consensus_knn_edges(feats, k, data.knn_ties, data.seed)
        return [knn_adjacency(r, c, data.n_items, norm="sym") for r, c in edges]

    return cached_tensor("knn", key, build)


def behaviour_item_graph(data: GraphData, k: int, min_count: int) -> torch.Tensor:
    """DA-MRS's item–item co-occurrence graph ``S_b`` (sparse [I, I]), cached by interaction content."""
    key = hash_parts("damrs-iib", data.interactions_hash, k, min_count, data.knn_ties, data.seed)

    def build() -> torch.Tensor:
        r, c = cooccurrence_knn_edges(data.train_matrix, k, min_count, data.knn_ties, data.seed)
        return knn_adjacency(r, c, data.n_items, norm="sym")

    return cached_tensor("itemitem", key, build)
