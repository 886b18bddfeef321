"""Builders shared by the encoder tests (no tests here): item tables, images, tiny random HF models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from mmrec.data.dataset import Dataset, Interactions

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def items_dataset(
    rows: list[dict[str, Any]], data_dir: Path | None = None, template: str | None = None, fill: str = "mean"
) -> Dataset:
    """A Dataset whose only content is an ``items`` table (one row per item, in order)."""
    items = pd.DataFrame(rows, dtype=object)
    empty = np.zeros((0, 2), dtype=np.int64)
    return Dataset(
        "items",
        Interactions(1, len(items), empty, empty, empty),
        data_dir=data_dir,
        items=items,
        text_template=template,
        fill=fill,
    )


def read_items_jsonl(path: Path) -> pd.DataFrame:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for r in rows:
        r["item_id"] = str(r["item_id"])
    return pd.DataFrame(rows, dtype=object)


def write_image(path: Path, seed: int, size: tuple[int, int] = (40, 56)) -> Path:
    """A random smooth-ish RGB JPEG (distinct per seed)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=95)
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: each byte maps to a printable character."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(c) for c in chars]))


def _image_processor_config(kind: str, size: int) -> dict[str, Any]:
    if kind == "vit":
        return {
            "image_processor_type": "ViTImageProcessor",
            "do_resize": True,
            "size": {"height": size, "width": size},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": [0.5] * 3,
            "image_std": [0.5] * 3,
            "resample": 2,
        }
    if kind == "convnext":
        return {
            "image_processor_type": "ConvNextImageProcessor",
            "do_resize": True,
            "size": {"shortest_edge": size},
            "crop_pct": 0.875,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": IMAGENET_MEAN,
            "image_std": IMAGENET_STD,
            "resample": 3,
        }
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": size},
        "do_center_crop": True,
        "crop_size": {"height": size, "width": size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "do_convert_rgb": True,
        "image_mean": [0.4815, 0.4578, 0.4082],
        "image_std": [0.2686, 0.2613, 0.2758],
        "resample": 3,
    }


def tiny_bert(path: Path) -> Path:
    """A 2-layer random BERT with a character-level WordPiece vocabulary, saved like a hub model."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars] + list("().,:'-!?&")
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 128})
    )
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(cfg).eval().save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def tiny_vit(path: Path) -> Path:
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(cfg).eval().save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps(_image_processor_config("vit", 32)))
    return path


def tiny_resnet(path: Path) -> Path:
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(cfg).eval().save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps(_image_processor_config("convnext", 32)))
    return path


def tiny_clip(path: Path) -> Path:
    """A random CLIP (text + vision towers, 16-d shared space) with a byte-level BPE tokenizer (no merges)."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    path.mkdir(parents=True, exist_ok=True)
    alphabet = sorted(set(_bytes_to_unicode().values()))
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": len(alphabet) + i for i, c in enumerate(alphabet)})
    bos, eos = len(vocab), len(vocab) + 1
    vocab.update({"<|startoftext|>": bos, "<|endoftext|>": eos})
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    (path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77})
    )
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps(_image_processor_config("clip", 32)))
    return path
