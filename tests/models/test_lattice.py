"""LATTICE: learned sparse item graph against the dense reference formula, training, knockouts, TikTok."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.features.knockout import Knockout
from tests.models.common import all_scores, assert_learns, fit, make_model, with_features


def tiny_dm(feats: dict[str, torch.Tensor] | None = None) -> GraphDataModule:
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [0, 3], [3, 4], [3, 5], [1, 6], [2, 7]])
    ds = Dataset("tiny", Interactions(4, 8, train, np.array([[1, 0]]), np.array([[2, 0]])))
    g = torch.Generator().manual_seed(0)
    feats = feats or {"text": torch.randn(8, 3, generator=g), "image": torch.randn(8, 5, generator=g)}
    return GraphDataModule(ds, ItemFeatures(feats), batch_size=4, seed=0)


def dense_knn(x: torch.Tensor, k: int, eps: float = 0.0) -> torch.Tensor:
    """MMRec's build_sim + build_knn_neighbourhood: top-k cosine values per row, zeros elsewhere (dense).
    ``eps=0`` is the reference (a zero row gives 0/0 = NaN); ``eps>0`` guards the norm."""
    xn = x / x.norm(dim=1, keepdim=True).clamp_min(eps)
    sim = xn @ xn.T
    vals, idx = sim.topk(k, dim=1)
    return torch.zeros_like(sim).scatter_(1, idx, vals)


def dense_sym(a: torch.Tensor) -> torch.Tensor:
    """MMRec's compute_normalized_laplacian: D^-1/2 A D^-1/2 with row-sum degrees."""
    d = a.sum(1).pow(-0.5)
    d[torch.isinf(d)] = 0.0
    return d[:, None] * a * d[None, :]


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("lattice", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 3, limit_val_batches=0)
    return m, losses


def test_learned_item_graph_equals_dense_reference_formula() -> None:
    dm = tiny_dm()
    k, lam = 3, 0.9
    m = make_model("lattice", dm, knn_k=k, lambda_coeff=lam)
    with torch.no_grad():
        m.modal_weight.copy_(torch.tensor([0.3, -0.2]))  # unequal modality weights
        w = torch.softmax(m.modal_weight, 0)
        names = m.modality_names
        learned = sum(w[j] * dense_knn(m.projections[n](dm.data.feature(n)), k) for j, n in enumerate(names))
        original = sum(w[j] * dense_sym(dense_knn(dm.data.feature(n), k)) for j, n in enumerate(names))
        expected = (1 - lam) * dense_sym(learned) + lam * original
        torch.testing.assert_close(m.item_graph().to_dense(), expected, rtol=1e-5, atol=1e-6)
        # item side: LightGCN over D^-1 (A + I) plus the normalised item-graph convolution of the ID embeddings
        a = torch.zeros(12, 12)
        r, c = dm.data.train_matrix.nonzero()
        a[r, 4 + c] = a[4 + c, r] = 1.0
        a = a + torch.eye(12)
        a = a / a.sum(1, keepdim=True)
        torch.testing.assert_close(m.adj.to_dense(), a)
        e0 = torch.cat([m.user_embedding.weight, m.item_embedding.weight])
        cf = (e0 + a @ e0 + a @ a @ e0) / 3
        h = expected @ m.item_embedding.weight
        u, i = m.forward(m.item_graph())
        torch.testing.assert_close(u, cf[:4], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(i, cf[4:] + h / h.norm(dim=1, keepdim=True), rtol=1e-5, atol=1e-6)


def test_paper_variant_uses_lightgcn_adjacency(synthetic_dm) -> None:
    m = make_model("lattice", synthetic_dm, faithful_to="paper")
    torch.testing.assert_close(m.adj.to_dense(), synthetic_dm.data.norm_adj().to_dense())


def test_reference_detaches_graph_after_first_batch_paper_does_not() -> None:
    dm = tiny_dm()
    batch = {
        "users": torch.tensor([0, 1, 2]),
        "pos_items": torch.tensor([0, 2, 3]),
        "neg_items": torch.tensor([5, 4, 6]),
    }
    for faithful_to, second_batch_has_grad in [("reference", False), ("paper", True)]:
        m = make_model("lattice", dm, knn_k=3, faithful_to=faithful_to)
        m.on_epoch_start_hook()
        m.loss(batch).backward()
        assert m.projections["text"].weight.grad is not None and m.modal_weight.grad.abs().sum() > 0
        m.zero_grad(set_to_none=True)
        m.loss(batch).backward()
        assert (m.projections["text"].weight.grad is not None) == second_batch_has_grad
        assert m.user_embedding.weight.grad is not None


def test_zero_features_give_finite_graphs_not_nan() -> None:
    dm = tiny_dm({"text": torch.zeros(8, 3), "image": torch.zeros(8, 5)})
    m = make_model("lattice", dm, knn_k=3)
    for j in range(2):  # MMRec: cosine of zero vectors is NaN, and so is everything downstream
        g = getattr(m, f"original_graph_{j}")
        assert torch.isfinite(g.values()).all() and (g.values() == 0).all()
    with torch.no_grad():
        assert torch.isfinite(m.item_graph().to_dense()).all()
        assert torch.isfinite(all_scores(m, dm)).all()


@pytest.mark.parametrize("name", ["lattice", "mgcn", "smore"])
def test_test_time_knockout_rebuilds_from_knocked_out_features(synthetic_dm, name) -> None:
    m = make_model(name, synthetic_dm)
    before = all_scores(m, synthetic_dm)
    graph = "original_graph_0" if name == "lattice" else "item_graph_0"
    assert (getattr(m, graph).values() != 0).any()
    knocked = with_features(synthetic_dm, Knockout("all:zero").apply(synthetic_dm.data.features, seed=0))
    m.attach(knocked.data)  # weights kept; tables and graphs take the knocked-out features
    assert all((m.features[mod].weight == 0).all() for mod in m.modality_names)
    assert (getattr(m, graph).values() == 0).all()
    after = all_scores(m, knocked)
    assert torch.isfinite(after).all() and not torch.equal(before, after)


@pytest.mark.parametrize(
    "cf_model, extra",
    [
        ("lightgcn", lambda d: 0),
        ("mf", lambda d: 0),
        ("ngcf", lambda d: 2 * 2 * (d + 1) * d),
    ],
)
def test_trainable_parameter_count(synthetic_dm, cf_model, extra) -> None:
    n_users, n_items = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d, f, M = 64, 64, len(dims)
    base = (n_users + n_items) * d + sum((dm + 1) * f for dm in dims) + M
    m = make_model("lattice", synthetic_dm, cf_model=cf_model)
    assert m.num_trainable_parameters() == base + n_items * sum(dims) + extra(d)
    batch = {"users": torch.arange(8), "pos_items": torch.arange(8), "neg_items": torch.arange(8, 16)}
    assert torch.isfinite(m.loss(batch))  # every backbone runs
    frozen = make_model("lattice", synthetic_dm, cf_model=cf_model, freeze_features=True)
    assert frozen.num_trainable_parameters() == base + extra(d)


def test_bad_config_is_a_config_error(synthetic_dm) -> None:
    with pytest.raises(ConfigError, match="cf_model"):
        make_model("lattice", synthetic_dm, cf_model="gat")
    with pytest.raises(ConfigError, match="faithful_to"):
        make_model("lattice", synthetic_dm, faithful_to="original")


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)
