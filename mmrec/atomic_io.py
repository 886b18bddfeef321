"""Atomic file writes (torch-free): a reader sees the old file or the whole new one, never a part.

Every write goes to a temporary file in the target's folder (``.<name>.<random>.tmp``), is flushed and
fsync'ed, gets the usual permissions and is renamed over the target (``os.replace``, atomic on POSIX). A
write that fails (disk full, a killed process, an exception while producing the data) leaves the old file
as it was; the temporary file is removed unless the process was killed, and such leftovers are hidden
(dot-files) and never read as results.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def ensure_writable_folder(path: str | Path, what: str) -> Path:
    """Create ``path`` if needed and check a file can be written in it; ``OSError`` → a clear ConfigError."""
    from mmrec.errors import ConfigError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"{what} {path}: not a folder mmrec can write in ({e.strerror or e})") from None
    return path


def _write_all(f: IO[bytes], data: bytes) -> None:
    """Write ``data`` to ``f`` (one place, so that fault-injection tests can make it fail midway)."""
    f.write(data)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def replace_when_complete(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a file to write; it replaces ``path`` only if the ``with`` block ends without an exception."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode {mode!r}: use 'wb' or 'w'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:  # f.name: the temporary path
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{path}: expected bytes, got {type(data).__name__}")
    with replace_when_complete(path, "wb") as f:
        _write_all(f, bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, **dumps_kwargs: Any) -> None:
    """Serialise ``obj`` first (a value JSON cannot hold fails before anything is written), then write it."""
    atomic_write_text(path, json.dumps(obj, **dumps_kwargs))
