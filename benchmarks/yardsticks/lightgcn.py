"""The matrix products LightGCN's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.lightgcn import LightGCN


def training(model: LightGCN, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    d = model.user_embedding.embedding_dim
    return [graph_product("Â x", model.adj, d, count=model.n_layers)]


def inference(model: LightGCN) -> list[MatmulCost]:
    d = model.user_embedding.embedding_dim
    return [graph_product("Â x", model.adj, d, grad_x=False, count=model.n_layers), score_cost(model, d)]


register(LightGCN, training=training, inference=inference)
