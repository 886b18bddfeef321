"""Products with a fixed sparse matrix (a normalised graph) held as a torch sparse COO tensor.

``torch.sparse.mm(coo, x)`` on CPU converts and zero-fills on every call, forward and backward. ``sparse_mm``
computes the same ``A @ x`` with CSR kernels: the forward one CSR SpMM, the backward one CSR SpMM with the
transpose. Both CSR forms are built once per tensor and kept on it (a moved or rebuilt graph is a new tensor, so
the cache can never go stale). A matrix whose values require gradients runs as an
:class:`~mmrec.nn.edge_graph.EdgeGraph`: the values' gradient is a sampled product over the stored edges, where
``torch.sparse.mm`` computes a dense ``[n, d] @ [d, m]`` product and masks it.
"""

from __future__ import annotations

import warnings
from typing import TypeAlias

import torch

from mmrec.nn.edge_graph import EdgeGraph

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def _csr(adj: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """The CSR form of a COO matrix (or of its transpose, only built once a backward needs it), kept on it."""
    cache: dict[bool, torch.Tensor] = vars(adj).setdefault("_mmrec_csr", {})
    if transpose not in cache:
        with torch.inference_mode(False):  # normal tensors, usable in later training steps too
            coo = adj.coalesce()
            cache[transpose] = (coo.t().coalesce() if transpose else coo).to_sparse_csr()
    return cache[transpose]


class _FixedSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj = adj
        return _csr(adj) @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, _csr(ctx.adj, transpose=True) @ grad.contiguous()


Adjacency: TypeAlias = "torch.Tensor | EdgeGraph"
"""A graph operand: a torch sparse (or dense) matrix, or an :class:`EdgeGraph`."""


def sparse_mm(adj: Adjacency, x: torch.Tensor) -> torch.Tensor:
    """``adj @ x``: adj a fixed sparse [n, m] matrix (torch sparse, or an :class:`EdgeGraph`), x [m, d]."""
    if isinstance(adj, EdgeGraph):
        return adj.spmm(x)
    if adj.layout != torch.sparse_coo:
        return torch.sparse.mm(adj, x)
    if adj.requires_grad:  # learned edge values: their gradient is one sampled product over the stored edges
        coo = adj.coalesce()  # differentiable; row-major
        rows, cols = coo.indices()
        graph = EdgeGraph(rows, cols, (int(adj.shape[0]), int(adj.shape[1])))
        return graph.spmm(x, coo.values()[graph.order])
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _csr(adj) @ x
    return _FixedSpMM.apply(adj, x)
