"""The matrix products DAMRS's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.damrs import DAMRS


def _graph_products(model: DAMRS, training: bool) -> list[MatmulCost]:
    d, out = model.user_embedding.embedding_dim, []
    if model.n_ui_layers:
        out.append(graph_product("Â E", model.adj, d, grad_x=training, count=model.n_ui_layers))
    if model.n_mm_layers:
        for j, m in enumerate(model.modality_names):
            out.append(
                graph_product(
                    f"S_{m} E_i", getattr(model, f"modality_graph_{j}"), d, grad_x=training, count=model.n_mm_layers
                )
            )
        out.append(graph_product("S_b E_i", model.behaviour_adj, d, grad_x=training, count=model.n_mm_layers))
    return out


def training(model: DAMRS, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    d, n_views = model.user_embedding.embedding_dim, len(model.modality_names) + 1
    users = int(torch.unique(batch["users"]).numel())  # the alignment losses run over the distinct rows
    items = int(torch.unique(torch.cat([batch["pos_items"], batch["neg_items"]])).numel())
    return [
        *_graph_products(model, training=True),
        dense("L_AI: cos(h_v[batch items], h_v)", items, d, model.n_items, grad_left=True, count=n_views),
        dense("L_AU: z_g, z_c [U_b, d] @ [d, I_b]", users, d, items, grad_left=True, count=2),
    ]


def inference(model: DAMRS) -> list[MatmulCost]:
    return [*_graph_products(model, training=False), score_cost(model, model.user_embedding.embedding_dim)]


register(DAMRS, training=training, inference=inference)
