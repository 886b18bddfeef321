"""A model's test metrics do not depend on the evaluation memory: tiles of items (scores from
``final_embeddings``) or sub-blocks of users (an overridden ``score``) give the whole-matrix result."""

from __future__ import annotations

import pytest

from tests.models.common import fit, make_model, test_metrics


@pytest.mark.parametrize("name", ["lightgcn", "vbpr", "mostpop"])  # tiled; sub-blocked; all-tied scores
def test_metrics_are_the_same_whatever_the_evaluation_memory(name: str, synthetic_dm) -> None:
    model = make_model(name, synthetic_dm, seed=0)
    fit(model, synthetic_dm, 1)
    n_items = synthetic_dm.data.n_items
    n_block = min(synthetic_dm.eval_block_users, synthetic_dm.data.n_users)  # users in the largest block
    results = []
    for memory_mb in (1024.0, 0.02):  # one tile / sub-block; a few items (or users) at a time
        model.configure_evaluation(memory_mb=memory_mb)
        results.append(test_metrics(model, synthetic_dm))
        if memory_mb < 1:
            evaluator = model._evaluator
            assert evaluator is not None
            assert evaluator.tile_items(n_block) < n_items
            assert evaluator.block_size(n_items) < n_block
    assert results[0] == results[1]
    assert 0 < results[0]["recall@20"] < 1
