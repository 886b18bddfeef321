"""MovieLens 100K / 1M (GroupLens zip) → raw layout with ``items.jsonl`` (title, year, genres)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from mmrec.errors import DataError
from mmrec.prepare.context import PrepareContext
from mmrec.prepare.output import raw_counts, write_interactions_tsv, write_items_jsonl

_TITLE_YEAR = re.compile(r"^(?P<title>.*\S)\s+\((?P<year>\d{4})\)\s*$")


def split_title_year(raw: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``; titles without a trailing year keep it ``None``."""
    match = _TITLE_YEAR.match(raw.strip())
    if match:
        return match.group("title"), int(match.group("year"))
    return raw.strip(), None


def _member(zf: zipfile.ZipFile, archive: Path, name: str) -> bytes:
    for info in zf.infolist():
        if info.filename == name or info.filename.endswith("/" + name):
            return zf.read(info)
    raise DataError(archive, f"the archive has no member {name!r}", "delete it to download a fresh copy")


def _read_table(data: bytes, sep: bytes, names: list[str], archive: Path, member: str) -> pd.DataFrame:
    text = data.replace(sep, b"\t") if len(sep) > 1 else data
    try:
        return pd.read_csv(
            io.BytesIO(text),
            sep="\t" if len(sep) > 1 else sep.decode(),
            header=None,
            names=names,
            dtype=str,
            encoding="latin-1",
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{archive}:{member}", f"cannot parse: {exc}") from exc


def _ratings(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    try:
        frame["rating"] = frame["rating"].astype(float)
        frame["timestamp"] = frame["timestamp"].astype("int64")
    except ValueError as exc:
        raise DataError(where, f"non-numeric rating or timestamp: {exc}") from exc
    return frame


def _ml100k(zf: zipfile.ZipFile, archive: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    ratings = _read_table(
        _member(zf, archive, "u.data"),
        b"\t",
        ["user_id", "item_id", "rating", "timestamp"],
        archive,
        "u.data",
    )
    ratings = _ratings(ratings, f"{archive}:u.data")
    genre_rows = _read_table(_member(zf, archive, "u.genre"), b"|", ["genre", "index"], archive, "u.genre")
    genre_rows = genre_rows[genre_rows["genre"] != ""]
    genres = [g for g, _ in sorted(zip(genre_rows["genre"], genre_rows["index"].astype(int)), key=lambda t: t[1])]
    cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + [
        f"g{i}" for i in range(len(genres))
    ]
    movies = _read_table(_member(zf, archive, "u.item"), b"|", cols, archive, "u.item")
    flags = movies[[f"g{i}" for i in range(len(genres))]].to_numpy() == "1"  # [n_items, n_genres]
    items = []
    for row, row_flags in zip(movies.to_dict("records"), flags):
        title, year = split_title_year(row["title"])
        items.append(
            {
                "item_id": row["item_id"],
                "title": title,
                "year": year,
                "release_date": row["release_date"] or None,
                "genres": [g for g, on in zip(genres, row_flags) if on],
                "imdb_url": row["imdb_url"] or None,
                "image": None,
            }
        )
    return ratings, items


def _ml1m(zf: zipfile.ZipFile, archive: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    ratings = _read_table(
        _member(zf, archive, "ratings.dat"),
        b"::",
        ["user_id", "item_id", "rating", "timestamp"],
        archive,
        "ratings.dat",
    )
    ratings = _ratings(ratings, f"{archive}:ratings.dat")
    movies = _read_table(
        _member(zf, archive, "movies.dat"), b"::", ["item_id", "title", "genres"], archive, "movies.dat"
    )
    items = []
    for row in movies.to_dict("records"):
        title, year = split_title_year(row["title"])
        items.append(
            {
                "item_id": row["item_id"],
                "title": title,
                "year": year,
                "genres": [g for g in row["genres"].split("|") if g],
                "image": None,
            }
        )
    return ratings, items


def prepare_movielens(ctx: PrepareContext, out: Path) -> dict[str, Any]:
    archive = ctx.fetch(ctx.spec.files["archive"])
    variant = ctx.spec.options["variant"]
    with zipfile.ZipFile(archive) as zf:
        ratings, items = (_ml100k if variant == "ml100k" else _ml1m)(zf, archive)
    known = {item["item_id"] for item in items}
    unknown = set(ratings["item_id"]) - known
    if unknown:
        raise DataError(
            archive,
            f"{len(unknown)} rated items are missing from the movie list, e.g. {sorted(unknown)[:5]}",
            "delete the archive to download a fresh copy",
        )
    write_interactions_tsv(out / "interactions.tsv", ratings)
    rated = set(ratings["item_id"])
    kept = sorted((item for item in items if item["item_id"] in rated), key=lambda item: int(item["item_id"]))
    write_items_jsonl(out / "items.jsonl", kept)
    return {
        "filtering": {
            "procedure": "none: the archive as published (every user has >= 20 ratings)",
            "k_core": None,
        },
        "split": {"method": None, "note": "raw layout: the loader applies k-core and the seeded split"},
        "counts": {**raw_counts(ratings), "unrated_items_dropped": len(items) - len(kept)},
        "item_fields": ["item_id", "title", "year", "genres", "image"]
        + (["release_date", "imdb_url"] if variant == "ml100k" else []),
    }
