"""Cost lists shared by several models' yardsticks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, linear, score_cost
from mmrec.nn.batch_nodes import batch_nodes
from mmrec.nn.edge_graph import EdgeGraph
from mmrec.nn.modality_gcn import ModalityPreferenceGCN


def modality_gcn_costs(
    gcn: ModalityPreferenceGCN, graph: EdgeGraph, n_items: int, tables_trained: Mapping[str, bool], training: bool
) -> list[MatmulCost]:
    """One forward of :class:`~mmrec.nn.modality_gcn.ModalityPreferenceGCN` (and, ``training``, its backward):
    per modality the item MLP over every item (input gradient only for trained feature tables), then
    ``n_hops`` SpMMs of ``graph`` over all modalities at once."""
    out = []
    for m in gcn.modalities:
        out.append(
            linear(f"W¹_{m} x_{m}", n_items, gcn.mlp_in[m], grad_input=training and tables_trained[m], trained=training)
        )
        out.append(linear(f"W²_{m} h_{m}", n_items, gcn.mlp_out[m], grad_input=training, trained=training))
    if gcn.n_hops > 0:
        out.append(
            graph_product(
                "Â z (all modalities)", graph, len(gcn.modalities) * gcn.dim, grad_x=training, count=gcn.n_hops
            )
        )
    return out


TrainingCosts = Callable[[Any, dict[str, torch.Tensor]], list[MatmulCost]]
InferenceCosts = Callable[[Any], list[MatmulCost]]


def node_fusion(costs: Callable[[Any, bool, int], list[MatmulCost]]) -> tuple[TrainingCosts, InferenceCosts]:
    """(training, inference) of models whose graphs run over every node, whose per-node fusion runs over the
    batch's distinct nodes only, and whose loss adds two in-batch InfoNCE terms (MGCN, SMORE), from
    ``costs(model, training, rows)`` (``rows``: the nodes the fusion runs over)."""

    def training(model: Any, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
        b, d = len(batch["users"]), model.user_embedding.embedding_dim
        return [
            *costs(model, True, len(batch_nodes(batch, model.n_users)[0])),
            dense("InfoNCE side·idᵀ (items, users)", b, d, b, grad_left=True, count=2),
        ]

    def inference(model: Any) -> list[MatmulCost]:
        return [
            *costs(model, False, model.n_users + model.n_items),
            score_cost(model, model.user_embedding.embedding_dim),
        ]

    return training, inference
