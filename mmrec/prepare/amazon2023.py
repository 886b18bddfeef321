"""Amazon Reviews 2023 (McAuley Lab) → raw layout with product images.

Inputs: the per-category review file ``<Category>.jsonl.gz`` (``user_id``, ``parent_asin``, ``rating``,
``timestamp`` in ms, ...) and metadata ``meta_<Category>.jsonl.gz`` (``title``, ``store``, ``categories``,
``description``, ``images`` with URLs, ...). Items are identified by ``parent_asin``. Reviews are streamed and
ids interned to integer codes, so memory stays at a few bytes per review plus one entry per distinct id.
"""

from __future__ import annotations

import gzip
import json
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.errors import DataError
from mmrec.prepare.context import PrepareContext
from mmrec.prepare.images import fetch_images
from mmrec.prepare.output import mmrec_filter, raw_counts, write_interactions_tsv, write_items_jsonl


def _iter_jsonl(path: Path, stats: dict[str, int]) -> Iterator[dict[str, Any]]:
    stats.setdefault("lines", 0)
    stats.setdefault("unparsable_lines", 0)
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                stats["lines"] += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    stats["unparsable_lines"] += 1
                    continue
                if isinstance(record, dict):
                    yield record
                else:
                    stats["unparsable_lines"] += 1
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(path, f"cannot read the gzip JSONL: {exc}", "delete it to download it again") from exc


def read_reviews(path: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, int]]:
    """Integer-coded interactions ``user_id, item_id, rating, timestamp`` (seconds) from a review file.

    Returns the frame, the user names and item names (code ``i`` → ``names[i]``), and parse statistics.
    """
    stats: dict[str, int] = {"rows_without_ids": 0}
    user_codes: dict[str, int] = {}
    item_codes: dict[str, int] = {}
    users, items = array("i"), array("i")
    ratings, stamps = array("f"), array("q")
    for record in _iter_jsonl(path, stats):
        user = record.get("user_id")
        item = record.get("parent_asin") or record.get("asin")
        stamp = record.get("timestamp")
        if not user or not item or stamp is None:
            stats["rows_without_ids"] += 1
            continue
        users.append(user_codes.setdefault(user, len(user_codes)))
        items.append(item_codes.setdefault(item, len(item_codes)))
        ratings.append(float(record.get("rating") or 0.0))
        stamps.append(int(stamp) // 1000)  # ms -> s
    if stats["lines"] and not len(users):
        raise DataError(path, "no review line has user_id, parent_asin and timestamp", "is this a review file?")
    frame = pd.DataFrame(
        {
            "user_id": np.frombuffer(users, dtype=np.int32),
            "item_id": np.frombuffer(items, dtype=np.int32),
            "rating": np.frombuffer(ratings, dtype=np.float32),
            "timestamp": np.frombuffer(stamps, dtype=np.int64),
        }
    )
    user_names = np.array(list(user_codes), dtype=object)
    item_names = np.array(list(item_codes), dtype=object)
    return frame, user_names, item_names, stats


def main_image_url(images: Any) -> str | None:
    """URL of the MAIN image (else the first), preferring ``large``, then ``hi_res``, then ``thumb``."""
    if not isinstance(images, list):
        return None
    candidates = [img for img in images if isinstance(img, dict)]
    candidates.sort(key=lambda img: img.get("variant") != "MAIN")
    for img in candidates:
        for key in ("large", "hi_res", "thumb"):
            if isinstance(img.get(key), str) and img[key].startswith(("http://", "https://")):
                return img[key]
    return None


def _join(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(v.strip() for v in value if isinstance(v, str) and v.strip())
    return value.strip() if isinstance(value, str) else ""


def item_text(title: Any, brand: Any, categories: Any, description: Any) -> str:
    """title + brand + category path + description, as for the 2014 data."""
    return " ".join(p for p in (_join(title), _join(brand), _join(categories), _join(description)) if p)


def prepare_amazon2023(ctx: PrepareContext, out: Path) -> dict[str, Any]:
    reviews_path = ctx.fetch(ctx.spec.files["reviews"])
    meta_path = ctx.fetch(ctx.spec.files["meta"])

    coded, user_names, item_names, review_stats = read_reviews(reviews_path)
    coded, filtering = mmrec_filter(coded, ctx.k_core)
    if coded.empty:
        raise DataError(reviews_path, f"no interactions survive the {ctx.k_core}-core filter", "use a smaller --k-core")
    ratings = pd.DataFrame(
        {
            "user_id": user_names[coded["user_id"].to_numpy()],
            "item_id": item_names[coded["item_id"].to_numpy()],
            "rating": coded["rating"].to_numpy(),
            "timestamp": coded["timestamp"].to_numpy(),
        }
    )
    item_ids = sorted(ratings["item_id"].unique())
    wanted = set(item_ids)

    meta_stats: dict[str, int] = {}
    meta: dict[str, dict[str, Any]] = {}
    for record in _iter_jsonl(meta_path, meta_stats):
        key = record.get("parent_asin") or record.get("asin")
        if isinstance(key, str) and key in wanted and key not in meta:
            meta[key] = record

    items: list[dict[str, Any]] = []
    for item in item_ids:
        record = meta.get(item, {})
        details = record.get("details")
        if not isinstance(details, dict):
            details = {}
        brand = details.get("Brand") or record.get("store")
        items.append(
            {
                "item_id": item,
                "title": record.get("title"),
                "brand": brand,
                "store": record.get("store"),
                "main_category": record.get("main_category"),
                "categories": record.get("categories"),
                "description": _join(record.get("description")) or None,
                "features": record.get("features"),
                "price": record.get("price"),
                "image_url": main_image_url(record.get("images")),
                "image": None,
                "text": item_text(record.get("title"), brand, record.get("categories"), record.get("description")),
            }
        )

    image_report = None
    if ctx.images:
        found, image_report = fetch_images(
            {i["item_id"]: i["image_url"] for i in items},
            ctx.downloads / "images",
            out / "images",
            ctx.settings,
            ctx.workers,
        )
        for item in items:
            if item["item_id"] in found:
                item["image"] = f"images/{found[item['item_id']]}"

    write_interactions_tsv(out / "interactions.tsv", ratings)
    write_items_jsonl(out / "items.jsonl", items)
    missing_meta = sorted(wanted - set(meta))
    result: dict[str, Any] = {
        "filtering": {
            **filtering,
            "item_key": "parent_asin",
            "timestamp_unit": "seconds (source ms // 1000)",
        },
        "split": {"method": None, "note": "raw layout: the loader applies the seeded split"},
        "counts": {**raw_counts(ratings), "items_with_metadata": len(meta)},
        "reviews": review_stats,
        "metadata": {
            **meta_stats,
            "items_missing": len(missing_meta),
            "items_missing_sample": missing_meta[:20],
        },
        "text": {
            "field": "text",
            "recipe": "title + brand (details.Brand or store) + categories + description",
        },
    }
    if image_report is not None:
        result["images"] = image_report.to_manifest()
        result["_image_summary"] = image_report.summary()
    return result
