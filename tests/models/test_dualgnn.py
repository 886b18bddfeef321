"""DualGNN: forward against a dense computation, the padded user graph, training, knockouts, TikTok."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.features.item_features import ItemFeatures
from mmrec.nn.user_graph_sampling import sampled_user_graph
from tests.models.common import fit, make_model, test_metrics


@pytest.fixture(autouse=True)
def _one_thread():
    """Two OpenMP threads on a shared two-core machine make small sparse ops ~100× slower (spin waits)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_dm() -> GraphDataModule:
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [0, 3], [3, 1], [3, 2]])
    ds = Dataset("tiny", Interactions(4, 4, train, np.array([[1, 0]]), np.array([[2, 0]])))
    g = torch.Generator().manual_seed(0)
    feats = ItemFeatures({"text": torch.randn(4, 3, generator=g), "image": torch.randn(4, 5, generator=g)})
    return GraphDataModule(ds, feats, batch_size=4, seed=0)


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_forward_equals_dense_formula(faithful_to: str) -> None:
    dm = tiny_dm()
    m = make_model("dualgnn", dm, faithful_to=faithful_to, embedding_dim=4, user_k=3)
    U = 4
    r = torch.from_numpy(dm.train.toarray()).float()
    a = torch.zeros(8, 8)
    a[:U, U:], a[U:, :U] = r, r.T
    deg = a.sum(1)
    a_hat = a / torch.sqrt(deg.unsqueeze(0) * deg.unsqueeze(1))
    reps = []
    names = list(m.modality_names)
    for mod in names:
        h = F.leaky_relu(dm.data.feature(mod) @ m.gcn.mlp_in[mod].weight.T + m.gcn.mlp_in[mod].bias)
        t = h @ m.gcn.mlp_out[mod].weight.T + m.gcn.mlp_out[mod].bias
        z = F.normalize(torch.cat([m.gcn.preference[mod], t]), dim=1)
        reps.append(z + a_hat @ z + a_hat @ a_hat @ z)
    w = dict(zip(names, m.user_weight[:, :, 0].T))  # modality -> [U]
    rep = dict(zip(names, reps))
    if faithful_to == "reference":  # MMRec: v_rep += t_rep, then [v_rep, t_rep] @ weight_u
        fused = w["image"][:, None] * (rep["image"][:U] + rep["text"][:U]) + w["text"][:, None] * rep["text"][:U]
    else:
        fused = w["image"][:, None] * rep["image"][:U] + w["text"][:, None] * rep["text"][:U]
    co = r @ r.T  # co-interaction counts; here every user has exactly 3 co-interacting users (= user_k, no padding)
    co.fill_diagonal_(0)
    s = torch.zeros(U, U)
    for u in range(U):
        nz = torch.nonzero(co[u]).flatten()
        s[u, nz] = torch.softmax(co[u, nz], 0)
    users, items = m.forward(m.eval_user_graph)
    torch.testing.assert_close(items.detach(), (reps[0] + reps[1])[U:].detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(users.detach(), (fused + s @ fused).detach(), rtol=1e-5, atol=1e-6)


def test_reference_fusion_adds_into_image_whatever_the_modality_order() -> None:
    """MMRec always adds the text representation into the image one; the order of ``data.modalities`` (the
    shipped configs say [text, image]) must not move the doubled term onto text."""
    base = tiny_dm()
    feats = {k: base.data.feature(k) for k in ("text", "image")}
    weight = {"image": torch.tensor([0.9, 0.2, 0.6, 0.3]), "text": torch.tensor([0.1, 0.8, 0.4, 0.7])}
    models = []
    for order in (("text", "image"), ("image", "text")):
        dm = GraphDataModule(base.dataset, ItemFeatures({k: feats[k] for k in order}), batch_size=4, seed=0)
        m = make_model("dualgnn", dm, embedding_dim=4, user_k=3)
        assert list(m.modality_names) == list(order)
        if models:  # the same per-modality parameters (keyed by name) in both orders
            m.load_state_dict(models[0].state_dict())
        with torch.no_grad():
            for k, name in enumerate(order):
                m.user_weight[:, k, 0] = weight[name]
        models.append(m)
    outs = [m.forward(m.eval_user_graph) for m in models]
    for a, b in zip(outs[0], outs[1]):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)


def test_user_graph_keeps_top_k_and_softmax_of_counts() -> None:
    rows = torch.tensor([0, 0, 0, 1, 2, 2])
    cols = torch.tensor([1, 2, 3, 0, 0, 3])
    counts = torch.tensor([5.0, 1.0, 3.0, 5.0, 1.0, 2.0])
    g = sampled_user_graph(rows, cols, counts, 5, k=2, pad=False).to_dense()
    expected = torch.zeros(5, 5)
    expected[0, [1, 3]] = torch.softmax(torch.tensor([5.0, 3.0]), 0)  # the two largest counts of user 0
    expected[1, 0] = 1.0
    expected[2, [0, 3]] = torch.softmax(torch.tensor([1.0, 2.0]), 0)
    torch.testing.assert_close(g, expected)  # users 3, 4 have no neighbours: empty rows
    mean = sampled_user_graph(rows, cols, counts, 5, k=2, weighting="mean", pad=False).to_dense()
    torch.testing.assert_close(mean.sum(1), torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))


def test_user_graph_padding_is_a_polya_urn() -> None:
    """Two neighbours padded to four: the reference redraws from the *growing* list, so the final multiplicities
    (3,1), (2,2), (1,3) are equally likely (1/3 each), not (1/4, 1/2, 1/4) as for draws from the original two."""
    n = 6000
    rows = torch.arange(n).repeat_interleave(2)
    cols = torch.stack([(torch.arange(n) + 1) % n, (torch.arange(n) + 2) % n], 1).flatten()
    counts = torch.zeros(2 * n)  # equal counts: weight = multiplicity / 4
    g = sampled_user_graph(rows, cols, counts, n, k=4, generator=torch.Generator().manual_seed(0)).to_dense()
    w_first = g[torch.arange(n), (torch.arange(n) + 1) % n]
    torch.testing.assert_close(g.sum(1), torch.ones(n))
    share_even = (w_first == 0.5).float().mean().item()
    assert abs(share_even - 1 / 3) < 0.03
    assert abs((w_first == 0.75).float().mean().item() - 1 / 3) < 0.03
    again = sampled_user_graph(rows, cols, counts, n, k=4, generator=torch.Generator().manual_seed(0)).to_dense()
    assert torch.equal(g, again)


def test_reference_redraws_the_padding_each_epoch_and_evaluates_on_a_fixed_one(synthetic_dm) -> None:
    m = make_model("dualgnn", synthetic_dm, user_k=350)  # longer than any list: every user is padded
    graphs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m.on_epoch_start_hook()
        graphs.append(m.train_user_graph.to_dense())
    assert not torch.equal(graphs[0], graphs[1])
    has_neighbours = graphs[0].sum(1) > 0
    torch.testing.assert_close(graphs[1].sum(1)[has_neighbours], torch.ones(int(has_neighbours.sum())))
    assert torch.equal(graphs[0] > 0, graphs[1] > 0)  # same neighbours, other multiplicities
    fixed = m.eval_user_graph.to_dense()
    m.attach(synthetic_dm.data)
    assert torch.equal(m.eval_user_graph.to_dense(), fixed)
    paper = make_model("dualgnn", synthetic_dm, user_k=350, faithful_to="paper")
    paper.on_epoch_start_hook()
    assert paper.train_user_graph is None


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_trainable_parameter_count(synthetic_dm, faithful_to: str) -> None:
    m = make_model("dualgnn", synthetic_dm, faithful_to=faithful_to)
    U, I, d = synthetic_dm.data.n_users, synthetic_dm.data.n_items, 64
    dims = list(synthetic_dm.data.features.dims().values())
    M = len(dims)
    expected = sum(U * d + (d_m + 1) * 4 * d + (4 * d + 1) * d for d_m in dims) + U * M
    if faithful_to == "reference":
        expected += I * M
    assert m.num_trainable_parameters() == expected


def test_trains_and_beats_mostpop(synthetic_dm) -> None:
    pop = make_model("mostpop", synthetic_dm)
    fit(pop, synthetic_dm, 0)
    m = make_model("dualgnn", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 4, limit_val_batches=1)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert test_metrics(m, synthetic_dm)["recall@20"] > test_metrics(pop, synthetic_dm)["recall@20"]






