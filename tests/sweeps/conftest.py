"""A throw-away PostgreSQL 15 server on 127.0.0.1 for the multi-worker tests.

Uses the Debian binaries (``/usr/lib/postgresql/15/bin`` or ``$MMREC_PG_BIN``). PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user (``runuser``) in a temporary folder it owns.
Skipped when the binaries are absent, except with ``CI=true`` (then it fails).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN_CANDIDATES = [
    os.environ.get("MMREC_PG_BIN", ""),
    "/usr/lib/postgresql/15/bin",
    *sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")),
]


def _pg_bin() -> Path | None:
    for candidate in PG_BIN_CANDIDATES:
        if candidate and (Path(candidate) / "pg_ctl").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg2://postgres@127.0.0.1:<port>/postgres`` of a server that lives for the session."""
    in_ci = os.environ.get("CI", "").lower() == "true"
    bin_dir = _pg_bin()
    if bin_dir is None:
        if in_ci:
            pytest.fail("CI=true but no PostgreSQL binaries (pg_ctl, initdb) were found")
        pytest.skip("PostgreSQL binaries (pg_ctl, initdb) not found")
    if importlib.util.find_spec("psycopg2") is None:  # the `postgres` extra; CI installs it
        if in_ci:
            pytest.fail("CI=true but psycopg2 is not installed (pip install -e '.[postgres]')")
        pytest.skip("psycopg2 not installed (the `postgres` extra)")
    root = Path(tempfile.mkdtemp(prefix="mmrec-pg-"))
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = _free_port()
    try:
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            cwd=root,
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c max_connections=100"
        started = subprocess.run(
            [
                *prefix,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            cwd=root,
        )
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{log.read_text() if log.exists() else ''}")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server (one per test)."""
    import uuid

    import sqlalchemy

    name = "t_" + uuid.uuid4().hex[:12]
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()
