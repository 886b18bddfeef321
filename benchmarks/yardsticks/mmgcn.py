"""The matrix products MMGCN's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.mmgcn import MMGCN


def _products(model: MMGCN, training: bool) -> list[MatmulCost]:
    n, out = model.n_users + model.n_items, []
    for m in model.modality_names:
        fixed = model._fixed(m)
        if m in model.projections:
            out.append(
                linear(
                    f"P_{m} f_{m}",
                    model.n_items,
                    model.projections[m],
                    grad_input=training and model.features[m].trainable,
                    trained=training,
                )
            )
        x_grad = training and not fixed  # x⁰ depends on trained tables
        for depth, layer in enumerate(model.layers[m]):
            x_grad = x_grad or (training and depth > 0)
            out.append(linear(f"{m}{depth}: x W1", n, layer.conv, grad_input=x_grad, trained=training))
            if not (depth == 0 and fixed):
                out.append(
                    graph_product(f"{m}{depth}: D⁻¹A (x W1)", model.graph, layer.conv.out_features, grad_x=training)
                )
            out.append(linear(f"{m}{depth}: W2 x", n, layer.linear, grad_input=x_grad, trained=training))
            a_out, d = layer.conv.out_features, layer.linear.out_features
            if layer.concat:
                out.append(dense(f"{m}{depth}: W3 h", n, a_out, d, grad_left=training, grad_right=training))
                out.append(dense(f"{m}{depth}: W3 x̂", n, d, d, grad_left=training, grad_right=training))
            else:
                out.append(dense(f"{m}{depth}: W3 h", n, a_out, d, grad_left=training, grad_right=training))
    return out


def training(model: MMGCN, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    return _products(model, training=True)


def inference(model: MMGCN) -> list[MatmulCost]:
    return [*_products(model, training=False), score_cost(model, model.id_embedding.shape[1])]


register(MMGCN, training=training, inference=inference)
