"""``encoder=precomputed``: the features shipped with the dataset (``<modality>_feat.npy`` or synthetic)."""

from __future__ import annotations

from collections.abc import Sequence

from mmrec.data.dataset import Dataset
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.features.encoders.base import Encoder


class Precomputed(Encoder):
    """Pass through the dataset's own features, optionally restricted to ``modalities``."""

    name = "precomputed"

    def __init__(self, modalities: Sequence[str] | None = None):
        self.modalities = tuple(modalities or ())

    def encode(self, dataset: Dataset) -> ItemFeatures:
        if dataset.features is None or not dataset.features.modalities:
            raise ConfigError(
                f"dataset '{dataset.name}' ships no precomputed features ({dataset.data_dir}); "
                "choose an encoder that computes them, e.g. encoder=minilm_effnet"
            )
        wanted = list(self.modalities) or dataset.features.modalities
        missing = [m for m in wanted if m not in dataset.features.modalities]
        if missing:
            raise ConfigError(
                f"dataset '{dataset.name}' has no precomputed {missing}; available: {dataset.features.modalities}"
            )
        return dataset.features.select(wanted)
