"""A fixed sparsity pattern whose edge values change every forward pass (attention, learned edge weights).

``EdgeGraph`` stores a directed edge set ``(target row, source col)`` once, in CSR order, with the index
permutation of its transpose. On it:

- ``spmm(x, values)``: ``y[r] = Σ_{(r,c)} v_rc · x[c]``, differentiable in ``x`` *and* ``values``;
- ``sddmm(a, b)``: ``s_rc = ⟨a[r], b[c]⟩`` for every edge, differentiable in ``a`` and ``b``;
- ``row_softmax(s)``: softmax of edge scores over each target's incoming edges (PyG's ``softmax(src, index)``).

Why not ``torch.sparse.mm`` on a COO tensor whose values require grad: on CPU its backward for the values is
~70× slower than the sampled dense product used here (``torch.sparse.sampled_addmm`` on the same CSR pattern),
and a gather/scatter ("message passing") implementation materialises ``[nnz, d]`` messages. Both directions
here are one CSR SpMM or SDDMM; everything is deterministic (no atomics) on CPU.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mmrec.nn.gather import take_rows

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def _crow(sorted_rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    counts = torch.bincount(sorted_rows, minlength=n_rows)
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


class EdgeGraph(nn.Module):
    """Edges ``(rows[e], cols[e])`` of an ``[n_rows, n_cols]`` matrix (no duplicate pairs), stored row-major.

    ``order`` maps the caller's edge order to the stored (CSR) order: ``values_csr = values_caller[order]``.
    All index tensors are non-persistent buffers (they move with the model, never enter checkpoints).
    Optional constant ``values`` make ``spmm(x)`` a fixed normalised propagation.
    """

    # buffers (registered in __init__; declared for the type checker, which sees Module.__getattr__ otherwise)
    order: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    crow: torch.Tensor
    t_perm: torch.Tensor
    t_crow: torch.Tensor
    t_col: torch.Tensor
    ones: torch.Tensor
    values: torch.Tensor | None

    def __init__(
        self, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int], values: torch.Tensor | None = None
    ):
        super().__init__()
        n_rows, n_cols = int(shape[0]), int(shape[1])
        self.shape = (n_rows, n_cols)
        rows, cols = rows.long(), cols.long()
        key = rows * n_cols + cols
        if bool((key[1:] >= key[:-1]).all()):  # already row-major (common: built sorted), skip the sort
            order = torch.arange(len(key), device=key.device)
        else:
            order = torch.argsort(key, stable=True)
        rows, cols = rows[order], cols[order]
        t_perm = torch.argsort(cols * n_rows + rows, stable=True)  # stored order → transpose's CSR order
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("row", rows, persistent=False)
        self.register_buffer("col", cols, persistent=False)
        self.register_buffer("crow", _crow(rows, n_rows), persistent=False)
        self.register_buffer("t_perm", t_perm, persistent=False)
        self.register_buffer("t_crow", _crow(cols[t_perm], n_cols), persistent=False)
        self.register_buffer("t_col", rows[t_perm], persistent=False)
        self.register_buffer("ones", torch.ones(len(rows), device=rows.device), persistent=False)
        self.register_buffer("values", None if values is None else values.float()[order], persistent=False)

    @property
    def nnz(self) -> int:
        return int(self.row.numel())

    def _values(self, values: torch.Tensor | None, operation: str) -> torch.Tensor:
        """``values``, else the stored constant values; an error when there are neither."""
        v = self.values if values is None else values
        if v is None:
            raise ValueError(f"EdgeGraph.{operation} needs edge values (none stored)")
        return v

    # ---- raw kernels (no autograd) --------------------------------------------------------------------------
    def _csr(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)

    def _csr_t(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(
            self.t_crow, self.t_col, take_rows(values, self.t_perm), self.shape[::-1], check_invariants=False
        )

    def _sampled(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``⟨a[row_e], b[col_e]⟩`` for every stored edge: [nnz]."""
        if self.nnz == 0:
            return a.new_zeros(0)
        pattern = self._csr(self.ones.to(a.dtype))
        return torch.sparse.sampled_addmm(pattern, a.contiguous(), b.T, beta=0.0).values()

    # ---- differentiable operations ---------------------------------------------------------------------------
    def spmm(self, x: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """``A(values) @ x``: [n_rows, d] from x [n_cols, d] and values [nnz] (stored order; default: constant)."""
        return _SpMM.apply(self, self._values(values, "spmm"), x)

    def sddmm(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Edge scores ``⟨a[row], b[col]⟩``: [nnz] from a [n_rows, d], b [n_cols, d]."""
        return _SDDMM.apply(self, a, b)

    def row_softmax(self, scores: torch.Tensor, eps: float = 1e-16) -> torch.Tensor:
        """Softmax of edge scores over each row's edges (rows without edges: nothing); [nnz]."""
        if self.nnz == 0:
            return scores
        shift = torch.full((self.shape[0],), float("-inf"), dtype=scores.dtype, device=scores.device)
        shift = shift.scatter_reduce(0, self.row, scores.detach(), reduce="amax", include_self=True)
        e = torch.exp(scores - take_rows(shift, self.row))  # [nnz], ≤ 1
        z = torch.segment_reduce(e, "sum", offsets=self.crow, axis=0)  # [n_rows] (0 for empty rows)
        return e / (take_rows(z, self.row) + eps)

    def row_sums(self, values: torch.Tensor | None = None) -> torch.Tensor:
        v = self._values(values, "row_sums")
        return torch.segment_reduce(v, "sum", offsets=self.crow, axis=0)

    def to_dense(self, values: torch.Tensor | None = None) -> torch.Tensor:
        v = self._values(values, "to_dense")
        out = torch.zeros(self.shape, dtype=v.dtype, device=v.device)
        out[self.row, self.col] = v
        return out


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, graph: EdgeGraph, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.graph = graph
        ctx.save_for_backward(values, x)
        return graph._csr(values) @ x  # [n_rows, d]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        graph: EdgeGraph = ctx.graph
        values, x = ctx.saved_tensors
        grad = grad.contiguous()
        g_values = graph._sampled(grad, x) if ctx.needs_input_grad[1] else None  # ∂/∂v_rc = ⟨g[r], x[c]⟩
        g_x = graph._csr_t(values) @ grad if ctx.needs_input_grad[2] else None  # Aᵀ g
        return None, g_values, g_x


class _SDDMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, graph: EdgeGraph, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.graph = graph
        ctx.save_for_backward(a, b)
        return graph._sampled(a, b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        graph: EdgeGraph = ctx.graph
        a, b = ctx.saved_tensors
        g_a = graph._csr(grad) @ b if ctx.needs_input_grad[1] else None  # Σ_c g_rc b[c]
        g_b = graph._csr_t(grad) @ a if ctx.needs_input_grad[2] else None  # Σ_r g_rc a[r]
        return None, g_a, g_b


def interaction_edges(train: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(users, items) int64 of the training interactions (each (u, i) pair once)."""
    coo = sp.coo_matrix(train)
    coo.sum_duplicates()
    coo.eliminate_zeros()
    return torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))


def bipartite_edge_graph(
    users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int, values: torch.Tensor | None = None
) -> EdgeGraph:
    """The symmetric user–item graph on ``U + I`` nodes (items offset by ``U``), both directions of every
    interaction ``(u, i)``: caller order is ``[u→i edges (row = item node); i→u edges (row = user)]``, so a
    per-direction value vector is ``cat([values_into_items, values_into_users])``."""
    n = n_users + n_items
    rows = torch.cat([items + n_users, users])
    cols = torch.cat([users, items + n_users])
    return EdgeGraph(rows, cols, (n, n), values)


def edge_graph_from_sparse(adj: torch.Tensor) -> EdgeGraph:
    """An :class:`EdgeGraph` holding the edges and values of a torch sparse COO [n, m] matrix."""
    adj = adj.coalesce()
    rows, cols = adj.indices()
    return EdgeGraph(rows, cols, (int(adj.shape[0]), int(adj.shape[1])), adj.values())


def normalized_bipartite_edge_graph(train: sp.csr_matrix, norm: str = "sym") -> EdgeGraph:
    """The user–item graph of ``train`` [U, I] as an :class:`EdgeGraph` on ``U + I`` nodes, normalised
    ``D^-½ A D^-½`` (``norm="sym"``: PyG/MMRec ``aggr="add"``) or ``D⁻¹ A`` (``"mean"``: ``aggr="mean"``)."""
    if norm not in ("sym", "mean"):
        raise ValueError(f"norm={norm!r}; choose 'sym' or 'mean'")
    n_users, n_items = train.shape
    graph = bipartite_edge_graph(*interaction_edges(train), n_users, n_items)
    deg = torch.bincount(graph.row, minlength=n_users + n_items).float().clamp_min(1)
    graph.values = deg[graph.row].rsqrt() * deg[graph.col].rsqrt() if norm == "sym" else 1.0 / deg[graph.row]
    return graph
