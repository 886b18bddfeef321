"""The encoder contract: ``Encoder(dataset) -> ItemFeatures``."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from mmrec.data.dataset import Dataset
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError


class Encoder(ABC):
    """Builds per-modality item features from a loaded dataset.

    Subclasses set ``name`` (recorded in summary.json) and ``modalities`` (the names they output) and
    implement ``encode``. Encoders never write into the dataset folder; they cache under ``mmrec.cache``.
    """

    name: str = "encoder"
    modalities: tuple[str, ...] = ()

    def __call__(self, dataset: Dataset) -> ItemFeatures:
        features = self.encode(dataset)
        features.check_finite(f"{dataset.data_dir or dataset.name} [{self.name}]")
        return features

    @abstractmethod
    def encode(self, dataset: Dataset) -> ItemFeatures: ...


def fill_missing(x: torch.Tensor, present: torch.Tensor, strategy: str = "mean") -> torch.Tensor:
    """Fill rows where ``present`` is False: ``mean`` of present rows (the papers' choice) or ``zero``."""
    x = x.clone()
    missing = ~present
    if not missing.any():
        return x
    if strategy == "mean":
        fill = x[present].mean(dim=0) if present.any() else torch.zeros(x.shape[1], dtype=x.dtype)
    elif strategy == "zero":
        fill = torch.zeros(x.shape[1], dtype=x.dtype)
    else:
        raise ConfigError(f"unknown fill strategy {strategy!r}; choose one of: mean, zero")
    x[missing] = fill
    return x
