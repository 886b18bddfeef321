"""A matrix product as a unit of work: what a yardstick lists and the benchmark times."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class MatmulCost:
    """``[m, k] @ [k, n]``, ``count`` times per step; sparse when ``nnz`` is set (a graph with ``nnz`` stored
    entries on the left). ``grad_left`` / ``grad_right``: the backward products needed (``G Bᵀ`` / ``Aᵀ G``;
    for a sparse left operand ``grad_left`` means learned edge values: a sampled product over its ``nnz``)."""

    label: str
    m: int
    k: int
    n: int
    grad_left: bool = False
    grad_right: bool = True
    count: int = 1
    nnz: int | None = None
    graph: Any = field(default=None, compare=False, repr=False)  # the model's own graph, timed as CSR

    @property
    def sparse(self) -> bool:
        return self.nnz is not None

    def flops(self) -> int:
        """Floating-point operations (2 per multiply–add) of the forward and the needed backward products."""
        per = 2 * (self.nnz if self.sparse else self.m * self.k) * self.n
        return per * (1 + int(self.grad_left) + int(self.grad_right)) * self.count


def dense(
    label: str, m: int, k: int, n: int, *, grad_left: bool = False, grad_right: bool = True, count: int = 1
) -> MatmulCost:
    return MatmulCost(label, int(m), int(k), int(n), grad_left, grad_right, int(count))


def graph_product(
    label: str, graph: Any, n: int, *, grad_x: bool = True, grad_values: bool = False, count: int = 1
) -> MatmulCost:
    """``graph [m, k] @ x [k, n]``; ``graph`` a torch sparse tensor or an ``EdgeGraph``."""
    m, k = int(graph.shape[0]), int(graph.shape[1])
    nnz = int(graph.nnz) if hasattr(graph, "nnz") and not isinstance(graph, torch.Tensor) else int(graph._nnz())
    return MatmulCost(label, m, k, int(n), grad_values, grad_x, int(count), nnz, graph)


def linear(
    label: str,
    rows: int,
    layer: torch.nn.Linear | torch.Tensor,
    *,
    grad_input: bool = False,
    trained: bool = True,
    count: int = 1,
) -> MatmulCost:
    """The product of a linear layer applied to ``rows`` rows (``layer`` an ``nn.Linear`` or a [in, out]
    weight): input gradient only when the input is trained, weight gradient when the layer is."""
    w = layer.weight.T if isinstance(layer, torch.nn.Linear) else layer
    return dense(label, rows, w.shape[0], w.shape[1], grad_left=grad_input, grad_right=trained, count=count)


def score_cost(model: Any, dim: int) -> MatmulCost:
    """``[U, dim] @ [dim, I]``: every user against every item (the evaluation's ``score`` product)."""
    return dense("score", model.n_users, dim, model.n_items, grad_right=False)


def total_flops(costs: list[MatmulCost], sparse: bool | None = None) -> int:
    return sum(c.flops() for c in costs if sparse is None or c.sparse == sparse)
