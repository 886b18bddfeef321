"""The matrix products BPR's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.bpr import BPR


def training(model: BPR, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    return []  # row-wise dot products only


def inference(model: BPR) -> list[MatmulCost]:
    return [score_cost(model, model.user_embedding.embedding_dim)]


register(BPR, training=training, inference=inference)
