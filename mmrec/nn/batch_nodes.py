"""The graph nodes a training batch touches, each once (for per-node work only the loss's rows need)."""

from __future__ import annotations

import torch


def batch_nodes(batch: dict[str, torch.Tensor], n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(nodes, rows)``: the distinct nodes of ``[users; U + pos_items; U + neg_items]`` (node ids on the
    ``U + I`` user–item graph, sorted) and, for each of those ``3B`` entries, its row in ``nodes``; so
    ``x[nodes][rows]`` equals ``x[[users; U + pos; U + neg]]`` for any node table ``x``."""
    index = torch.cat([batch["users"], n_users + batch["pos_items"], n_users + batch["neg_items"]])
    nodes, rows = torch.unique(index, return_inverse=True)
    return nodes, rows
