"""PGL's principal subgraphs of the user–item graph (Yu et al., AAAI 2025), built from the data.

**Local-aware extraction** (sampled every epoch): keep ``⌊|E| · keep_ratio⌋`` interactions drawn without
replacement with probability ∝ ``1/sqrt(d_u d_i)`` (degrees of the full training graph) and re-normalise the kept
graph symmetrically, ``D_u^-1/2 R' D_i^-1/2`` (FREEDOM's degree-sensitive pruning with PGL's keep ratio 0.3).

**Global-aware extraction** (built once): the reference takes the ``r = svd_rank`` (= embedding size, 64) largest
singular triplets ``(s_t, u_t, v_t)`` of the normalised adjacency ``Â = [[0, R̃], [R̃ᵀ, 0]]``,
``R̃ = D_u^-1/2 R D_i^-1/2``, pairs the top ``n = ⌊fraction · r⌋`` with the bottom ``n`` of them,
``w_t = s_t · s_{r−n+t}``, reconstructs the dense ``Σ_{t<n} w_t u_t v_tᵀ`` over all ``(U+I)²`` node pairs and
keeps the entries with ``|·| ≥ threshold``.

``Â`` is bipartite, so its singular values are those of ``R̃``, each twice: ``σ_j`` with the vectors
``[a_j; ±b_j]/√2`` (``a_j``, ``b_j`` the singular vectors of ``R̃``), and each such pair sums to
``[[0, a_j b_jᵀ], [b_j a_jᵀ, 0]]``. For even ``r`` and ``n`` the reference's matrix is therefore exactly
``[[0, B], [Bᵀ, 0]]`` with ``B = Σ_{j<n/2} σ_j σ_{j + (r−n)/2} a_j b_jᵀ`` [U, I]: here ``B`` comes from the
``r/2`` leading triplets of ``R̃`` (scipy ``svds``; dense SVD for small graphs) and is thresholded in chunks of
users, so no ``(U+I)²`` (or ``U × I``) dense matrix exists. Odd ``r`` or ``n`` would split a pair of equal
singular values, whose basis (and so the reference's result) is arbitrary; they are refused.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from mmrec.cache import cached_tensor, hash_parts
from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.nn.edge_pruning import degree_weights, sample_edges


def local_principal_subgraph(
    users: torch.Tensor,
    items: torch.Tensor,
    n_users: int,
    n_items: int,
    keep_ratio: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sampled, re-normalised subgraph of the interaction edges (``users``, ``items``): sparse [U+I, U+I]."""
    keep = sample_edges(degree_weights(users, items, n_users, n_items), keep_ratio, generator)
    u, i = users[keep], items[keep]
    values = degree_weights(u, i, n_users, n_items)  # 1/sqrt(d_u d_i) in the kept graph
    n = n_users + n_items
    idx = torch.stack([torch.cat([u, i + n_users]), torch.cat([i + n_users, u])])
    return torch.sparse_coo_tensor(idx, torch.cat([values, values]), (n, n)).coalesce()


def check_spectral_config(svd_rank: int, fraction: float) -> int:
    """Number ``n`` of kept singular values of ``Â`` (even); raises ConfigError for unusable settings."""
    n = int(fraction * svd_rank)
    if svd_rank < 2 or svd_rank % 2 or n < 2 or n % 2 or n > svd_rank:
        raise ConfigError(
            f"pgl: svd_rank={svd_rank} and principal_fraction={fraction} give n={n} kept singular values; "
            "both svd_rank and n must be even and 2 <= n <= svd_rank (singular values of the bipartite graph come "
            "in equal pairs, and splitting a pair makes the subgraph depend on an arbitrary basis)"
        )
    return n


def normalized_interactions(train: sp.csr_matrix) -> sp.csr_matrix:
    """``R̃ = D_u^-1/2 R D_i^-1/2`` [U, I] of the binary training matrix (empty rows/columns stay empty)."""
    r = sp.csr_matrix((sp.csr_matrix(train) > 0).astype(np.float64))
    du = np.asarray(r.sum(axis=1)).ravel()
    di = np.asarray(r.sum(axis=0)).ravel()
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1.0)), 0.0)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1.0)), 0.0)
    return sp.csr_matrix(sp.diags(inv_u) @ r @ sp.diags(inv_i))


def leading_singular_triplets(m: sp.csr_matrix, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest singular triplets of ``m`` [p, q], descending: (a [p, k], s [k], b [q, k]).

    ARPACK (``svds``, deterministic start vector) when ``k`` is small against the matrix, else a dense SVD;
    ``k`` is capped by ``min(p, q)``."""
    p, q = m.shape
    k = min(k, p, q)
    if k < min(p, q) - 1 and min(p, q) > 4 * k:
        v0 = np.random.default_rng(seed).standard_normal(min(p, q))
        a, s, bt = spla.svds(m, k=k, v0=v0, solver="arpack")
    else:
        a, s, bt = np.linalg.svd(m.toarray(), full_matrices=False)
    order = np.argsort(-s, kind="stable")[:k]
    return a[:, order], s[order], bt[order].T


def global_principal_subgraph(
    train: sp.csr_matrix,
    svd_rank: int = 64,
    fraction: float = 0.25,
    threshold: float = 1e-3,
    seed: int = 0,
    max_elements: int = 2**24,
) -> torch.Tensor:
    """The reference's global-aware principal subgraph (see module docstring), sparse [U+I, U+I] float32."""
    n_kept = check_spectral_config(svd_rank, fraction)
    rt = normalized_interactions(train)
    n_users, n_items = rt.shape
    a, s, b = leading_singular_triplets(rt, svd_rank // 2, seed)  # [U, P], [P], [I, P]
    pairs = len(s)
    top = min(n_kept // 2, pairs)
    weights = s[:top] * s[pairs - top : pairs]  # σ_j σ_{j + P − n/2}
    left = a[:, :top] * weights  # [U, top]
    right = b[:, :top].T  # [top, I]
    step = max(1, max_elements // max(1, n_items))
    rows, cols, vals = [], [], []
    for start in range(0, n_users, step):
        block = left[start : start + step] @ right  # [c, I] float64
        r, c = np.nonzero(np.abs(block) >= threshold)
        rows.append(r + start)
        cols.append(c)
        vals.append(block[r, c])
    r = np.concatenate(rows).astype(np.int64)
    c = np.concatenate(cols).astype(np.int64) + n_users
    v = torch.from_numpy(np.concatenate(vals).astype(np.float32))
    idx = torch.from_numpy(np.stack([np.concatenate([r, c]), np.concatenate([c, r])]))
    n = n_users + n_items
    return torch.sparse_coo_tensor(idx, torch.cat([v, v]), (n, n)).coalesce()


def cached_global_principal_subgraph(
    data: GraphData, svd_rank: int = 64, fraction: float = 0.25, threshold: float = 1e-3
) -> torch.Tensor:
    """:func:`global_principal_subgraph` of ``data``'s training interactions, cached by interaction content."""
    key = hash_parts("pgl-global", data.interactions_hash, svd_rank, fraction, threshold)
    return cached_tensor(
        "principal", key, lambda: global_principal_subgraph(data.train_matrix, svd_rank, fraction, threshold)
    )
