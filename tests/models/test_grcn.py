"""GRCN: the refined graph and representations against a dense computation, edge kernels, training, knockouts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmrec.nn.edge_graph import EdgeGraph
from tests.models.common import fit, make_model, test_metrics, tiny_dm

pytestmark = pytest.mark.usefixtures("one_thread")


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1).nan_to_num(0.0)


def test_edge_graph_kernels_match_dense_and_autograd() -> None:
    g = torch.Generator().manual_seed(1)
    rows, cols = torch.tensor([0, 0, 1, 3, 3, 3, 2]), torch.tensor([1, 2, 0, 0, 1, 4, 4])
    graph = EdgeGraph(rows, cols, (4, 5))
    v = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    a = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    dense = torch.zeros(4, 5, dtype=torch.float64).index_put((rows, cols), v)
    torch.testing.assert_close(graph.spmm(x, v[graph.order]), dense @ x)
    torch.testing.assert_close(graph.sddmm(a, x), (a @ x.T)[graph.row, graph.col])
    mask = torch.zeros(4, 5, dtype=torch.bool).index_put((rows, cols), torch.tensor(True))
    s = graph.sddmm(a, x)
    soft = masked_softmax((a @ x.T), mask)
    torch.testing.assert_close(graph.row_softmax(s), soft[graph.row, graph.col])
    assert torch.autograd.gradcheck(lambda v, x: graph.spmm(x, v[graph.order]), (v, x))
    assert torch.autograd.gradcheck(lambda a, x: graph.row_softmax(graph.sddmm(a, x)), (a, x))


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_forward_equals_dense_formula(faithful_to: str) -> None:
    dm = tiny_dm()
    m = make_model("grcn", dm, faithful_to=faithful_to, latent_dim=4, embedding_dim=6, n_routing=2)
    U, I = 3, 4
    r = torch.from_numpy(dm.train.toarray()) > 0  # [U, I]
    mask = torch.zeros(U + I, U + I, dtype=torch.bool)
    mask[:U, U:], mask[U:, :U] = r, r.T
    contents, alphas = [], []
    for mod in ("text", "image"):
        lin = m.projections[mod]
        f = F.normalize(F.leaky_relu(dm.data.feature(mod) @ lin.weight.T + lin.bias), dim=1)
        p = F.normalize(m.preference[mod], dim=1)
        for _ in range(2):
            if faithful_to == "paper":
                p = F.normalize(p + masked_softmax(p @ f.T, r) @ f, dim=1)
            else:  # MMRec's loop: PyG flow over user→item edges, each message lands on its item (target)
                into_items = masked_softmax(f @ p.T, r.T)  # [I, U] softmax over each item's users
                x_hat = torch.cat([torch.zeros(U, p.shape[1]), into_items @ p])  # users receive nothing
                p = F.normalize(p + x_hat[:U], dim=1)  # so the loop only re-normalises p
        z = torch.cat([p, f])
        alpha = masked_softmax(z @ z.T, mask)  # [N, N] row = target
        contents.append(z + alpha @ z)
        alphas.append(alpha)
    kappa = m.confidence  # [N, M], confidence of the source node (column)
    w = torch.relu(torch.stack([alphas[k] * kappa[:, k].unsqueeze(0) for k in range(2)]).max(0).values) * mask
    e0 = F.normalize(m.id_embedding, dim=1)
    e1 = w @ e0
    expected = torch.cat([e0 + e1 + w @ e1, *contents], dim=1)
    torch.testing.assert_close(m.forward().detach(), expected.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_loss_equals_reference_formula(faithful_to: str) -> None:
    """MMRec's form: users repeated per (pos, neg), reg = mean over [2B, d] of E_u² + E_i², per-modality batch
    preferences, and (reference only) the image preference of every user; natural-log BPR."""
    dm = tiny_dm()
    m = make_model("grcn", dm, faithful_to=faithful_to, latent_dim=4, embedding_dim=6, reg_weight=0.3)
    U = 3
    users, pos, neg = torch.tensor([0, 2, 2, 1]), torch.tensor([1, 0, 3, 2]), torch.tensor([3, 2, 1, 0])
    rep = m.forward().detach()
    u_rep = rep[users.repeat_interleave(2)]
    i_rep = rep[U + torch.stack([pos, neg]).T.reshape(-1)]  # [p0, n0, p1, n1, ...]
    score = (u_rep * i_rep).sum(1).view(-1, 2) @ torch.tensor([1.0, -1.0])
    bpr = -torch.log(torch.sigmoid(score)).mean()
    e = m.id_embedding.detach()
    reg = (e[users.repeat_interleave(2)] ** 2 + e[U + torch.stack([pos, neg]).T.reshape(-1)] ** 2).mean()
    reg = reg + sum((m.preference[mod].detach()[users.repeat_interleave(2)] ** 2).mean() for mod in ("text", "image"))
    if faithful_to == "reference":
        reg = reg + (m.preference["image"].detach() ** 2).mean()
    got = m.loss({"users": users, "pos_items": pos, "neg_items": neg})
    torch.testing.assert_close(got.detach(), bpr + 0.3 * reg)


def test_trainable_parameter_count(synthetic_dm) -> None:
    m = make_model("grcn", synthetic_dm)
    U, I, d, C = synthetic_dm.data.n_users, synthetic_dm.data.n_items, 64, 64
    dims = synthetic_dm.data.features.dims().values()
    expected = (U + I) * d + sum(U * C + (d_m + 1) * C for d_m in dims) + (U + I) * len(dims)
    assert m.num_trainable_parameters() == expected
    tuned = make_model("grcn", synthetic_dm, freeze_features=False)
    assert tuned.num_trainable_parameters() == expected + I * sum(dims)


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_trains_and_beats_mostpop(synthetic_dm, faithful_to: str) -> None:
    pop = make_model("mostpop", synthetic_dm)
    fit(pop, synthetic_dm, 0)
    m = make_model("grcn", synthetic_dm, lr=0.01, faithful_to=faithful_to)
    losses = fit(m, synthetic_dm, 4, limit_val_batches=1)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert test_metrics(m, synthetic_dm)["recall@20"] > test_metrics(pop, synthetic_dm)["recall@20"]
