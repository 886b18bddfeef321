"""One content-addressed cache folder, safe under concurrent jobs.

Keys are hashes of content (never of names). Writes are atomic (:mod:`mmrec.atomic_io`) and guarded by a
per-key file lock, so two jobs building the same artifact build it once and never see a half-written file.
Entries hold tensors only: a header with the kind, key, size and sha256 of the payload, then the payload read
with ``torch.load(weights_only=True)``, so a file planted in a shared cache cannot run code, and a corrupted,
truncated or foreign one is reported and rebuilt (:func:`cached_tensor`).
``python -m mmrec.cache list|prune`` inspects and cleans it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from mmrec.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text, ensure_writable_folder

__all__ = [
    "InvalidEntry",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "cache_root",
    "cached_tensor",
    "decode_entry",
    "encode_entry",
    "hash_parts",
    "list_entries",
    "locked",
    "prune",
]  # the atomic_* writers live in mmrec.atomic_io; re-exported for existing imports

log = logging.getLogger(__name__)

ENV_VAR = "MMREC_CACHE"


def cache_root() -> Path:
    """The cache folder: ``$MMREC_CACHE`` or ``outputs/cache`` under the current directory."""
    root = Path(os.environ.get(ENV_VAR, Path("outputs") / "cache")).expanduser()
    ensure_writable_folder(root, f"cache folder (${ENV_VAR})")
    return root


def hash_parts(*parts: Any) -> str:
    """Stable sha256 (hex, 24 chars) over arrays, tensors, strings and JSON-able objects."""
    h = hashlib.sha256()
    for part in parts:
        _update(h, part)
    return h.hexdigest()[:24]


def _update(h: Any, part: Any) -> None:
    if isinstance(part, torch.Tensor):
        part = part.detach().cpu()
        if part.is_sparse:
            part = part.coalesce()
            _update(h, ("sparse", part.indices(), part.values(), tuple(part.shape)))
            return
        part = part.contiguous().numpy()
    if isinstance(part, np.ndarray):
        arr = np.ascontiguousarray(part)
        h.update(f"nd:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    elif isinstance(part, bytes | bytearray):
        h.update(b"b:")
        h.update(part)
    elif isinstance(part, str):
        h.update(b"s:")
        h.update(part.encode())
    elif isinstance(part, list | tuple):
        h.update(f"seq{len(part)}:".encode())
        for p in part:
            _update(h, p)
    elif isinstance(part, dict):
        h.update(f"map{len(part)}:".encode())
        for k in sorted(part, key=str):
            _update(h, str(k))
            _update(h, part[k])
    else:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through :func:`mmrec.atomic_io.atomic_write_bytes`."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def locked(path: str | Path, timeout: float = -1) -> Iterator[None]:
    """Hold an inter-process lock tied to ``path`` (a sibling ``.lock`` file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=timeout):
        yield


# ---------------------------------------------------------------- entries: header + checksum + tensors only

MAGIC = b"MMREC-CACHE 2\n"


class InvalidEntry(Exception):
    """A cache file that is not a complete, intact entry for its kind and key (the message says why)."""


def encode_entry(obj: Any, kind: str, key: str) -> bytes:
    """``MAGIC``, one JSON header line (kind, key, payload size and sha256), then the ``torch.save`` payload."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    header = {"kind": kind, "key": key, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode_entry(raw: bytes, kind: str, key: str) -> Any:
    """The object in an entry, or :class:`InvalidEntry`. Loads with ``weights_only=True``: never runs code."""
    if not raw.startswith(MAGIC):
        raise InvalidEntry("not an mmrec cache entry (unknown header: a foreign or older file)")
    line_end = raw.find(b"\n", len(MAGIC))
    if line_end < 0:
        raise InvalidEntry("truncated header")
    try:
        header = json.loads(raw[len(MAGIC) : line_end])
        expected_size, expected_sha = int(header["bytes"]), str(header["sha256"])
    except (ValueError, KeyError, TypeError):
        raise InvalidEntry("unreadable header") from None
    if (header.get("kind"), header.get("key")) != (kind, key):
        raise InvalidEntry(f"holds {header.get('kind')}/{header.get('key')}, not {kind}/{key}")
    payload = raw[line_end + 1 :]
    if len(payload) != expected_size:
        raise InvalidEntry(f"truncated: {len(payload)} of {expected_size} payload bytes")
    if hashlib.sha256(payload).hexdigest() != expected_sha:
        raise InvalidEntry("checksum mismatch (corrupted)")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - e.g. a pickle that asks for a non-tensor class
        raise InvalidEntry(f"refused by the tensors-only loader ({type(e).__name__})") from None


def _read_entry(path: Path, kind: str, key: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidEntry(f"unreadable ({e.strerror or e})") from None
    return decode_entry(raw, kind, key)


def cached_tensor(kind: str, key: str, build: Callable[[], Any], root: Path | None = None) -> Any:
    """Return the tensors cached under ``<root>/<kind>/<key>.pt``, building and saving them once.

    ``build`` runs under the key's lock, so concurrent jobs build each artifact once. An entry may hold
    tensors and containers of them only. A corrupted, truncated or foreign file under the key's name is
    reported (one warning naming the file and the problem) and rebuilt; it is never unpickled as code.
    """
    path = (root or cache_root()) / kind / f"{key}.pt"
    if path.exists():
        with contextlib.suppress(InvalidEntry):
            return _read_entry(path, kind, key)
    with locked(path):
        if path.exists():
            try:
                return _read_entry(path, kind, key)
            except InvalidEntry as e:
                log.warning("cache entry %s: %s; rebuilding it", path, e)
                warnings.warn(f"cache entry {path}: {e}; rebuilding it", RuntimeWarning, stacklevel=2)
                path.unlink(missing_ok=True)
        obj = build()
        atomic_write_bytes(path, encode_entry(obj, kind, key))
        return obj


def list_entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every cached artifact: kind, key, size in bytes, last access time."""
    root = root or cache_root()
    rows = []
    for p in sorted(root.glob("*/*")):
        if p.is_file() and not p.name.endswith(".lock") and not p.name.startswith("."):
            st = p.stat()
            rows.append(
                {"kind": p.parent.name, "key": p.stem, "bytes": st.st_size, "atime": st.st_atime, "path": str(p)}
            )
    return rows


def prune(root: Path | None = None, older_than_days: float = 0.0, kind: str | None = None) -> list[str]:
    """Delete entries not used for ``older_than_days`` days (all when 0); returns the removed paths."""
    cutoff = time.time() - older_than_days * 86400
    removed = []
    for row in list_entries(root):
        if (kind is None or row["kind"] == kind) and row["atime"] <= cutoff:
            with locked(row["path"]):
                Path(row["path"]).unlink(missing_ok=True)
            Path(row["path"] + ".lock").unlink(missing_ok=True)
            removed.append(row["path"])
    return removed


def main(argv: list[str] | None = None) -> int:
    import argparse

    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="python -m mmrec.cache", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list cached artifacts")
    p = sub.add_parser("prune", help="delete cached artifacts")
    p.add_argument("--older-than-days", type=float, default=0.0)
    p.add_argument("--kind", default=None)
    args = parser.parse_args(argv)
    console = Console()
    if args.cmd == "list":
        table = Table(title=f"mmrec cache: {cache_root()}")
        for col in ("kind", "key", "MB", "last used"):
            table.add_column(col)
        rows = list_entries()
        for r in rows:
            table.add_row(r["kind"], r["key"], f"{r['bytes'] / 2**20:.2f}", time.ctime(r["atime"]))
        console.print(table)
        console.print(f"{len(rows)} entries, {sum(r['bytes'] for r in rows) / 2**20:.1f} MB")
    else:
        removed = prune(older_than_days=args.older_than_days, kind=args.kind)
        console.print(f"removed {len(removed)} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
