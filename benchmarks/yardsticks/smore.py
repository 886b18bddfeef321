"""The matrix products SMORE's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, linear
from benchmarks.yardsticks.registry import register
from benchmarks.yardsticks.shared import node_fusion
from mmrec.models.smore import SMORE


def _products(model: SMORE, training: bool, rows: int) -> list[MatmulCost]:
    """The item inputs and graphs over every node; the per-node preference part (queries, preference gates)
    over ``rows`` nodes (in training the batch's distinct nodes, the only rows the loss reads).
    The FFTs are not matrix products."""
    d = model.user_embedding.embedding_dim
    kw = dict(grad_input=training, trained=training)
    out = [graph_product("Â x", model.adj, d, grad_x=training, count=model.n_ui_layers)] if model.n_ui_layers else []

    def item_view(name: str, graph: torch.Tensor) -> None:
        if model.n_layers:
            out.append(graph_product(f"Ŝ_{name} x̃_{name}", graph, d, grad_x=training, count=model.n_layers))
        out.append(graph_product(f"R̂ h_{name}", model.ui_block, d, grad_x=training))

    out.append(linear("fusion purifier gate", model.n_items, model.fusion_purifier_gate[0], **kw))
    item_view("f", model.fusion_graph)
    for j, m in enumerate(model.modality_names):
        out.append(
            linear(
                f"W_{m} x_{m}",
                model.n_items,
                model.projections[m],
                grad_input=training and model.features[m].trainable,
                trained=training,
            )
        )
        out.append(linear(f"purifier gate {m}", model.n_items, model.purifier_gates[m][0], **kw))
        item_view(m, getattr(model, f"item_graph_{j}"))
        out.append(linear(f"query {m}: W¹ e_f", rows, model.queries[m][0], **kw))
        out.append(linear(f"query {m}: W² tanh(·)", rows, model.queries[m][2], **kw))
        out.append(linear(f"preference gate {m}", rows, model.preference_gates[m][0], **kw))
    out.append(linear("fusion preference gate", rows, model.fusion_preference_gate[0], **kw))
    return out


training, inference = node_fusion(_products)
register(SMORE, training=training, inference=inference)
