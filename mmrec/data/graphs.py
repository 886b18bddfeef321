"""Graph construction shared by all models: normalised bipartite adjacency, item–item kNN, user–user graphs.

All built with torch / scipy sparse primitives; kNN graphs in row chunks so no dense items × items matrix exists.
"""

from __future__ import annotations

from typing import TypeAlias, cast

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.errors import ConfigError

TIES = ("random", "lowest_index", "drop")

# The sparse formats mmrec hands around. (scipy-stubs types ``sp.spmatrix`` as a mixin without the matrix API.)
SparseMatrix: TypeAlias = "sp.csr_matrix | sp.csc_matrix | sp.coo_matrix"


def scipy_to_torch(m: SparseMatrix) -> torch.Tensor:
    """scipy sparse → coalesced torch sparse COO (float32)."""
    coo = m.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data.astype(np.float32)), coo.shape).coalesce()


def sym_norm(a: SparseMatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with degrees from row sums; empty rows stay empty (no division by zero)."""
    a = sp.csr_matrix(a, dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    nz = deg > 0
    inv[nz] = deg[nz] ** -0.5
    d = sp.diags(inv)
    return sp.csr_matrix(d @ a @ d)


def bipartite_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """The (users + items) square adjacency [[0, R], [Rᵀ, 0]]."""
    # format="csr" makes bmat return a csr_matrix; the stubs only promise some sparse matrix.
    return cast(sp.csr_matrix, sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32))


def normalized_bipartite(train: sp.csr_matrix) -> torch.Tensor:
    """Â = D^-1/2 A D^-1/2 of the user–item graph, as torch sparse [U+I, U+I] (LightGCN, FREEDOM, ...)."""
    return scipy_to_torch(sym_norm(bipartite_adjacency(train)))


def row_normalized_bipartite(train: sp.csr_matrix) -> torch.Tensor:
    """``D⁻¹A`` of the user–item graph, sparse [U+I, U+I]; empty rows stay zero (DRAGON's ``aggr_mode=mean``)."""
    a = bipartite_adjacency(train)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = (deg > 0) / deg.clip(min=1)
    return scipy_to_torch(sp.csr_matrix(sp.diags(inv.astype("float32")) @ a))


def self_loop_row_normalized_bipartite(train: sp.csr_matrix) -> torch.Tensor:
    """``D⁻¹(A + I)`` of the user–item graph, sparse [U+I, U+I] (NGCF's ``norm_adj``, which LATTICE's reference
    code feeds to its LightGCN backbone)."""
    a = bipartite_adjacency(train) + sp.eye(sum(train.shape), dtype=np.float32, format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()  # ≥ 1 thanks to the self-loop
    return scipy_to_torch(sp.diags((1.0 / deg).astype(np.float32)) @ a)


def cosine_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to unit norm; all-zero rows stay zero (cosine 0 to everything, never NaN)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def _round_similarity(sim: torch.Tensor) -> torch.Tensor:
    """Cosine similarities rounded to 1e-5 (in place)."""
    return sim.mul_(1e5).round_().div_(1e5)


def knn_indices(
    x: torch.Tensor,
    k: int,
    ties: str = "random",
    seed: int = 0,
    include_self: bool = True,
    chunk_size: int = 256,
    query_rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` cosine neighbours of every row of ``x`` [n, d] (or of ``query_rows`` only), in chunks of rows.

    Returns (rows, cols) int64 edge lists. Ties at the k-th place follow ``ties``: ``random`` (seeded per row),
    ``lowest_index`` (the smaller item id wins: with constant features every row picks the same k items, a hub
    graph decided by ids), or ``drop`` (all items tied at the boundary are left out, so rows may have < k edges).
    """
    if ties not in TIES:
        raise ConfigError(f"knn.ties={ties!r}; choose one of {list(TIES)}")
    n = x.shape[0]
    k = min(k, n if include_self else n - 1)
    xn = cosine_normalize(x.float())
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    queries = torch.arange(n, device=xn.device) if query_rows is None else query_rows.long().to(xn.device)
    rows_out, cols_out = [], []
    for start in range(0, len(queries), chunk_size):
        q = queries[start : start + chunk_size]
        sim = xn[q] @ xn.T  # [c, n]
        if not include_self:
            sim[torch.arange(len(q), device=sim.device), q] = -float("inf")
        # Similarities are rounded to 1e-5 so that mathematically equal ones really tie. Rounding is monotone,
        # so the top k + 1 of the rounded row are the rounded top k + 1 of the raw row: only the rows whose
        # k-th and (k+1)-th rounded values tie (rare, handled below on rounded rows) need the full rounding.
        top_vals, top_idx = torch.topk(sim, min(k + 1, n), dim=1)
        top_vals = _round_similarity(top_vals)
        boundary = top_vals[:, k - 1 : k]  # [c, 1] the k-th value
        if k < top_vals.shape[1]:
            tied = (top_vals[:, k] == top_vals[:, k - 1]).nonzero().flatten()
        else:
            tied = torch.empty(0, dtype=torch.long, device=sim.device)
        chosen = top_idx[:, :k].clone()
        keep = torch.ones_like(chosen, dtype=torch.bool)
        if len(tied):
            sub = _round_similarity(sim[tied])  # [t, n]
            if ties == "drop":
                keep[tied] = top_vals[tied, :k] > boundary[tied]
            else:
                if ties == "random":
                    # CPU draws (the generator is a CPU one): the same ties on every device
                    key = torch.rand(sub.shape, generator=gen, device="cpu").to(sub.device)
                else:
                    key = torch.arange(n, device=sub.device, dtype=torch.float32).expand_as(sub) / n
                # sort by (similarity desc, key asc): stable sort on key, then stable sort on -similarity
                order = torch.argsort(key, dim=1, stable=True)
                order = torch.gather(order, 1, torch.argsort(-torch.gather(sub, 1, order), dim=1, stable=True))
                chosen[tied] = order[:, :k]
        r = q.unsqueeze(1).expand_as(chosen)
        rows_out.append(r[keep])
        cols_out.append(chosen[keep])
    return torch.cat(rows_out).cpu(), torch.cat(cols_out).cpu()


def knn_adjacency(rows: torch.Tensor, cols: torch.Tensor, n: int, norm: str = "sym") -> torch.Tensor:
    """Sparse [n, n] kNN graph with unit weights, normalised ``sym`` (D^-1/2 A D^-1/2, degrees = row sums, as in
    LATTICE/FREEDOM), ``row`` (D^-1 A) or ``none``. Empty rows stay zero."""
    a = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows.numpy(), cols.numpy())), shape=(n, n))
    a.sum_duplicates()
    if norm == "sym":
        deg = np.asarray(a.sum(axis=1)).ravel()
        inv = np.where(deg > 0, deg, 1.0) ** -0.5 * (deg > 0)
        a = (sp.diags(inv) @ a @ sp.diags(inv)).tocsr()
    elif norm == "row":
        deg = np.asarray(a.sum(axis=1)).ravel()
        inv = np.where(deg > 0, 1.0 / np.where(deg > 0, deg, 1.0), 0.0)
        a = (sp.diags(inv) @ a).tocsr()
    elif norm != "none":
        raise ConfigError(f"unknown graph normalisation {norm!r}; choose sym, row or none")
    return scipy_to_torch(a)


def user_cooccurrence_topk(
    train: sp.csr_matrix, k: int, ties: str = "random", seed: int = 0, chunk_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``k`` users by number of co-interacted items (DualGNN/DRAGON user–user graph), in user chunks.

    Counts are over *sets* of training items (a repeated pair counts once), self excluded; users with no
    co-interacting user get no edge. Returns (rows, cols, counts), row-major, counts descending within a row.

    Counts are small integers, so ties at the ``k``-th place are the rule (on TikTok 6,738 of 9,308 users tie
    there). They follow ``ties`` as in :func:`knn_indices`: ``random`` (seeded; who is kept among the tied users
    is a uniform draw), ``lowest_index`` (smaller user ids win; ids correlate with activity in real data, so this
    links everyone to the same few hub users) or ``drop`` (users tied at the boundary are left out).
    """
    if ties not in TIES:
        raise ConfigError(f"knn.ties={ties!r}; choose one of {list(TIES)}")
    r = sp.csr_matrix(train, dtype=np.float32)
    r.sum_duplicates()
    r.data[:] = 1.0
    rt = r.T.tocsc()
    n = r.shape[0]
    k = min(k, n - 1)
    if k < 1:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty, torch.empty(0)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        c = torch.from_numpy((r[start:stop] @ rt).toarray())  # [c, n_users] co-occurrence counts (integers)
        c[torch.arange(stop - start), torch.arange(start, stop)] = 0
        if ties == "random":  # a key in [count, count + ½): orders distinct counts as before, ties at random
            key = torch.rand(c.shape, generator=gen).mul_(0.5).add_(c)
            idx = torch.topk(key, k, dim=1).indices
        elif ties == "lowest_index":  # a stable sort keeps equal counts in id order
            idx = torch.sort(c, dim=1, descending=True, stable=True).indices[:, :k]
        else:
            idx = torch.topk(c, min(k + 1, n), dim=1).indices
        vals = torch.gather(c, 1, idx)
        keep = vals > 0
        if ties == "drop":  # the (k+1)-th count equals the k-th: every user at that count leaves the list
            boundary = vals[:, k - 1 : k]
            keep &= ~((vals[:, k : k + 1] == boundary) & (vals == boundary))
            idx, vals, keep = idx[:, :k], vals[:, :k], keep[:, :k]
        rr = torch.arange(start, stop).unsqueeze(1).expand_as(idx)
        rows_out.append(rr[keep])
        cols_out.append(idx[keep])
        vals_out.append(vals[keep])
    return torch.cat(rows_out), torch.cat(cols_out), torch.cat(vals_out)
