"""Row gathers in training steps (``x[index]`` along dim 0)."""

from __future__ import annotations

import torch


def take_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` for a 1-d index. On CPU as ``index_select``, whose backward (``index_add_``) is ~4x faster
    than advanced indexing's sorted, accumulating ``index_put_`` (0.54 vs 2.2 ms for 6,144 rows of a
    [26,495, 64] table) and deterministic; elsewhere advanced indexing, whose CUDA backward has a deterministic
    implementation where ``index_add_`` uses atomics."""
    return x.index_select(0, index) if x.device.type == "cpu" else x[index]
