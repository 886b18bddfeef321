"""ItemFeatures: the per-modality item embeddings every later stage consumes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from mmrec.cache import hash_parts
from mmrec.errors import DataError


@dataclass
class ItemFeatures:
    """``tensors[m]`` is a float32 ``[n_items, d_m]`` tensor; ``masks[m]`` is bool ``[n_items]`` (True = present).

    Modalities are named (``text``, ``image``, ``audio``, ``lvlm``, ...); order of insertion is kept.
    ``spec`` records what was done to each modality (``keep`` or a knockout strategy).
    """

    tensors: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    spec: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = None
        for name, t in self.tensors.items():
            if t.dim() != 2:
                raise DataError(f"<features:{name}>", f"expected a 2-d [n_items, d] tensor, got shape {tuple(t.shape)}")
            if n is None:
                n = t.shape[0]
            elif t.shape[0] != n:
                raise DataError(f"<features:{name}>", f"has {t.shape[0]} rows but other modalities have {n}")
            self.tensors[name] = t.float()
            if name not in self.masks:
                self.masks[name] = torch.ones(t.shape[0], dtype=torch.bool)
            self.spec.setdefault(name, "keep")

    @property
    def modalities(self) -> list[str]:
        return list(self.tensors)

    @property
    def n_items(self) -> int:
        return next(iter(self.tensors.values())).shape[0] if self.tensors else 0

    def dims(self) -> dict[str, int]:
        return {m: int(t.shape[1]) for m, t in self.tensors.items()}

    def select(self, names: Iterable[str]) -> ItemFeatures:
        names = list(names)
        return ItemFeatures(
            {m: self.tensors[m] for m in names},
            {m: self.masks[m] for m in names},
            {m: self.spec[m] for m in names},
        )

    def content_hash(self) -> str:
        """Hash of the values (after any knockout) and the spec: the key of everything derived from them."""
        return hash_parts([(m, self.tensors[m], self.masks[m], self.spec.get(m, "keep")) for m in sorted(self.tensors)])

    def check_finite(self, source: str = "<features>") -> None:
        for m, t in self.tensors.items():
            bad = ~torch.isfinite(t)
            if bad.any():
                rows = torch.nonzero(bad.any(dim=1)).flatten()[:5].tolist()
                raise DataError(
                    f"{source}:{m}",
                    f"{int(bad.any(dim=1).sum())} item rows contain NaN/inf (first rows {rows})",
                    "clean the features or mark those items missing",
                )
