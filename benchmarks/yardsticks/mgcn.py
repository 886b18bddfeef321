"""The matrix products MGCN's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

from benchmarks.yardsticks.cost import MatmulCost, graph_product, linear
from benchmarks.yardsticks.registry import register
from benchmarks.yardsticks.shared import node_fusion
from mmrec.models.mgcn import MGCN


def _products(model: MGCN, training: bool, rows: int) -> list[MatmulCost]:
    """The graphs over every node; the per-node fusion (attention, preference gates) over ``rows`` nodes
    (in training the batch's distinct nodes: the only rows the loss reads)."""
    d, n_mod = model.user_embedding.embedding_dim, len(model.modality_names)
    out = [graph_product("Â x", model.adj, d, grad_x=training, count=model.n_ui_layers)] if model.n_ui_layers else []
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
        out.append(
            linear(
                f"purifier gate {m}", model.n_items, model.purifier_gates[m][0], grad_input=training, trained=training
            )
        )
        if model.n_layers:
            out.append(
                graph_product(
                    f"Ŝ_{m} x̃_{m}", getattr(model, f"item_graph_{j}"), d, grad_x=training, count=model.n_layers
                )
            )
        out.append(graph_product(f"R̂ h_{m}", model.ui_block, d, grad_x=training))
        out.append(
            linear(f"preference gate {m}", rows, model.preference_gates[m][0], grad_input=training, trained=training)
        )
    query, score = model.query_common[0], model.query_common[2]
    out.append(linear("attention W_q e_m", rows * n_mod, query, grad_input=training, trained=training))
    out.append(linear("attention qᵀ tanh(·)", rows * n_mod, score, grad_input=training, trained=training))
    return out


training, inference = node_fusion(_products)
register(MGCN, training=training, inference=inference)
