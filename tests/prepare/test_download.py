"""Resumable, verified downloads against a misbehaving loopback server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mmrec.errors import DataError
from mmrec.prepare.download import DownloadSettings, fetch
from mmrec.prepare.registry import RemoteFile
from tests.prepare.builders import gzip_bytes, zip_bytes

URL = "https://files.example.org/datasets/archive.zip"


@pytest.fixture
def archive() -> bytes:
    # incompressible payload so a corrupted middle lands in the deflated data, not in padding
    payload = bytes(range(256)) * 64 + hashlib.sha512(b"seed").digest() * 300
    return zip_bytes({"data/a.bin": payload, "data/b.txt": b"hello" * 500})


def test_mirror_maps_host_and_path() -> None:
    settings = DownloadSettings(mirror="http://127.0.0.1:9/")
    assert settings.resolve("https://h.org/a/b.zip?x=1&y=2") == "http://127.0.0.1:9/h.org/a/b.zip?x=1&y=2"
    assert DownloadSettings().resolve("https://h.org/a") == "https://h.org/a"


def test_fetch_records_checksums_and_verifies_the_published_md5(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive)
    md5 = hashlib.md5(archive).hexdigest()
    record = fetch(
        RemoteFile(URL, "archive.zip", md5=md5, checksum_source="upstream .md5"), tmp_path / "a.zip", settings
    )
    assert (tmp_path / "a.zip").read_bytes() == archive
    assert record.sha256 == hashlib.sha256(archive).hexdigest()
    assert record.md5 == md5 and record.bytes == len(archive)
    assert record.checksum.startswith("md5 matches the published sum")
    assert record.url == URL and record.fetched_from.startswith(server.url)
    assert not (tmp_path / "a.zip.part").exists()
    sidecar = json.loads((tmp_path / "a.zip.json").read_text())
    assert sidecar["sha256"] == record.sha256


def test_truncated_download_is_resumed_with_a_range_request(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive, truncate_times=1)
    record = fetch(RemoteFile(URL, "archive.zip"), tmp_path / "a.zip", settings)
    assert (tmp_path / "a.zip").read_bytes() == archive
    hits = server.hits(URL)
    assert len(hits) == 2 and hits[0][1] is None
    assert hits[1][1] == f"bytes={len(archive) // 2}-"  # resumed where the short body ended
    assert record.attempts == 2
    assert record.checksum == "no published sum: sha256 recorded"


def test_truncated_download_restarts_when_the_server_ignores_ranges(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive, truncate_times=2, ignore_range=True)
    fetch(RemoteFile(URL, "archive.zip"), tmp_path / "a.zip", settings)
    assert (tmp_path / "a.zip").read_bytes() == archive
    assert len(server.hits(URL)) == 3


def test_corrupted_zip_is_deleted_and_fetched_again(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive, corrupt_times=1)
    record = fetch(RemoteFile(URL, "archive.zip"), tmp_path / "a.zip", settings)
    assert (tmp_path / "a.zip").read_bytes() == archive
    assert [h[1] for h in server.hits(URL)] == [None, None]  # second attempt from scratch, not resumed
    assert record.attempts == 2


def test_corrupted_gzip_is_detected(server, settings, tmp_path) -> None:
    body = gzip_bytes("line\n" * 5000 + "".join(chr(33 + i % 90) for i in range(20000)))
    url = "https://files.example.org/meta.json.gz"
    server.add(url, body, corrupt_times=1)
    fetch(RemoteFile(url, "meta.json.gz"), tmp_path / "meta.json.gz", settings)
    assert (tmp_path / "meta.json.gz").read_bytes() == body
    assert len(server.hits(url)) == 2


def test_checksum_mismatch_fails_after_bounded_retries(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive)
    with pytest.raises(DataError, match="md5") as info:
        fetch(RemoteFile(URL, "archive.zip", md5="0" * 32), tmp_path / "a.zip", settings)
    assert URL.split("//")[1] in str(info.value)  # names the URL it fetched
    assert len(server.hits(URL)) == settings.retries
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "a.zip.part").exists()


def test_missing_file_fails_at_once_naming_the_url(server, settings, tmp_path) -> None:
    url = "https://files.example.org/nothing.zip"
    with pytest.raises(DataError, match="HTTP 404") as info:
        fetch(RemoteFile(url, "nothing.zip"), tmp_path / "n.zip", settings)
    assert "files.example.org/nothing.zip" in str(info.value)
    assert len(server.hits(url)) == 1


def test_html_page_instead_of_data_is_rejected(server, settings, tmp_path) -> None:
    url = "https://files.example.org/data.csv"
    server.add(url, b"<!DOCTYPE html><html><body>Please sign in</body></html>", content_type="text/html")
    with pytest.raises(DataError, match="HTML page"):
        fetch(RemoteFile(url, "data.csv"), tmp_path / "data.csv", settings)


def test_verified_file_is_reused_without_network(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive)
    first = fetch(RemoteFile(URL, "archive.zip"), tmp_path / "a.zip", settings)
    again = fetch(RemoteFile(URL, "archive.zip"), tmp_path / "a.zip", settings)
    assert len(server.hits(URL)) == 1
    assert again.reused and again.sha256 == first.sha256 and again.downloaded_at == first.downloaded_at


def test_corrupt_existing_file_is_replaced(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive)
    dest = tmp_path / "a.zip"
    dest.write_bytes(archive[: len(archive) // 3])  # e.g. a copy cut short by a full disk
    fetch(RemoteFile(URL, "archive.zip"), dest, settings)
    assert dest.read_bytes() == archive and len(server.hits(URL)) == 1


def test_hand_downloaded_copy_is_used_and_checked(settings, tmp_path: Path, archive) -> None:
    local = tmp_path / "by-hand"
    local.mkdir()
    (local / "archive.zip").write_bytes(archive)
    settings.local_dir = local
    record = fetch(
        RemoteFile(URL, "archive.zip", md5=hashlib.md5(archive).hexdigest()),
        tmp_path / "d" / "a.zip",
        settings,
    )
    assert record.path == str(local / "archive.zip") and record.fetched_from.startswith("file://")
    (local / "archive.zip").write_bytes(archive[:100])
    with pytest.raises(DataError, match="hand-downloaded"):
        fetch(RemoteFile(URL, "archive.zip"), tmp_path / "d" / "a.zip", settings)


def test_endless_short_bodies_fail_after_bounded_retries(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive, truncate_times=99)
    with pytest.raises(DataError, match=r"after 3 attempts.*received .* bytes.*resumed next time"):
        fetch(RemoteFile(URL, "archive.zip"), tmp_path / "a.zip", settings)
    assert len(server.hits(URL)) == 3
    assert not (tmp_path / "a.zip").exists()  # never used
    part = (tmp_path / "a.zip.part").read_bytes()
    assert archive.startswith(part) and len(archive) // 2 < len(part) < len(archive)


def test_file_changed_after_verification_is_checked_again(server, settings, tmp_path, archive) -> None:
    server.add(URL, archive)
    dest = tmp_path / "a.zip"
    fetch(RemoteFile(URL, "archive.zip"), dest, settings)
    dest.write_bytes(archive[:-10])  # damaged later: size and mtime no longer match the sidecar
    record = fetch(RemoteFile(URL, "archive.zip"), dest, settings)
    assert dest.read_bytes() == archive and not record.reused
    assert len(server.hits(URL)) == 2
