"""summary.json: versioned, schema-validated on every write and every read."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from mmrec.atomic_io import atomic_write_text
from mmrec.credentials import redact_tree
from mmrec.errors import DataError

SCHEMA_VERSION = 1
FILENAME = "summary.json"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "summary.schema.json").read_text())


@lru_cache(maxsize=1)
def _validator() -> Any:
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


def validate(summary: dict[str, Any], source: str = "<summary>") -> None:
    error = jsonschema.exceptions.best_match(_validator().iter_errors(summary))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise DataError(source, f"invalid summary at '{where}': {error.message}")


def write(summary: dict[str, Any], run_dir: str | Path) -> Path:
    """Validate and write atomically; every URL password in the record is redacted first."""
    path = Path(run_dir) / FILENAME
    summary = redact_tree(json.loads(json.dumps(summary, default=_default)))
    validate(summary, str(path))
    atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True))
    return path


def read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.exists():
        raise DataError(path, "no summary.json here", "point at a finished run directory")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON: {e}") from None
    validate(data, str(path))
    return data


def find(root: str | Path) -> list[Path]:
    """Every summary.json below ``root``."""
    return sorted(Path(root).rglob(FILENAME))


def _default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)
