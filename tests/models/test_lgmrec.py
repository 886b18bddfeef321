"""LGMRec: Gumbel-softmax, the local + global forward and the loss against dense formulas, training, knockouts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmrec.errors import ConfigError
from mmrec.nn.hypergraph import gumbel_softmax
from tests.models.common import all_scores, assert_learns, fit, make_model, with_features
from tests.models.test_lattice import tiny_dm


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("lgmrec", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 5, limit_val_batches=0)
    return m, losses


def dense_parts(m, dm) -> dict[str, torch.Tensor]:
    """The paper's equations with dense matrices (noise-free assignments, no dropout)."""
    U = dm.data.n_users
    a = m.adj.to_dense()  # [U+I, U+I]
    r = torch.tensor(dm.data.train_matrix.toarray())  # [U, I]
    e0 = torch.cat([m.user_embedding.weight, m.item_embedding.weight])
    collab = (e0 + a @ e0 + a @ a @ e0) / 3
    local, hyper = collab.clone(), {}
    for name in ("image", "text"):
        x = dm.data.feature(name)
        f = x @ m.projections[name]
        users = (r @ f) / r.sum(1, keepdim=True)
        local = local + F.normalize(a @ (a @ torch.cat([users, f])), dim=1)
        h_i = torch.softmax(x @ m.hyperedges[name] / 0.2, 1)
        h_u = torch.softmax(r @ (x @ m.hyperedges[name]) / 0.2, 1)
        lam = h_i.T @ collab[U:]
        hyper[name] = torch.cat([h_u @ lam, h_i @ lam])
    final = local + m.alpha * F.normalize(hyper["image"] + hyper["text"], dim=1)
    return {"users": final[:U], "items": final[U:], **hyper}


def test_gumbel_softmax_draws_what_torch_draws() -> None:
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    expected = F.gumbel_softmax(logits, tau=0.2, dim=1)
    torch.manual_seed(3)
    torch.testing.assert_close(gumbel_softmax(logits, 0.2, dim=1), expected)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(gumbel_softmax(logits, 0.2, generator=g1), gumbel_softmax(logits, 0.2, generator=g2))


def test_forward_equals_dense_computation() -> None:
    dm = tiny_dm()
    m = make_model("lgmrec", dm, hyper_num=3, alpha=0.7, faithful_to="paper")
    m.eval()
    with torch.no_grad():
        expected = dense_parts(m, dm)
        u, i, hyper = m.forward(noise=False)
        torch.testing.assert_close(u, expected["users"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(i, expected["items"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(hyper["text"], expected["text"], rtol=1e-5, atol=1e-6)
        scores = all_scores(m, dm)
    torch.testing.assert_close(scores, expected["users"] @ expected["items"].T, rtol=1e-5, atol=1e-5)


def test_reference_evaluation_draws_seeded_noise_paper_does_not() -> None:
    dm = tiny_dm()
    ref = make_model("lgmrec", dm, hyper_num=3)
    paper = make_model("lgmrec", dm, hyper_num=3, faithful_to="paper")
    paper.load_state_dict(ref.state_dict())
    s1 = all_scores(ref, dm)
    ref._memo.clear()
    s2 = all_scores(ref, dm)
    assert torch.equal(s1, s2)  # seeded: the same noise each evaluation pass
    assert not torch.allclose(s1, all_scores(paper, dm))  # the noise changes the scores


def test_loss_equals_bpr_plus_contrast_plus_norm_reg() -> None:
    dm = tiny_dm()
    m = make_model("lgmrec", dm, hyper_num=3, keep_rate=1.0, cl_weight=0.3, reg_weight=0.01)
    users, pos, neg = torch.tensor([0, 1, 3, 1]), torch.tensor([1, 2, 4, 6]), torch.tensor([5, 6, 7, 0])
    U = dm.data.n_users
    with torch.no_grad():
        torch.manual_seed(11)
        u_all, i_all, hyper = m.forward()
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        bpr = -torch.log(torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()
        reg = (u.norm() + p.norm() + n.norm()) / 4

        def hcl(e1: torch.Tensor, e2: torch.Tensor, every: torch.Tensor) -> torch.Tensor:
            e1, e2, every = F.normalize(e1), F.normalize(e2), F.normalize(every)
            pos_score = torch.exp((e1 * e2).sum(1) / 0.2)
            return -torch.log(pos_score / torch.exp(e1 @ every.T / 0.2).sum(1)).sum()

        v, t = hyper["image"], hyper["text"]  # the reference contrasts image against text
        cl = hcl(v[users], t[users], t[:U]) + hcl(v[U + pos], t[U + pos], t[U:])
        expected = bpr + 0.3 * cl + 0.01 * reg
        torch.manual_seed(11)
        got = m.loss({"users": users, "pos_items": pos, "neg_items": neg})
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("freeze", [True, False])
def test_trainable_parameter_count(synthetic_dm, freeze) -> None:
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d, hyper_num = 64, 4
    expected = (U + I) * d + sum(dm * (d + hyper_num) for dm in dims) + (0 if freeze else I * sum(dims))
    m = make_model("lgmrec", synthetic_dm, freeze_features=freeze)
    assert m.num_trainable_parameters() == expected


def test_bad_config_is_a_config_error(synthetic_dm) -> None:
    with pytest.raises(ConfigError, match="must be equal"):
        make_model("lgmrec", synthetic_dm, feat_embed_dim=32)
    with pytest.raises(ConfigError, match="faithful_to"):
        make_model("lgmrec", synthetic_dm, faithful_to="authors")


def test_single_modality_has_no_contrast_term(synthetic_dm) -> None:
    dm = with_features(synthetic_dm, synthetic_dm.data.features.select(["text"]))
    m = make_model("lgmrec", dm, keep_rate=1.0, cl_weight=1.0, reg_weight=0.0)
    batch = {"users": torch.tensor([0, 1]), "pos_items": torch.tensor([2, 3]), "neg_items": torch.tensor([4, 5])}
    with torch.no_grad():
        torch.manual_seed(0)
        u, i, _ = m.forward()
        bpr = -F.logsigmoid((u[batch["users"]] * (i[batch["pos_items"]] - i[batch["neg_items"]])).sum(1)).mean()
        torch.manual_seed(0)
        torch.testing.assert_close(m.loss(batch), bpr)


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)


def test_blocked_sum_logsumexp_matches_autograd() -> None:
    from mmrec.nn.ssl_losses import sum_logsumexp

    g = torch.Generator().manual_seed(0)
    a1 = (torch.randn(11, 5, generator=g, dtype=torch.float64) * 3).requires_grad_()
    c1 = torch.randn(17, 5, generator=g, dtype=torch.float64).requires_grad_()
    a2, c2 = a1.detach().clone().requires_grad_(), c1.detach().clone().requires_grad_()
    fused = sum_logsumexp(a1, c1, block=4)
    plain = torch.logsumexp(a2 @ c2.T, dim=1).sum()
    (1.7 * fused).backward()
    (1.7 * plain).backward()
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(a1.grad, a2.grad)
    torch.testing.assert_close(c1.grad, c2.grad)
