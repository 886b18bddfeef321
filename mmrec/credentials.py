"""Storage credentials: taken from the environment, never written to a file, a log or a tracker.

Give a database password in one of the ways libpq and mmrec read it, never in a config file:

- ``PGPASSWORD`` or ``~/.pgpass`` (libpq's own mechanisms): the URL carries no password at all,
  ``hydra.sweeper.storage=postgresql://user@host/db``;
- ``MMREC_STORAGE=postgresql://user:pass@host/db`` in the environment, with ``hydra.sweeper.storage`` left
  ``null`` (or set to the same URL with the password written ``***``).

A password typed into ``hydra.sweeper.storage`` still works, but the sweeper moves it into ``MMREC_STORAGE``
of its own process (inherited by the trials it starts) and hands trials the redacted URL, so that
``summary.json``, ``.hydra/*.yaml``, ``multirun.yaml``, W&B configs and logs hold ``user:***@host`` only.
"""

from __future__ import annotations

import os
import re
from typing import Any

ENV_VAR = "MMREC_STORAGE"
PLACEHOLDER = "***"

# scheme://user:password@  (the password ends at the first '@'; a literal '@' in a password is written %40)
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s'\"]*):(?P<password>[^@\s'\"]*)@")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{PLACEHOLDER}@", text)


def redact_tree(obj: Any) -> Any:
    """A copy of a JSON-like tree (dicts, lists, tuples, strings) with every URL password redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_tree(k) if isinstance(k, str) else k: redact_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact_tree(v) for v in obj)
    return obj


def has_password(url: str) -> bool:
    """Whether ``url`` carries a real password (not the ``***`` placeholder)."""
    m = _URL_PASSWORD.search(url)
    return bool(m) and m["password"] not in ("", PLACEHOLDER)


def from_environment() -> str | None:
    """``$MMREC_STORAGE`` when set and not empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    return value or None


def connection_url(url: str) -> str:
    """The URL to connect with: a redacted password comes back from ``$MMREC_STORAGE`` when that is the same
    URL, and is otherwise dropped (libpq then reads ``PGPASSWORD`` / ``~/.pgpass``)."""
    if f":{PLACEHOLDER}@" not in url:
        return url
    env = from_environment()
    if env is not None and redact(env) == url:
        return env
    return url.replace(f":{PLACEHOLDER}@", "@", 1)


def hide_in_environment(url: str) -> str:
    """Keep a password-bearing ``url`` in ``$MMREC_STORAGE`` (for this process and its children); returns
    the redacted URL that may be written anywhere."""
    if has_password(url):
        os.environ[ENV_VAR] = url
    return redact(url)
