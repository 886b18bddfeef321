"""MMRec's ready-made sets (Baby, Sports, Clothing, Elec, MicroLens) from the Google-Drive folders its README
links → MMRec layout (``<name>.inter`` + ``<modality>_feat.npy``), checked for dense ids and aligned rows.

Drive has no stable download API without a key, so the public folder page (``embeddedfolderview``) is read
to find the set's sub-folder (or ``<name>.zip``) and its file ids; each file is fetched from
``drive.usercontent.google.com``, following Drive's "cannot scan for viruses" confirmation form for large
files. If Drive changes its pages, download the folder by hand and pass it with ``--from-dir``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.errors import DataError
from mmrec.prepare.context import PrepareContext
from mmrec.prepare.download import CorruptDownload, FollowUrl, copy_or_link, fetch_text, looks_like_html
from mmrec.prepare.registry import DRIVE_FILE_URL, DRIVE_FOLDER_PAGE, DRIVE_LIST_URL, RemoteFile

INTER_COLUMNS = ("userID", "itemID", "x_label")
_ENTRY = re.compile(r'<div class="flip-entry" id="entry-([\w-]+)"')
_HREF = re.compile(r'<a href="([^"]+)"')
_TITLE = re.compile(r'<div class="flip-entry-title">([^<]*)</div>')
_FORM = re.compile(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_INPUT = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')


@dataclass(frozen=True)
class DriveEntry:
    id: str
    name: str
    is_folder: bool


def parse_drive_listing(page: str) -> list[DriveEntry]:
    """Entries of a Drive ``embeddedfolderview`` page: id, name, and whether it is a folder."""
    starts = [m.start() for m in _ENTRY.finditer(page)] + [len(page)]
    entries = []
    for begin, end in zip(starts[:-1], starts[1:]):
        chunk = page[begin:end]
        entry_id = _ENTRY.match(chunk).group(1)  # type: ignore[union-attr]
        title = _TITLE.search(chunk)
        href = _HREF.search(chunk)
        if title is None:
            continue
        is_folder = bool(href and "/folders/" in html.unescape(href.group(1)))
        entries.append(DriveEntry(entry_id, html.unescape(title.group(1)).strip(), is_folder))
    return entries


def drive_confirm_url(page: str) -> str | None:
    """The real download URL behind Drive's confirmation page (``download-form``), if the page has one."""
    match = _FORM.search(page)
    if not match:
        return None
    action = html.unescape(match.group(1))
    params = {html.unescape(k): html.unescape(v) for k, v in _INPUT.findall(match.group(2))}
    return f"{action}?{urllib.parse.urlencode(params)}" if params else action


def _drive_validator(path: Path) -> None:
    if looks_like_html(path):
        page = path.read_text(encoding="utf-8", errors="replace")
        url = drive_confirm_url(page)
        if url:
            raise FollowUrl(url, "Google Drive asked to confirm the download")
        raise CorruptDownload("Google Drive returned a page instead of the file (quota exceeded or no access?)")


def _list(folder_id: str, ctx: PrepareContext) -> list[DriveEntry]:
    url = DRIVE_LIST_URL.format(id=folder_id)
    entries = parse_drive_listing(fetch_text(url, ctx.settings))
    if not entries:
        raise DataError(
            url,
            "the Google-Drive folder page lists no files (Drive changed its page, or rate limits)",
            _manual_fix(ctx),
        )
    return entries


def _manual_fix(ctx: PrepareContext) -> str:
    folder = DRIVE_FOLDER_PAGE.format(id=ctx.spec.options["drive_folder"])
    return (
        f"download the '{ctx.spec.options['subfolder']}' folder by hand from {folder} and run "
        f"`python -m mmrec.prepare {ctx.spec.name} --from-dir <that folder>`"
    )


def _wanted(name: str) -> bool:
    return name.endswith(".inter") or name.endswith("_feat.npy") or name.endswith("id_mapping.csv")


def _drive_files(ctx: PrepareContext) -> list[Path]:
    """Download the set's files from Drive; returns their local paths."""
    sub = ctx.spec.options["subfolder"].lower()
    top = _list(ctx.spec.options["drive_folder"], ctx)
    folder = next((e for e in top if e.is_folder and e.name.lower() == sub), None)
    archive = next((e for e in top if not e.is_folder and e.name.lower() == f"{sub}.zip"), None)
    if folder is not None:
        entries = [e for e in _list(folder.id, ctx) if not e.is_folder and _wanted(e.name)]
    elif archive is not None:
        path = ctx.fetch(RemoteFile(DRIVE_FILE_URL.format(id=archive.id), archive.name), _drive_validator)
        target = ctx.downloads / ctx.spec.name
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and _wanted(Path(m.filename).name)]
            target.mkdir(parents=True, exist_ok=True)
            for member in members:
                dest = target / Path(member.filename).name
                partial = dest.with_name(dest.name + ".extracting")
                with zf.open(member) as src, open(partial, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(partial, dest)
        return [target / Path(m.filename).name for m in members]
    elif not any(e.is_folder for e in top) and any(e.name.endswith(".inter") for e in top):  # a flat folder
        entries = [e for e in top if not e.is_folder and _wanted(e.name)]
    else:
        names = ", ".join(sorted(e.name for e in top)[:20])
        raise DataError(
            DRIVE_LIST_URL.format(id=ctx.spec.options["drive_folder"]),
            f"no '{sub}' folder, '{sub}.zip' or .inter file in the Drive folder (it has: {names})",
            _manual_fix(ctx),
        )
    return [
        ctx.fetch(RemoteFile(DRIVE_FILE_URL.format(id=e.id), e.name), _drive_validator, subdir=ctx.spec.name)
        for e in entries
    ]


def _local_files(ctx: PrepareContext) -> list[Path]:
    folder = Path(ctx.settings.local_dir)  # type: ignore[arg-type]
    paths = sorted(p for p in folder.iterdir() if p.is_file() and _wanted(p.name))
    for path in paths:
        ctx.fetch(RemoteFile(path.resolve().as_uri(), path.name))  # verifies and records it
    return paths


def read_inter(path: Path) -> pd.DataFrame:
    """An MMRec ``.inter`` file, checked: columns, integer ids, dense users, x_label in {0, 1, 2}."""
    try:
        frame = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(path, f"cannot parse as a tab-separated .inter file: {exc}") from exc
    missing = [c for c in INTER_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {missing}; header is {list(frame.columns)}",
            "an MMRec .inter file has a header with userID, itemID and x_label",
        )
    for col in INTER_COLUMNS:
        if not pd.api.types.is_integer_dtype(frame[col]):
            raise DataError(path, f"column {col} is not integer ({frame[col].dtype})")
    users = frame["userID"].to_numpy()
    if users.min() != 0 or users.max() + 1 != len(np.unique(users)):
        raise DataError(path, "userID is not dense 0..n_users-1", "re-index users before use")
    if frame["itemID"].min() < 0:
        raise DataError(path, "negative itemID")
    bad = sorted(set(frame["x_label"].unique()) - {0, 1, 2})
    if bad:
        raise DataError(path, f"x_label has values {bad}; expected 0 (train), 1 (valid), 2 (test)")
    return frame


def prepare_mmrec_set(ctx: PrepareContext, out: Path) -> dict[str, Any]:
    paths = _local_files(ctx) if ctx.settings.local_dir else _drive_files(ctx)
    inters = [p for p in paths if p.name.endswith(".inter")]
    if not inters:
        raise DataError(
            paths[0].parent if paths else ctx.downloads,
            "no .inter file among the set's files",
            _manual_fix(ctx),
        )
    inter = next((p for p in inters if p.name == f"{ctx.spec.name}.inter"), inters[0])
    frame = read_inter(inter)
    n_items = int(frame["itemID"].max()) + 1
    features: dict[str, Any] = {}
    for path in sorted(p for p in paths if p.name.endswith("_feat.npy")):
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.ndim != 2 or arr.shape[0] < n_items:
            raise DataError(
                path,
                f"shape {arr.shape} but the .inter file has {n_items} items (max itemID + 1)",
                "the feature file does not belong to this .inter file",
            )
        for start in range(0, arr.shape[0], 8192):
            if not np.isfinite(arr[start : start + 8192]).all():
                raise DataError(path, f"contains NaN or infinite values (rows {start}..{start + 8191})")
        features[path.name.removesuffix("_feat.npy")] = {
            "file": path.name,
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
        }
    if not features:
        raise DataError(inter.parent, "no <modality>_feat.npy file next to the .inter file", _manual_fix(ctx))
    rows = {info["shape"][0] for info in features.values()}
    if len(rows) > 1:
        raise DataError(
            inter.parent,
            f"feature files disagree on the number of items: { {m: i['shape'] for m, i in features.items()} }",
            "the files come from different versions of the set",
        )
    n_items = max(n_items, rows.pop())  # feature rows define the item universe, as the loader reads it
    copy_or_link(inter, out / f"{ctx.spec.name}.inter")
    for path in paths:
        if path != inter and not path.name.endswith(".inter"):
            copy_or_link(path, out / path.name)
    labels = frame["x_label"].to_numpy()
    return {
        "filtering": {"procedure": "as shipped by MMRec (5-core on the Amazon 2014 ratings)", "k_core": 5},
        "split": {
            "method": "shipped",
            "column": "x_label",
            "values": {"0": "train", "1": "valid", "2": "test"},
        },
        "counts": {
            "users": int(frame["userID"].max()) + 1,
            "items": n_items,
            "items_with_interactions": int(frame["itemID"].nunique()),
            "interactions": len(frame),
            "train": int((labels == 0).sum()),
            "val": int((labels == 1).sum()),
            "test": int((labels == 2).sum()),
        },
        "features": features,
        "drive_folder": DRIVE_FOLDER_PAGE.format(id=ctx.spec.options["drive_folder"]),
    }
