"""The LVLM study's keyword file: CSV ``Image Name,Keywords``, one row per item with an answer.

``Keywords`` is the decoded answer in the study's form, ``[Category] {Feeding}, [Age Group] {Infant}, ...``,
rebuilt from the parsed attributes (in the prompt's order; attributes not found are left out), or the raw
answer (whitespace collapsed) where nothing parsed. ``Image Name`` is the item's image file name (its
``item_id`` when it has no image).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrec.cache import atomic_write_text
from mmrec.errors import DataError
from mmrec.features.lvlm.parse import parse_answer
from mmrec.features.lvlm.prompts import Prompt

if TYPE_CHECKING:
    from mmrec.features.lvlm.inputs import ItemContent

HEADER = ("Image Name", "Keywords")


def keywords_text(attributes: Mapping[str, str], prompt: Prompt, raw: str | None = None) -> str:
    """``[Category] {Feeding}, [Age Group] {Infant}`` from parsed pairs; the raw answer when none parsed."""
    pairs = [f"[{a}] {{{attributes[a]}}}" for a in prompt.attributes if attributes.get(a)]
    return ", ".join(pairs) if pairs else " ".join((raw or "").split())


def image_name(content: ItemContent) -> str:
    return Path(content.image_path).name if content.image_path is not None else str(content.item_id)


def write_keywords_csv(
    path: str | Path, contents: Sequence[ItemContent], records: Sequence[dict[str, Any] | None], prompt: Prompt
) -> Path:
    """Write the CSV atomically (items without a record, i.e. without content, are left out)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for content, record in zip(contents, records, strict=True):
        if record is not None:
            writer.writerow(
                (image_name(content), keywords_text(record.get("attributes") or {}, prompt, record.get("raw")))
            )
    path = Path(path)
    atomic_write_text(path, buf.getvalue())
    return path


def read_keywords_csv(path: str | Path, prompt: Prompt) -> dict[str, dict[str, str]]:
    """``{image name: parsed attributes}`` from a keyword CSV (this module's or the study's own)."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header != HEADER:
            raise DataError(path, f"header {list(header)}; expected {list(HEADER)}")
        return {row[0]: parse_answer(row[1], prompt) for row in reader if row}
