"""``Combined``: several encoders' modalities in one ItemFeatures (e.g. ``minilm_effnet`` = text + image)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrec.data.dataset import Dataset
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.features.encoders.base import Encoder


class Combined(Encoder):
    """Runs each encoder in turn and merges their modalities (names must not clash), keeping their order."""

    def __init__(self, encoders: Sequence[Encoder], name: str = "combined"):
        self.encoders = list(encoders)
        if not self.encoders:
            raise ConfigError(f"encoder '{name}': needs at least one encoder")
        self.name = name
        modalities: list[str] = []
        for enc in self.encoders:
            clash = [m for m in enc.modalities if m in modalities]
            if clash:
                raise ConfigError(f"encoder '{name}': modality {clash} is produced by more than one encoder")
            modalities += list(enc.modalities)
        self.modalities = tuple(modalities)

    @property
    def report(self) -> dict[str, Any]:
        """The per-modality reports of the parts (missing items, cache hits, timing)."""
        merged: dict[str, Any] = {}
        for enc in self.encoders:
            merged.update(getattr(enc, "report", {}))
        return merged

    def encode(self, dataset: Dataset) -> ItemFeatures:
        tensors, masks, spec = {}, {}, {}
        for enc in self.encoders:
            part = enc.encode(dataset)
            for m in part.modalities:
                if m in tensors:
                    raise ConfigError(f"encoder '{self.name}': modality '{m}' produced twice")
                tensors[m], masks[m], spec[m] = part.tensors[m], part.masks[m], part.spec[m]
        return ItemFeatures(tensors, masks, spec)
