"""The shared path of every content encoder: item content -> hash -> cache -> batched model -> fill + mask.

A ``ModalityEncoder`` subclass only says how to read an item's content (``_gather``), what identifies its
configuration (``_config_parts``) and how to embed a batch (``_compute``); this module does the caching, the
progress bar, the missing-content report and the filling.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import time
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from mmrec.cache import hash_parts
from mmrec.data.dataset import Dataset
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError, DataError
from mmrec.features.encoders.base import Encoder, fill_missing
from mmrec.features.encoders.cache import FeatureCache, encoder_key

log = logging.getLogger("mmrec.features")

N_SAMPLE_IDS = 10


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None -> cuda when available, else cpu; anything else is passed to ``torch.device``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class Gathered:
    """Per item: a content hash (None = absent), the payload to embed, and why absent items are absent."""

    hashes: list[str | None]
    payload: list[Any]
    absent_reason: dict[int, str] = field(default_factory=dict)


def item_ids(dataset: Dataset) -> list[str]:
    """The raw id of each item row (``items.item_id``, else ``dataset.item_ids``, else the row number)."""
    items = dataset.items
    if items is not None and "item_id" in items.columns:
        return [str(x) for x in items["item_id"].tolist()]
    raw_ids = getattr(dataset, "item_ids", None)
    if raw_ids is not None:
        return [str(x) for x in raw_ids]
    return [str(i) for i in range(len(items) if items is not None else dataset.n_items)]


def require_items(dataset: Dataset, who: str) -> pd.DataFrame:
    """The item metadata table, checked to have one row per item."""
    items = dataset.items
    where = dataset.data_dir or dataset.name
    if items is None:
        raise DataError(
            where,
            f"encoder '{who}' needs item metadata (items.jsonl), but this dataset has none",
            "use a raw-layout dataset or encoder=precomputed",
        )
    n_items = getattr(dataset, "n_items", len(items))
    if len(items) != n_items:
        raise DataError(where, f"item metadata has {len(items)} rows but the dataset has {n_items} items")
    return items


def is_blank(value: Any) -> bool:
    """None, NaN, an empty string or an empty list."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return len(value) == 0
    return False


def batches(positions: Sequence[int], batch_size: int, desc: str) -> Iterator[list[int]]:
    """Consecutive chunks of ``positions`` with a progress bar (shown on a terminal only)."""
    if batch_size < 1:
        raise ConfigError(f"{desc}: batch_size must be >= 1, got {batch_size}")
    with tqdm(total=len(positions), desc=desc, unit="item", disable=None, leave=False) as bar:
        for start in range(0, len(positions), batch_size):
            chunk = list(positions[start : start + batch_size])
            yield chunk
            bar.update(len(chunk))


class ModalityEncoder(Encoder):
    """Encodes one modality of every item, with the per-item content cache.

    After ``encode``, ``self.report[modality]`` holds ``n_items``, ``present``, ``cached``, ``computed``,
    ``seconds`` and, per absence reason (e.g. ``no image``, ``image file not found``, ``corrupt``), a count
    with sample raw item ids.
    """

    def __init__(self, name: str, modality: str, batch_size: int = 32, device: str = "auto"):
        self.name = name
        self.modality = modality
        self.modalities = (modality,)
        self.batch_size = int(batch_size)
        self.device_spec = device
        self.report: dict[str, dict[str, Any]] = {}

    @property
    def device(self) -> torch.device:
        return resolve_device(self.device_spec)

    @abstractmethod
    def _config_parts(self) -> tuple[Any, ...]:
        """Everything that changes the vectors (model, revision, pooling, preprocessing ...), JSON-able."""

    @abstractmethod
    def _gather(self, dataset: Dataset) -> Gathered:
        """Each item's content hash and the payload ``_compute`` needs (text, image path)."""

    @abstractmethod
    def _compute(self, payload: list[Any]) -> torch.Tensor | tuple[torch.Tensor | None, torch.Tensor]:
        """Embed the given items' payloads: ``[k, d]``, or ``([k, d] | None, ok bool [k])`` when some may fail
        (rows where ``ok`` is False are ignored; None when none succeeded)."""

    def _length(self, payload: Any) -> int:
        """Batches are formed longest-first by this size (text length); 0 = keep the order."""
        return 0

    def cache_key(self) -> str:
        return encoder_key(type(self).__qualname__, *self._config_parts())

    def encode(self, dataset: Dataset) -> ItemFeatures:
        x, present = self.encode_modality(dataset)
        return ItemFeatures({self.modality: x}, {self.modality: present})

    def encode_modality(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [n_items, d] float32 filled by dataset.fill, present bool [n_items])``."""
        t0 = time.perf_counter()
        ids = item_ids(dataset)
        gathered = self._gather(dataset)
        failures: dict[int, str] = {}

        def compute(positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            # longest first (less padding per batch); results are put back in the order of ``positions``
            order = sorted(range(len(positions)), key=lambda j: -self._length(gathered.payload[positions[j]]))
            chunks: list[tuple[list[int], torch.Tensor | None, torch.Tensor]] = []
            for chunk in batches(order, self.batch_size, f"{self.name}:{self.modality}"):
                out = self._compute([gathered.payload[positions[j]] for j in chunk])
                v, ok = out if isinstance(out, tuple) else (out, torch.ones(len(chunk), dtype=torch.bool))
                chunks.append((chunk, None if v is None else v.detach().float().cpu(), ok.cpu()))
            dim = next((v.shape[1] for _, v, _ in chunks if v is not None), 0)
            vecs = torch.zeros(len(positions), dim)  # [k, d]
            ok_all = torch.zeros(len(positions), dtype=torch.bool)
            for chunk, v, ok in chunks:
                if v is not None:
                    vecs[chunk] = v
                ok_all[chunk] = ok
            failures.update({positions[j]: "corrupt" for j in (~ok_all).nonzero().flatten().tolist()})
            return vecs, ok_all

        cache = FeatureCache(self.cache_key())
        x, present = cache.encode(gathered.hashes, compute)
        # items sharing a corrupt file with another item: only the first position was tried
        reasons = {**gathered.absent_reason, **failures}
        for i in (~present).nonzero().flatten().tolist():
            reasons.setdefault(i, "corrupt")
        where = f"{dataset.data_dir or dataset.name} [{self.name}:{self.modality}]"
        if x is None:
            raise DataError(
                where,
                f"no item has usable {self.modality} content ({len(ids)} items)",
                "check the dataset's item metadata or choose another encoder",
            )
        x = fill_missing(x, present, dataset.fill)
        self._report(ids, present, reasons, cache.last_stats, time.perf_counter() - t0, where, dataset.fill)
        return x, present

    def _report(
        self,
        ids: list[str],
        present: torch.Tensor,
        reasons: dict[int, str],
        stats: dict[str, int],
        seconds: float,
        where: str,
        fill: str,
    ) -> None:
        by_reason: dict[str, list[str]] = {}
        for i in sorted(reasons):
            if not bool(present[i]):
                by_reason.setdefault(reasons[i], []).append(ids[i])
        rep: dict[str, Any] = {
            "n_items": len(ids),
            "present": int(present.sum()),
            "cached": stats["cached"],
            "computed": stats["computed"],
            "seconds": round(seconds, 3),
            "missing": {},
        }
        for reason, rid in by_reason.items():
            rep["missing"][reason] = {"count": len(rid), "sample_ids": rid[:N_SAMPLE_IDS]}
            log.warning(
                "%s: %d of %d items lack content (%s), e.g. item ids %s; filled with '%s' and masked",
                where,
                len(rid),
                len(ids),
                reason,
                ", ".join(rid[:N_SAMPLE_IDS]),
                fill,
            )
        self.report[self.modality] = rep
        log.info(
            "%s: %d items (%d cached, %d computed) in %.1f s",
            where,
            len(ids),
            stats["cached"],
            stats["computed"],
            seconds,
        )


FULL_HASH_LIMIT = 512 * 2**20


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file (memoised by path, size, mtime); files over 512 MiB are identified by those three."""
    if size > FULL_HASH_LIMIT:
        return f"{path}:{size}:{mtime_ns}"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**22), b""):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(model_name: str, revision: str | None = None) -> str:
    """What identifies a model's weights in a cache key.

    A local folder or file: the hashes of its files' bytes (so a retrained checkpoint gets a new key and
    moving the folder keeps the old one). A hub name: the commit of its locally cached snapshot when there
    is one, else ``name@revision``.
    """
    path = Path(model_name).expanduser()
    if path.exists():
        files = (
            [path]
            if path.is_file()
            else sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        )
        parts = []
        for f in files:
            st = f.stat()
            parts.append(
                (
                    f.name if path.is_file() else str(f.relative_to(path)),
                    _file_digest(str(f.resolve()), st.st_size, st.st_mtime_ns),
                )
            )
        return hash_parts(parts)
    commit = None
    with contextlib.suppress(Exception):
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_name, "config.json", revision=revision)
        if isinstance(found, str):
            commit = Path(found).parent.name
    return f"{model_name}@{commit or revision or 'main'}"
