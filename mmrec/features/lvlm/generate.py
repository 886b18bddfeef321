"""Decoded item descriptions: greedy generation, stored per item as JSONL in the cache.

The store of one (model, prompt, generation settings) is ``<cache>/lvlm_generations/<key>.jsonl``, one record per
item content: ``{"item_id", "item_key", "prompt_id", "model", "raw", "attributes"}`` (``item_key`` hashes the
item's text and image bytes; ``attributes`` is the parse at generation time, re-parsed on every read so a better
parser needs no new generation). The file is rewritten atomically every ``flush_every`` new items, under its lock:
an interrupted run keeps what it finished, and a rerun generates only the rest.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmrec.cache import atomic_write_text, cache_root, hash_parts, locked
from mmrec.errors import ConfigError, DataError
from mmrec.features.lvlm.inputs import ItemContent, build_inputs
from mmrec.features.lvlm.loading import LoadedLVLM
from mmrec.features.lvlm.parse import parse_answer
from mmrec.features.lvlm.prompts import Prompt

log = logging.getLogger("mmrec.features.lvlm")

KIND = "lvlm_generations"
FORMAT_VERSION = 1


def _greedy_config(model: Any, max_new_tokens: int, pad_token_id: int | None) -> Any:
    """The model's generation config switched to greedy decoding with a length bound."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    cfg = copy.deepcopy(base) if base is not None else GenerationConfig()
    cfg.do_sample = False
    cfg.num_beams = 1
    cfg.temperature = None
    cfg.top_p = None
    cfg.top_k = None
    cfg.max_new_tokens = int(max_new_tokens)
    cfg.max_length = None
    if pad_token_id is not None:
        cfg.pad_token_id = pad_token_id
    return cfg


@torch.inference_mode()
def generate_batch(
    lvlm: LoadedLVLM,
    prompt: Prompt,
    texts: Sequence[str | None],
    images: Sequence[Any],
    max_new_tokens: int = 96,
    chat_format: str = "structured",
    image_placeholder: str = "<image>",
) -> list[str]:
    """The greedy answer (special tokens removed, stripped) to the prompt for each item of the batch."""
    if max_new_tokens < 1:
        raise ConfigError(f"lvlm max_new_tokens must be >= 1, got {max_new_tokens}")
    enc = build_inputs(lvlm, prompt, texts, images, chat_format, image_placeholder)
    cfg = _greedy_config(lvlm.model, max_new_tokens, lvlm.tokenizer.pad_token_id)
    out = lvlm.model.generate(**enc, generation_config=cfg)  # [B, T_in + T_new]
    new_tokens = out[:, enc["input_ids"].shape[1] :]
    return [t.strip() for t in lvlm.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def store_key(model_fingerprint: str, prompt: Prompt, max_new_tokens: int, dtype: str, extra: Any = None) -> str:
    return hash_parts(KIND, FORMAT_VERSION, model_fingerprint, prompt.fingerprint(), int(max_new_tokens), dtype, extra)


class GenerationStore:
    """The JSONL records of one (model, prompt, settings), addressed by item content key."""

    def __init__(self, key: str, root: Path | None = None):
        self.key = key
        self.path = (root or cache_root()) / KIND / f"{key}.jsonl"

    def load(self) -> dict[str, dict[str, Any]]:
        """Records by ``item_key``; a malformed file is an error that names the line."""
        if not self.path.exists():
            return {}
        records: dict[str, dict[str, Any]] = {}
        with self.path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(
                        self.path, f"line {lineno}: not valid JSON ({e.msg})", "delete the file to regenerate"
                    ) from None
                if not isinstance(rec, dict) or "item_key" not in rec or "raw" not in rec:
                    raise DataError(
                        self.path,
                        f"line {lineno}: expected an object with item_key and raw",
                        "delete the file to regenerate",
                    )
                records.setdefault(str(rec["item_key"]), rec)
        return records

    def _write(self, records: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values()))

    def fill(
        self,
        contents: Sequence[ItemContent],
        prompt: Prompt,
        model_name: str,
        generate: Callable[[list[ItemContent]], list[str]],
        batch_size: int = 8,
        flush_every: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any] | None]:
        """One record per item (None where the item has no content), generating only the missing ones.

        ``generate`` answers a list of items (already grouped: all with an image or all without). Returned
        records carry this dataset's ``item_id`` and a fresh parse of the raw answer.
        """
        with locked(self.path):
            records = self.load()
            todo: dict[str, ItemContent] = {}
            for c in contents:
                if c.key is not None and c.key not in records and c.key not in todo:
                    todo[c.key] = c
            pending = 0
            # items with and without an image never share a batch (processors differ on mixed batches)
            groups = [
                [c for c in todo.values() if c.image_path is not None],
                [c for c in todo.values() if c.image_path is None],
            ]
            for group in groups:
                for start in range(0, len(group), batch_size):
                    chunk = group[start : start + batch_size]
                    answers = generate(chunk)
                    for c, raw in zip(chunk, answers, strict=True):
                        assert c.key is not None  # only items with content are generated for
                        records[c.key] = {
                            "item_id": c.item_id,
                            "item_key": c.key,
                            "prompt_id": prompt.id,
                            "model": model_name,
                            "raw": raw,
                            "attributes": parse_answer(raw, prompt),
                        }
                    pending += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                    if pending >= flush_every:
                        self._write(records)
                        pending = 0
            if pending or (todo and not self.path.exists()):
                self._write(records)
        out: list[dict[str, Any] | None] = []
        for c in contents:
            if c.key is None:
                out.append(None)
                continue
            rec = dict(records[c.key])
            rec["item_id"] = c.item_id
            rec["attributes"] = parse_answer(rec["raw"], prompt)
            out.append(rec)
        return out
