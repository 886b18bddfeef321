"""The speed benchmark's yardstick, kept beside the benchmark and out of the models.

For each model class a :class:`~benchmarks.yardsticks.registry.Yardstick` lists, as
:class:`~benchmarks.yardsticks.cost.MatmulCost` entries, the matrix products its math cannot do without (one
module per model; see :mod:`benchmarks.yardsticks.registry`). :func:`yardstick_for` finds a built model's.
"""

from __future__ import annotations

from typing import Any

from benchmarks.yardsticks import (  # noqa: F401  (each module registers its model's yardstick)
    bm3,
    bpr,
    damrs,
    dragon,
    dualgnn,
    freedom,
    grcn,
    lattice,
    lgmrec,
    lightgcn,
    mgcn,
    mmgcn,
    pgl,
    slmrec,
    smore,
    vbpr,
)
from benchmarks.yardsticks.registry import YARDSTICKS, Yardstick


def yardstick_for(model: Any) -> Yardstick | None:
    """The yardstick registered for ``type(model)`` (None: the model is not in the speed benchmark)."""
    return YARDSTICKS.get(type(model))
