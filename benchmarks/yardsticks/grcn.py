"""The matrix products GRCN's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.grcn import GRCN


def _products(model: GRCN, training: bool) -> list[MatmulCost]:
    """Per modality: the item projection, (paper) the routing's SDDMM + SpMM on the [U, I] graph, the
    attention scores (one SDDMM over the E interactions, shared by both directions) and the attention-weighted
    messages on the [U+I, U+I] graph; then two SpMMs of the ID embeddings over the refined graph. An SDDMM
    ``⟨a[r], b[c]⟩`` is listed as a product on its pattern (forward: a sampled product; backward: an SpMM
    per operand, i.e. the ``grad_values`` + ``grad_x`` slots). Every operand and edge value here depends on
    trained parameters (preferences, projections, κ, ID embeddings)."""
    out = []
    for m in model.modality_names:
        c = model.projections[m].out_features
        out.append(
            linear(
                f"W_{m} x_{m}",
                model.n_items,
                model.projections[m],
                grad_input=training and model.features[m].trainable,
                trained=training,
            )
        )
        if model.faithful_to == "paper" and model.n_routing > 0:
            out.append(
                graph_product(
                    f"{m} routing: p_uᵀ f_i (SDDMM)",
                    model.user_item,
                    c,
                    grad_x=training,
                    grad_values=training,
                    count=model.n_routing,
                )
            )
            out.append(
                graph_product(
                    f"{m} routing: Σ_i α_ui f_i",
                    model.user_item,
                    c,
                    grad_x=training,
                    grad_values=training,
                    count=model.n_routing,
                )
            )
        out.append(graph_product(f"{m}: z_tᵀ z_s (SDDMM)", model.user_item, c, grad_x=training, grad_values=training))
        out.append(graph_product(f"{m}: Σ_s α_ts z_s", model.graph, c, grad_x=training, grad_values=training))
    d = model.id_embedding.shape[1]
    out.append(
        graph_product("Σ_s w_ts e_s (refined graph)", model.graph, d, grad_x=training, grad_values=training, count=2)
    )
    return out


def training(model: GRCN, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    return _products(model, training=True)


def inference(model: GRCN) -> list[MatmulCost]:
    width = model.id_embedding.shape[1] + sum(model.projections[m].out_features for m in model.modality_names)
    return [*_products(model, training=False), score_cost(model, width)]


register(GRCN, training=training, inference=inference)
