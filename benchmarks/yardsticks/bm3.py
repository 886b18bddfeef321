"""The matrix products BM3's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.bm3 import BM3


def training(model: BM3, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    batch_size = len(batch["users"])
    d, b = model.predictor.in_features, batch_size
    out = [graph_product("Â x", model.graph, d, count=model.n_layers)] if model.n_layers else []
    out.append(linear("f_p(h_u), f_p(h_i) (batch)", b, model.predictor, grad_input=True, count=2))
    for m in model.modality_names:  # the batch's positive items only
        out.append(
            linear(f"f_{m}(x_{m}) (batch items)", b, model.projections[m], grad_input=model.features[m].trainable)
        )
        out.append(linear(f"f_p(f_{m}) (batch items)", b, model.predictor, grad_input=True))
    return out


def inference(model: BM3) -> list[MatmulCost]:
    d = model.predictor.in_features
    out = [graph_product("Â x", model.graph, d, grad_x=False, count=model.n_layers)] if model.n_layers else []
    out += [
        linear("f_p(h_u)", model.n_users, model.predictor, trained=False),
        linear("f_p(h_i)", model.n_items, model.predictor, trained=False),
    ]
    return [*out, score_cost(model, d)]


register(BM3, training=training, inference=inference)
