"""The shared datamodule: adjacency, kNN graphs and ties, sampling, evaluation sets, caching."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.data import graphs
from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.data.sampling import TripletSampler
from tests.conftest import shared_path


def test_normalized_bipartite_matches_dense() -> None:
    r = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32))
    adj = graphs.normalized_bipartite(r).to_dense().numpy()
    a = np.zeros((5, 5), dtype=np.float32)
    a[:2, 2:] = r.toarray()
    a[2:, :2] = r.toarray().T
    d = a.sum(1)
    np.testing.assert_allclose(adj, a / np.sqrt(np.outer(d, d)), rtol=1e-6)


def test_knn_matches_dense_topk_without_ties() -> None:
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    rows, cols = graphs.knn_indices(x, 5, chunk_size=7)
    xn = x / x.norm(dim=1, keepdim=True)
    expected = torch.topk(xn @ xn.T, 5, dim=1).indices
    got = torch.zeros(50, 50, dtype=torch.bool)
    got[rows, cols] = True
    want = torch.zeros(50, 50, dtype=torch.bool)
    want[torch.arange(50).unsqueeze(1), expected] = True
    assert torch.equal(got, want)


def test_knn_ties_constant_features() -> None:
    x = torch.ones(40, 4)  # every pair ties
    rows, cols = graphs.knn_indices(x, 3, ties="lowest_index")
    assert set(cols.tolist()) == {0, 1, 2}  # a hub graph decided by item ids
    rows, cols = graphs.knn_indices(x, 3, ties="random", seed=0)
    assert len(set(cols.tolist())) > 20 and torch.bincount(rows).eq(3).all()
    rows2, cols2 = graphs.knn_indices(x, 3, ties="random", seed=0)
    assert torch.equal(cols, cols2)
    rows3, cols3 = graphs.knn_indices(x, 3, ties="random", seed=1)
    assert not torch.equal(cols, cols3)
    rows, cols = graphs.knn_indices(x, 3, ties="drop")
    assert len(rows) == 0


def test_knn_zero_vectors_finite() -> None:
    adj = graphs.knn_adjacency(*graphs.knn_indices(torch.zeros(10, 3), 2), 10)
    assert torch.isfinite(adj.values()).all() and adj.values().numel() == 20


def test_sampler_excludes_positives_and_is_epoch_seeded() -> None:
    rng = np.random.default_rng(0)
    pairs = np.unique(np.stack([rng.integers(0, 30, 400), rng.integers(0, 20, 400)], 1), axis=0)
    epoch = [0]
    s = TripletSampler(pairs, 20, 64, seed=3, epoch_fn=lambda: epoch[0])
    a = list(s)
    positives = set(map(tuple, pairs.tolist()))
    for b in a:
        for u, n in zip(b["users"].tolist(), b["neg_items"].tolist()):
            assert (u, n) not in positives
    assert sum(len(b["users"]) for b in a) == len(pairs) and len(a) == len(s)
    again = list(s)
    assert all(torch.equal(x["neg_items"], y["neg_items"]) for x, y in zip(a, again))
    epoch[0] = 1
    assert not torch.equal(list(s)[0]["users"], a[0]["users"])


def _toy_dm(**kw) -> GraphDataModule:
    # user 3 has no training interaction; item 4 is never trained on (cold)
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 0], [2, 3]])
    val = np.array([[0, 2], [1, 0], [3, 1]])
    test = np.array([[0, 3], [1, 4], [2, 1], [3, 2]])
    ds = Dataset("toy", Interactions(4, 5, train, val, test))
    feats = ItemFeatures({"text": torch.randn(5, 3)})
    return GraphDataModule(ds, feats, batch_size=4, seed=0, eval_block_users=2, **kw)


def test_eval_sets_masks_dropped_users_and_cold_items() -> None:
    dm = _toy_dm()
    assert dm.stats["dropped_eval_users"] == {"val": 1, "test": 1}
    assert dm.stats["cold_items"]["test"]["items"] == 1
    batches = list(dm.test_dataloader())
    users = torch.cat([b["users"] for b in batches])
    assert users.tolist() == [0, 1, 2]
    b0 = batches[0]
    # testing masks training and validation items of user 0: items 0, 1 (train) and 2 (val)
    assert b0["exclude"].to_dense()[0].bool().tolist() == [True, True, True, False, False]
    assert b0["relevant"].to_dense()[1].bool().tolist() == [False, False, False, False, True]  # cold item kept
    dm_drop = _toy_dm(cold_items="drop", exclude_val_in_test=False)
    users = torch.cat([b["users"] for b in dm_drop.test_dataloader()])
    assert users.tolist() == [0, 2]  # user 1's only test item is cold
    assert list(dm_drop.test_dataloader())[0]["exclude"].to_dense()[0].bool().tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_knn_cache_keyed_by_features(synthetic_dm) -> None:
    data = synthetic_dm.data
    g1 = data.item_knn("text", 5)
    g2 = data.item_knn(data.feature("text") * 0 + 1, 5)  # other content -> other graph
    assert not torch.equal(g1.to_dense(), g2.to_dense())
    assert torch.equal(data.item_knn("text", 5).to_dense(), g1.to_dense())


def test_feature_row_mismatch_is_an_error() -> None:
    from mmrec.errors import DataError

    ds = Dataset("toy", Interactions(2, 3, np.array([[0, 0], [1, 1]]), np.array([[0, 1]]), np.array([[1, 2]])))
    with pytest.raises(DataError, match="features have 4 rows"):
        GraphDataModule(ds, ItemFeatures({"text": torch.randn(4, 2)}))


def test_tiktok_cold_items_counted() -> None:
    from mmrec.data import load_dataset

    ds = load_dataset("tiktok", format="mmrec", data_dir=str(shared_path("tiktok")))
    dm = GraphDataModule(ds, None)
    assert dm.stats["cold_items"]["test"]["items"] == 340


def test_negatives_come_only_from_items_seen_in_training():
    # items 7..9 never occur in training: with the train_items pool they are never drawn as negatives
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.integers(0, 60, 150), rng.integers(0, 7, 150)], axis=1)
    pairs = np.unique(pairs, axis=0)
    drawn = set()
    for epoch in range(5):
        s = TripletSampler(pairs, 10, 64, seed=1, epoch_fn=lambda e=epoch: e, negatives="train_items")
        for b in s:
            drawn.update(b["neg_items"].tolist())
    assert drawn <= set(range(7)) and len(drawn) > 1
    s = TripletSampler(pairs, 10, 4096, seed=1, epoch_fn=lambda: 0, negatives="all_items")
    assert set(next(iter(s))["neg_items"].tolist()) & {7, 8, 9}


def test_train_item_pool_draws_the_same_triples_when_every_item_is_seen():
    rng = np.random.default_rng(1)
    pairs = np.unique(np.stack([rng.integers(0, 50, 600), rng.integers(0, 12, 600)], axis=1), axis=0)
    assert len(np.unique(pairs[:, 1])) == 12
    a = [b["neg_items"] for b in TripletSampler(pairs, 12, 100, 3, lambda: 2, negatives="train_items")]
    b = [b["neg_items"] for b in TripletSampler(pairs, 12, 100, 3, lambda: 2, negatives="all_items")]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def _star_train() -> np.ndarray:
    """User 0 shares items 0 and 1 with user 1 (the pair (0, 0) is listed twice: it still counts once) and one
    item each with users 2..6, who share nothing else: user 0's counts are {1: 2, 2..6: 1}."""
    pairs = [(0, 0), (0, 0), (0, 1), (1, 0), (1, 1)] + [p for j in range(2, 7) for p in ((0, j), (j, j))]
    return np.array(pairs)


def _user_lists(rows: torch.Tensor, cols: torch.Tensor, counts: torch.Tensor) -> dict[int, list[tuple[int, float]]]:
    return {u: list(zip(cols[rows == u].tolist(), counts[rows == u].tolist())) for u in rows.unique().tolist()}


def test_user_graph_ties_at_the_kth_place() -> None:
    """k = 3 for user 0: user 1 (count 2) is sure, two of the five users with count 1 tie for the last places."""
    pairs = _star_train()
    train = sp.csr_matrix((np.ones(len(pairs), np.float32), (pairs[:, 0], pairs[:, 1])), shape=(7, 7))
    low = _user_lists(*graphs.user_cooccurrence_topk(train, 3, ties="lowest_index"))
    assert low[0] == [(1, 2.0), (2, 1.0), (3, 1.0)]
    assert low[1] == [(0, 2.0)] and all(low[j] == [(0, 1.0)] for j in range(2, 7))
    assert _user_lists(*graphs.user_cooccurrence_topk(train, 3, ties="drop"))[0] == [(1, 2.0)]
    kept = np.zeros(7)
    for seed in range(400):
        got = _user_lists(*graphs.user_cooccurrence_topk(train, 3, ties="random", seed=seed))
        assert got[0][0] == (1, 2.0) and [c for _, c in got[0][1:]] == [1.0, 1.0]
        assert {j for j, _ in got[0][1:]} <= {2, 3, 4, 5, 6} and len({j for j, _ in got[0]}) == 3
        for j, _ in got[0][1:]:
            kept[j] += 1
    share = kept[2:] / 400  # each tied user is kept with probability 2/5 (sd 0.025 over 400 draws)
    assert np.all(np.abs(share - 0.4) < 0.1), share
    again = graphs.user_cooccurrence_topk(train, 3, ties="random", seed=7)
    assert all(torch.equal(a, b) for a, b in zip(again, graphs.user_cooccurrence_topk(train, 3, ties="random", seed=7)))


def test_user_graph_follows_knn_ties_and_seed() -> None:
    pairs = _star_train()
    ds = Dataset("star", Interactions(7, 7, pairs, np.array([[2, 0]]), np.array([[3, 0]])))

    def first_user(ties: str, seed: int) -> list[int]:
        rows, cols, _ = GraphDataModule(ds, None, seed=seed, knn_ties=ties).data.user_graph(3)
        return cols[rows == 0].tolist()

    assert first_user("lowest_index", 0) == first_user("lowest_index", 5) == [1, 2, 3]
    assert first_user("drop", 0) == [1]
    draws = {tuple(first_user("random", s)) for s in range(12)}
    assert len(draws) > 1  # the run seed decides the tied neighbours
    rows, cols, counts = graphs.user_cooccurrence_topk(sp.csr_matrix(ds.interactions.matrix("train")), 3, seed=4)
    assert first_user("random", 4) == cols[rows == 0].tolist()
