"""Amazon product data 2014 (McAuley et al.) → raw layout + ``image_feat.npy``.

Inputs: ``ratings_<Category>.csv`` (user, item, rating, timestamp; no header), ``meta_<Category>.json.gz``
(one Python dict literal per line) and ``image_features_<Category>.b`` (4096-d CNN features). Interactions get
MMRec's filtering (dropna, duplicate removal, iterative 5-core); each item gets the knockout study's text:
title + brand + first category path + description (as MMRec's ``3feat-encoder`` builds it).
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.errors import DataError
from mmrec.prepare.binary_features import DIM, read_image_features
from mmrec.prepare.context import PrepareContext
from mmrec.prepare.images import fetch_images
from mmrec.prepare.output import mmrec_filter, raw_counts, write_interactions_tsv, write_items_jsonl

_ASIN = re.compile(r"""["']asin["']\s*:\s*["']([^"']+)["']""")


def parse_meta_line(line: str) -> dict[str, Any]:
    """One metadata record: strict JSON, else a Python dict literal (the 2014 files use the latter)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = ast.literal_eval(line)
    if not isinstance(record, dict):
        raise ValueError(f"expected a dict, got {type(record).__name__}")
    return record


def iter_meta(path: Path, wanted: set[str] | None = None, stats: dict[str, int] | None = None) -> Iterator[dict]:
    """Stream metadata records (only those whose ``asin`` is in ``wanted``); counts bad lines in ``stats``."""
    stats = stats if stats is not None else {}
    stats.setdefault("lines", 0)
    stats.setdefault("unparsable_lines", 0)
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                stats["lines"] += 1
                if wanted is not None:
                    quick = _ASIN.search(line)
                    if quick and quick.group(1) not in wanted:
                        continue
                try:
                    record = parse_meta_line(line)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    stats["unparsable_lines"] += 1
                    continue
                if wanted is None or record.get("asin") in wanted:
                    yield record
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(path, f"cannot read the gzip metadata: {exc}", "delete it to download it again") from exc


def _clean(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def first_category(categories: Any) -> list[str]:
    """The first category path: ``[['Baby', 'Nursery'], [...]]`` → ``['Baby', 'Nursery']``."""
    if isinstance(categories, list) and categories:
        head = categories[0]
        if isinstance(head, list):
            return [c for c in head if isinstance(c, str)]
        return [c for c in categories if isinstance(c, str)]
    return []


def knockout_text(title: Any, brand: Any, categories: Any, description: Any) -> str:
    """title + brand + first category path + description, space-joined, empty parts skipped."""
    parts = [_clean(title), _clean(brand), " ".join(first_category(categories)).strip(), _clean(description)]
    return " ".join(p for p in parts if p)


def read_ratings(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path,
            header=None,
            names=["user_id", "item_id", "rating", "timestamp"],
            dtype={"user_id": str, "item_id": str},
            keep_default_na=True,
        )
        frame["rating"] = pd.to_numeric(frame["rating"], errors="raise")
        frame["timestamp"] = pd.to_numeric(frame["timestamp"], errors="raise").astype("Int64")
    except (pd.errors.ParserError, ValueError, TypeError) as exc:
        raise DataError(
            path,
            f"cannot parse the ratings CSV (user,item,rating,timestamp): {exc}",
            "delete it to download it again",
        ) from exc
    return frame


def prepare_amazon2014(ctx: PrepareContext, out: Path) -> dict[str, Any]:
    files = ctx.spec.files
    ratings_path = ctx.fetch(files["ratings"])
    meta_path = ctx.fetch(files["meta"])
    feats_path = ctx.fetch(files["image_features"])

    ratings, filtering = mmrec_filter(read_ratings(ratings_path), ctx.k_core)
    if ratings.empty:
        raise DataError(ratings_path, f"no interactions survive the {ctx.k_core}-core filter", "use a smaller --k-core")
    item_ids = sorted(ratings["item_id"].unique())
    wanted = set(item_ids)

    meta_stats: dict[str, int] = {}
    meta = {record["asin"]: record for record in iter_meta(meta_path, wanted, meta_stats)}
    if meta_stats["lines"] and meta_stats["unparsable_lines"] == meta_stats["lines"]:
        raise DataError(meta_path, "no metadata line could be parsed", "delete it to download it again")

    features = read_image_features(feats_path, wanted)
    image_feat = np.zeros((len(item_ids), DIM), dtype=np.float32)  # [n_items, 4096]
    image_mask = np.zeros(len(item_ids), dtype=bool)  # [n_items]
    for row, item in enumerate(item_ids):
        vector = features.get(item)
        if vector is not None:
            image_feat[row] = vector
            image_mask[row] = True

    items: list[dict[str, Any]] = []
    for item in item_ids:
        record = meta.get(item, {})
        items.append(
            {
                "item_id": item,
                "title": record.get("title"),
                "brand": record.get("brand"),
                "categories": record.get("categories"),
                "description": record.get("description"),
                "price": record.get("price"),
                "image_url": record.get("imUrl"),
                "image": None,
                "text": knockout_text(
                    record.get("title"),
                    record.get("brand"),
                    record.get("categories"),
                    record.get("description"),
                ),
            }
        )

    image_report = None
    if ctx.images:
        found, report = fetch_images(
            {i["item_id"]: i["image_url"] for i in items},
            ctx.downloads / "images",
            out / "images",
            ctx.settings,
            ctx.workers,
        )
        for item in items:
            if item["item_id"] in found:
                item["image"] = f"images/{found[item['item_id']]}"
        image_report = report

    write_interactions_tsv(out / "interactions.tsv", ratings)
    write_items_jsonl(out / "items.jsonl", items)
    np.save(out / "image_feat.npy", image_feat)
    np.save(out / "image_feat_mask.npy", image_mask)

    missing_meta = sorted(wanted - set(meta))
    missing_feat = [item for item, ok in zip(item_ids, image_mask) if not ok]
    result: dict[str, Any] = {
        "filtering": filtering,
        "split": {"method": None, "note": "raw layout: the loader applies the seeded split"},
        "counts": {
            **raw_counts(ratings),
            "items_with_metadata": len(meta),
            "items_with_image_features": int(image_mask.sum()),
        },
        "metadata": {
            **meta_stats,
            "items_missing": len(missing_meta),
            "items_missing_sample": missing_meta[:20],
        },
        "text": {"field": "text", "recipe": "title + brand + first category path + description (MMRec)"},
        "features": {
            "image": {
                "file": "image_feat.npy",
                "mask_file": "image_feat_mask.npy",
                "rows": "items.jsonl line order",
                "dim": DIM,
                "source": files["image_features"].filename,
                "missing": len(missing_feat),
                "missing_items": missing_feat,
                "missing_fill": "zero rows, mask false",
            }
        },
    }
    if image_report is not None:
        result["images"] = image_report.to_manifest()
        result["_image_summary"] = image_report.summary()
    return result
