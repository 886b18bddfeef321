"""DA-MRS: consensus and behaviour item graphs, the loss against the reference algorithm, training, knockouts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.features.knockout import Knockout
from mmrec.models.damrs import symmetric_bernoulli_kl
from mmrec.nn.consensus_item_graphs import consensus_knn_edges, cooccurrence_knn_edges, topk_with_ties
from tests.models.common import all_scores, assert_learns, fit, make_model, with_features
from tests.models.test_lattice import dense_sym, tiny_dm

# users' training items: item 0 and 1 share three users; (0,2), (1,2), (2,3), (2,4), (0,4) share two
BEHAVIOUR_TRAIN = [[0, 1, 2], [0, 1, 3], [0, 1, 2, 4], [2, 3, 4], [2, 3, 5], [4, 5, 0]]


def behaviour_matrix() -> sp.csr_matrix:
    rows = [u for u, items in enumerate(BEHAVIOUR_TRAIN) for _ in items]
    cols = [i for items in BEHAVIOUR_TRAIN for i in items]
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(6, 6))


def dense_from_edges(rows: torch.Tensor, cols: torch.Tensor, n: int) -> torch.Tensor:
    a = torch.zeros(n, n)
    a[rows, cols] = 1.0
    return a


def reference_consensus_graphs(xs: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """The authors' get_knn_adj_mat, generalised to the given modalities (dense)."""
    sims = [F.normalize(x, dim=1) @ F.normalize(x, dim=1).T for x in xs]
    masks = [s < s.mean() for s in sims]
    masked = []
    for s in sims:
        s = s.clone()
        for mask in masks:
            s[mask] = 0.0
        masked.append(s)
    count = (masked[-1] != 0).sum(1)
    graphs = []
    for s in masked:
        a = torch.zeros_like(s)
        for i in range(s.shape[0]):
            a[i, torch.topk(s[i], int(min(k, count[i]))).indices] = 1.0
        graphs.append(dense_sym(a))
    return graphs


def reference_behaviour_graph(train: sp.csr_matrix, k: int) -> torch.Tensor:
    """build_iib_graph.py (co-interactions ≥ 2, top-k per item) + get_session_adj (self-loops, unit weights)."""
    r = torch.tensor(train.toarray())
    c = r.T @ r
    c.fill_diagonal_(0.0)
    c[c < 2] = 0.0
    a = torch.eye(c.shape[0])
    for i in range(c.shape[0]):
        a[i, torch.topk(c[i], int(min(k, (c[i] != 0).sum()))).indices] = 1.0
    return dense_sym(a)


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("damrs", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 4, limit_val_batches=0)
    return m, losses


def test_topk_with_ties_policies() -> None:
    scores = torch.tensor([[3.0, 1.0, 2.0, 2.0, -torch.inf], [1.0, -torch.inf, -torch.inf, -torch.inf, -torch.inf]])

    def picked(ties: str) -> list[set[int]]:
        idx, keep = topk_with_ties(scores, 2, ties, torch.Generator().manual_seed(0))
        return [set(idx[r][keep[r]].tolist()) for r in range(2)]

    assert picked("lowest_index") == [{0, 2}, {0}]
    assert picked("drop") == [{0}, {0}]
    random_pick = picked("random")
    assert random_pick[1] == {0} and random_pick[0] in ({0, 2}, {0, 3})


def test_consensus_graphs_equal_the_reference_construction() -> None:
    g = torch.Generator().manual_seed(4)
    xs = [torch.randn(12, 5, generator=g), torch.randn(12, 7, generator=g)]
    expected = reference_consensus_graphs(xs, 3)
    edges = consensus_knn_edges(xs, 3, chunk_size=5)
    for (rows, cols), ref in zip(edges, expected):
        torch.testing.assert_close(dense_sym(dense_from_edges(rows, cols, 12)), ref)
    # a single modality is its own consensus
    ((rows, cols),) = consensus_knn_edges(xs[:1], 3)
    torch.testing.assert_close(dense_sym(dense_from_edges(rows, cols, 12)), reference_consensus_graphs(xs[:1], 3)[0])


def test_degenerate_modalities_veto_nothing() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 5, generator=g)
    alone = consensus_knn_edges([x], 3, ties="lowest_index")[0]
    for dead in (torch.zeros(12, 4), torch.ones(12, 4)):
        with_dead = consensus_knn_edges([x, dead], 3, ties="lowest_index")
        assert torch.equal(with_dead[0][0], alone[0]) and torch.equal(with_dead[0][1], alone[1])
        # the dead modality's own graph: as many (tied) neighbours per item as the consensus allows
        assert torch.equal(torch.bincount(with_dead[1][0], minlength=12), torch.bincount(alone[0], minlength=12))


def test_behaviour_graph_equals_the_reference_construction() -> None:
    train = behaviour_matrix()
    rows, cols = cooccurrence_knn_edges(train, 10)
    torch.testing.assert_close(dense_sym(dense_from_edges(rows, cols, 6)), reference_behaviour_graph(train, 10))
    # item 0: item 1 (3 common users), then items 2 and 4 tie (2 each) for the second place
    rows, cols = cooccurrence_knn_edges(train, 2, ties="lowest_index")
    assert set(cols[rows == 0].tolist()) == {0, 1, 2}
    rows, cols = cooccurrence_knn_edges(train, 2, ties="drop")
    assert set(cols[rows == 0].tolist()) == {0, 1}
    rows, cols = cooccurrence_knn_edges(train, 2, min_count=4)
    assert torch.equal(rows, cols)  # nobody shares four users: self-loops only


def test_symmetric_kl_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, generator=g) * 3, torch.randn(50, generator=g) * 3
    p, q = torch.sigmoid(a), torch.sigmoid(b)

    def kl(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:  # the reference's formula
        return p1 * torch.log(p1) - p1 * torch.log(p2) + (1 - p1) * torch.log(1 - p1) - (1 - p1) * torch.log(1 - p2)

    torch.testing.assert_close(symmetric_bernoulli_kl(a, b), kl(p, q) + kl(q, p), rtol=1e-4, atol=1e-5)
    big = torch.tensor([40.0, -40.0])
    assert torch.isnan(kl(torch.sigmoid(big), torch.sigmoid(-big))).any()
    assert torch.isfinite(symmetric_bernoulli_kl(big, -big)).all()


def test_loss_equals_the_reference_algorithm() -> None:
    dm = tiny_dm()
    n_pos, tau = 2, 0.2
    m = make_model(
        "damrs",
        dm,
        knn_k=3,
        behaviour_k=2,
        min_cooccurrence=1,
        n_pseudo_positives=n_pos,
        kl_weight=0.5,
        neighbor_weight=0.3,
    )
    users, pos, neg = torch.tensor([0, 1, 3, 1]), torch.tensor([1, 2, 4, 6]), torch.tensor([5, 6, 7, 0])
    with torch.no_grad():
        u_all, i_all, views = m.forward()
        uid, iid = torch.unique(users), torch.unique(torch.cat([pos, neg]))
        probs = [torch.softmax(F.normalize(h[iid]) @ F.normalize(h).T, 1) for h in views]

        def pseudo(p1, p2, p3):
            mm = torch.topk(p1 + p2 + p3 + p3, n_pos).indices
            return mm, torch.topk(p3.clone().scatter_(1, mm, 0), n_pos).indices

        def discrimination(mm, single, emb, aug):
            emb, aug = F.normalize(emb), F.normalize(aug)
            tiled = emb.reshape(-1, 1, emb.shape[1]).tile(1, n_pos, 1)
            mm_score = torch.exp((tiled * aug[mm]).sum(2) / tau).sum(1)
            s_score = torch.exp((tiled * aug[single]).sum(2) / tau).sum(1)
            ttl = torch.exp(emb @ aug.T / tau).sum(1)
            return (-torch.log(mm_score / ttl + 1e-9) - torch.log(s_score / (ttl - mm_score) + 1e-9)).mean()

        nd = 0.0
        for own in range(3):
            others = [probs[j] for j in range(3) if j != own]
            mm, single = pseudo(others[0], others[1], probs[own])
            nd = nd + discrimination(mm, single, views[own][iid], views[own]) / 3
        content = (views[0] + views[1] + views[2]) / 3
        p_g = torch.sigmoid(u_all[uid] @ F.normalize(i_all[iid]).T)
        p_t = torch.sigmoid(u_all[uid] @ F.normalize(content[iid]).T)

        def kl(p1, p2):
            return p1 * torch.log(p1) - p1 * torch.log(p2) + (1 - p1) * torch.log(1 - p1) - (1 - p1) * torch.log(1 - p2)

        kl_loss = (kl(p_g, p_t) + kl(p_t, p_g)).mean()
        u = u_all[users]
        p = torch.sigmoid(torch.stack([(u * F.normalize(h[pos])).sum(1) for h in views]))
        q = torch.sigmoid(torch.stack([(u * F.normalize(h[neg])).sum(1) for h in views]))
        w_pos = torch.clamp(p.mean(0) * torch.exp(-p.var(0)) ** 2, 0, 1)
        w_neg = torch.clamp((p.max(0).values - q.mean()) * (p.mean(0) < q.mean()).float(), 0, 1)
        items = i_all + content
        ps, ns = (u * items[pos]).sum(1), (u * items[neg]).sum(1)
        bpr = -(torch.log(torch.sigmoid(ps - ns)) * w_pos + torch.log(torch.sigmoid(ns - ps)) * w_neg).mean()
        expected = bpr + 0.3 * nd + 0.5 * kl_loss
        got = m.loss({"users": users, "pos_items": pos, "neg_items": neg})
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    scores = all_scores(m, dm)
    torch.testing.assert_close(scores, u_all @ items.T, rtol=1e-5, atol=1e-6)


def test_forward_propagates_ids_over_the_built_graphs() -> None:
    dm = tiny_dm()
    m = make_model("damrs", dm, knn_k=3, n_mm_layers=2, min_cooccurrence=1, n_pseudo_positives=2)
    xs = [dm.data.feature(name) for name in m.modality_names]
    with torch.no_grad():
        graphs = [g.to_dense() for g in (m.modality_graph_0, m.modality_graph_1, m.behaviour_adj)]
        for graph, ref in zip(graphs, reference_consensus_graphs(xs, 3)):
            torch.testing.assert_close(graph, ref)
        _, _, views = m.forward()
        for graph, view in zip(graphs, views):
            torch.testing.assert_close(view, graph @ (graph @ m.item_embedding.weight), rtol=1e-5, atol=1e-6)


def test_trainable_parameter_count(synthetic_dm) -> None:
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    assert make_model("damrs", synthetic_dm).num_trainable_parameters() == (U + I) * 64


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="n_pseudo_positives"):
        make_model("damrs", tiny_dm())  # 8 items cannot give 2 × 10 pseudo-positives


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)


def test_test_time_knockout_rebuilds_the_modality_graphs(synthetic_dm) -> None:
    m = make_model("damrs", synthetic_dm)
    before = m.modality_graph_0.to_dense()
    behaviour = m.behaviour_adj.to_dense()
    dead = with_features(synthetic_dm, Knockout("all:zero").apply(synthetic_dm.data.features, seed=0))
    m.attach(dead.data)
    assert not torch.equal(m.modality_graph_0.to_dense(), before)
    assert torch.equal(m.behaviour_adj.to_dense(), behaviour)  # interactions unchanged


def test_small_custom_dataset_behaviour_graph_in_model() -> None:
    train = np.array([[u, i] for u, items in enumerate(BEHAVIOUR_TRAIN) for i in items])
    ds = Dataset("iib", Interactions(6, 6, train, np.array([[0, 5]]), np.array([[1, 5]])))
    g = torch.Generator().manual_seed(1)
    dm = GraphDataModule(ds, ItemFeatures({"text": torch.randn(6, 3, generator=g)}), batch_size=4, seed=0)
    m = make_model("damrs", dm, knn_k=2, behaviour_k=10, n_pseudo_positives=2)
    torch.testing.assert_close(m.behaviour_adj.to_dense(), reference_behaviour_graph(behaviour_matrix(), 10))


def test_graded_neighbour_loss_gradient_matches_autograd_of_the_formula() -> None:
    """The fused, row-blocked L_AI: value and both gradients equal plain autograd of the formula."""
    from mmrec.models.damrs import graded_neighbour_loss

    g = torch.Generator().manual_seed(0)
    n_views, n_items, d, n_pos, tau = 3, 40, 8, 3, 0.2
    views = F.normalize(torch.randn(n_views, n_items, d, generator=g, dtype=torch.float64), dim=2)
    anchors = views[:, torch.tensor([0, 3, 5, 7, 11, 19, 23])].clone()
    a1, v1 = anchors.clone().requires_grad_(), views.clone().requires_grad_()
    a2, v2 = anchors.clone().requires_grad_(), views.clone().requires_grad_()
    fused = graded_neighbour_loss(a1, v1, n_pos, tau, block=3)  # 3 blocks of rows
    cos = torch.bmm(a2, v2.transpose(1, 2))  # [V, b, I]
    with torch.no_grad():
        probs = torch.softmax(cos, dim=2)
    loss = 0.0
    for v in range(n_views):
        mm = torch.topk(probs.sum(0) + probs[v], n_pos, dim=1).indices
        single = torch.topk(probs[v].clone().scatter_(1, mm, 0.0), n_pos, dim=1).indices
        e = torch.exp(cos[v] / tau)
        t, m, s = e.sum(1), e.gather(1, mm).sum(1), e.gather(1, single).sum(1)
        loss = loss + (-torch.log(m / t + 1e-9) - torch.log(s / (t - m) + 1e-9)).mean() / n_views
    (fused * 2.5).backward()
    (loss * 2.5).backward()
    torch.testing.assert_close(fused, loss)
    torch.testing.assert_close(a1.grad, a2.grad)
    torch.testing.assert_close(v1.grad, v2.grad)
