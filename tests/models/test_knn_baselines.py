"""ItemKNN and AttributeItemKNN: neighbourhoods against a dense reference, hand-checked scores, the
fit/score contract on a datamodule, test-time feature swaps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.models.itemknn import topk_cosine
from tests.models.common import all_scores, fit, make_model, test_metrics, with_features


def dense_topk_reference(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Plain numpy: cosine with shrink, self excluded, keep the k largest positive entries of each row."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    denom = np.outer(norms, norms) + shrink
    with np.errstate(invalid="ignore", divide="ignore"):
        sims = np.where(denom > 0, x @ x.T / denom, 0.0)
    np.fill_diagonal(sims, -np.inf)
    out = np.zeros_like(sims)
    for j in range(len(x)):
        order = np.argsort(-sims[j], kind="stable")[:k]
        keep = order[sims[j, order] > 0]
        out[j, keep] = sims[j, keep]
    return out


@pytest.mark.parametrize(("k", "shrink"), [(1, 0.0), (3, 0.0), (5, 2.0), (100, 0.5)])
def test_topk_cosine_matches_dense_reference(k: int, shrink: float) -> None:
    rng = np.random.default_rng(k)
    x = (rng.random((40, 25)) < 0.15).astype(np.float32) * rng.integers(1, 4, (40, 25))  # sparse, a few zero rows
    x[7] = 0.0
    got = topk_cosine(sp.csr_matrix(x), k, shrink).to_dense().numpy()
    ref = dense_topk_reference(x, k, shrink)
    # ties may pick different neighbours; compare the sorted kept values per row and the support of unique ones
    np.testing.assert_allclose(np.sort(got, axis=1), np.sort(ref, axis=1), rtol=1e-5, atol=1e-6)
    assert np.all(got[7] == 0) and np.all(got[:, 7] == 0)
    assert np.all(np.diag(got) == 0)
    assert ((got > 0).sum(axis=1) <= k).all()


def test_topk_cosine_small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((30, 6)).astype(np.float32)
    whole = topk_cosine(x, 4).to_dense()
    monkeypatch.setattr("mmrec.models.itemknn.BLOCK_BYTES", 4 * 30 * 7)  # 7 rows per block
    torch.testing.assert_close(topk_cosine(x, 4).to_dense(), whole)
    with pytest.raises(ConfigError):
        topk_cosine(x, 0)


def hand_dm(attributes: torch.Tensor | None = None) -> GraphDataModule:
    # users: 0 -> {0, 1}, 1 -> {1, 2}, 2 -> {0, 1, 2}, 3 -> {3}
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2], [3, 3]])
    ds = Dataset("hand", Interactions(4, 4, train, np.array([[3, 2]]), np.array([[0, 2]])))
    feats = ItemFeatures({"attributes": attributes}) if attributes is not None else None
    return GraphDataModule(ds, feats, batch_size=4, seed=0)


def test_itemknn_scores_by_hand() -> None:
    dm = hand_dm()
    m = make_model("itemknn", dm, k=2)
    fit(m, dm, 0)
    # item columns: i0 = users{0,2}, i1 = {0,1,2}, i2 = {1,2}, i3 = {3}
    # cos(0,1) = 2/sqrt(2*3), cos(0,2) = 1/2, cos(1,2) = 2/sqrt(3*2), item 3 shares no user
    c01, c02, c12 = 2 / np.sqrt(6), 0.5, 2 / np.sqrt(6)
    w = m.neighbours().to_dense().numpy()
    np.testing.assert_allclose(w[0], [0, c01, c02, 0], rtol=1e-6)
    np.testing.assert_allclose(w[2], [c02, c12, 0, 0], rtol=1e-6)
    assert np.all(w[3] == 0)
    scores = all_scores(m, dm).numpy()
    # user 0 has items {0, 1}: score(j) = W[j, 0] + W[j, 1]
    np.testing.assert_allclose(scores[0], [c01, c01, c02 + c12, 0], rtol=1e-6)
    np.testing.assert_allclose(scores[3], [0, 0, 0, 0])


def test_attributeknn_uses_attribute_cosine() -> None:
    # items 0 and 2 share both attribute values, item 1 shares one with item 0, item 3 none
    attrs = torch.tensor([[1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 1, 0], [0, 1, 0, 0]], dtype=torch.float32)
    dm = hand_dm(attrs)
    m = make_model("attributeknn", dm, k=1)
    fit(m, dm, 0)
    w = m.neighbours().to_dense().numpy()
    np.testing.assert_allclose(w, [[0, 0, 1, 0], [0.5, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], rtol=1e-6)
    scores = all_scores(m, dm).numpy()
    # score(u, j) = sum over u's items i of W[j, i]
    np.testing.assert_allclose(scores[0], [0.0, 0.5, 1.0, 0.0], rtol=1e-6)  # user 0 has {0, 1}
    np.testing.assert_allclose(scores[1], [1.0, 0.0, 0.0, 0.0], rtol=1e-6)  # user 1 has {1, 2}
    # test-time feature swap: attach rebuilds the neighbourhood from the new features
    swapped = attrs[[3, 1, 2, 0]]
    m.attach(with_features(dm, ItemFeatures({"attributes": swapped})).data)
    assert not np.allclose(m.neighbours().to_dense().numpy(), w)


def test_attributeknn_needs_its_modality() -> None:
    attrs = torch.eye(4)
    dm = GraphDataModule(hand_dm().dataset, ItemFeatures({"text": attrs}), batch_size=4, seed=0)
    with pytest.raises(ConfigError, match="attributes"):
        make_model("attributeknn", dm)
    m = make_model("attributeknn", dm, modality="text", k=2)  # any modality can be named
    fit(m, dm, 0)
    assert all_scores(m, dm).shape == (4, 4)


def test_score_before_fit_is_an_error() -> None:
    dm = hand_dm()
    m = make_model("itemknn", dm)
    with pytest.raises(RuntimeError, match="fit"):
        m.score(torch.tensor([0]))
    with pytest.raises(ConfigError):
        make_model("itemknn", dm, k=0)


def test_knn_baselines_beat_random_on_synthetic(synthetic_dm) -> None:
    n_items = synthetic_dm.data.n_items
    m = make_model("itemknn", synthetic_dm, k=50)
    fit(m, synthetic_dm, 0)
    recall = test_metrics(m, synthetic_dm)["recall@20"]
    # a random ranking recalls about 20 / n_items of the held-out items
    assert recall > 3 * 20 / n_items
    content_recall = {}
    for modality in ("text", "audio"):  # synthetic truth: text informative, audio pure noise
        x = synthetic_dm.dataset.features.tensors[modality]
        content = GraphDataModule(synthetic_dm.dataset, ItemFeatures({"attributes": x}), batch_size=512, seed=0)
        a = make_model("attributeknn", content, k=50)
        fit(a, content, 0)
        content_recall[modality] = test_metrics(a, content)["recall@20"]
    assert content_recall["text"] > 2 * 20 / n_items
    assert content_recall["text"] > content_recall["audio"]
