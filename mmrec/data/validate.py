"""Checks run on every load; each failure names the file, the field or line and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrec.errors import DataError


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(path, f"missing {what}", "check dataset.data_dir")
    if not path.is_file():
        raise DataError(path, f"{what} is not a file")
    return path


def require_columns(path: Path, columns: list[str], present: list[str]) -> None:
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; header has {present}")


def check_int_column(path: Path, name: str, values: np.ndarray, first_line: int = 2) -> np.ndarray:
    """Values must be integers; reports the first bad line (1-based, header = line 1)."""
    try:
        return values.astype(np.int64, casting="unsafe") if values.dtype.kind in "iu" else _parse_ints(values)
    except ValueError:
        bad = next(i for i, v in enumerate(values) if not _is_int(v))
        raise DataError(
            path, f"line {bad + first_line}: column '{name}' has non-integer value {values[bad]!r}"
        ) from None


def _is_int(v: object) -> bool:
    try:
        f = float(v)  # type: ignore[arg-type]
        return np.isfinite(f) and float(int(f)) == f
    except (TypeError, ValueError):
        return False


def _parse_ints(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):  # only reached for object/float columns, i.e. already-suspicious data
        if not _is_int(v):
            raise ValueError
        out[i] = int(float(v))
    return out


def check_id_range(path: Path, name: str, ids: np.ndarray, n: int | None = None, first_line: int = 2) -> None:
    if len(ids) and ids.min() < 0:
        bad = int(np.argmax(ids < 0))
        raise DataError(path, f"line {bad + first_line}: {name} {ids[bad]} is negative; ids must be in [0, n)")
    if n is not None and len(ids) and ids.max() >= n:
        bad = int(np.argmax(ids >= n))
        raise DataError(path, f"line {bad + first_line}: {name} {ids[bad]} is outside [0, {n})")


def check_features(path: Path, array: np.ndarray, n_items: int) -> np.ndarray:
    """Feature matrix: 2-d, one row per item, finite; float16 and other float dtypes become float32."""
    if array.ndim != 2:
        raise DataError(path, f"expected a 2-d [n_items, d] array, got shape {array.shape}")
    if array.shape[0] != n_items:
        raise DataError(
            path, f"has {array.shape[0]} rows but the interactions have {n_items} items", "rows must be item ids"
        )
    if array.dtype.kind not in "fiu":
        raise DataError(path, f"dtype {array.dtype} is not numeric")
    array = array.astype(np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        rows = np.nonzero(~finite.all(axis=1))[0]
        raise DataError(
            path, f"{len(rows)} rows contain NaN/inf (first item ids {rows[:5].tolist()})", "clean or fill them"
        )
    return array


def check_splits(path: Path, counts: dict[str, int]) -> None:
    for split, n in counts.items():
        if n == 0:
            raise DataError(path, f"the {split} split is empty", "check x_label values (0 train, 1 val, 2 test)")
