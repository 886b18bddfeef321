"""Fixtures shared by the model tests (helpers that are plain functions live in ``tests/models/common.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from tests.models.common import mostpop_recall_on


@pytest.fixture(scope="session")
def mostpop_recall(synthetic_dm) -> float:
    """Test Recall@20 of MostPop on the shared synthetic data: the bar every trained model must clear."""
    return mostpop_recall_on(synthetic_dm)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Two OpenMP threads on a shared two-core machine make small sparse ops ~100× slower (spin waits)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
