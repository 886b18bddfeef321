"""What a real step performs: the floating-point work of every dense and sparse product it executes.

:func:`count_work` records it with a ``TorchDispatchMode`` over the aten ops (forward and backward); the
contract test checks that a yardstick claims no more than this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
_DENSE = {
    _aten.mm.default,
    _aten.addmm.default,
    _aten.addmm_.default,
    _aten.bmm.default,
    _aten.baddbmm.default,
    _aten.baddbmm_.default,
}
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
            "mm",
            "addmm",
            "_sparse_mm",
            "_sparse_addmm",
            "_sparse_csr_mm",
            "_sparse_csr_addmm",
            "sspaddmm",
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
