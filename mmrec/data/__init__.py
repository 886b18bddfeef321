"""Data: loaders (MMRec layout, raw layout, synthetic), splits, validation, the graph datamodule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmrec.data.dataset import Dataset, Interactions
from mmrec.errors import ConfigError

FORMATS = ("mmrec", "raw", "synthetic")


def load_dataset(
    name: str,
    format: str = "mmrec",
    data_dir: str | None = None,
    modalities: Sequence[str] | None = None,
    fill: str = "mean",
    text_template: str | None = None,
    k_core: int = 5,
    min_rating: float | None = None,
    split: Mapping[str, Any] | None = None,
    synthetic: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load a dataset described by a ``conf/dataset/*.yaml`` (built by Hydra from its ``_target_``)."""
    if format == "mmrec":
        from mmrec.data.mmrec_format import load_mmrec

        if data_dir is None:
            raise ConfigError(f"dataset '{name}' (format mmrec) needs dataset.data_dir")
        return load_mmrec(data_dir, name, modalities=modalities, fill=fill)
    if format == "raw":
        from mmrec.data.raw_format import load_raw

        if data_dir is None:
            raise ConfigError(f"dataset '{name}' (format raw) needs dataset.data_dir")
        return load_raw(
            data_dir,
            name,
            k_core_min=k_core,
            min_rating=min_rating,
            split=split,
            text_template=text_template,
            fill=fill,
        )
    if format == "synthetic":
        from mmrec.data.synthetic import make_synthetic

        return make_synthetic(name=name, split=split, **dict(synthetic or {}))
    raise ConfigError(f"dataset '{name}': unknown format {format!r}; choose one of {list(FORMATS)}")


__all__ = ["Dataset", "Interactions", "load_dataset", "FORMATS"]
