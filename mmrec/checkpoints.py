"""Lightning checkpoints written atomically and read without running code.

Writes: ``torch.save`` into :func:`mmrec.atomic_io.atomic_write_bytes` (a job killed while saving keeps its
last good file), with ``mmrec:state_sha256``, a checksum of the model's weights, inside the checkpoint.
Reads: ``torch.load(weights_only=True)`` with an explicit allow-list of the few non-tensor types Lightning
stores (:data:`ALLOWED_GLOBALS`); a file that asks for any other class, that is truncated, or whose weights
do not match their checksum raises :class:`~mmrec.errors.DataError` naming the file, never executes.
"""

from __future__ import annotations

import hashlib
import io
import pathlib
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from mmrec.atomic_io import atomic_write_bytes
from mmrec.errors import DataError

CHECKSUM_KEY = "mmrec:state_sha256"

# what Lightning's own callbacks and loops put into a checkpoint besides tensors and plain containers
ALLOWED_GLOBALS: list[Any] = [pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath]


def state_checksum(state_dict: dict[str, Any]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state dict's tensors (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        value = state_dict[name]
        h.update(name.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write ``checkpoint`` atomically, with the checksum of its ``state_dict``."""
    if isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = {**checkpoint, CHECKSUM_KEY: state_checksum(checkpoint["state_dict"])}
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's content, loaded tensors-only; :class:`DataError` naming ``path`` when it is bad."""
    path = Path(path)
    fix = "delete it, or rerun without resume=true (a fresh run gives the same results)"
    if not path.exists():
        raise DataError(path, "checkpoint not found")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, a class outside the allow-list
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            path, f"not a readable checkpoint (corrupted, truncated or foreign: {reason[:300]})", fix
        ) from None
    if not isinstance(checkpoint, dict):
        raise DataError(path, f"not a checkpoint (holds a {type(checkpoint).__name__})", fix)
    expected = checkpoint.get(CHECKSUM_KEY)
    if expected is not None and state_checksum(checkpoint.get("state_dict", {})) != expected:
        raise DataError(path, "checkpoint weights do not match their checksum (corrupted)", fix)
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O through :func:`save` and :func:`load` (resume, best-checkpoint testing)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load(path, map_location=map_location if map_location is not None else "cpu")
