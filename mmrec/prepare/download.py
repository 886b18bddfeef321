"""Resumable, verified downloads with ``urllib``.

A download streams into ``<dest>.part``; after a dropped connection or a short body (fewer bytes than the
server announced) the next attempt resumes it with an HTTP ``Range`` request (or starts over when the server
ignores ranges). The finished file is checked before it is renamed into place: the published checksum where
the source publishes one, and its structure (zip CRCs, a full gzip decode, ``.npy`` header, no HTML page
instead of data). A file that fails a check is deleted and fetched again from scratch, a bounded number of
times; it is never used. Each file keeps a ``<dest>.json`` sidecar with its record (URL, sums, dates).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mmrec.cache import atomic_write_text
from mmrec.errors import DataError
from mmrec.prepare.registry import RemoteFile

MIRROR_ENV = "MMREC_PREPARE_MIRROR"
CHUNK = 1 << 20
USER_AGENT = "mmrec-prepare/0.1 (research data preparation; python-urllib)"
_NOT_RETRYABLE = {400, 401, 403, 404, 405, 410, 451}


class CorruptDownload(Exception):
    """A downloaded file failed a check; it is deleted and fetched again."""


class FollowUrl(CorruptDownload):
    """The server answered with a page that points at the real file (e.g. a confirmation form)."""

    def __init__(self, url: str, reason: str):
        super().__init__(reason)
        self.url = url


class _ShortBody(Exception):
    """The connection ended before the announced number of bytes arrived; the part file is resumed."""


class _RangeRejected(Exception):
    """The server cannot serve the requested range (HTTP 416); the part file is discarded."""


@dataclass
class DownloadSettings:
    """How to fetch: mirror, timeouts, bounded retries, progress bars, a folder of hand-downloaded files."""

    mirror: str | None = None
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 2.0
    progress: bool = True
    local_dir: Path | None = None
    user_agent: str = USER_AGENT

    @classmethod
    def from_env(cls, **overrides: Any) -> DownloadSettings:
        settings = cls(mirror=os.environ.get(MIRROR_ENV) or None)
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings

    def resolve(self, url: str) -> str:
        """The URL actually fetched: ``<mirror>/<host>/<path>?<query>`` when a mirror is set."""
        if not self.mirror:
            return url
        parts = urllib.parse.urlsplit(url)
        tail = parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")
        return f"{self.mirror.rstrip('/')}/{tail}"

    def backoff(self, attempt: int) -> None:
        if self.backoff_s > 0:
            time.sleep(min(self.backoff_s * 2 ** (attempt - 1), 30.0))


@dataclass
class FetchRecord:
    """What the manifest says about one source file."""

    url: str
    fetched_from: str
    file: str
    bytes: int
    sha256: str
    md5: str
    checksum: str
    downloaded_at: str
    last_modified: str | None = None
    attempts: int = 0
    reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""  # where the verified copy lies on this machine (not written to manifests)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        if not out["extra"]:
            out.pop("extra")
        return out


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def file_digests(path: Path) -> tuple[str, str, int]:
    """(md5, sha256, size) of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return md5.hexdigest(), sha.hexdigest(), size


def looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def check_structure(path: Path, name: str) -> None:
    """Structural checks by file type; raises CorruptDownload. ``name`` is the upstream file name."""
    lower = name.lower()
    if not lower.endswith((".html", ".htm")) and looks_like_html(path):
        raise CorruptDownload("received an HTML page instead of the file (an error, login or quota page?)")
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise CorruptDownload(f"zip member {bad!r} fails its CRC check")
        elif lower.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                while f.read(CHUNK):
                    pass
        elif lower.endswith(".npy"):
            import numpy as np

            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if arr.ndim != 2:
                raise CorruptDownload(f".npy array has shape {arr.shape}, expected [n_items, dim]")
        elif lower.endswith(".b"):
            from mmrec.prepare.binary_features import check_size

            check_size(path)
    except CorruptDownload:
        raise
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error, ValueError, OSError) as exc:
        raise CorruptDownload(f"{type(exc).__name__}: {exc}") from exc


def _verify(path: Path, remote: RemoteFile, validate: Callable[[Path], None] | None) -> tuple[str, str, int, str]:
    md5, sha, size = file_digests(path)
    if remote.md5 and md5 != remote.md5.lower():
        raise CorruptDownload(f"md5 {md5} differs from the published {remote.md5}")
    if remote.sha256 and sha != remote.sha256.lower():
        raise CorruptDownload(f"sha256 {sha} differs from the published {remote.sha256}")
    if validate is not None:  # first: it may recognise a page that points at the real file (FollowUrl)
        validate(path)
    check_structure(path, remote.filename)
    return md5, sha, size, _checksum_note(remote)


def _checksum_note(remote: RemoteFile) -> str:
    if remote.md5 or remote.sha256:
        kind = "md5" if remote.md5 else "sha256"
        where = f" ({remote.checksum_source})" if remote.checksum_source else ""
        return f"{kind} matches the published sum{where}"
    return "no published sum: sha256 recorded"


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    if not match:
        return None
    total = None if match.group(2) == "*" else int(match.group(2))
    return int(match.group(1)), total


def _stream_to_part(url: str, part: Path, settings: DownloadSettings, label: str) -> str | None:
    """Fetch ``url`` into ``part`` (resuming it when possible); returns the Last-Modified header."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            raise _RangeRejected(str(exc)) from exc
        raise
    with response:
        total: int | None
        content_range = _parse_content_range(response.headers.get("Content-Range"))
        if offset and response.status == 206 and content_range and content_range[0] == offset:
            mode, total = "ab", content_range[1]
        else:  # the server sent the whole file: start over
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not settings.progress,
                leave=False,
            ) as bar,
        ):
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as exc:
                    f.write(exc.partial)
                    raise _ShortBody(f"connection ended early ({exc})") from exc
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
        size = part.stat().st_size
        if total is not None and size != total:
            raise _ShortBody(f"received {size} of {total} bytes")
        return response.headers.get("Last-Modified")


def _write_sidecar(dest: Path, record: FetchRecord) -> None:
    """``<dest>.json``: the record plus the file's size and mtime when it was verified."""
    state = {**record.to_dict(), "reused": False, "mtime_ns": dest.stat().st_mtime_ns}
    atomic_write_text(dest.with_name(dest.name + ".json"), json.dumps(state, indent=2))


def _unchanged_since_verified(
    dest: Path, remote: RemoteFile, previous: dict[str, Any]
) -> tuple[str, str, int, str] | None:
    """The sums recorded when ``dest`` was verified, if the file is untouched since (same size and mtime)."""
    stat = dest.stat()
    if previous.get("bytes") != stat.st_size or previous.get("mtime_ns") != stat.st_mtime_ns:
        return None
    md5, sha = previous.get("md5"), previous.get("sha256")
    if not md5 or not sha:
        return None
    if (remote.md5 and md5 != remote.md5.lower()) or (remote.sha256 and sha != remote.sha256.lower()):
        return None
    return md5, sha, stat.st_size, _checksum_note(remote)


def _read_sidecar(dest: Path) -> dict[str, Any]:
    sidecar = dest.with_name(dest.name + ".json")
    with contextlib.suppress(OSError, ValueError):
        return json.loads(sidecar.read_text())
    return {}


def fetch(
    remote: RemoteFile,
    dest: Path,
    settings: DownloadSettings,
    validate: Callable[[Path], None] | None = None,
) -> FetchRecord:
    """Make ``dest`` hold a verified copy of ``remote``; returns its record.

    Order: an existing verified ``dest`` is reused; then a hand-downloaded copy in ``settings.local_dir``;
    else the file is downloaded (resumable, retried ``settings.retries`` times). Raises DataError naming the
    URL and the file when it cannot be obtained.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        previous = _read_sidecar(dest)
        try:
            known = _unchanged_since_verified(dest, remote, previous)
            md5, sha, size, verified = known or _verify(dest, remote, validate)
            record = FetchRecord(
                url=remote.url,
                fetched_from=previous.get("fetched_from", str(dest)),
                file=dest.name,
                bytes=size,
                sha256=sha,
                md5=md5,
                checksum=verified,
                downloaded_at=previous.get("downloaded_at", utc_now()),
                last_modified=previous.get("last_modified"),
                reused=True,
                path=str(dest),
            )
            if known is None:
                _write_sidecar(dest, record)
            return record
        except CorruptDownload as exc:
            print(f"[mmrec.prepare] {dest}: {exc}; fetching it again")
            dest.unlink()
    if settings.local_dir is not None:
        local = Path(settings.local_dir) / remote.filename
        if local.exists():
            try:
                md5, sha, size, verified = _verify(local, remote, validate)
            except CorruptDownload as exc:
                raise DataError(
                    local,
                    f"hand-downloaded copy of {remote.url} is unusable: {exc}",
                    "download it again or remove it to let mmrec.prepare fetch it",
                ) from exc
            return FetchRecord(
                remote.url,
                local.resolve().as_uri(),
                local.name,
                size,
                sha,
                md5,
                verified,
                utc_now(),
                reused=True,
                path=str(local),
            )

    part = dest.with_name(dest.name + ".part")
    url = settings.resolve(remote.url)
    last_error: Exception | None = None
    for attempt in range(1, max(1, settings.retries) + 1):
        try:
            last_modified = _stream_to_part(url, part, settings, remote.filename)
            md5, sha, size, verified = _verify(part, remote, validate)
        except FollowUrl as exc:
            part.unlink(missing_ok=True)
            url, last_error = settings.resolve(exc.url), exc
            continue
        except CorruptDownload as exc:
            print(f"[mmrec.prepare] {remote.filename}: {exc}; deleting it and fetching again")
            part.unlink(missing_ok=True)
            last_error = exc
        except _RangeRejected as exc:
            part.unlink(missing_ok=True)
            last_error = exc
            continue
        except urllib.error.HTTPError as exc:
            if exc.code in _NOT_RETRYABLE:
                part.unlink(missing_ok=True)
                raise DataError(
                    url,
                    f"HTTP {exc.code} {exc.reason} while fetching {remote.filename}",
                    "the upstream file moved or needs a login; check the URL in "
                    "mmrec/prepare/registry.py, use --mirror, or place the file by hand "
                    f"in --from-dir (expected name {remote.filename})",
                ) from exc
            last_error = exc
        except (_ShortBody, urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
            print(f"[mmrec.prepare] {remote.filename}: {exc}; will resume (attempt {attempt})")
            last_error = exc
        else:
            os.replace(part, dest)
            record = FetchRecord(
                url=remote.url,
                fetched_from=url,
                file=dest.name,
                bytes=size,
                sha256=sha,
                md5=md5,
                checksum=verified,
                downloaded_at=utc_now(),
                last_modified=last_modified,
                attempts=attempt,
                path=str(dest),
            )
            _write_sidecar(dest, record)
            return record
        if attempt < settings.retries:
            settings.backoff(attempt)
    if isinstance(last_error, CorruptDownload):
        part.unlink(missing_ok=True)
    kept = f"; the partial file {part} is resumed next time" if part.exists() else ""
    raise DataError(
        url,
        f"could not fetch {remote.filename} after {settings.retries} attempts: {last_error}{kept}",
        f"check the network and retry, use --mirror, or place a copy of {remote.filename} in --from-dir",
    )


def copy_or_link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def fetch_text(url: str, settings: DownloadSettings, max_bytes: int = 20 * 2**20) -> str:
    """GET a small text resource (a listing page) with the same mirror, timeout and retry rules."""
    resolved = settings.resolve(url)
    last: Exception | None = None
    for attempt in range(1, max(1, settings.retries) + 1):
        request = urllib.request.Request(resolved, headers={"User-Agent": settings.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:
                charset = response.headers.get_content_charset() or "utf-8"
                return response.read(max_bytes).decode(charset, errors="replace")
        except urllib.error.HTTPError as exc:
            if exc.code in _NOT_RETRYABLE:
                raise DataError(resolved, f"HTTP {exc.code} {exc.reason}", "check the URL or use --mirror") from exc
            last = exc
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
            last = exc
        if attempt < settings.retries:
            settings.backoff(attempt)
    raise DataError(
        resolved,
        f"could not fetch after {settings.retries} attempts: {last}",
        "check the network and retry, or use --mirror",
    )
