"""A loopback HTTP server standing in for every upstream host, and a guard against any other traffic.

Files are served at ``/<host>/<path>`` so that ``DownloadSettings(mirror=server.url)`` maps each real URL onto
it. The server honours ``Range`` requests and can misbehave on purpose: send a short body once, send a
corrupted body once, ignore ranges, or answer 404.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mmrec.prepare.download import DownloadSettings

Body = bytes | Callable[[dict[str, list[str]]], bytes]


@dataclass
class Route:
    body: Body
    content_type: str = "application/octet-stream"
    truncate_times: int = 0  # announce the full length, send half, close
    corrupt_times: int = 0  # send the full length with flipped bytes
    ignore_range: bool = False
    status: int = 200


@dataclass
class LocalServer:
    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path with query, Range header)

    def add(self, url: str, body: Body, **options: object) -> None:
        """Serve ``body`` for the real ``url`` (host + path; the query is passed to callable bodies)."""
        parts = urllib.parse.urlsplit(url)
        self.routes[f"/{parts.netloc}{parts.path}"] = Route(body, **options)  # type: ignore[arg-type]

    def hits(self, url: str) -> list[tuple[str, str | None]]:
        parts = urllib.parse.urlsplit(url)
        prefix = f"/{parts.netloc}{parts.path}"
        return [r for r in self.requests if r[0].split("?")[0] == prefix]


def _handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            range_header = self.headers.get("Range")
            server.requests.append((self.path, range_header))
            path, _, query = self.path.partition("?")
            route = server.routes.get(path)
            if route is None or route.status == 404:
                self.send_error(404)
                return
            if route.status != 200:
                self.send_error(route.status)
                return
            body = route.body(urllib.parse.parse_qs(query)) if callable(route.body) else route.body
            start = 0
            if range_header and not route.ignore_range:
                start = int(range_header.split("=")[1].split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
            if route.corrupt_times > 0:
                route.corrupt_times -= 1
                middle = len(body) // 2
                body = body[:middle] + bytes(b ^ 0xFF for b in body[middle : middle + 16]) + body[middle + 16 :]
            payload = body[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(payload)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if route.truncate_times > 0:
                route.truncate_times -= 1
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection that is not to 127.0.0.1 (tests must never reach the network)."""
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to connect to {address}")
        return real(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", guarded)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("MMREC_PREPARE_MIRROR", raising=False)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    state = LocalServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def settings(server: LocalServer) -> DownloadSettings:
    return DownloadSettings(mirror=server.url, timeout_s=5.0, retries=3, backoff_s=0.0, progress=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"
