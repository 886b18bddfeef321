"""MMGCN: one layer against a dense computation, the reference's untrained tensors, training, knockouts, TikTok."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmrec.data.datamodule import GraphDataModule
from tests.models.common import fit, make_model, test_metrics, tiny_dm

pytestmark = pytest.mark.usefixtures("one_thread")


def dense_mean_adjacency(dm: GraphDataModule) -> torch.Tensor:
    r = torch.from_numpy(dm.train.toarray()).float()  # [U, I]
    a = torch.block_diag(torch.zeros(r.shape[0], r.shape[0]), torch.zeros(r.shape[1], r.shape[1]))
    a[: r.shape[0], r.shape[0] :] = r
    a[r.shape[0] :, : r.shape[0]] = r.T
    return a / a.sum(1, keepdim=True).clamp_min(1)


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
@pytest.mark.parametrize("concat", [True, False])
def test_one_layer_equals_dense_formula(faithful_to: str, concat: bool) -> None:
    dm = tiny_dm()
    m = make_model("mmgcn", dm, n_layers=1, concat=concat, faithful_to=faithful_to, latent_dims={"image": 6})
    a = dense_mean_adjacency(dm)
    lrelu = F.leaky_relu
    outs = []
    for mod in ("text", "image"):
        f = dm.data.feature(mod)
        t = f @ m.projections[mod].weight.T + m.projections[mod].bias if mod == "image" else f
        x = F.normalize(torch.cat([m.user_preference(mod), t]), dim=1)
        layer = m.layers[mod][0]
        h = lrelu(a @ x @ layer.conv.weight.T)
        x_hat = lrelu(x @ layer.linear.weight.T + layer.linear.bias) + m.id_embedding
        w3, b3 = layer.combine.weight, layer.combine.bias
        outs.append(lrelu(torch.cat([h, x_hat], 1) @ w3.T + b3) if concat else lrelu(h @ w3.T + b3 + x_hat))
    expected = (outs[0] + outs[1]) / (2 if faithful_to == "reference" else 1)
    torch.testing.assert_close(m.forward().detach(), expected.detach(), rtol=1e-5, atol=1e-6)


def test_reference_never_trains_id_embedding_and_preferences(synthetic_dm) -> None:
    ref = make_model("mmgcn", synthetic_dm, lr=0.01)
    names = {n for n, _ in ref.named_parameters()}
    assert not any(n.startswith(("id_embedding", "preference")) for n in names)
    before = ref.id_embedding.clone(), ref.user_preference("text").clone()
    fit(ref, synthetic_dm, 1, limit_train_batches=2, limit_val_batches=1)
    assert torch.equal(ref.id_embedding, before[0]) and torch.equal(ref.user_preference("text"), before[1])
    assert "id_embedding" in ref.state_dict()  # the fixed random tensors are checkpointed with the weights
    paper = make_model("mmgcn", synthetic_dm, lr=0.01, faithful_to="paper")
    before = paper.id_embedding.detach().clone()
    fit(paper, synthetic_dm, 1, limit_train_batches=2, limit_val_batches=1)
    assert not torch.equal(paper.id_embedding.detach(), before)


def test_loading_weights_refreshes_the_precomputed_fixed_inputs(synthetic_dm) -> None:
    """Reference mode precomputes x⁰ of unprojected modalities from the (fixed) preferences; a checkpoint of
    another run carries other preferences, so loading it must rebuild them."""
    a = make_model("mmgcn", synthetic_dm, seed=1)
    b = make_model("mmgcn", synthetic_dm, seed=2)
    assert not torch.equal(a.user_preference("text"), b.user_preference("text"))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.forward().detach(), a.forward().detach(), rtol=0, atol=0)


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_trainable_parameter_count(synthetic_dm, faithful_to: str) -> None:
    m = make_model("mmgcn", synthetic_dm, faithful_to=faithful_to)
    U, I, d, L = synthetic_dm.data.n_users, synthetic_dm.data.n_items, 64, 3
    dims = synthetic_dm.data.features.dims()  # text 64, image 128 (→ latent 256), audio 32

    def comb(x: int) -> int:  # concatenating combination layer W3
        return (x + d) * d + d

    total = 0
    for mod, d_m in dims.items():
        a = 256 if mod == "image" else d_m
        total += ((d_m + 1) * a if mod == "image" else 0) + a * a + a * d + d + comb(a)
        total += (L - 1) * (2 * d * d + d + comb(d))
        if faithful_to == "paper":
            total += U * a
    if faithful_to == "paper":
        total += (U + I) * d
    assert m.num_trainable_parameters() == total


def test_trains_and_beats_mostpop(synthetic_dm) -> None:
    pop = make_model("mostpop", synthetic_dm)
    fit(pop, synthetic_dm, 0)
    m = make_model("mmgcn", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 5, limit_val_batches=1)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert test_metrics(m, synthetic_dm)["recall@20"] > test_metrics(pop, synthetic_dm)["recall@20"]
