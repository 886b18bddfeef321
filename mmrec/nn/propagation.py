"""Graph propagation layers (LightGCN-style), PyG-like: short, documented, shape-commented."""

from __future__ import annotations

import torch

from mmrec.nn.sparse_ops import Adjacency, sparse_mm


def propagate(adj: Adjacency, x: torch.Tensor, n_layers: int, combine: str = "mean") -> torch.Tensor:
    """LightGCN propagation: ``combine([x, Âx, Â²x, ..., Â^L x])``.

    Args:
        adj: sparse [N, N] normalised adjacency Â (torch sparse, or an ``mmrec.nn.edge_graph.EdgeGraph``).
        x: dense [N, d] layer-0 embeddings.
        combine: ``mean`` (LightGCN), ``sum``, or ``last``.
    Returns: [N, d].
    """
    if combine not in ("mean", "sum", "last"):
        raise ValueError(f"unknown combine {combine!r}")
    total, h = x, x
    for _ in range(n_layers):
        h = sparse_mm(adj, h)  # [N, d] (EdgeGraph or torch sparse; CSR kernels)
        if combine != "last":
            total = total + h  # a running sum: no [L+1, N, d] stack
    if combine == "last":
        return h
    return total / (n_layers + 1) if combine == "mean" else total


def bipartite_propagate(
    adj: Adjacency, user_emb: torch.Tensor, item_emb: torch.Tensor, n_layers: int, combine: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagate [users; items] over the user–item graph and split back: ([U, d], [I, d])."""
    out = propagate(adj, torch.cat([user_emb, item_emb], dim=0), n_layers, combine)
    return out[: user_emb.shape[0]], out[user_emb.shape[0] :]
