"""The one LightningDataModule every recommender trains on.

It turns (Dataset, ItemFeatures after knockout) into: ``GraphData`` (what models consume: sizes, train
matrix, normalised user–item adjacency, features, cached item–item kNN and user–user graphs), BPR triple
batches for training, and user blocks with exclusion / relevance masks for full-ranking evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

from mmrec.cache import cached_tensor, hash_parts
from mmrec.data import graphs
from mmrec.data.dataset import Dataset as MMDataset
from mmrec.data.item_features import ItemFeatures
from mmrec.data.knn import AUTO_EXACT_MAX_ITEMS, build_knn, resolve_method
from mmrec.data.sampling import NEGATIVE_POOLS, TripletSampler
from mmrec.distributed import rank_and_world
from mmrec.errors import ConfigError, DataError


@dataclass
class GraphData:
    """Prepared inputs for models. Everything derived from features is cached on disk under a key that hashes
    the features after knockout, so a knocked-out run never reuses a graph of real features (or the reverse)."""

    n_users: int
    n_items: int
    train_matrix: sp.csr_matrix
    features: ItemFeatures | None
    interactions_hash: str
    knn_ties: str = "random"
    seed: int = 0
    knn_method: str = "exact"  # exact | approx | auto (see mmrec.data.knn)
    knn_auto_max_items: int = AUTO_EXACT_MAX_ITEMS
    knn_recall_sample: int = 1000  # rows on which an approximate graph's recall is measured (0: not measured)
    knn_builds: list[dict[str, Any]] = field(default_factory=list, repr=False)  # one record per graph built
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def modalities(self) -> list[str]:
        return self.features.modalities if self.features is not None else []

    def feature(self, modality: str) -> torch.Tensor:
        if self.features is None or modality not in self.features.tensors:
            raise ConfigError(f"modality '{modality}' is not available; have {self.modalities}")
        return self.features.tensors[modality]

    def norm_adj(self) -> torch.Tensor:
        """Â of the user–item graph, torch sparse [U+I, U+I]."""
        key = "norm_adj"
        if key not in self._memo:
            self._memo[key] = cached_tensor(
                "adjacency",
                hash_parts("bipartite-sym", self.interactions_hash),
                lambda: graphs.normalized_bipartite(self.train_matrix),
            )
        return self._memo[key]

    def row_norm_adj(self) -> torch.Tensor:
        """``D⁻¹A`` of the user–item graph, torch sparse [U+I, U+I] (empty rows stay zero)."""
        if "row_norm_adj" not in self._memo:
            self._memo["row_norm_adj"] = graphs.row_normalized_bipartite(self.train_matrix)
        return self._memo["row_norm_adj"]

    def self_loop_row_norm_adj(self) -> torch.Tensor:
        """``D⁻¹(A + I)`` of the user–item graph, torch sparse [U+I, U+I]."""
        if "self_loop_row_norm_adj" not in self._memo:
            self._memo["self_loop_row_norm_adj"] = cached_tensor(
                "adjacency",
                hash_parts("bipartite-rw-selfloop", self.interactions_hash),
                lambda: graphs.self_loop_row_normalized_bipartite(self.train_matrix),
            )
        return self._memo["self_loop_row_norm_adj"]

    def weighted_item_knn(self, weights: Mapping[str, float], k: int) -> torch.Tensor:
        """``Σ_m w_m · norm_sym(kNN_k(cos(x_m)))``, sparse [I, I]: the frozen item–item graph of FREEDOM, DRAGON
        and PGL (summed in ``weights`` order)."""
        graph = None
        for m, w in weights.items():
            g = self.item_knn(m, k, norm="sym") * w
            graph = g if graph is None else (graph + g).coalesce()
        assert graph is not None, "weighted_item_knn needs at least one modality"
        return graph

    def item_knn(
        self, modality: str | torch.Tensor, k: int, norm: str = "sym", include_self: bool = True
    ) -> torch.Tensor:
        """Sparse [I, I] kNN graph (cosine) of a modality's features (or of a given tensor), normalised."""
        x = self.feature(modality) if isinstance(modality, str) else modality
        method = resolve_method(self.knn_method, x.shape[0], self.knn_auto_max_items)
        parts: tuple[Any, ...] = ("knn", x, k, norm, include_self, self.knn_ties, self.seed)
        key = hash_parts(*parts) if method == "exact" else hash_parts(*parts, "approx-hnsw-v1")
        if key not in self._memo:
            label = modality if isinstance(modality, str) else "tensor"

            def build() -> tuple[torch.Tensor, dict[str, Any]]:
                rows, cols, info = build_knn(
                    x,
                    k,
                    method,
                    ties=self.knn_ties,
                    seed=self.seed,
                    include_self=include_self,
                    recall_sample=self.knn_recall_sample,
                )
                return graphs.knn_adjacency(rows, cols, x.shape[0], norm=norm), info

            if method == "exact":  # the cache entry stays the adjacency alone (entries of earlier runs stay valid)
                built: dict[str, Any] = {}

                def build_exact() -> torch.Tensor:
                    adjacency, built_info = build()
                    built.update(built_info)
                    return adjacency

                adjacency = cached_tensor("knn", key, build_exact)
                shape = {"method": "exact", "n_items": int(x.shape[0]), "dim": int(x.shape[1]), "k": int(k)}
                info = built or {**shape, "cached": True}  # build seconds when built here, else from the cache
            else:
                adjacency, info = cached_tensor("knn", key, build)
            self.knn_builds.append({"modality": label, **info, "requested": self.knn_method})
            self._memo[key] = adjacency
        return self._memo[key]

    def user_graph(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k co-interaction user–user edges (rows, cols, counts); ties at the k-th place by ``knn_ties``."""
        seed = self.seed if self.knn_ties == "random" else 0  # only random tie-breaking depends on the seed
        key = hash_parts("useruser-ties", self.interactions_hash, k, self.knn_ties, seed)
        if key not in self._memo:
            self._memo[key] = cached_tensor(
                "useruser",
                key,
                lambda: graphs.user_cooccurrence_topk(self.train_matrix, k, ties=self.knn_ties, seed=seed),
            )
        return self._memo[key]


def _csr_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> torch.Tensor:
    """Rows of a scipy CSR matrix as a torch sparse CSR [len(rows), I] (no dense [b, I] array is built)."""
    sub = matrix[rows]
    sub.sum_duplicates()
    return torch.sparse_csr_tensor(
        torch.from_numpy(sub.indptr.astype(np.int64)),
        torch.from_numpy(sub.indices.astype(np.int64)),
        torch.ones(sub.nnz, dtype=torch.float32),
        size=sub.shape,
    )


class _UserBlocks(Dataset):
    """Evaluation batches: blocks of users with sparse CSR masks [b, I] of excluded and relevant items.

    Under DDP, rank ``r`` of ``w`` owns blocks ``r, r + w, ...`` (disjoint users, no padding: a user is never
    evaluated twice); the evaluator gathers the per-user rows."""

    def __init__(
        self,
        users: np.ndarray,
        exclude: sp.csr_matrix,
        relevant: sp.csr_matrix,
        block: int,
        shard: tuple[int, int] = (0, 1),
    ):
        self.users, self.exclude, self.relevant, self.block = users, exclude, relevant, block
        self.blocks = np.arange(shard[0], (len(users) + block - 1) // block, shard[1])

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        b = int(self.blocks[i])
        u = self.users[b * self.block : (b + 1) * self.block]
        return {
            "users": torch.from_numpy(u),
            "exclude": _csr_rows(self.exclude, u),
            "relevant": _csr_rows(self.relevant, u),
        }


class GraphDataModule(pl.LightningDataModule):
    """Shared user–item bipartite-graph datamodule.

    Args:
        dataset: the loaded interactions (and metadata).
        features: item features after any knockout (None for feature-free models).
        batch_size: BPR triples per training batch.
        seed: run seed (negative sampling per (seed, epoch), kNN tie-breaking).
        exclude_val_in_test: mask validation items when testing (they are known positives); MMRec does not.
        cold_items: ``keep`` items never seen in training in the ground truth, or ``drop`` them.
        eval_block_users: users per evaluation block (the model bounds the memory of their scores: tiles of items,
            or sub-blocks of users, within ``evaluation.memory_mb``).
        negatives: pool of negative items, ``train_items`` (MMRec's rule, default) or ``all_items``.
        knn_method: item kNN graphs ``exact`` | ``approx`` | ``auto`` (exact up to ``knn_auto_max_items``).
    """

    def __init__(
        self,
        dataset: MMDataset,
        features: ItemFeatures | None = None,
        batch_size: int = 2048,
        seed: int = 0,
        knn_ties: str = "random",
        exclude_val_in_test: bool = True,
        cold_items: str = "keep",
        eval_block_users: int = 2048,
        negatives: str = "train_items",
        knn_method: str = "exact",
        knn_auto_max_items: int = AUTO_EXACT_MAX_ITEMS,
    ):
        super().__init__()
        if negatives not in NEGATIVE_POOLS:
            raise ConfigError(f"datamodule.negatives={negatives!r}; choose one of {list(NEGATIVE_POOLS)}")
        self.negatives = negatives
        if cold_items not in ("keep", "drop"):
            raise ConfigError(f"evaluation.cold_items={cold_items!r}; choose keep or drop")
        if knn_ties not in graphs.TIES:
            raise ConfigError(f"knn.ties={knn_ties!r}; choose one of {list(graphs.TIES)}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.exclude_val_in_test = exclude_val_in_test
        self.cold_items = cold_items
        inter = dataset.interactions
        if features is not None:
            if features.n_items != inter.n_items:
                raise DataError(
                    dataset.data_dir or dataset.name,
                    f"features have {features.n_items} rows but the interactions have {inter.n_items} items",
                )
            features.check_finite(str(dataset.data_dir or dataset.name))
        self.train = inter.matrix("train")
        self.val = inter.matrix("val")
        self.test = inter.matrix("test")
        resolve_method(knn_method, inter.n_items, knn_auto_max_items)  # a bad knn.method fails here, early
        self.data = GraphData(
            inter.n_users,
            inter.n_items,
            self.train,
            features,
            inter.content_hash(),
            knn_ties=knn_ties,
            seed=seed,
            knn_method=knn_method,
            knn_auto_max_items=knn_auto_max_items,
        )
        if eval_block_users < 1:
            raise ConfigError(f"datamodule eval_block_users must be a positive integer, got {eval_block_users}")
        self.eval_block_users = int(eval_block_users)
        self.stats = self._statistics()

    # ---- evaluation sets -------------------------------------------------------------------------------------
    def _eval_sets(self, split: str) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix, dict[str, int]]:
        relevant = (self.val if split == "val" else self.test).copy()
        exclude = self.train.copy()
        if split == "test" and self.exclude_val_in_test:
            exclude = exclude + self.val
        seen_in_train = np.asarray(self.train.sum(axis=0)).ravel() > 0
        cold = ~seen_in_train
        relevant.eliminate_zeros()
        cold_pairs = int(relevant[:, np.nonzero(cold)[0]].nnz)
        cold_items = int(np.count_nonzero(np.asarray(relevant[:, cold].sum(axis=0)).ravel() > 0))
        if self.cold_items == "drop" and cold.any():
            relevant = (relevant @ sp.diags(seen_in_train.astype(np.float32))).tocsr()
            relevant.eliminate_zeros()
        has_train = np.asarray(self.train.sum(axis=1)).ravel() > 0
        has_rel = np.diff(relevant.indptr) > 0
        users = np.nonzero(has_rel & has_train)[0].astype(np.int64)
        info = {
            "evaluated_users": int(len(users)),
            "dropped_users_no_train": int(np.count_nonzero(has_rel & ~has_train)),
            "cold_items": cold_items,
            "cold_pairs": cold_pairs,
        }
        return users, exclude.tocsr(), relevant, info

    def _statistics(self) -> dict[str, Any]:
        inter = self.dataset.interactions
        stats: dict[str, Any] = {
            "n_users": inter.n_users,
            "n_items": inter.n_items,
            "n_train": int(self.train.nnz),
            "n_val": int(self.val.nnz),
            "n_test": int(self.test.nnz),
            "dropped_eval_users": {},
            "cold_items": {},
        }
        for split in ("val", "test"):
            _, _, _, info = self._eval_sets(split)
            stats["dropped_eval_users"][split] = info["dropped_users_no_train"]
            stats["cold_items"][split] = {
                "items": info["cold_items"],
                "pairs": info["cold_pairs"],
                "policy": self.cold_items,
            }
            stats[f"n_eval_users_{split}"] = info["evaluated_users"]
        return stats

    # ---- dataloaders -----------------------------------------------------------------------------------------
    def _epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        inter = self.dataset.interactions
        sampler = TripletSampler(
            inter.train, inter.n_items, self.batch_size, self.seed, self._epoch, negatives=self.negatives
        )
        return DataLoader(sampler, batch_size=None)

    def eval_dataloader(self, split: str) -> DataLoader:
        users, exclude, relevant, _ = self._eval_sets(split)
        shard = rank_and_world()
        block = self.eval_block_users
        if -(-len(users) // block) < shard[1]:  # DDP: fewer blocks than ranks; smaller blocks so each rank has one
            block = max(1, -(-len(users) // shard[1]))
        blocks = _UserBlocks(users, exclude, relevant, block, shard=shard)
        return DataLoader(blocks, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")
