"""ItemKNN: item-based collaborative filtering with a top-k cosine neighbourhood (Sarwar et al., 2001).

    sim(i, j) = <r_i, r_j> / (||r_i|| ||r_j|| + shrink)        r_i: item i's column of the training matrix
    W[j, :]   = sim(j, :) restricted to the k most similar items of j (never j itself)
    score(u, j) = sum_{i in I_u} W[j, i]

Fitted in closed form (``fit(train_matrix)``); no gradient training.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.data.datamodule import GraphData
from mmrec.data.graphs import SparseMatrix
from mmrec.errors import ConfigError
from mmrec.models.base import Recommender

BLOCK_BYTES = 2**27  # dense similarity rows computed at once (128 MiB)


def topk_cosine(x: SparseMatrix | np.ndarray | torch.Tensor, k: int, shrink: float = 0.0) -> torch.Tensor:
    """Sparse ``[n, n]`` float32 matrix holding, in row j, the cosine similarities of row j of ``x`` [n, d] to
    its ``k`` most similar other rows (positive similarities only; zero rows have no neighbours).

    Computed in blocks of rows (sparse products, then ``torch.topk`` on a dense block), so memory stays at
    ``BLOCK_BYTES`` whatever ``n``.
    """
    if k < 1:
        raise ConfigError(f"kNN: k must be >= 1, got {k}")
    if shrink < 0:
        raise ConfigError(f"kNN: shrink must be >= 0, got {shrink}")
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = sp.csr_matrix(x, dtype=np.float32)  # [n, d]
    n = x.shape[0]
    k = min(k, max(n - 1, 1))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())  # [n]
    x_t = x.T.tocsc()  # [d, n]
    block = max(1, BLOCK_BYTES // (4 * max(n, 1)))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        dots = torch.from_numpy((x[start:stop] @ x_t).toarray().astype(np.float32))  # [b, n]
        denom = torch.from_numpy(np.outer(norms[start:stop], norms).astype(np.float32)) + shrink  # [b, n]
        sims = torch.where(denom > 0, dots / denom.clamp_min(1e-12), torch.zeros_like(dots))
        local = torch.arange(stop - start)
        sims[local, local + start] = float("-inf")  # never one's own neighbour
        top_vals, top_idx = torch.topk(sims, k, dim=1)  # [b, k]
        keep = top_vals > 0
        rows.append((local.unsqueeze(1).expand_as(top_idx) + start)[keep])
        cols.append(top_idx[keep])
        vals.append(top_vals[keep])
    indices = torch.stack([torch.cat(rows), torch.cat(cols)])  # [2, nnz]
    return torch.sparse_coo_tensor(indices, torch.cat(vals), (n, n)).coalesce()


class NeighbourhoodRecommender(Recommender):
    """Scores ``R_u W^T``: the summed similarity of each item to the user's training items."""

    trainable = False

    def __init__(self, data: GraphData, k: int = 50, shrink: float = 0.0):
        super().__init__(data)
        if k < 1:
            raise ConfigError(f"{type(self).__name__}: k must be >= 1, got {k}")
        if shrink < 0:
            raise ConfigError(f"{type(self).__name__}: shrink must be >= 0, got {shrink}")
        self.k = int(k)
        self.shrink = float(shrink)
        self.profiles: sp.csr_matrix | None = None

    def fit(self, train_matrix: sp.csr_matrix) -> None:
        self.profiles = sp.csr_matrix(train_matrix, dtype=np.float32)  # [U, I]

    def neighbours(self) -> torch.Tensor:
        return self.get_buffer("item_neighbours")

    def score(self, users: torch.Tensor) -> torch.Tensor:
        if self.profiles is None:
            raise RuntimeError(f"{type(self).__name__}: call fit(train_matrix) before score()")
        w = self.neighbours()  # [I, I] sparse, row j = neighbours of item j
        rows = self.profiles[users.detach().cpu().numpy()]  # [b, I]
        r = torch.from_numpy(rows.toarray()).to(w.device)  # [b, I]
        return torch.sparse.mm(w, r.t()).t()  # [b, I]


class ItemKNN(NeighbourhoodRecommender):
    """Item-item cosine over the training interactions (see the module docstring)."""

    def fit(self, train_matrix: sp.csr_matrix) -> None:
        super().fit(train_matrix)
        w = topk_cosine(sp.csr_matrix(train_matrix, dtype=np.float32).T, self.k, self.shrink)  # [I, I]
        self.register_derived("item_neighbours", w)
