"""SMORE: spectral fusion against circular convolution, max-pooled fusion graph, dense forward, training,
knockouts, TikTok."""

from __future__ import annotations

import math

import pytest
import torch

from mmrec.models.smore import spectral_filter, spectral_fusion
from mmrec.nn.weighted_item_graphs import max_pool_union
from tests.models.common import assert_learns, fit, make_model
from tests.models.test_lattice import dense_knn, dense_sym, tiny_dm


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("smore", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 3, limit_val_batches=0)
    return m, losses


def circular_convolution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(a ⊛ b)[n] = Σ_k a[k] b[(n − k) mod d], row-wise, by definition."""
    d = a.shape[1]
    idx = (torch.arange(d)[:, None] - torch.arange(d)[None, :]) % d  # [n, k] → (n − k) mod d
    return torch.einsum("rk,rnk->rn", a, b[:, idx])


@pytest.mark.parametrize("d", [8, 9])
def test_spectral_fusion_is_circular_convolution(d) -> None:
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(5, d, generator=g, dtype=torch.float64) for _ in range(3))
    unit = torch.zeros(1, d // 2 + 1, 2, dtype=torch.float64)
    unit[..., 0] = 1.0  # w = 1 + 0i: no filtering
    torch.testing.assert_close(spectral_filter(a, unit), a)  # orthonormal round trip
    # orthonormal FFTs: irfft(rfft(a) rfft(b)) = (a ⊛ b) / √d, and one more factor per extra modality
    torch.testing.assert_close(spectral_fusion([a, b], unit), circular_convolution(a, b) / math.sqrt(d))
    abc = circular_convolution(circular_convolution(a, b), c) / d
    torch.testing.assert_close(spectral_fusion([a, b, c], unit), abc)
    # a filter that keeps only the DC component returns each row's mean (times 1, ortho)
    dc = torch.zeros_like(unit)
    dc[0, 0, 0] = 1.0
    torch.testing.assert_close(spectral_filter(a, dc), a.mean(1, keepdim=True).expand_as(a))


def test_fusion_graph_is_elementwise_max_over_edge_union() -> None:
    dm = tiny_dm()
    m = make_model("smore", dm, image_knn_k=4, text_knn_k=2)
    dense = {n: dense_sym(dense_knn(dm.data.feature(n), k)) for n, k in (("image", 4), ("text", 2))}
    for j, n in enumerate(m.modality_names):
        torch.testing.assert_close(getattr(m, f"item_graph_{j}").to_dense(), dense[n])
    present = [torch.where(g != 0, g, torch.full_like(g, -math.inf)) for g in dense.values()]
    expected = torch.maximum(*present)
    expected = torch.where(torch.isinf(expected), torch.zeros_like(expected), expected)
    torch.testing.assert_close(m.fusion_graph.to_dense(), expected)
    # an edge of one graph that is negative-weighted elsewhere keeps its largest value
    a = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 0]]), torch.tensor([-0.5, 0.2]), (2, 2))
    b = torch.sparse_coo_tensor(torch.tensor([[0], [1]]), torch.tensor([-0.7]), (2, 2))
    torch.testing.assert_close(max_pool_union([a, b]).to_dense(), torch.tensor([[0.0, -0.5], [0.2, 0.0]]))


def test_forward_equals_dense_two_modality_reference() -> None:
    dm = tiny_dm()
    m = make_model("smore", dm, image_knn_k=3, text_knn_k=2, n_ui_layers=3, n_layers=1)
    m.eval()  # no dropout on the preference gates
    U = dm.data.n_users
    with torch.no_grad():
        a = m.adj.to_dense()
        e0 = torch.cat([m.user_embedding.weight, m.item_embedding.weight])
        content = (e0 + a @ e0 + a @ a @ e0 + a @ a @ a @ e0) / 4
        r = a[:U, U:]
        item = m.item_embedding.weight
        img, txt = (m.projections[n](dm.data.feature(n)) for n in ("image", "text"))
        fi, ft = torch.fft.rfft(img, dim=1, norm="ortho"), torch.fft.rfft(txt, dim=1, norm="ortho")
        wi, wt, wf = (
            torch.view_as_complex(w)
            for w in (m.spectral_weights["image"], m.spectral_weights["text"], m.fusion_spectral_weight)
        )
        conv_i = torch.fft.irfft(fi * wi, n=64, dim=1, norm="ortho")
        conv_t = torch.fft.irfft(ft * wt, n=64, dim=1, norm="ortho")
        conv_f = torch.fft.irfft(fi * ft * wf, n=64, dim=1, norm="ortho")
        s_i, s_t = dense_sym(dense_knn(dm.data.feature("image"), 3)), dense_sym(dense_knn(dm.data.feature("text"), 2))
        s_f = m.fusion_graph.to_dense()

        def view(s: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            h = s @ h
            return torch.cat([r @ h, h])

        v_i = view(s_i, item * m.purifier_gates["image"](conv_i))
        v_t = view(s_t, item * m.purifier_gates["text"](conv_t))
        v_f = view(s_f, item * m.fusion_purifier_gate(conv_f))
        agg_i = torch.softmax(m.queries["image"](v_f), -1) * v_i
        agg_t = torch.softmax(m.queries["text"](v_f), -1) * v_t
        side = (
            m.preference_gates["image"](content) * agg_i
            + m.preference_gates["text"](content) * agg_t
            + m.fusion_preference_gate(content) * v_f
        ) / 3
        final, side_out, content_out = m.forward()
        torch.testing.assert_close(side_out, side, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(final, content + side, rtol=1e-5, atol=1e-6)
        some = torch.tensor([1, 3, m.n_users + 2])  # the preference part over a subset of nodes: the same rows
        for part, full in zip(m.forward(some), (final, side_out, content_out), strict=True):
            torch.testing.assert_close(part, full[some], rtol=1e-5, atol=1e-6)


def test_trainable_parameter_count(synthetic_dm) -> None:
    n_users, n_items = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d, f = 64, 64 // 2 + 1
    per_modality = sum((dm + 1) * d + 3 * (d + 1) * d + d * d + 2 * f for dm in dims)
    base = (n_users + n_items) * d + per_modality + 2 * (d + 1) * d + 2 * f
    assert make_model("smore", synthetic_dm).num_trainable_parameters() == base + n_items * sum(dims)
    assert make_model("smore", synthetic_dm, freeze_features=True).num_trainable_parameters() == base


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)
