"""A config mapping as a plain, typed dict (``OmegaConf.to_container`` returns any container type)."""

from __future__ import annotations

from typing import Any, cast

from omegaconf import OmegaConf

from mmrec.errors import ConfigError


def to_dict(node: Any, resolve: bool = False) -> dict[str, Any]:
    """``OmegaConf.to_container(node, resolve=resolve)`` for a mapping node; an error naming the type otherwise."""
    out = OmegaConf.to_container(node, resolve=resolve)
    if not isinstance(out, dict):
        raise ConfigError(f"expected a config mapping, got {type(out).__name__}: {out!r}")
    return cast(dict[str, Any], out)  # a DictConfig's keys are str
