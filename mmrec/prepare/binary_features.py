"""Reader (and writer, for tests) of McAuley's ``image_features_<Category>.b`` files.

Format: records repeated to the end of the file, each a 10-byte ASCII ASIN followed by ``dim`` (4096)
little-endian float32 values. Files run to tens of GB, so they are streamed in blocks of records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from mmrec.errors import DataError

ASIN_BYTES = 10
DIM = 4096


def record_dtype(dim: int = DIM) -> np.dtype:
    return np.dtype([("asin", f"S{ASIN_BYTES}"), ("feat", "<f4", (dim,))])


def check_size(path: str | Path, dim: int = DIM) -> int:
    """Number of records; raises ValueError when the size is not a whole number of records."""
    size = Path(path).stat().st_size
    record = record_dtype(dim).itemsize
    if size % record:
        raise ValueError(
            f"size {size} is not a multiple of the {record}-byte record (10-byte ASIN + {dim} "
            f"float32): the file is truncated"
        )
    return size // record


def iter_image_features(
    path: str | Path, dim: int = DIM, block_records: int = 512
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(asins: str [n], features: float32 [n, dim])`` blocks in file order."""
    path = Path(path)
    try:
        n_records = check_size(path, dim)
    except ValueError as exc:
        raise DataError(path, str(exc), "delete it and run the preparation again to re-download it") from exc
    dtype = record_dtype(dim)
    with open(path, "rb") as f:
        for start in range(0, n_records, block_records):
            count = min(block_records, n_records - start)
            block = np.fromfile(f, dtype=dtype, count=count)
            if len(block) != count:
                raise DataError(
                    path,
                    f"read {len(block)} of {count} records at record {start}",
                    "the file changed while being read",
                )
            asins = np.char.strip(np.char.decode(block["asin"], "ascii", errors="replace"))  # [n]
            yield asins.astype(str), np.ascontiguousarray(block["feat"], dtype=np.float32)  # [n, dim]


def read_image_features(path: str | Path, wanted: Iterable[str] | None = None, dim: int = DIM) -> dict[str, np.ndarray]:
    """ASIN → float32 [dim] vector, only for ``wanted`` ASINs when given (first occurrence wins)."""
    wanted_set = None if wanted is None else np.asarray(sorted(set(wanted)), dtype=str)
    out: dict[str, np.ndarray] = {}
    for asins, feats in iter_image_features(path, dim):
        keep = np.ones(len(asins), bool) if wanted_set is None else np.isin(asins, wanted_set)
        for asin, vector in zip(asins[keep], feats[keep]):
            out.setdefault(str(asin), vector)
    return out


def write_image_features(path: str | Path, asins: list[str], features: np.ndarray) -> None:
    """Write records in the upstream format (used by tests and for small hand-made files)."""
    features = np.asarray(features, dtype="<f4")
    if features.ndim != 2 or len(asins) != len(features):
        raise ValueError(f"need one [dim] row per ASIN, got {len(asins)} ASINs and shape {features.shape}")
    block = np.empty(len(asins), dtype=record_dtype(features.shape[1]))
    for asin in asins:
        if len(asin.encode("ascii")) > ASIN_BYTES:
            raise ValueError(f"ASIN {asin!r} is longer than {ASIN_BYTES} bytes")
    block["asin"] = [a.encode("ascii").ljust(ASIN_BYTES) for a in asins]
    block["feat"] = features
    block.tofile(str(path))
