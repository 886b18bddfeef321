"""MostPop, BPR, LightGCN, VBPR, FREEDOM: exact checks on tiny graphs, training, knockouts, TikTok."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmrec.features.knockout import Knockout
from mmrec.nn.edge_pruning import degree_weights, pruned_norm_adj, sample_edges
from tests.models.common import all_scores, fit, make_model, test_metrics, tiny_dm, with_features

MODELS = ["bpr", "lightgcn", "vbpr", "freedom"]


def test_mostpop_ranks_by_training_popularity(synthetic_dm, mostpop_recall) -> None:
    m = make_model("mostpop", synthetic_dm)
    fit(m, synthetic_dm, 0)
    pop = np.asarray(synthetic_dm.train.sum(axis=0)).ravel()
    assert torch.equal(all_scores(m, synthetic_dm)[0], torch.from_numpy(pop).float())
    assert mostpop_recall > 0


def test_lightgcn_equals_dense_mean_of_powers() -> None:
    dm = tiny_dm()
    m = make_model("lightgcn", dm, n_layers=3)
    a = m.adj.to_dense()
    e0 = torch.cat([m.user_embedding.weight, m.item_embedding.weight]).detach()
    expected = torch.stack([torch.linalg.matrix_power(a, k) @ e0 for k in range(4)]).mean(0)
    u, i = m.forward()
    torch.testing.assert_close(torch.cat([u, i]).detach(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, formula",
    [
        ("bpr", lambda U, I, dims: (U + I) * 64),
        ("lightgcn", lambda U, I, dims: (U + I) * 64),
        ("vbpr", lambda U, I, dims: 2 * 64 * U + 64 * I + (sum(dims) + 1) * 64),
        ("freedom", lambda U, I, dims: (U + I) * 64 + sum((d + 1) * 64 for d in dims) + I * sum(dims)),
    ],
)
def test_trainable_parameter_counts(synthetic_dm, name, formula) -> None:
    m = make_model(name, synthetic_dm)
    dims = list(synthetic_dm.data.features.dims().values())
    assert m.num_trainable_parameters() == formula(synthetic_dm.data.n_users, synthetic_dm.data.n_items, dims)


def test_freedom_frozen_features_parameter_count(synthetic_dm) -> None:
    m = make_model("freedom", synthetic_dm, freeze_features=True)
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = synthetic_dm.data.features.dims().values()
    assert m.num_trainable_parameters() == (U + I) * 64 + sum((d + 1) * 64 for d in dims)
    assert not any(k.startswith("features.") for k in m.state_dict())  # frozen tables are not checkpointed


@pytest.mark.parametrize("name", MODELS)
def test_trains_and_beats_mostpop(synthetic_dm, mostpop_recall, name) -> None:
    m = make_model(name, synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 6)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert test_metrics(m, synthetic_dm)["recall@20"] > mostpop_recall


def test_freedom_item_graph_frozen_and_from_post_knockout_features(synthetic_dm) -> None:
    m = make_model("freedom", synthetic_dm, lr=0.01)
    before = m.mm_adj.to_dense().clone()
    fit(m, synthetic_dm, 2, limit_train_batches=2)
    assert torch.equal(m.mm_adj.to_dense(), before)  # identical across epochs
    knocked = Knockout("text:shuffle").apply(synthetic_dm.data.features, seed=0)
    dm2 = with_features(synthetic_dm, knocked)
    m2 = make_model("freedom", dm2)
    w = m2.weights
    expected = sum(dm2.data.item_knn(mod, 10).to_dense() * w[mod] for mod in m2.modality_names)
    torch.testing.assert_close(m2.mm_adj.to_dense(), expected)
    assert not torch.equal(m2.mm_adj.to_dense(), before)


def test_freedom_pruning_keeps_floor_and_follows_degree_weights() -> None:
    rng = np.random.default_rng(0)
    users = torch.from_numpy(rng.integers(0, 30, 500))
    items = torch.from_numpy(rng.zipf(1.5, 500) % 40)
    w = degree_weights(users, items, 30, 40)
    du, di = torch.bincount(users, minlength=30).float(), torch.bincount(items, minlength=40).float()
    torch.testing.assert_close(w, 1 / torch.sqrt(du[users] * di[items]))
    adj = pruned_norm_adj(users, items, 30, 40, dropout=0.8)
    assert adj._nnz() // 2 <= math.floor(500 * 0.2)
    assert len(sample_edges(w, 0.2)) == math.floor(500 * 0.2)
    # edges with higher weight are kept more often (sampling ∝ weight without replacement)
    torch.manual_seed(0)
    kept = torch.zeros(500)
    for _ in range(300):
        kept[sample_edges(w, 0.2)] += 1
    lo, hi = w < w.quantile(0.25), w > w.quantile(0.75)
    assert kept[hi].mean() > 1.5 * kept[lo].mean()
