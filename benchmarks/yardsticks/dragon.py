"""The matrix products DRAGON's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, score_cost
from benchmarks.yardsticks.registry import register
from benchmarks.yardsticks.shared import modality_gcn_costs
from mmrec.models.dragon import DRAGON
from mmrec.nn.edge_graph import EdgeGraph


def _products(model: DRAGON, training: bool, user_graph: EdgeGraph) -> list[MatmulCost]:
    """Per modality the item MLP ``d_m → 4d → d`` over every item; ``n_layers`` SpMMs of the user–item graph
    over all modalities at once, ``n_mm_layers`` of the item graph and one of the user graph (width ``M·d``).
    All dense operands depend on trained parameters; no edge value is learned."""
    trained = {m: model.features[m].trainable for m in model.modality_names}
    out = modality_gcn_costs(model.gcn, model.graph, model.n_items, trained, training)
    width = len(model.modality_names) * model.dim
    if model.n_mm_layers > 0:
        out.append(graph_product("S i (item graph)", model.item_graph, width, grad_x=training, count=model.n_mm_layers))
    out.append(graph_product("S_u ũ (user graph)", user_graph, width, grad_x=training))
    return out


def training(model: DRAGON, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    graph = model.train_user_graph if model.train_user_graph is not None else model.eval_user_graph
    return _products(model, True, graph)


def inference(model: DRAGON) -> list[MatmulCost]:
    return [*_products(model, False, model.eval_user_graph), score_cost(model, len(model.modality_names) * model.dim)]


register(DRAGON, training=training, inference=inference)
