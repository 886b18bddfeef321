"""Read an offline W&B run file back (a LevelDB-style log of protobuf records), for tests of what was logged."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def wandb_records(path: Path) -> Iterator[Any]:
    """Every record (``wandb_internal_pb2.Record``) of a ``run-*.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, block = path.read_bytes(), 32768
    assert raw[:4] == b":W&B"

    def chunks() -> Iterator[bytes]:
        pos, buf = 7, b""
        while pos + 7 <= len(raw):
            left = block - pos % block
            if left < 7:
                pos += left
                continue
            _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
            pos += 7
            data = raw[pos : pos + length]
            pos += length
            if kind == 1:
                yield data
            elif kind == 2:
                buf = data
            elif kind == 3:
                buf += data
            elif kind == 4:
                yield buf + data

    for data in chunks():
        rec = pb.Record()
        rec.ParseFromString(data)
        yield rec


def read_wandb_offline(path: Path) -> dict:
    """Logged history and summary values of an offline W&B run file, by key."""
    values: dict = {}
    for rec in wandb_records(path):
        kind = rec.WhichOneof("record_type")
        items = rec.history.item if kind == "history" else rec.summary.update if kind == "summary" else []
        for it in items:
            values[it.key or "/".join(it.nested_key)] = json.loads(it.value_json)
    return values


def run_info(path: Path) -> dict[str, str]:
    """The run record's group, job type and display name."""
    for rec in wandb_records(path):
        if rec.WhichOneof("record_type") == "run":
            return {"group": rec.run.run_group, "job_type": rec.run.job_type, "name": rec.run.display_name}
    return {}
