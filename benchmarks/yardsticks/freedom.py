"""The matrix products FREEDOM's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.freedom import FREEDOM


def training(model: FREEDOM, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    batch_size = len(batch["users"])
    d = model.user_embedding.embedding_dim
    adj = model.train_adj if model.train_adj is not None else model.adj
    out = [
        graph_product("Â x (pruned)", adj, d, count=model.n_ui_layers),
        graph_product("S h", model.mm_adj, d, count=model.n_mm_layers),
    ]
    for m in model.modality_names:
        out.append(
            linear(
                f"W_{m} x_{m} (batch items)",
                2 * batch_size,
                model.projections[m],
                grad_input=model.features[m].trainable,
            )
        )
    return out


def inference(model: FREEDOM) -> list[MatmulCost]:
    d = model.user_embedding.embedding_dim
    return [
        graph_product("Â x", model.adj, d, grad_x=False, count=model.n_ui_layers),
        graph_product("S h", model.mm_adj, d, grad_x=False, count=model.n_mm_layers),
        score_cost(model, d),
    ]


register(FREEDOM, training=training, inference=inference)
