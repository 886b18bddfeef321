"""Ranking tile by tile over items (streaming_topk) equals ranking the whole masked score matrix."""

from __future__ import annotations

import math

import pytest
import torch

from mmrec.evaluation.metrics import (
    RankingEvaluator,
    mask_scores_,
    slice_rows,
    streaming_topk,
    topk_with_random_ties,
)


def _case(n_users: int, n_items: int, levels: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (``levels`` distinct values when given: many ties) and a sparse CSR exclusion mask."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_users, n_items, generator=g)
    if levels is not None:
        scores = torch.randint(0, levels, (n_users, n_items), generator=g).float()
    exclude = torch.rand(n_users, n_items, generator=g) < 0.2
    exclude[0, :] = True  # a user with every item excluded: no finite score
    exclude[1, 2:] = True  # one with 2 finite scores, fewer than k
    return scores, exclude.to_sparse_csr()


def _tiles(scores: torch.Tensor, calls: list[tuple[int | None, int, int]]):
    buffer = torch.empty(scores.numel())  # one reused buffer, as the models' evaluation does

    def score_tile(rows: torch.Tensor | None, lo: int, hi: int) -> torch.Tensor:
        block = scores if rows is None else scores[rows]
        calls.append((None if rows is None else rows.numel(), lo, hi))
        out = buffer[: block.shape[0] * (hi - lo)].view(block.shape[0], hi - lo)
        return out.copy_(block[:, lo:hi])

    return score_tile


@pytest.mark.parametrize("levels", [None, 3, 1])  # distinct scores; heavy ties; a constant model
@pytest.mark.parametrize("tile", [1, 7, 40, 1000])
@pytest.mark.parametrize("k", [5, 40])
def test_streaming_topk_equals_the_whole_matrix_ranking(levels: int | None, tile: int, k: int) -> None:
    scores, exclude = _case(23, 40, levels, seed=tile + k)
    users = torch.arange(100, 123)  # ids that are not row numbers: the tie keys follow the ids
    expected = topk_with_random_ties(mask_scores_(scores.clone(), exclude), k, users=users, seed=3)
    calls: list[tuple[int | None, int, int]] = []
    top, values = streaming_topk(
        _tiles(scores, calls), 23, 40, k, users=users, seed=3, exclude=exclude, tile_items=tile
    )
    assert torch.equal(top, expected)
    masked = mask_scores_(scores.clone(), exclude)
    assert torch.equal(values, masked.gather(1, expected))
    assert max(hi - lo for _, lo, hi in calls) <= tile  # never more than one tile of items at a time


def test_only_rows_with_ties_at_place_k_are_scored_again() -> None:
    scores, exclude = _case(10, 30, None, seed=0)
    scores[4, :] = 1.0  # every item tied: place k is ambiguous for this user only
    calls: list[tuple[int | None, int, int]] = []
    streaming_topk(_tiles(scores, calls), 10, 30, 5, users=torch.arange(10), seed=0, exclude=exclude, tile_items=8)
    again = [c for c in calls if c[0] is not None]
    # rows 0 and 1 have fewer than k + 1 finite scores (-inf ties at place k), row 4 is all tied: 3 rows, in
    # chunks of 8 * 10 // 30 = 2 rows (the memory of one tile), each chunk over all 4 tiles of items
    assert sum(rows for rows, lo, _ in again if lo == 0) == 3
    assert sorted({(lo, hi) for _, lo, hi in again}) == [(0, 8), (8, 16), (16, 24), (24, 30)]
    assert max(rows for rows, _, _ in again) <= 2


def test_streaming_topk_refuses_nan_like_the_whole_matrix_ranking() -> None:
    scores, _ = _case(4, 20, None, seed=1)
    scores[2, 13] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        streaming_topk(_tiles(scores, []), 4, 20, 5, users=torch.arange(4), seed=0, exclude=None, tile_items=6)


def test_evaluator_metrics_from_tiles_equal_metrics_from_the_whole_matrix() -> None:
    scores, exclude = _case(50, 300, None, seed=2)
    g = torch.Generator().manual_seed(9)
    relevant = ((torch.rand(50, 300, generator=g) < 0.05) & ~exclude.to_dense()).to_sparse_csr()
    users = torch.arange(50)
    whole, tiled = RankingEvaluator(seed=4), RankingEvaluator(seed=4, memory_budget_mb=0.01)
    assert tiled.tile_items(50) < 300  # the budget really forces several tiles
    whole.update(users, mask_scores_(scores.clone(), exclude), relevant)
    tiled.update_scored_tiles(users, _tiles(scores, []), 300, exclude, relevant)
    assert whole.compute() == tiled.compute()
    no_relevant = int((relevant.to_dense().sum(1) == 0).sum())  # user 0 at least: every item excluded
    assert whole.n_skipped == tiled.n_skipped == no_relevant >= 1


def test_slice_rows_of_sparse_and_dense_masks() -> None:
    dense = torch.rand(9, 6) < 0.4
    for matrix in (dense, dense.to_sparse_csr(), dense.to_sparse()):
        part = slice_rows(matrix, 3, 7)
        assert part.shape == (4, 6)
        assert torch.equal(part.to_dense() if part.layout != torch.strided else part, dense[3:7])
