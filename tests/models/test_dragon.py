"""DRAGON: the dual representations against a dense computation on a tiny graph, user-graph padding,
training, knockouts, TikTok."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.models.common import all_scores, assert_learns, fit, make_model, with_features
from tests.models.test_bm3 import TRAIN, dense_norm_adj, tiny_dm


def dense_item_graph(x: torch.Tensor, k: int) -> torch.Tensor:
    """sym-normalised unit-weight top-k cosine graph (self included), dense."""
    xn = x / x.norm(dim=1, keepdim=True)
    idx = (xn @ xn.T).topk(k, dim=1).indices
    a = torch.zeros(x.shape[0], x.shape[0]).scatter_(1, idx, 1.0)
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]


def dense_user_graph(n_users: int, n_items: int) -> torch.Tensor:
    """softmax over each user's co-interacting users of their co-interaction counts (self excluded), dense."""
    r = torch.zeros(n_users, n_items)
    r[TRAIN[:, 0], TRAIN[:, 1]] = 1.0
    c = r @ r.T
    c.fill_diagonal_(0)
    w = torch.softmax(c.masked_fill(c == 0, float("-inf")), dim=1)
    return torch.nan_to_num(w, nan=0.0)


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("dragon", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 4, limit_val_batches=0)
    return m, losses


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_forward_and_loss_equal_dense_computation(faithful_to) -> None:
    dm = tiny_dm()  # every user has 0 or 2 co-interacting users: user_k = 2 needs no padding
    m = make_model("dragon", dm, knn_k=3, user_k=2, reg_weight=0.2, faithful_to=faithful_to)
    m.on_epoch_start_hook()
    U, I = 4, 8
    with torch.no_grad():
        a = dense_norm_adj(U, I)
        r = {}
        for n in ("text", "image"):
            t = m.gcn.mlp_out[n](F.leaky_relu(m.gcn.mlp_in[n](dm.data.feature(n))))
            z = F.normalize(torch.cat([m.gcn.preference[n], t]), dim=1)
            r[n] = z + a @ z + a @ a @ z
        w = m.user_weight[:, :, 0]  # [U, 2] in the run's modality order (text, image)
        users = torch.cat([w[:, 0:1] * r["text"][:U], w[:, 1:2] * r["image"][:U]], dim=1)
        items = torch.cat([r["text"][U:], r["image"][U:]], dim=1)
        s = 0.9 * dense_item_graph(dm.data.feature("text"), 3) + 0.1 * dense_item_graph(dm.data.feature("image"), 3)
        items = items + s @ items
        users = users + dense_user_graph(U, I) @ users
        graph = m.train_user_graph if m.train_user_graph is not None else m.eval_user_graph
        got_u, got_i = m.forward(graph)
        torch.testing.assert_close(got_u, users, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_i, items, rtol=1e-5, atol=1e-6)
        b_u, b_p, b_n = torch.tensor([0, 1, 3]), torch.tensor([1, 2, 4]), torch.tensor([5, 0, 7])
        diff = (users[b_u] * items[b_p]).sum(1) - (users[b_u] * items[b_n]).sum(1)
        bpr = -torch.log2(torch.sigmoid(diff)).mean() if faithful_to == "reference" else -F.logsigmoid(diff).mean()
        reg = sum(m.gcn.preference[n][b_u].pow(2).mean() for n in ("text", "image")) + w.pow(2).mean()
        expected = bpr + 0.2 * reg
        torch.testing.assert_close(m.loss({"users": b_u, "pos_items": b_p, "neg_items": b_n}), expected)


def test_reference_pads_short_neighbour_lists_randomly(synthetic_dm) -> None:
    ref = make_model("dragon", synthetic_dm, user_k=40)
    paper = make_model("dragon", synthetic_dm, user_k=40, faithful_to="paper")
    rows, _, _ = synthetic_dm.data.user_graph(40)
    short = torch.bincount(rows, minlength=synthetic_dm.data.n_users) < 40
    assert short.any()
    ref.on_epoch_start_hook()
    first = ref.train_user_graph.to_dense()
    ref.on_epoch_start_hook()
    assert not torch.equal(first, ref.train_user_graph.to_dense())  # a fresh padding each epoch
    has_nbr = first.sum(1) > 0
    torch.testing.assert_close(first.sum(1)[has_nbr], torch.ones(int(has_nbr.sum())))  # softmax weights
    paper.on_epoch_start_hook()
    assert paper.train_user_graph is None  # real neighbours only: the fixed evaluation graph, no padding
    assert paper.eval_user_graph.nnz == rows.numel()


def test_trainable_parameter_count(synthetic_dm) -> None:
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d, M = 64, len(dims)
    base = sum(U * d + (dm + 1) * 4 * d + (4 * d + 1) * d for dm in dims) + U * M
    assert make_model("dragon", synthetic_dm).num_trainable_parameters() == base
    assert make_model("dragon", synthetic_dm, freeze_features=False).num_trainable_parameters() == base + I * sum(dims)
    one = with_features(synthetic_dm, synthetic_dm.data.features.select(["text"]))
    assert make_model("dragon", one).num_trainable_parameters() == U * d + (dims[0] + 1) * 4 * d + (4 * d + 1) * d


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)


def test_reloaded_weights_reproduce_scores(trained, synthetic_dm) -> None:
    m, _ = trained  # the evaluation user graph is rebuilt from the data seed, never stored
    fresh = make_model("dragon", synthetic_dm, seed=9)
    fresh.load_state_dict(m.state_dict(), strict=True)
    assert torch.equal(all_scores(fresh, synthetic_dm), all_scores(m, synthetic_dm))
