"""Graph propagation layers (LightGCN-style), PyG-like: short, documented, shape-commented."""

from __future__ import annotations

import torch

from mmrec.nn.sparse_ops import sparse_mm


def propagate(adj: torch.Tensor, x: torch.Tensor, n_layers: int, combine: str = "mean") -> torch.Tensor:
    """LightGCN propagation: ``combine([x, Âx, Â²x, ..., Â^L x])``.

    Args:
        adj: sparse [N, N] normalised adjacency Â (torch sparse, or an ``mmrec.nn.edge_graph.EdgeGraph``).
        x: dense [N, d] layer-0 embeddings.
        combine: ``mean`` (LightGCN), ``sum``, or ``last``.
    Returns: [N, d].
    """
    layers = [x]
    h = x
    for _ in range(n_layers):
        h = sparse_mm(adj, h)  # [N, d] (EdgeGraph or torch sparse; CSR kernels)
        layers.append(h)
    if combine == "mean":
        return torch.stack(layers, dim=0).mean(dim=0)
    if combine == "sum":
        return torch.stack(layers, dim=0).sum(dim=0)
    if combine == "last":
        return h
    raise ValueError(f"unknown combine {combine!r}")


def bipartite_propagate(
    adj: torch.Tensor, user_emb: torch.Tensor, item_emb: torch.Tensor, n_layers: int, combine: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagate [users; items] over the user–item graph and split back: ([U, d], [I, d])."""
    out = propagate(adj, torch.cat([user_emb, item_emb], dim=0), n_layers, combine)
    return out[: user_emb.shape[0]], out[user_emb.shape[0] :]
