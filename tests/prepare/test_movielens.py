"""MovieLens 100K / 1M: GroupLens zip → raw layout, manifest, licence, checksum from the registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pandas as pd
import pytest

from mmrec.errors import DataError
from mmrec.prepare import prepare
from mmrec.prepare.registry import DATASETS, GROUPLENS_BASE
from tests.prepare.builders import ML1M_RATINGS, ML100K_RATINGS, ml1m_zip, ml100k_zip


def _serve_with_published_md5(server, monkeypatch, name: str, body: bytes, md5: str | None = None) -> str:
    """Serve ``body`` as the data set's archive and make the registry publish its md5 (as GroupLens does)."""
    remote = DATASETS[name].files["archive"]
    server.add(remote.url, body)
    monkeypatch.setitem(
        DATASETS[name].files, "archive", dataclasses.replace(remote, md5=md5 or hashlib.md5(body).hexdigest())
    )
    return remote.url


def _items(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "items.jsonl").read_text(encoding="utf-8").splitlines()]


def test_registry_holds_the_published_grouplens_sums() -> None:
    assert DATASETS["ml100k"].files["archive"].url == f"{GROUPLENS_BASE}/ml-100k.zip"
    assert DATASETS["ml100k"].files["archive"].md5 == "0e33842e24a9c977be4e0107933c0723"
    assert DATASETS["ml1m"].files["archive"].md5 == "c4d9eecfca2ab87c1945afe126590906"


def test_ml100k_raw_layout(server, settings, root, monkeypatch, capsys) -> None:
    body = ml100k_zip()
    url = _serve_with_published_md5(server, monkeypatch, "ml100k", body)
    folder = prepare("ml100k", root, settings=settings)
    assert folder == root / "ml100k"
    assert sorted(p.name for p in folder.iterdir()) == ["interactions.tsv", "items.jsonl", "manifest.json"]

    inter = pd.read_csv(folder / "interactions.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(inter) == len(ML100K_RATINGS)
    assert inter.iloc[0].tolist() == ["1", "1", 5.0, 881250949]

    items = _items(folder)
    by_id = {i["item_id"]: i for i in items}
    assert sorted(by_id, key=int) == ["1", "2", "3", "4", "5"]  # item 6 is never rated
    assert by_id["1"]["title"] == "Toy Story" and by_id["1"]["year"] == 1995 and by_id["1"]["genres"] == ["Comedy"]
    assert by_id["2"]["genres"] == ["Action", "Drama"]
    assert by_id["3"]["title"] == "Usual Suspects, The"
    assert by_id["4"]["title"] == 'Café "Noir"'  # latin-1 decoded, quotes kept
    assert by_id["5"] == {
        "item_id": "5",
        "title": "unknown",
        "year": None,
        "release_date": None,
        "genres": ["unknown"],
        "imdb_url": None,
        "image": None,
    }

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["name"] == "ml100k" and manifest["layout"] == "raw"
    assert manifest["counts"]["users"] == 3 and manifest["counts"]["items"] == 5
    assert manifest["counts"]["interactions"] == 7 and manifest["counts"]["unrated_items_dropped"] == 1
    download = manifest["downloads"][0]
    assert download["url"] == url and download["md5"] == hashlib.md5(body).hexdigest()
    assert download["sha256"] == hashlib.sha256(body).hexdigest()
    assert download["checksum"].startswith("md5 matches the published sum")
    assert "research" in manifest["licence"] and "Harper" in manifest["licence"]
    assert (
        manifest["outputs"]["interactions.tsv"]["sha256"]
        == hashlib.sha256((folder / "interactions.tsv").read_bytes()).hexdigest()
    )
    assert "prepared_at" in manifest and download["downloaded_at"]
    assert "Licence terms" in capsys.readouterr().out  # printed on the first download


def test_licence_printed_once_and_prepared_folder_kept(server, settings, root, monkeypatch, capsys) -> None:
    _serve_with_published_md5(server, monkeypatch, "ml100k", ml100k_zip())
    prepare("ml100k", root, settings=settings)
    capsys.readouterr()
    stamp = (root / "ml100k" / "manifest.json").stat().st_mtime_ns
    prepare("ml100k", root, settings=settings)
    out = capsys.readouterr().out
    assert "already prepared" in out and "Licence terms" not in out
    assert (root / "ml100k" / "manifest.json").stat().st_mtime_ns == stamp
    prepare("ml100k", root, settings=settings, force=True)  # rebuild from the kept download
    assert "Licence terms" not in capsys.readouterr().out
    assert len(server.requests) == 1


def test_wrong_published_sum_is_refused(server, settings, root, monkeypatch) -> None:
    _serve_with_published_md5(server, monkeypatch, "ml100k", ml100k_zip(), md5="f" * 32)
    with pytest.raises(DataError, match="md5"):
        prepare("ml100k", root, settings=settings)
    assert not (root / "ml100k").exists()
    assert not list(root.glob(".ml100k.tmp-*"))


def test_ml1m_raw_layout(server, settings, root, monkeypatch) -> None:
    _serve_with_published_md5(server, monkeypatch, "ml1m", ml1m_zip())
    folder = prepare("ml1m", root, settings=settings)
    inter = pd.read_csv(folder / "interactions.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    assert len(inter) == len(ML1M_RATINGS)
    assert set(zip(inter.user_id, inter.item_id)) == {(str(u), str(i)) for u, i, _, _ in ML1M_RATINGS}
    items = {i["item_id"]: i for i in _items(folder)}
    assert sorted(items) == ["1", "2", "3"]
    assert items["2"] == {
        "item_id": "2",
        "title": "Jumanji",
        "year": 1995,
        "genres": ["Adventure", "Children's", "Fantasy"],
        "image": None,
    }
    assert items["3"]["title"] == "City of Lost Children, The (Cité des enfants perdus, La)"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"users": 2, "items": 3, "interactions": 4, "unrated_items_dropped": 1}
