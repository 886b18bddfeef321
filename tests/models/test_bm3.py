"""BM3: the bootstrap loss against its dense formula, ID-only scores (test-time knockout cannot change them),
training, knockouts, TikTok."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.features.knockout import Knockout
from tests.models.common import (
    all_scores,
    assert_learns,
    fit,
    make_model,
    mostpop_recall_on,
    with_features,
)

TRAIN = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [0, 3], [3, 4], [3, 5], [1, 6], [2, 7]])


def tiny_dm(modalities: dict[str, int] | None = None, seed: int = 0) -> GraphDataModule:
    """4 users × 8 items, random features (default text 3-d + image 5-d)."""
    ds = Dataset("tiny", Interactions(4, 8, TRAIN, np.array([[1, 0]]), np.array([[2, 0]])))
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(8, d, generator=g) for m, d in (modalities or {"text": 3, "image": 5}).items()}
    return GraphDataModule(ds, ItemFeatures(feats), batch_size=4, seed=0)


def dense_norm_adj(n_users: int, n_items: int) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the tiny bipartite graph, built densely from TRAIN."""
    a = torch.zeros(n_users + n_items, n_users + n_items)
    a[TRAIN[:, 0], n_users + TRAIN[:, 1]] = 1.0
    a[n_users + TRAIN[:, 1], TRAIN[:, 0]] = 1.0
    d = a.sum(1).pow(-0.5)
    d[torch.isinf(d)] = 0.0
    return d[:, None] * a * d[None, :]


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


@pytest.fixture(scope="module")
def small_batch_dm(synthetic_dataset) -> GraphDataModule:
    """The synthetic set in batches of 128 (BM3 learns from positives only: it needs more steps)."""
    return GraphDataModule(synthetic_dataset, synthetic_dataset.features, batch_size=128, seed=0)


@pytest.fixture(scope="module")
def trained(small_batch_dm):
    m = make_model("bm3", small_batch_dm, lr=0.01)
    losses = fit(m, small_batch_dm, 5, limit_val_batches=0)
    return m, losses


def test_loss_and_scores_equal_dense_formula() -> None:
    dm = tiny_dm()
    m = make_model("bm3", dm, dropout=0.0, n_layers=2, reg_weight=0.3, cl_weight=2.0)
    U, I = 4, 8
    users, items = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 7, 4, 3])
    batch = {"users": users, "pos_items": items, "neg_items": torch.tensor([5, 5, 5, 0, 0])}
    with torch.no_grad():
        a = dense_norm_adj(U, I)
        e0 = torch.cat([m.user_embedding.weight, m.item_embedding.weight])
        h = (e0 + a @ e0 + a @ a @ e0) / 3
        h_u, h_i = h[:U], h[U:] + m.item_embedding.weight
        p = m.predictor
        u, i = h_u[users], h_i[items]
        expected = (1 - cos(p(u), i).mean()) + (1 - cos(p(i), u).mean())
        content = 0.0
        for name in ("text", "image"):
            f = m.projections[name](dm.data.feature(name)[items])  # raw features: dropout 0 → target = online input
            content = content + (1 - cos(p(f), i).mean()) + (1 - cos(p(f), f).mean())
        reg = (h_u.pow(2).sum().sqrt() + h_i.pow(2).sum().sqrt()) / I
        expected = expected + 0.3 * reg + 2.0 * content
        torch.testing.assert_close(m.loss(batch), expected, rtol=1e-5, atol=1e-6)
        m.eval()
        torch.testing.assert_close(m.score(torch.tensor([2, 0])), p(h_u[[2, 0]]) @ p(h_i).T, rtol=1e-5, atol=1e-6)


def test_target_dropout_masks_and_rescales() -> None:
    m = make_model("bm3", tiny_dm(), dropout=0.5)
    x = torch.ones(2000, 8, requires_grad=True)
    t = m._target(x)
    assert not t.requires_grad
    assert set(torch.unique(t).tolist()) == {0.0, 2.0}  # dropped or scaled by 1/(1 − p)
    assert abs((t == 0).float().mean().item() - 0.5) < 0.02


def test_trainable_parameter_count(synthetic_dm) -> None:
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d = 64
    base = (U + I) * d + (d + 1) * d + sum((dm + 1) * d for dm in dims)
    assert make_model("bm3", synthetic_dm).num_trainable_parameters() == base + I * sum(dims)
    assert make_model("bm3", synthetic_dm, freeze_features=True).num_trainable_parameters() == base


def test_learns_and_beats_mostpop(trained, small_batch_dm) -> None:
    assert_learns(*trained, small_batch_dm, mostpop_recall_on(small_batch_dm))


def test_test_time_knockout_leaves_scores_bit_identical(trained, small_batch_dm) -> None:
    m, _ = trained
    assert m.uses_features_at_inference is False
    before = all_scores(m, small_batch_dm)
    table = m.features["text"].weight.detach().clone()
    knocked = with_features(small_batch_dm, Knockout("all:shuffle").apply(small_batch_dm.data.features, seed=0))
    m.attach(knocked.data)
    try:
        assert not torch.equal(m.features["text"].weight, table)  # the tables did take the shuffled rows
        assert torch.equal(all_scores(m, knocked), before)
    finally:
        m.attach(small_batch_dm.data)
