"""SLMRec: views, fusion and losses against dense formulas, the FAC hierarchy per modality set, training,
knockouts, TikTok."""

from __future__ import annotations

import math

import pytest
import torch

from mmrec.data.graphs import cosine_normalize
from tests.models.common import assert_learns, fit, make_model
from tests.models.test_bm3 import dense_norm_adj, tiny_dm


def info_nce_formula(logits: torch.Tensor) -> torch.Tensor:
    """``-mean_b log softmax(logits_b)[b]`` written out."""
    return -(logits.diagonal() - logits.exp().sum(1).log()).mean()


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("slmrec", synthetic_dm)
    losses = fit(m, synthetic_dm, 4, limit_val_batches=0)
    return m, losses


def test_forward_and_losses_equal_dense_formulas() -> None:
    dm = tiny_dm()
    m = make_model("slmrec", dm, n_layers=3, temperature=0.3, ssl_temp=0.7, ssl_alpha=0.4)
    U = 4
    users, items = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 6, 7, 4])
    with torch.no_grad():
        a = dense_norm_adj(U, 8)
        e_u = m.user_embedding.weight

        def view(item_input: torch.Tensor) -> torch.Tensor:
            x = torch.cat([e_u, item_input])
            return (x + a @ x + a @ a @ x + a @ a @ a @ x) / 4

        inputs = [m.item_embedding.weight] + [
            m.projections[n](cosine_normalize(dm.data.feature(n))) for n in m.modality_names
        ]
        views = [view(x) for x in inputs]  # ID view first, then the run's modalities
        u = m.user_fusion(torch.cat([v[:U] for v in views], 1))
        i = m.item_fusion(torch.cat([v[U:] for v in views], 1))
        got_u, got_i, _ = m.forward()
        torch.testing.assert_close(got_u, u, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_i, i, rtol=1e-5, atol=1e-6)
        # main InfoNCE on cosine logits
        un, itn = u[users] / u[users].norm(dim=1, keepdim=True), i[items] / i[items].norm(dim=1, keepdim=True)
        main = info_nce_formula(un @ itn.T / 0.3)
        # FAC (reference, text + image): chain id → image (d) → [audio, absent] (d) → text (d/2), dot logits
        assert m.fac_levels == ["image", "audio", "text"]
        assert [c.out_features for c in m.fac_chain] == [64, 64, 32]
        vi = {n: views[1 + m.modality_names.index(n)][U:][items] for n in ("image", "text")}
        z1 = m.fac_chain[0](views[0][U:][items])
        z3 = m.fac_chain[2](m.fac_chain[1](z1))
        fac = info_nce_formula(z1 @ m.fac_heads["image"](vi["image"]).T / 0.7)
        fac = fac + info_nce_formula(z3 @ m.fac_heads["text"](vi["text"]).T / 0.7)
        batch = {"users": users, "pos_items": items, "neg_items": items}
        torch.testing.assert_close(m.loss(batch), main + 0.4 * fac, rtol=1e-5, atol=1e-5)


def test_fac_hierarchy_per_modality_set() -> None:
    ref = make_model("slmrec", tiny_dm({"image": 4, "audio": 3}))  # TikTok: image (d) → audio (d)
    assert ref.fac_levels == ["image", "audio"] and [c.out_features for c in ref.fac_chain] == [64, 64]
    paper = make_model("slmrec", tiny_dm(), faithful_to="paper")  # no step for the absent audio level
    assert paper.fac_levels == ["image", "text"] and [c.out_features for c in paper.fac_chain] == [64, 32]
    text_only = make_model("slmrec", tiny_dm({"text": 3}))
    assert text_only.fac_levels == ["image", "audio", "text"] and list(text_only.fac_heads) == ["text"]
    other = make_model("slmrec", tiny_dm({"video": 3, "text": 2}), faithful_to="paper")
    assert other.fac_levels == ["text", "video"]  # unlisted modalities follow the listed ones


@pytest.mark.parametrize("task", ["FD", "FM", "FD+FM"])
def test_other_ssl_tasks_train(task) -> None:
    dm = tiny_dm()
    m = make_model("slmrec", dm, ssl_task=task, lr=0.01)
    losses = fit(m, dm, 2, limit_val_batches=0)
    assert all(math.isfinite(x) for x in losses)


def test_feature_masking_zeroes_one_view_of_items_only() -> None:
    m = make_model("slmrec", tiny_dm())
    x = torch.randn(4 + 8, 3 * 64)
    masked = m._masked(x, 1).view(12, 3, 64)
    assert torch.equal(masked[:4], x[:4].view(4, 3, 64))  # users untouched
    assert torch.equal(masked[4:, 1], torch.zeros(8, 64))
    assert torch.equal(masked[4:, [0, 2]], x[4:].view(8, 3, 64)[:, [0, 2]])


def test_trainable_parameter_count(synthetic_dm) -> None:
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    names = synthetic_dm.data.modalities  # text, image, audio: FAC chain image → audio → text
    dims = synthetic_dm.data.features.dims()
    d, M = 64, len(names)
    base = (U + I) * d + sum((dims[n] + 1) * d for n in names)
    concat = base + 2 * ((M + 1) * d + 1) * d
    widths = [d, d, d // 2]  # image, audio, text
    fac = sum((w_in + 1) * w for w_in, w in zip([d, *widths[:-1]], widths, strict=True))
    fac += sum((d + 1) * w for w in widths)
    assert make_model("slmrec", synthetic_dm).num_trainable_parameters() == concat + fac
    assert make_model("slmrec", synthetic_dm, ssl_task="FD").num_trainable_parameters() == concat
    mean = base + 2 * (d + 1) * d
    assert make_model("slmrec", synthetic_dm, ssl_task="FM", mm_fusion="mean").num_trainable_parameters() == mean
    tuned = make_model("slmrec", synthetic_dm, ssl_task="FD", freeze_features=False)
    assert tuned.num_trainable_parameters() == concat + I * sum(dims.values())


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)
