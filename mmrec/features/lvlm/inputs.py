"""What an LVLM sees of an item: its text and its image, turned into one chat message and model inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmrec.data.dataset import Dataset
from mmrec.errors import ConfigError, DataError
from mmrec.features.encoders.modality import is_blank, item_ids
from mmrec.features.encoders.text import build_texts
from mmrec.features.lvlm.loading import LoadedLVLM
from mmrec.features.lvlm.prompts import Prompt

CHAT_FORMATS = ("structured", "plain")


@dataclass(frozen=True)
class ItemContent:
    """One item as the model sees it; ``key`` hashes its text and image bytes (None: nothing to show)."""

    item_id: str
    text: str | None
    image_path: Path | None
    key: str | None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**22), b""):
            h.update(block)
    return h.hexdigest()


def item_contents(
    dataset: Dataset, text_template: str | None = None, use_text: bool = True, use_image: bool = True
) -> list[ItemContent]:
    """Each item's text (``text_template`` or the dataset's, rendered as the text encoders do) and image file
    (``image`` column, relative to the dataset folder), with a content key over the text and the image bytes."""
    items = dataset.items
    where = dataset.data_dir or dataset.name
    if items is None:
        raise DataError(
            where,
            "LVLM encoders need item metadata (items.jsonl) but this dataset has none",
            "use a raw-layout dataset",
        )
    if len(items) != dataset.n_items:
        raise DataError(where, f"item metadata has {len(items)} rows but the dataset has {dataset.n_items} items")
    template = text_template if text_template is not None else dataset.text_template
    texts = build_texts(items, template, where) if use_text else [""] * len(items)
    image_column = items["image"].tolist() if use_image and "image" in items.columns else [None] * len(items)
    out = []
    for item_id, text, image_value in zip(item_ids(dataset), texts, image_column):
        image = None
        if not is_blank(image_value):
            path = Path(str(image_value))
            path = path if path.is_absolute() else Path(dataset.data_dir or ".") / path
            image = path if path.is_file() else None
        h = hashlib.sha256()
        h.update(b"text:" + (text or "").encode("utf-8"))
        h.update(b"|image:" + (_digest(image).encode() if image is not None else b"-"))
        has_content = bool(text) or image is not None
        out.append(ItemContent(item_id, text or None, image, h.hexdigest()[:32] if has_content else None))
    return out


def open_image(path: Path | None) -> Any:
    """The image as RGB PIL, or None when absent or unreadable."""
    if path is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None


def conversation(
    prompt: Prompt,
    text: str | None,
    has_image: bool,
    chat_format: str = "structured",
    image_placeholder: str = "<image>",
) -> list[dict[str, Any]]:
    """One chat: optional system message, then the user turn (image first, then the rendered prompt)."""
    message = prompt.render(text)
    if chat_format == "structured":
        content: Any = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": message}]
        system: Any = [{"type": "text", "text": prompt.system}] if prompt.system else None
    elif chat_format == "plain":
        content = f"{image_placeholder}\n{message}" if has_image else message
        system = prompt.system
    else:
        raise ConfigError(f"lvlm chat_format {chat_format!r} unknown; choose one of {list(CHAT_FORMATS)}")
    turns = [{"role": "system", "content": system}] if system else []
    return turns + [{"role": "user", "content": content}]


def build_inputs(
    lvlm: LoadedLVLM,
    prompt: Prompt,
    texts: Sequence[str | None],
    images: Sequence[Any],
    chat_format: str = "structured",
    image_placeholder: str = "<image>",
) -> dict[str, torch.Tensor]:
    """Batched model inputs, left-padded, on the model's device. All or none of ``images`` may be None."""
    processor = lvlm.processor
    templater = processor if getattr(processor, "chat_template", None) else lvlm.tokenizer
    if not getattr(templater, "chat_template", None):
        raise ConfigError(
            f"lvlm: neither the processor nor the tokenizer of {lvlm.spec.model!r} has a chat "
            "template; use the model's instruct variant or save one with the checkpoint"
        )
    has = [im is not None for im in images]
    if any(has) and not all(has):
        raise ValueError("build_inputs: a batch must have an image for every item or for none")
    chats = [
        templater.apply_chat_template(
            conversation(prompt, t, h, chat_format, image_placeholder), add_generation_prompt=True, tokenize=False
        )
        for t, h in zip(texts, has)
    ]
    kwargs: dict[str, Any] = {"text": chats, "padding": True, "return_tensors": "pt"}
    if all(has) and images:
        kwargs["images"] = list(images)
    enc = processor(**kwargs)
    out = {}
    for k, v in enc.items():
        if isinstance(v, torch.Tensor):
            v = v.to(lvlm.device)
            out[k] = v.to(lvlm.dtype) if v.is_floating_point() else v
        else:
            out[k] = v
    return out
