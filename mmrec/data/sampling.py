"""BPR training triples (user, positive, negative) with vectorised uniform negative sampling."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset

from mmrec.distributed import rank_and_world, shard_positions


def sample_negatives(
    users: np.ndarray,
    positive_keys: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    max_rounds: int = 100,
    pool: np.ndarray | None = None,
) -> np.ndarray:
    """Uniform draws from ``pool`` (default: all items) that are not positives of their user.

    ``positive_keys`` = sorted ``user * n_items + item``. With ``pool = arange(n_items)`` the draws are the same
    as with no pool.
    """
    size = n_items if pool is None else len(pool)

    def draw(n: int) -> np.ndarray:
        idx = rng.integers(0, size, size=n)
        return idx if pool is None else pool[idx]

    neg = draw(len(users))
    todo = np.arange(len(users))
    for _ in range(max_rounds):
        keys = users[todo] * n_items + neg[todo]
        pos = np.searchsorted(positive_keys, keys)
        hit = (pos < len(positive_keys)) & (positive_keys[np.minimum(pos, len(positive_keys) - 1)] == keys)
        todo = todo[hit]
        if len(todo) == 0:
            return neg
        neg[todo] = draw(len(todo))
    raise RuntimeError("negative sampling did not converge: some user interacted with (almost) every item")


NEGATIVE_POOLS = ("train_items", "all_items")


class TripletSampler(IterableDataset):
    """One epoch = every training pair once, shuffled, each with a fresh negative.

    Randomness is a pure function of (seed, epoch), so a job resumed at epoch e draws exactly what an
    uninterrupted job draws there. ``epoch_fn`` returns the current epoch (the Trainer's).

    ``negatives`` picks the pool negatives come from: ``train_items`` (MMRec's rule: only items that occur in
    the training pairs, so items first seen at validation or test are never pushed down as pure negatives) or
    ``all_items``. When every item occurs in training the two draw identical triples.

    Under DDP (``shard_fn`` returns (rank, world) with world > 1) each rank yields its interleaved share of
    every batch of the same epoch: the union over ranks is the single-process epoch, batch by batch.
    """

    def __init__(
        self,
        pairs: np.ndarray,
        n_items: int,
        batch_size: int,
        seed: int,
        epoch_fn: Callable[[], int],
        negatives: str = "train_items",
        shard_fn: Callable[[], tuple[int, int]] = rank_and_world,
    ):
        if negatives not in NEGATIVE_POOLS:
            raise ValueError(f"negatives={negatives!r}; choose one of {list(NEGATIVE_POOLS)}")
        self.pairs = pairs
        self.n_items = n_items
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_fn = epoch_fn
        self.shard_fn = shard_fn
        self.positive_keys = np.unique(pairs[:, 0] * n_items + pairs[:, 1])
        self.pool: np.ndarray | None = None
        if negatives == "train_items":
            seen = np.unique(pairs[:, 1])
            if len(seen) < n_items:  # all items seen: the plain draw is the same and cheaper
                self.pool = seen.astype(np.int64)

    def __len__(self) -> int:
        return (len(self.pairs) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, int(self.epoch_fn())])
        order = rng.permutation(len(self.pairs))
        users, pos = self.pairs[order, 0], self.pairs[order, 1]
        neg = sample_negatives(users, self.positive_keys, self.n_items, rng, pool=self.pool)
        rank, world = self.shard_fn()  # DDP: every rank draws the same epoch and takes its share of each batch
        for s in range(0, len(order), self.batch_size):
            sl = slice(s, s + self.batch_size)
            if world > 1:
                sl = s + shard_positions(min(self.batch_size, len(order) - s), rank, world)
            yield {
                "users": torch.from_numpy(users[sl]),
                "pos_items": torch.from_numpy(pos[sl]),
                "neg_items": torch.from_numpy(neg[sl]),
            }
