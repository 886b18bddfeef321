"""Data-parallel helpers (Lightning DDP): which shard this process owns, and gathering evaluation results.

Training: every rank draws the same epoch of BPR triples (same seed, same epoch) and takes its interleaved share
of every global batch, so an epoch has the same number of optimiser steps as one process and the all-reduced
gradient is the single-process gradient of the whole batch. Evaluation: ranks score disjoint blocks of users;
per-user metric rows are gathered on every rank before averaging, so the metrics equal one process's.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_positions(n: int, rank: int, world: int) -> np.ndarray:
    """This rank's rows of a batch of ``n``: every ``world``-th from ``rank``; a batch smaller than the world
    is wrapped so that every rank gets at least one row (no rank steps on an empty batch)."""
    if world <= 1:
        return np.arange(n)
    if n < world:
        return np.array([rank % n])
    return np.arange(rank, n, world)


def all_gather_rows(users: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate (users [m], values [m, c]) from every rank, in rank order (no-op in one process)."""
    rank, world = rank_and_world()
    if world == 1:
        return users, values
    gathered: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * world
    dist.all_gather_object(gathered, (users.cpu(), values.cpu()))
    pairs = cast(list[tuple[torch.Tensor, torch.Tensor]], gathered)  # all_gather_object filled every slot
    return torch.cat([g[0] for g in pairs]), torch.cat([g[1] for g in pairs])
