"""PGL: principal subgraphs against the reference's dense constructions, forward and loss, training, knockouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mmrec.data.graphs import bipartite_adjacency, sym_norm
from mmrec.errors import ConfigError
from mmrec.nn.principal_subgraph import global_principal_subgraph, local_principal_subgraph
from tests.models.common import all_scores, assert_learns, fit, make_model
from tests.models.test_lattice import dense_knn, dense_sym, tiny_dm


def random_train(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    """A random binary interaction matrix in which every user and item has an interaction."""
    rng = np.random.default_rng(seed)
    r = (rng.random((n_users, n_items)) < density).astype(np.float32)
    r[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0
    r[rng.integers(0, n_users, n_items), np.arange(n_items)] = 1.0
    return sp.csr_matrix(r)


def normalized_dense(train: sp.csr_matrix) -> np.ndarray:
    """``D_u^-1/2 R D_i^-1/2`` (dense)."""
    r = train.toarray().astype(np.float64)
    return r / np.sqrt(r.sum(1))[:, None] / np.sqrt(r.sum(0))[None, :]


def reference_global_subgraph(train: sp.csr_matrix, rank: int, fraction: float, threshold: float) -> np.ndarray:
    """The reference: truncated SVD of the dense normalised adjacency, top × bottom singular values, threshold."""
    lap = sym_norm(bipartite_adjacency(train)).toarray().astype(np.float64)
    u, s, vt = np.linalg.svd(lap)
    u, s, vt = u[:, :rank], s[:rank], vt[:rank]
    n = int(fraction * rank)
    product = s[:n] * s[-n:]
    dense = u[:, :n] @ np.diag(product) @ vt[:n]
    return dense * (np.abs(dense) >= threshold)


@pytest.fixture(scope="module")
def trained(synthetic_dm):
    m = make_model("pgl", synthetic_dm, lr=0.01)
    losses = fit(m, synthetic_dm, 4, limit_val_batches=0)
    return m, losses


@pytest.mark.parametrize("rank, fraction", [(8, 0.5), (12, 0.34), (6, 1.0)])
def test_global_subgraph_equals_dense_reference(rank, fraction) -> None:
    train = random_train(9, 11, 0.3, seed=rank)
    singular = np.linalg.svd(normalized_dense(train), compute_uv=False)
    assert np.min(np.abs(np.diff(singular[: rank // 2 + 1]))) > 1e-6  # distinct: the reference is well defined
    expected = reference_global_subgraph(train, rank, fraction, 1e-3)
    got = global_principal_subgraph(train, rank, fraction, 1e-3).to_dense().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert np.count_nonzero(got) == np.count_nonzero(expected) > 0
    assert np.allclose(got[:9, :9], 0) and np.allclose(got[9:, 9:], 0)  # bipartite


def test_global_subgraph_through_arpack_matches_dense_svd() -> None:
    train = random_train(150, 120, 0.05, seed=3)  # large enough for the svds path
    dense_path = reference_global_subgraph(train, 8, 0.5, 1e-3)
    got = global_principal_subgraph(train, 8, 0.5, 1e-3).to_dense().numpy()
    np.testing.assert_allclose(got, dense_path, rtol=1e-3, atol=1e-5)


def test_odd_spectral_settings_are_a_config_error(synthetic_dm) -> None:
    with pytest.raises(ConfigError, match="even"):
        make_model("pgl", synthetic_dm, svd_rank=36)  # 0.25 · 36 = 9 kept values: splits a pair
    with pytest.raises(ConfigError, match="mode"):
        make_model("pgl", synthetic_dm, mode="spectral")


def test_local_subgraph_keeps_share_and_renormalises() -> None:
    train = random_train(20, 15, 0.3, seed=1)
    users, items = (torch.from_numpy(a.astype(np.int64)) for a in train.nonzero())
    torch.manual_seed(0)
    sub = local_principal_subgraph(users, items, 20, 15, 0.3).to_dense()
    kept = sub[:20, 20:] > 0
    assert int(kept.sum()) == int(len(users) * 0.3)
    assert bool(torch.from_numpy(train.toarray() > 0)[kept].all())  # only real interactions
    du, di = kept.sum(1, keepdim=True).float(), kept.sum(0, keepdim=True).float()
    expected = kept.float() / torch.sqrt(du.clamp_min(1) * di.clamp_min(1))
    torch.testing.assert_close(sub[:20, 20:], expected)
    torch.testing.assert_close(sub[20:, :20], expected.T)


def test_forward_equals_dense_computation() -> None:
    dm = tiny_dm()
    k = 3
    m = make_model("pgl", dm, knn_k=k, n_mm_layers=2)
    with torch.no_grad():
        weights = {"image": 0.1, "text": 0.9}
        s = sum(weights[n] * dense_sym((dense_knn(dm.data.feature(n), k) != 0).float()) for n in m.modality_names)
        torch.testing.assert_close(m.mm_adj.to_dense(), s)
        items = torch.cat([F.normalize(m.projections[n](dm.data.feature(n))) for n in m.modality_names], 1)
        users = torch.cat([m.user_embeddings[n].weight for n in m.modality_names], 1)
        a = m.adj.to_dense()
        e0 = torch.cat([users, items])
        out = (e0 + a @ e0 + a @ a @ e0) / 3
        u, i = m.forward(m.adj)
        torch.testing.assert_close(u, out[:4], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(i, out[4:] + s @ (s @ items), rtol=1e-5, atol=1e-6)


def test_loss_is_bpr_plus_self_infonce() -> None:
    dm = tiny_dm()
    m = make_model("pgl", dm, knn_k=3, reg_weight=0.4, dropout=0.0)
    users, pos, neg = torch.tensor([0, 1, 3]), torch.tensor([1, 2, 4]), torch.tensor([5, 6, 7])
    m.train_adj = m.adj
    with torch.no_grad():
        u_all, i_all = m.forward(m.adj)
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        bpr = -torch.log(torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()

        def nce(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:  # the reference's InfoNCE
            v1, v2 = F.normalize(v1), F.normalize(v2)
            return (-torch.log(torch.exp((v1 * v2).sum(1) / 0.2) / torch.exp(v1 @ v2.T / 0.2).sum(1))).mean()

        expected = bpr + 0.4 * (nce(u, u) + nce(p, p)) / 2
        got = m.loss({"users": users, "pos_items": pos, "neg_items": neg})
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_training_uses_the_subgraph_and_inference_the_full_graph(synthetic_dm) -> None:
    m = make_model("pgl", synthetic_dm, mode="global")
    m.on_epoch_start_hook()
    assert m.train_adj is m.global_subgraph and m.global_subgraph._nnz() != m.adj._nnz()
    m.eval()
    with torch.no_grad():
        u, i = m.forward(m.adj)
        torch.testing.assert_close(all_scores(m, synthetic_dm), u @ i.T)


@pytest.mark.parametrize("freeze", [False, True])
def test_trainable_parameter_count(synthetic_dm, freeze) -> None:
    U, I = synthetic_dm.data.n_users, synthetic_dm.data.n_items
    dims = list(synthetic_dm.data.features.dims().values())
    d = 64
    expected = len(dims) * U * d + sum((dm + 1) * d for dm in dims) + (0 if freeze else I * sum(dims))
    assert make_model("pgl", synthetic_dm, freeze_features=freeze).num_trainable_parameters() == expected


def test_learns_and_beats_mostpop(trained, synthetic_dm, mostpop_recall) -> None:
    assert_learns(*trained, synthetic_dm, mostpop_recall)


def test_global_mode_trains(synthetic_dm) -> None:
    m = make_model("pgl", synthetic_dm, mode="global", lr=0.01)
    losses = fit(m, synthetic_dm, 2, limit_train_batches=3, limit_val_batches=0)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
