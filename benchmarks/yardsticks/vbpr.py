"""The matrix products VBPR's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.vbpr import VBPR


def training(model: VBPR, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    batch_size = len(batch["users"])
    out = [linear("E f (batch items)", 2 * batch_size, model.item_linear)]
    if model.faithful_to == "paper":
        out.append(linear("β'ᵀ f", model.n_items, model.content_bias))
    return out


def inference(model: VBPR) -> list[MatmulCost]:
    out = [
        linear("E f", model.n_items, model.item_linear, trained=False),
        score_cost(model, model.user_embedding.shape[1]),
    ]
    if model.faithful_to == "paper":
        out.append(linear("β'ᵀ f", model.n_items, model.content_bias, trained=False))
    return out


register(VBPR, training=training, inference=inference)
