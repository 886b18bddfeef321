"""Moved to :mod:`mmrec.data.item_features` (the data layer owns item features); kept as an import path."""

from mmrec.data.item_features import ItemFeatures

__all__ = ["ItemFeatures"]
