"""The matrix products DualGNN's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, score_cost
from benchmarks.yardsticks.registry import register
from benchmarks.yardsticks.shared import modality_gcn_costs
from mmrec.models.dualgnn import DualGNN
from mmrec.nn.edge_graph import EdgeGraph


def _products(model: DualGNN, training: bool, user_graph: EdgeGraph) -> list[MatmulCost]:
    """Per modality the item MLP ``d_m → 4d → d`` over every item; two SpMMs of the user–item graph over all
    modalities at once (width ``M·d``); one SpMM of the user–user graph (width ``d``). All dense operands
    depend on trained parameters (preferences, MLPs, fusion weights); no edge value is learned."""
    trained = {m: model.features[m].trainable for m in model.modality_names}
    out = modality_gcn_costs(model.gcn, model.graph, model.n_items, trained, training)
    out.append(graph_product("S ũ (user graph)", user_graph, model.dim, grad_x=training))
    return out


def training(model: DualGNN, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    graph = model.train_user_graph if model.train_user_graph is not None else model.eval_user_graph
    return _products(model, True, graph)


def inference(model: DualGNN) -> list[MatmulCost]:
    return [*_products(model, False, model.eval_user_graph), score_cost(model, model.dim)]


register(DualGNN, training=training, inference=inference)
