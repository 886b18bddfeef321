"""Writing a prepared folder: data root, all-or-nothing staging, k-core, raw layout, manifest, licences."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.cache import atomic_write_text, locked
from mmrec.errors import DataError
from mmrec.prepare.registry import Source

DATA_ENV = "MMREC_DATA"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
RAW_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


class AlreadyPrepared(Exception):
    """The target folder exists and ``force`` was not given."""


def data_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$MMREC_DATA``, else ``~/.cache/mmrec/data`` (the dataset configs agree)."""
    chosen = root or os.environ.get(DATA_ENV) or Path.home() / ".cache" / "mmrec" / "data"
    return Path(chosen).expanduser()


def downloads_dir(root: Path, group: str) -> Path:
    """Where source files are kept between preparations (``<root>/_downloads/<group>``)."""
    path = root / "_downloads" / group
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def staging(root: Path, name: str, force: bool = False) -> Iterator[Path]:
    """Yield an empty hidden temp folder; on success it replaces ``<root>/<name>`` in one rename.

    On any error (or interrupt) the temp folder is deleted, so a prepared folder is either complete or
    absent. A per-name lock stops two preparations of the same set from racing; temp folders left by a
    killed process are removed on the next run.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    with locked(root / f".{name}"):
        for stale in root.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists() and not force:
            raise AlreadyPrepared(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
        try:
            yield tmp
            _make_readable(tmp)
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-old-", dir=root))
                os.replace(final, old / name)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _make_readable(folder: Path) -> None:
    """Give the folder and its files the user's default permissions (temp files are created private)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def k_core(frame: pd.DataFrame, k: int, user: str = "user_id", item: str = "item_id") -> tuple[pd.DataFrame, int]:
    """MMRec's iterative k-core: drop users and items with fewer than ``k`` rows until none is left.

    Returns the filtered frame and the number of rounds that removed something.
    """
    rounds = 0
    if k <= 1:
        return frame, rounds
    while True:
        user_counts = frame[user].map(frame[user].value_counts())
        item_counts = frame[item].map(frame[item].value_counts())
        keep = (user_counts >= k) & (item_counts >= k)
        if keep.all():
            return frame, rounds
        frame = frame[keep]
        rounds += 1


def mmrec_filter(frame: pd.DataFrame, k: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """MMRec's preprocessing: drop incomplete rows, duplicate (user, item, timestamp), then k-core."""
    n_raw = len(frame)
    frame = frame.dropna(subset=["user_id", "item_id", "timestamp"])
    n_complete = len(frame)
    frame = frame.drop_duplicates(subset=["user_id", "item_id", "timestamp"])
    n_unique = len(frame)
    frame, rounds = k_core(frame, k)
    info = {
        "procedure": "MMRec 0rating2inter: dropna, drop duplicate (user, item, timestamp), iterative k-core",
        "k_core": k,
        "k_core_rounds": rounds,
        "rows_raw": n_raw,
        "rows_dropped_missing": n_raw - n_complete,
        "rows_dropped_duplicate": n_complete - n_unique,
        "rows_after_k_core": len(frame),
    }
    return frame.reset_index(drop=True), info


def write_interactions_tsv(path: Path, frame: pd.DataFrame) -> None:
    """Raw-layout ``interactions.tsv``: raw ids as strings, header ``user_id item_id rating timestamp``."""
    out = frame[RAW_COLUMNS].copy()
    for col in ("user_id", "item_id"):
        out[col] = out[col].astype(str)
        if out[col].str.contains(r"[\t\n\r]", regex=True).any():
            raise DataError(path, f"a {col} contains a tab or newline", "clean the source ids")
    out.to_csv(path, sep="\t", index=False, lineterminator="\n")


def write_items_jsonl(path: Path, items: list[dict[str, Any]]) -> None:
    """``items.jsonl``: one JSON object per item, in the given order."""
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


def raw_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {
        "users": int(frame["user_id"].nunique()),
        "items": int(frame["item_id"].nunique()),
        "interactions": int(len(frame)),
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def describe_outputs(folder: Path) -> dict[str, Any]:
    """Checksums of the top-level files; sub-folders (images) summarised by file count and size."""
    files: dict[str, Any] = {}
    for path in sorted(folder.iterdir()):
        if path.name == MANIFEST:
            continue
        if path.is_file():
            entry: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            if path.suffix == ".npy":
                arr = np.load(path, mmap_mode="r")
                entry.update(shape=list(arr.shape), dtype=str(arr.dtype))
            files[path.name] = entry
        elif path.is_dir():
            inner = [p for p in path.rglob("*") if p.is_file()]
            files[path.name + "/"] = {"files": len(inner), "bytes": sum(p.stat().st_size for p in inner)}
    return files


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add output checksums and write ``manifest.json`` atomically; returns the manifest."""
    manifest = {"manifest_version": MANIFEST_VERSION, **manifest, "outputs": describe_outputs(folder)}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    return manifest


def show_licence_once(source: Source, downloads: Path) -> bool:
    """Print the source's licence the first time anything is downloaded from it; True when printed."""
    marker = downloads / "LICENCE.txt"
    if marker.exists():
        return False
    text = f"{source.title}\n{source.homepage}\n\n{source.licence}\n"
    try:
        from rich.console import Console
        from rich.panel import Panel

        Console(file=sys.stdout).print(Panel(text.strip(), title="Licence terms of the data you are downloading"))
    except ImportError:  # pragma: no cover - rich is a dependency
        print(text)
    atomic_write_text(marker, text)
    return True
