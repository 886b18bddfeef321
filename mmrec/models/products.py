"""The matrix products a model's math cannot do without: the yardstick of the speed benchmark.

Every gradient model lists, in ``training_products(batch)``, the products one training step needs (each
forward product plus the backward products its trainable inputs need) and, in ``inference_products()``, those
that one evaluation of every user needs (the final representations and the user × item score product; top-K,
not a product, is added by the benchmark). ``benchmarks/models.py`` times exactly these products on
the same run and reports each model's epoch and evaluation time as a multiple of them.

A model may only claim work it really performs: :func:`count_work` records the floating-point work of every
dense and sparse product a real step executes (a ``TorchDispatchMode`` over the aten ops), and a test checks each
model's list against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass(frozen=True)
class Product:
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


def dense(label: str, m: int, k: int, n: int, *, grad_left: bool = False, grad_right: bool = True,
          count: int = 1) -> Product:
    return Product(label, int(m), int(k), int(n), grad_left, grad_right, int(count))


def graph_product(label: str, graph: Any, n: int, *, grad_x: bool = True, grad_values: bool = False,
                  count: int = 1) -> Product:
    """``graph [m, k] @ x [k, n]``; ``graph`` a torch sparse tensor or an ``EdgeGraph``."""
    m, k = int(graph.shape[0]), int(graph.shape[1])
    nnz = int(graph.nnz) if hasattr(graph, "nnz") and not isinstance(graph, torch.Tensor) else int(graph._nnz())
    return Product(label, m, k, int(n), grad_values, grad_x, int(count), nnz, graph)


def linear(label: str, rows: int, layer: torch.nn.Linear | torch.Tensor, *, grad_input: bool = False,
           trained: bool = True, count: int = 1) -> Product:
    """The product of a linear layer applied to ``rows`` rows (``layer`` an ``nn.Linear`` or a [in, out]
    weight): input gradient only when the input is trained, weight gradient when the layer is."""
    w = layer.weight.T if isinstance(layer, torch.nn.Linear) else layer
    return dense(label, rows, w.shape[0], w.shape[1], grad_left=grad_input, grad_right=trained, count=count)


class NodeFusionProducts:
    """The product lists of models whose graphs run over every node, whose per-node fusion runs over the batch's
    distinct nodes only, and whose loss adds two in-batch InfoNCE terms (MGCN, SMORE). The model implements
    ``_products(training, rows)`` (``rows``: the nodes the fusion runs over)."""

    def training_products(self, batch: dict[str, torch.Tensor]) -> list[Product]:
        from mmrec.nn.batch_nodes import batch_nodes

        b, d = len(batch["users"]), self.user_embedding.embedding_dim
        return [*self._products(True, len(batch_nodes(batch, self.n_users)[0])),
                dense("InfoNCE side·idᵀ (items, users)", b, d, b, grad_left=True, count=2)]

    def inference_products(self) -> list[Product]:
        return [*self._products(False, self.n_users + self.n_items),
                self.score_product(self.user_embedding.embedding_dim)]


def total_flops(products: list[Product], sparse: bool | None = None) -> int:
    return sum(p.flops() for p in products if sparse is None or p.sparse == sparse)


# ---- what a real step performs ------------------------------------------------------------------------------
_aten = torch.ops.aten
_DENSE = {_aten.mm.default, _aten.addmm.default, _aten.addmm_.default, _aten.bmm.default, _aten.baddbmm.default,
          _aten.baddbmm_.default}
_SAMPLED = {_aten.sparse_sampled_addmm.default}


def _is_sparse(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.layout != torch.strided


def _nnz(t: torch.Tensor) -> int:
    return int(t._nnz())


class _WorkCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.dense = 0
        self.sparse = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if func in _SAMPLED:  # sampled_addmm(pattern, a [m, k], b [k, n]): one k-dot per stored entry
            self.sparse += 2 * _nnz(tensors[0]) * int(tensors[1].shape[-1])
        elif any(_is_sparse(t) for t in tensors) and func.__name__.split(".")[0] in (
            "mm", "addmm", "_sparse_mm", "_sparse_addmm", "_sparse_csr_mm", "_sparse_csr_addmm", "sspaddmm",
        ):
            sp_t = next(t for t in tensors if _is_sparse(t))
            dn = [t for t in tensors if not _is_sparse(t) and t.dim() == 2]
            if dn:
                self.sparse += 2 * _nnz(sp_t) * int(dn[-1].shape[1])
        elif func in _DENSE and not any(_is_sparse(t) for t in tensors):
            a, b = (tensors[-2], tensors[-1])
            batch = a.shape[0] if a.dim() == 3 else 1
            self.dense += 2 * batch * int(a.shape[-2]) * int(a.shape[-1]) * int(b.shape[-1])
        return out


def count_work(step: Callable[[], None]) -> dict[str, int]:
    """Dense and sparse product FLOPs ``step()`` executes (forward and backward)."""
    counter = _WorkCounter()
    with counter:
        step()
    return {"dense": counter.dense, "sparse": counter.sparse}
