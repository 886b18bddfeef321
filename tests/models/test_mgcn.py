"""MGCN: weighted kNN graphs and the multi-view forward against dense computations, training, knockouts, TikTok."""

from __future__ import annotations

import math

import pytest
import torch

from mmrec.features.knockout import Knockout
from mmrec.nn.weighted_item_graphs import weighted_knn_graph
from tests.models.common import assert_learns, fit, make_model, test_metrics, with_features
from tests.models.test_lattice import dense_knn, dense_sym, tiny_dm


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("mgcn", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 3, limit_val_batches=0)
    return m, losses


def test_weighted_knn_graph_matches_dense_reference_and_guards_zero_rows() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 4, generator=g)
    torch.testing.assert_close(weighted_knn_graph(x, 3).to_dense(), dense_sym(dense_knn(x, 3)))
    x[2] = 0.0
    assert torch.isnan(dense_sym(dense_knn(x, 3))).any()  # the reference: 0/0 in the cosine
    graph = weighted_knn_graph(x, 3).to_dense()
    assert torch.isfinite(graph).all()
    assert (graph[2] == 0).all() and (graph[:, 2] == 0).all()  # the zero item is isolated
    torch.testing.assert_close(graph, dense_sym(dense_knn(x, 3, eps=1e-12)))  # the rest is untouched


def test_forward_equals_dense_two_modality_reference() -> None:
    dm = tiny_dm()
    k, layers = 3, 2
    m = make_model("mgcn", dm, knn_k=k, n_layers=layers, n_ui_layers=2)
    U = dm.data.n_users
    with torch.no_grad():
        a = m.adj.to_dense()
        e0 = torch.cat([m.user_embedding.weight, m.item_embedding.weight])
        content = (e0 + a @ e0 + a @ a @ e0) / 3
        r = a[:U, U:]
        views = {}
        for name in ("image", "text"):
            s = dense_sym(dense_knn(dm.data.feature(name), k))
            h = m.item_embedding.weight * m.purifier_gates[name](m.projections[name](dm.data.feature(name)))
            h = s @ (s @ h)
            views[name] = torch.cat([r @ h, h])
        # the reference's literal two-modality fuser
        att = torch.softmax(torch.cat([m.query_common(views["image"]), m.query_common(views["text"])], -1), -1)
        common = att[:, :1] * views["image"] + att[:, 1:] * views["text"]
        sep_i = m.preference_gates["image"](content) * (views["image"] - common)
        sep_t = m.preference_gates["text"](content) * (views["text"] - common)
        side = (sep_i + sep_t + common) / 3
        final, side_out, content_out = m.forward()
        torch.testing.assert_close(side_out, side, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(content_out, content, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(final, content + side, rtol=1e-5, atol=1e-6)
        some = torch.tensor([0, 2, dm.data.n_users + 1])  # fusion over a subset of nodes: the same rows
        for part, full in zip(m.forward(some), (final, side_out, content_out), strict=True):
            torch.testing.assert_close(part, full[some], rtol=1e-5, atol=1e-6)


def test_loss_is_bpr_plus_reg_plus_infonce() -> None:
    dm = tiny_dm()
    m = make_model("mgcn", dm, knn_k=3, reg_weight=1e-2, cl_loss=0.5, temperature=0.3)
    users, pos, neg = torch.tensor([0, 1, 3]), torch.tensor([1, 2, 4]), torch.tensor([5, 6, 7])
    with torch.no_grad():
        final, side, content = m.forward()
        u_all, i_all = final[: dm.data.n_users], final[dm.data.n_users :]
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        bpr = -torch.log(torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()
        reg = 0.5 * (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / 3

        def nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # -log(exp(pos/τ) / Σ exp(all/τ))
            a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
            logits = torch.exp(a @ b.T / 0.3)
            return (-torch.log(logits.diag() / logits.sum(1))).mean()

        cl = nce(side[4 + pos], content[4 + pos]) + nce(side[users], content[users])
        expected = bpr + 1e-2 * reg + 0.5 * cl
        got = m.loss({"users": users, "pos_items": pos, "neg_items": neg})
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_trainable_parameter_count(synthetic_dm) -> None:
    n_users, n_items = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d = 64
    base = (n_users + n_items) * d + sum((dm + 1) * d + 2 * (d + 1) * d for dm in dims) + (d + 1) * d + d
    assert make_model("mgcn", synthetic_dm).num_trainable_parameters() == base + n_items * sum(dims)
    assert make_model("mgcn", synthetic_dm, freeze_features=True).num_trainable_parameters() == base


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)


@pytest.mark.parametrize("spec", ["all:zero", "all:constant"])
def test_zero_features_reduce_to_the_id_view(synthetic_dm, spec) -> None:
    dm = with_features(synthetic_dm, Knockout(spec).apply(synthetic_dm.data.features, seed=0))
    m = make_model("mgcn", dm, lr=0.01)
    losses = fit(m, dm, 2, limit_train_batches=2, limit_val_batches=0)
    assert all(math.isfinite(x) for x in losses)
    metrics = test_metrics(m, dm)
    assert all(math.isfinite(v) for v in metrics.values()) and metrics["recall@20"] > 0
    if spec == "all:zero":  # zero features → zero item graphs → no side signal: the ID (LightGCN) view alone
        with torch.no_grad():
            assert (m.forward()[1] == 0).all()  # side
