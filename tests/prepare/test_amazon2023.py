"""Amazon Reviews 2023: review + metadata JSONL → raw layout with downloaded product images."""

from __future__ import annotations

import json

import pandas as pd
from PIL import Image

from mmrec.prepare import prepare
from mmrec.prepare.amazon2023 import main_image_url
from mmrec.prepare.registry import DATASETS
from tests.prepare.builders import (
    A23_ITEMS,
    A23_USERS,
    amazon2023_image_url,
    amazon2023_meta,
    amazon2023_reviews,
    gzip_bytes,
    jpeg_bytes,
    png_bytes,
)

NAME = "amazon2023_pets"


def test_main_image_prefers_the_main_variant() -> None:
    images = [
        {"thumb": "https://a/t.jpg", "large": "https://a/l1.jpg", "variant": "PT01"},
        {"thumb": "https://a/t2.jpg", "large": None, "hi_res": "https://a/h.jpg", "variant": "MAIN"},
    ]
    assert main_image_url(images) == "https://a/h.jpg"
    assert main_image_url([]) is None and main_image_url(None) is None


def test_prepared_folder_with_images_and_a_dead_url(server, settings, root, capsys) -> None:
    files = DATASETS[NAME].files
    assert files["reviews"].filename == "Pet_Supplies.jsonl.gz"
    server.add(files["reviews"].url, gzip_bytes(amazon2023_reviews()))
    server.add(files["meta"].url, gzip_bytes(amazon2023_meta()))
    server.add(amazon2023_image_url("P0"), jpeg_bytes((200, 0, 0)), content_type="image/jpeg")
    server.add(amazon2023_image_url("P1"), png_bytes((0, 200, 0)), content_type="image/png")
    server.add(amazon2023_image_url("P2"), jpeg_bytes((0, 0, 200)), content_type="image/jpeg")
    server.add(amazon2023_image_url("P3"), b"<html>not an image</html>", content_type="text/html")
    # P4's URL is not served (404); P5 has no image in its metadata

    folder = prepare(NAME, root, settings=settings, workers=3)
    assert {p.name for p in folder.iterdir()} == {
        "interactions.tsv",
        "items.jsonl",
        "manifest.json",
        "images",
    }

    inter = pd.read_csv(folder / "interactions.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    assert len(inter) == 36 and set(inter.user_id) == set(A23_USERS) and set(inter.item_id) == set(A23_ITEMS)
    assert inter.timestamp.between(1_600_000_000, 1_600_000_100).all()  # ms converted to s

    items = {i["item_id"]: i for i in map(json.loads, (folder / "items.jsonl").read_text().splitlines())}
    assert sorted(items) == A23_ITEMS
    assert items["P0"]["text"] == "Product 0 Brand0 Baby Products Feeding Line one of P0. Line two."
    assert items["P1"]["text"] == "Product 1 Store1 Line one of P1. Line two."  # store as brand, no categories
    assert items["P0"]["image_url"] == amazon2023_image_url("P0")
    assert {k for k, v in items.items() if v["image"]} == {"P0", "P1", "P2"}
    for item in ("P0", "P1", "P2"):
        with Image.open(folder / items[item]["image"]) as img:
            assert img.format == "JPEG" and img.size in {(8, 6), (5, 5)}  # P1's PNG stored as JPEG

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"users": 6, "items": 6, "interactions": 36, "items_with_metadata": 6}
    assert manifest["reviews"]["unparsable_lines"] == 1
    assert manifest["filtering"]["k_core"] == 5 and manifest["filtering"]["item_key"] == "parent_asin"
    images = manifest["images"]
    assert images["requested"] == 6 and images["available"] == 3
    assert images["missing"] == 2 and images["missing_items"] == ["P3", "P4"]
    assert "not a decodable image" in images["missing_sample"]["P3"]
    assert "HTTP 404" in images["missing_sample"]["P4"]
    assert images["items_without_url"] == 1 and images["items_without_url_sample"] == ["P5"]
    assert manifest["outputs"]["images/"]["files"] == 3
    assert "2 dead or invalid URLs (e.g. P3, P4)" in capsys.readouterr().out


def test_images_are_cached_between_preparations(server, settings, root) -> None:
    files = DATASETS[NAME].files
    server.add(files["reviews"].url, gzip_bytes(amazon2023_reviews()))
    server.add(files["meta"].url, gzip_bytes(amazon2023_meta()))
    for item in A23_ITEMS[:5]:
        server.add(amazon2023_image_url(item), jpeg_bytes((9, 9, 9)))
    prepare(NAME, root, settings=settings)
    n_requests = len(server.requests)
    folder = prepare(NAME, root, settings=settings, force=True)
    assert len(server.requests) == n_requests  # sources and images come from the download cache
    report = json.loads((folder / "manifest.json").read_text())["images"]
    assert report["reused_from_cache"] == 5 and report["downloaded_now"] == 0


def test_prepared_folder_loads_with_the_raw_loader(server, settings, root) -> None:
    from mmrec.data import load_dataset

    files = DATASETS[NAME].files
    server.add(files["reviews"].url, gzip_bytes(amazon2023_reviews()))
    server.add(files["meta"].url, gzip_bytes(amazon2023_meta()))
    folder = prepare(NAME, root, settings=settings, images=False)
    dataset = load_dataset(
        NAME,
        format="raw",
        data_dir=str(folder),
        k_core=5,
        split={"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 0},
    )
    assert dataset.n_users == 6 and dataset.n_items == 6
    inter = dataset.interactions
    assert len(inter.train) + len(inter.val) + len(inter.test) == 36
    assert sorted(dataset.items["item_id"]) == A23_ITEMS
    assert dataset.items.set_index("item_id").loc["P1", "text"] == "Product 1 Store1 Line one of P1. Line two."
