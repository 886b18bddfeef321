"""Approximate item kNN (faiss HNSW): recall against brute force, the tie rule kept, method selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("faiss")

from mmrec.data.datamodule import GraphDataModule  # noqa: E402
from mmrec.data.knn import approx_knn_indices, resolve_method, sampled_recall  # noqa: E402
from mmrec.data.synthetic import make_synthetic  # noqa: E402
from mmrec.errors import ConfigError  # noqa: E402


def brute_force_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Top-k cosine neighbours (self included) by a full numpy similarity matrix."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.argsort(-(xn @ xn.T), axis=1, kind="stable")[:, :k]


def test_hnsw_neighbours_recall_the_true_ones() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 32))
    x = (centres[rng.integers(0, 40, 3000)] + 0.6 * rng.standard_normal((3000, 32))).astype(np.float32)
    rows, cols = approx_knn_indices(torch.from_numpy(x), 10)
    truth = brute_force_neighbours(x, 10)
    found = np.zeros_like(truth)
    order = np.argsort(rows.numpy(), kind="stable")
    found[:] = cols.numpy()[order].reshape(3000, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.95
    assert abs(sampled_recall(torch.from_numpy(x), rows, cols, 10, sample=500) - recall) < 0.05


@pytest.mark.parametrize("include_self", [True, False])
def test_tied_rows_follow_the_exact_tie_rule(include_self: bool) -> None:
    # constant features: every similarity ties, so the approximate builder must hand all rows to the exact one
    x = torch.ones(50, 8)
    rows, cols = approx_knn_indices(x, 5, ties="lowest_index", include_self=include_self)
    expected = [0, 1, 2, 3, 4] if include_self else None
    for r in range(50):
        got = sorted(cols[rows == r].tolist())
        want = expected if include_self else [i for i in range(6) if i != r][:5]
        assert got == want


def test_method_selection() -> None:
    assert resolve_method("auto", 50_000, 50_000) == "exact"
    assert resolve_method("auto", 50_001, 50_000) == "approx"
    assert resolve_method("exact", 10**7) == "exact"
    with pytest.raises(ConfigError, match="knn.method"):
        resolve_method("annoy", 10)


def test_datamodule_records_the_method_and_keys_the_cache_by_it() -> None:
    ds = make_synthetic(n_users=200, n_items=400, interactions_per_user=8)
    exact = GraphDataModule(ds, ds.features, knn_method="exact").data
    approx = GraphDataModule(ds, ds.features, knn_method="approx").data
    a = exact.item_knn("text", 10)
    b = approx.item_knn("text", 10)
    assert exact.knn_builds[0]["method"] == "exact"
    info = approx.knn_builds[0]
    assert info["method"] == "approx" and info["index"] == "faiss-hnsw" and info["recall"] >= 0.95
    overlap = (a.to_dense() > 0) & (b.to_dense() > 0)
    assert overlap.sum() >= 0.95 * (a.to_dense() > 0).sum()
    with pytest.raises(ConfigError, match="knn.method"):
        GraphDataModule(ds, ds.features, knn_method="fast")


def test_every_build_records_its_seconds_and_a_cached_graph_says_so() -> None:
    ds = make_synthetic(n_users=200, n_items=300, interactions_per_user=8)
    first = GraphDataModule(ds, ds.features, knn_method="auto").data
    first.item_knn("text", 10)
    built = first.knn_builds[0]
    assert built["method"] == "exact" and built["requested"] == "auto" and built["seconds"] > 0
    assert "cached" not in built and built["n_items"] == 300
    again = GraphDataModule(ds, ds.features, knn_method="auto").data  # same data: the graph comes from the cache
    again.item_knn("text", 10)
    assert again.knn_builds[0]["cached"] is True and "seconds" not in again.knn_builds[0]
