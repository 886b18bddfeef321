"""MMRec's ready-made sets: Drive folder listing → files (incl. the large-file confirmation) → MMRec layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmrec.errors import DataError
from mmrec.prepare import prepare
from mmrec.prepare.mmrec_sets import drive_confirm_url, parse_drive_listing
from mmrec.prepare.registry import DRIVE_LIST_URL, MICROLENS_DRIVE_FOLDER, MMREC_DRIVE_FOLDER
from tests.prepare.builders import drive_confirm_page, drive_listing, mmrec_inter, npy_bytes, zip_bytes

DOWNLOAD = "https://drive.usercontent.google.com/download"


def _serve_drive(server, files: dict[str, bytes], confirm: set[str] = frozenset()) -> None:
    """Top folder with 'baby' and 'sports' sub-folders; 'baby' holds ``files`` (ids f0, f1, ...)."""
    ids = {f"f{n}": name for n, name in enumerate(files)}
    pages = {
        MMREC_DRIVE_FOLDER: drive_listing(
            [("SPORTSID", "sports", True), ("BABYID", "baby", True), ("R1", "README.md", False)]
        ),
        "BABYID": drive_listing([(i, name, False) for i, name in ids.items()] + [("U", "user_graph_dict.npy", False)]),
    }
    server.add(
        DRIVE_LIST_URL.format(id=MMREC_DRIVE_FOLDER),
        lambda query: pages[query["id"][0]].encode(),
        content_type="text/html",
    )

    def download(query: dict[str, list[str]]) -> bytes:
        file_id = query["id"][0]
        if ids[file_id] in confirm and "uuid" not in query:
            return drive_confirm_page(file_id).encode()
        return files[ids[file_id]]

    server.add(DOWNLOAD, download)


@pytest.fixture
def baby_files() -> tuple[dict[str, bytes], dict[str, int]]:
    inter, counts = mmrec_inter()
    rng = np.random.default_rng(0)
    files = {
        "baby.inter": inter.encode(),
        "image_feat.npy": npy_bytes(rng.standard_normal((6, 16)).astype(np.float32)),
        "text_feat.npy": npy_bytes(rng.standard_normal((6, 8)).astype(np.float32)),
        "i_id_mapping.csv": b"asin\titemID\nB1\t0\n",
    }
    return files, counts


def test_listing_and_confirm_parsers() -> None:
    page = drive_listing([("abc-1_X", "baby &amp; co", True), ("f9", "text_feat.npy", False)])
    entries = parse_drive_listing(page)
    assert [(e.id, e.name, e.is_folder) for e in entries] == [
        ("abc-1_X", "baby & co", True),
        ("f9", "text_feat.npy", False),
    ]
    assert drive_confirm_url(drive_confirm_page("f9")) == f"{DOWNLOAD}?id=f9&export=download&confirm=t&uuid=0b1c-uuid"
    assert drive_confirm_url("<html>quota exceeded</html>") is None


def test_prepared_mmrec_folder(server, settings, root, baby_files) -> None:
    files, counts = baby_files
    _serve_drive(server, files, confirm={"image_feat.npy"})
    folder = prepare("baby", root, settings=settings)
    assert sorted(p.name for p in folder.iterdir()) == [
        "baby.inter",
        "i_id_mapping.csv",
        "image_feat.npy",
        "manifest.json",
        "text_feat.npy",
    ]
    assert (folder / "baby.inter").read_bytes() == files["baby.inter"]
    np.testing.assert_array_equal(
        np.load(folder / "image_feat.npy"), np.load(__import__("io").BytesIO(files["image_feat.npy"]))
    )
    listings = [path.split("id=")[1] for path, _ in server.requests if "embeddedfolderview" in path]
    assert listings == [MMREC_DRIVE_FOLDER, "BABYID"]  # the top folder, then the set's sub-folder
    # the large-file confirmation page was followed, not saved as the file
    image_hits = [path for path, _ in server.requests if "id=f1" in path]
    assert len(image_hits) == 2 and "uuid=0b1c-uuid" in image_hits[1]

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["layout"] == "mmrec"
    inter = pd.read_csv(folder / "baby.inter", sep="\t")
    assert manifest["counts"] == {
        "users": 5,
        "items": 6,
        "items_with_interactions": 6,
        "interactions": len(inter),
        **counts,
    }
    assert manifest["features"]["image"] == {"file": "image_feat.npy", "shape": [6, 16], "dtype": "float32"}
    assert manifest["features"]["text"]["shape"] == [6, 8]
    assert manifest["split"]["method"] == "shipped"
    urls = sorted(d["url"] for d in manifest["downloads"])
    assert urls == sorted(f"{DOWNLOAD}?id=f{n}&export=download&confirm=t" for n in range(4))
    assert "MMRec" in manifest["licence"]


def test_feature_rows_must_match_the_items(server, settings, root, baby_files) -> None:
    files, _ = baby_files
    files["text_feat.npy"] = npy_bytes(np.zeros((4, 8), np.float32))  # fewer rows than items
    _serve_drive(server, files)
    with pytest.raises(DataError, match="text_feat.npy.*6 items"):
        prepare("baby", root, settings=settings)
    assert not (root / "baby").exists()


def test_missing_subfolder_is_explained(server, settings, root, baby_files) -> None:
    files, _ = baby_files
    _serve_drive(server, files)
    with pytest.raises(DataError, match="no 'elec' folder.*--from-dir"):
        prepare("elec", root, settings=settings)


def test_from_dir_uses_hand_downloaded_files(settings, root, tmp_path, baby_files) -> None:
    files, counts = baby_files
    by_hand = tmp_path / "baby-by-hand"
    by_hand.mkdir()
    for name, data in files.items():
        (by_hand / name).write_bytes(data)
    folder = prepare("baby", root, settings=settings, from_dir=by_hand)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["train"] == counts["train"]
    assert all(d["fetched_from"].startswith("file://") for d in manifest["downloads"])
    assert manifest["settings"]["from_dir"] == str(by_hand)


def test_flat_microlens_folder(server, settings, root, baby_files) -> None:
    files, counts = baby_files
    files = {("microlens.inter" if k == "baby.inter" else k): v for k, v in files.items()}
    ids = {f"m{n}": name for n, name in enumerate(files)}
    listing = drive_listing([(i, name, False) for i, name in ids.items()])
    server.add(DRIVE_LIST_URL.format(id=MICROLENS_DRIVE_FOLDER), listing.encode(), content_type="text/html")
    server.add(DOWNLOAD, lambda query: files[ids[query["id"][0]]])
    folder = prepare("microlens", root, settings=settings)
    assert (folder / "microlens.inter").read_bytes() == files["microlens.inter"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["test"] == counts["test"] and "MicroLens" in manifest["licence"]


def test_prepared_folder_loads_with_the_mmrec_loader(server, settings, root, baby_files) -> None:
    from mmrec.data import load_dataset

    files, counts = baby_files
    _serve_drive(server, files)
    folder = prepare("baby", root, settings=settings)
    dataset = load_dataset("baby", format="mmrec", data_dir=str(folder), modalities=["text", "image"])
    assert dataset.n_users == 5 and dataset.n_items == 6
    assert len(dataset.interactions.train) == counts["train"] and len(dataset.interactions.test) == counts["test"]
    assert tuple(dataset.features.tensors["image"].shape) == (6, 16)


def test_set_shipped_as_a_zip_in_the_top_folder(server, settings, root, baby_files) -> None:
    files, counts = baby_files
    archive = zip_bytes({f"sports/{('sports.inter' if k == 'baby.inter' else k)}": v for k, v in files.items()})
    listing = drive_listing([("BABYID", "baby", True), ("ZIPID", "Sports.zip", False)])
    server.add(DRIVE_LIST_URL.format(id=MMREC_DRIVE_FOLDER), listing.encode(), content_type="text/html")
    server.add(DOWNLOAD, lambda query: {"ZIPID": archive}[query["id"][0]])
    folder = prepare("sports", root, settings=settings)
    assert sorted(p.name for p in folder.iterdir()) == [
        "i_id_mapping.csv",
        "image_feat.npy",
        "manifest.json",
        "sports.inter",
        "text_feat.npy",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["val"] == counts["val"]
    assert [d["file"] for d in manifest["downloads"]] == ["Sports.zip"]
