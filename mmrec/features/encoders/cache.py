"""Per-item feature cache: ``(encoder key, item content hash) -> embedding``.

One file per encoder configuration, ``<cache_root>/features/<encoder_key>.pt``, holds every vector that
configuration ever produced, addressed by the hash of the item's content (its text, or its image file's
bytes). Changing one title therefore re-encodes one item, and a rerun encodes nothing. Updates merge into the
file under its lock and replace it atomically, so concurrent jobs never lose entries or read a half-written
file.

The whole API (also used by the LVLM encoders):

* ``encoder_key(*parts)``: the key of an encoder configuration (class, model, revision, every option that
  changes the vectors).
* ``content_hash(data)``: the hash of one item's content (``str`` or ``bytes``).
* ``FeatureCache(key)``: ``.get(hashes)``, ``.put(vectors_by_hash)`` and ``.encode(hashes, compute)``, which
  looks up every hash, computes only the missing ones (each distinct content once) and stores them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mmrec.atomic_io import atomic_write_bytes
from mmrec.cache import InvalidEntry, cache_root, decode_entry, encode_entry, hash_parts, locked

KIND = "features"
FORMAT_VERSION = 2  # 2: mmrec.cache's entry format (header, checksum); files of version 1 are never read
_REPORTED: set[tuple[str, int]] = set()  # bad files already reported by this process

# compute(positions) -> vectors [len(positions), d], or (vectors, ok) where ok: bool [len(positions)] marks
# the rows that could be encoded (the others, e.g. corrupted images, are neither cached nor returned as
# present).
ComputeFn = Callable[[list[int]], "torch.Tensor | tuple[torch.Tensor, torch.Tensor]"]


def encoder_key(*parts: Any) -> str:
    """Key of one encoder configuration; ``parts`` must include everything that changes the vectors."""
    return hash_parts("feature-cache", FORMAT_VERSION, *parts)


def content_hash(data: str | bytes) -> str:
    """sha256 (hex, 32 chars) of one item's content: the text string or the raw image file bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return hashlib.sha256(raw).hexdigest()[:32]


class FeatureCache:
    """The cached vectors of one encoder configuration (see the module docstring)."""

    def __init__(self, key: str, root: Path | None = None):
        self.key = key
        self.path = (root or cache_root()) / KIND / f"{key}.pt"

    def _load(self) -> tuple[list[str], torch.Tensor | None]:
        if not self.path.exists():
            return [], None
        try:
            blob = decode_entry(self.path.read_bytes(), KIND, self.key)  # tensors only, checksummed
            return list(blob["hashes"]), blob["vectors"]
        except (InvalidEntry, OSError, KeyError, TypeError) as e:  # corrupted, truncated or foreign: start afresh
            stamp = (str(self.path), self.path.stat().st_mtime_ns if self.path.exists() else 0)
            if stamp not in _REPORTED:
                _REPORTED.add(stamp)
                warnings.warn(
                    f"feature cache {self.path}: {e}; its vectors are computed again", RuntimeWarning, stacklevel=3
                )
            return [], None

    def get(self, hashes: Sequence[str]) -> dict[str, torch.Tensor]:
        """The cached vectors (float32 ``[d]``) of those ``hashes`` that are present."""
        stored, vectors = self._load()
        if vectors is None:
            return {}
        index = {h: i for i, h in enumerate(stored)}
        return {h: vectors[index[h]] for h in set(hashes) if h in index}

    def put(self, new: Mapping[str, torch.Tensor]) -> None:
        """Merge ``new`` (hash -> vector ``[d]``) into the file, under its lock, with an atomic replace."""
        if new:
            with locked(self.path):
                self._merge(new)

    def _merge(self, new: Mapping[str, torch.Tensor]) -> None:  # caller holds the lock
        stored, vectors = self._load()
        known = set(stored)
        fresh = {h: v for h, v in new.items() if h not in known}
        if not fresh:
            return
        added = torch.stack([v.detach().float().cpu() for v in fresh.values()])  # [k, d]
        if vectors is not None and vectors.shape[1] != added.shape[1]:
            stored, vectors = [], None  # the model changed its output size under the same key: replace
        vectors = added if vectors is None else torch.cat([vectors, added])
        blob = {"version": FORMAT_VERSION, "hashes": stored + list(fresh), "vectors": vectors}
        atomic_write_bytes(self.path, encode_entry(blob, KIND, self.key))

    def encode(self, hashes: Sequence[str | None], compute: ComputeFn) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Vectors for every position whose hash is not None, computing only the uncached contents.

        ``compute(positions)`` receives positions into ``hashes`` (the first position of each distinct
        uncached hash). Returns ``(vectors, present)``: vectors ``[n, d]`` float32 with zero rows where absent
        (None when nothing is present), present bool ``[n]``; ``self.last_stats`` counts ``cached``,
        ``computed`` and ``failed`` items. Computing happens under the file's lock, so concurrent jobs needing
        the same items compute them once (the others wait, then read them).
        """
        wanted = [h for h in hashes if h is not None]
        cached = self.get(wanted)
        computed: dict[str, torch.Tensor] = {}
        failed = 0
        if len(cached) < len(set(wanted)):
            with locked(self.path):
                cached = self.get(wanted)  # another job may have filled them while we waited
                first_position: dict[str, int] = {}
                for i, h in enumerate(hashes):
                    if h is not None and h not in cached and h not in first_position:
                        first_position[h] = i
                if first_position:
                    positions = list(first_position.values())
                    result = compute(positions)
                    vecs, ok = (
                        result if isinstance(result, tuple) else (result, torch.ones(len(positions), dtype=torch.bool))
                    )
                    for j, h in enumerate(first_position):  # the hashes of ``positions``, in order
                        if bool(ok[j]):
                            computed[h] = vecs[j].detach().float().cpu()
                        else:
                            failed += 1
                    self._merge(computed)
        self.last_stats = {"cached": len(cached), "computed": len(computed), "failed": failed}
        found = {**cached, **computed}
        present = torch.tensor([h is not None and h in found for h in hashes], dtype=torch.bool)
        if not found:
            return None, present
        dim = next(iter(found.values())).shape[0]
        out = torch.zeros(len(hashes), dim, dtype=torch.float32)
        rows = present.nonzero().flatten().tolist()
        if rows:
            out[rows] = torch.stack([found[hashes[i]] for i in rows])
        return out, present
