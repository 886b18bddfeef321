"""The yardstick registry: for each model class, the matrix products its math cannot do without.

A yardstick is three functions of a built model: ``training(model, batch)`` (one training step on ``batch``:
every forward product plus the backward products its trained inputs need), ``inference(model)`` (one
evaluation of every user, the user × item score product labelled ``score`` included; top-K is not a product and
the benchmark adds it) and ``epoch(model)`` (work done once per epoch, default none). ``benchmarks/models.py``
times exactly these products and reports each model's epoch and evaluation time as a multiple of them; the
contract test checks, for every model that has a yardstick, that the listed work is work a real step performs.

Models need no yardstick to be trained, tested or used: a new model registers one only to enter the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.yardsticks.cost import MatmulCost

Batch = dict[str, torch.Tensor]


def _no_epoch_work(model: Any) -> list[MatmulCost]:
    return []


@dataclass(frozen=True)
class Yardstick:
    training: Callable[[Any, Batch], list[MatmulCost]]
    inference: Callable[[Any], list[MatmulCost]]
    epoch: Callable[[Any], list[MatmulCost]] = _no_epoch_work


YARDSTICKS: dict[type, Yardstick] = {}


def register(
    model_class: type,
    *,
    training: Callable[[Any, Batch], list[MatmulCost]],
    inference: Callable[[Any], list[MatmulCost]],
    epoch: Callable[[Any], list[MatmulCost]] = _no_epoch_work,
) -> None:
    """Declare ``model_class``'s yardstick (once per class)."""
    if model_class in YARDSTICKS:
        raise ValueError(f"{model_class.__name__} already has a yardstick")
    YARDSTICKS[model_class] = Yardstick(training, inference, epoch)
