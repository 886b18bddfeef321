"""The blocked synthetic sampler: same law as Gumbel-top-k, same root stream, no dense users × items array."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mmrec.data.synthetic import _blocked_items, _first_distinct, make_synthetic
from mmrec.errors import ConfigError


def plackett_luce_inclusion(logits: np.ndarray, n: int) -> np.ndarray:
    """P(item in the first n draws without replacement, ∝ exp(logits)), by enumerating ordered n-tuples."""
    w = np.exp(logits)
    inclusion = np.zeros(len(w))
    for seq in itertools.permutations(range(len(w)), n):
        p, left = 1.0, w.sum()
        for i in seq:
            p *= w[i] / left
            left -= w[i]
        inclusion[list(seq)] += p
    return inclusion


def test_first_distinct_keeps_draw_order_and_flags_short_rows() -> None:
    draws = np.array([[4, 4, 1, 4, 2, 1], [3, 3, 3, 3, 3, 0]])
    keep, short = _first_distinct(draws, np.array([3, 3]))
    assert draws[0][keep[0]].tolist() == [4, 1, 2]
    assert short.tolist() == [1]


def test_blocked_sampler_has_the_plackett_luce_inclusion_law() -> None:
    # 6000 users with the same factor row: the inclusion frequency over users estimates the law of one user
    rng = np.random.default_rng(0)
    V = rng.standard_normal((6, 2))
    u = np.array([[0.9, -0.4]])
    U = np.repeat(u, 6000, axis=0)
    counts = np.full(6000, 3)
    items = _blocked_items(U, V, 0.5, counts, data_seed=1, block_cells=600).reshape(6000, 3)
    assert all(len(set(row)) == 3 for row in items.tolist())
    freq = np.bincount(items.ravel(), minlength=6) / 6000
    exact = plackett_luce_inclusion((u @ V.T / 0.5).ravel(), 3)
    assert np.abs(freq - exact).max() < 4 * np.sqrt(0.25 / 6000) + 1e-3  # within 4 standard errors


def test_default_demo_set_is_unchanged_and_blocked_shares_the_root_stream() -> None:
    dense = make_synthetic(n_users=300, n_items=200, sampler="dense")
    auto = make_synthetic(n_users=300, n_items=200)
    blocked = make_synthetic(n_users=300, n_items=200, sampler="blocked")
    assert np.array_equal(dense.interactions.train, auto.interactions.train)
    assert auto.truth["sampler"] == "dense" and blocked.truth["sampler"] == "blocked"
    for m in dense.features.tensors:  # features come after the interaction draws in the root stream
        assert torch.equal(dense.features.tensors[m], blocked.features.tensors[m])
    per_user = lambda d: np.bincount(  # noqa: E731
        np.concatenate([d.interactions.train[:, 0], d.interactions.val[:, 0], d.interactions.test[:, 0]]), minlength=300
    )
    assert np.array_equal(per_user(dense), per_user(blocked))  # the same per-user counts
    assert not np.array_equal(dense.interactions.train, blocked.interactions.train)


def test_blocked_sampler_plants_the_factor_signal() -> None:
    # users' picks under the blocked sampler lean towards items with high U·V, as under the dense one
    ds = make_synthetic(n_users=400, n_items=300, sampler="blocked")
    U, V = ds.truth["user_factors"], ds.truth["item_factors"]
    pairs = ds.interactions.train
    picked = np.einsum("nf,nf->n", U[pairs[:, 0]], V[pairs[:, 1]])
    assert picked.mean() > (U @ V.T).mean() + 0.5 * (U @ V.T).std()


def test_large_feature_tables_are_standardised_blockwise() -> None:
    ds = make_synthetic(
        n_users=50,
        n_items=70_000,
        interactions_per_user=4,
        sampler="blocked",
        modalities={"text": {"dim": 8, "signal": 1.0}},
    )
    x = ds.features.tensors["text"].double()
    assert torch.allclose(x.mean(0), torch.zeros(8, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(8, dtype=torch.float64), atol=1e-4)


def test_unknown_sampler_is_refused() -> None:
    with pytest.raises(ConfigError, match="sampler"):
        make_synthetic(sampler="fast")
