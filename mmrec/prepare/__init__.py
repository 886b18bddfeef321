"""Public data sets → folders the loaders read: ``python -m mmrec.prepare <name>``.

Layouts written:
- MMRec (``baby``, ``sports``, ``clothing``, ``elec``, ``microlens``): ``<name>.inter`` (``userID itemID
  x_label`` ...) and ``<modality>_feat.npy`` (row = itemID), as shipped by MMRec.
- raw (``ml100k``, ``ml1m``, ``amazon2014_*``, ``amazon2023_*``): ``interactions.tsv`` (``user_id item_id
  rating timestamp``, raw ids), ``items.jsonl`` (``item_id``, ``title``, metadata, ``text``, ``image``),
  optional ``images/``; Amazon 2014 adds ``image_feat.npy`` + ``image_feat_mask.npy`` (rows in
  ``items.jsonl`` order).

Every folder has ``manifest.json`` (source URLs, checksums, dates, filtering, split, counts, licence) and
appears in one rename, so an interrupted preparation leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmrec import __version__
from mmrec.errors import ConfigError, DataError
from mmrec.prepare.context import PrepareContext
from mmrec.prepare.download import DownloadSettings, utc_now
from mmrec.prepare.output import (
    MANIFEST,
    AlreadyPrepared,
    data_root,
    downloads_dir,
    show_licence_once,
    staging,
    write_manifest,
)
from mmrec.prepare.registry import DATASETS, SOURCES, DatasetSpec

__all__ = ["DATASETS", "DownloadSettings", "prepare", "data_root"]


def _preparer(kind: str) -> Callable[[PrepareContext, Path], dict[str, Any]]:
    if kind == "movielens":
        from mmrec.prepare.movielens import prepare_movielens

        return prepare_movielens
    if kind == "amazon2014":
        from mmrec.prepare.amazon2014 import prepare_amazon2014

        return prepare_amazon2014
    if kind == "amazon2023":
        from mmrec.prepare.amazon2023 import prepare_amazon2023

        return prepare_amazon2023
    if kind == "mmrec":
        from mmrec.prepare.mmrec_sets import prepare_mmrec_set

        return prepare_mmrec_set
    raise ConfigError(f"no preparer for kind {kind!r}")


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(
            f"unknown data set {name!r}; `python -m mmrec.prepare list` shows the known ones: "
            f"{', '.join(sorted(DATASETS))}"
        )
    return DATASETS[name]


def prepare(
    name: str,
    root: str | Path | None = None,
    *,
    force: bool = False,
    settings: DownloadSettings | None = None,
    images: bool | None = None,
    workers: int = 16,
    k_core: int = 5,
    from_dir: str | Path | None = None,
    command: str | None = None,
    verbose: bool = True,
) -> Path:
    """Download, check and convert data set ``name`` into ``<root>/<name>``; returns that folder.

    An already prepared folder (one with a manifest) is left as it is unless ``force``. ``images`` overrides
    the set's default (Amazon 2023: on; Amazon 2014: off). ``k_core`` applies to the Amazon raw sets.
    """
    spec = get_spec(name)
    source = SOURCES[spec.source]
    root = data_root(root)
    final = root / name
    if final.exists() and not force:
        if (final / MANIFEST).exists():
            if verbose:
                print(f"[mmrec.prepare] {final} is already prepared (see its {MANIFEST}); --force rebuilds it")
            return final
        raise DataError(
            final,
            f"folder exists but has no {MANIFEST} (not written by mmrec.prepare, or older)",
            "move it away, or pass --force to replace it",
        )
    if k_core < 1:
        raise ConfigError(f"k_core must be >= 1, got {k_core}")
    settings = dataclasses.replace(settings) if settings else DownloadSettings.from_env()
    if from_dir is not None:
        settings.local_dir = Path(from_dir)
        if not settings.local_dir.is_dir():
            raise DataError(settings.local_dir, "--from-dir is not a folder")
    downloads = downloads_dir(root, spec.source)
    show_licence_once(source, downloads)
    ctx = PrepareContext(
        spec=spec,
        source=source,
        root=root,
        downloads=downloads,
        settings=settings,
        images=spec.options.get("images", False) if images is None else images,
        workers=workers,
        k_core=k_core,
    )
    try:
        _build(ctx, root, name, force, command, verbose)
    except AlreadyPrepared:  # another process finished the same set meanwhile
        if verbose:
            print(f"[mmrec.prepare] {final} was prepared meanwhile by another process")
    return final


def _build(ctx: PrepareContext, root: Path, name: str, force: bool, command: str | None, verbose: bool) -> None:
    spec, source, settings = ctx.spec, ctx.source, ctx.settings
    final = root / name
    with staging(root, name, force=force) as tmp:
        result = _preparer(spec.kind)(ctx, tmp)
        image_summary = result.pop("_image_summary", None)
        manifest = {
            "name": name,
            "layout": spec.layout,
            "description": spec.description,
            "prepared_at": utc_now(),
            "prepared_by": f"mmrec {__version__} (mmrec.prepare)",
            "command": command or f"python -m mmrec.prepare {name}",
            "source": {
                "key": source.key,
                "title": source.title,
                "homepage": source.homepage,
                "citation": source.citation,
            },
            "licence": source.licence,
            "downloads": [record.to_dict() for record in ctx.records],
            "settings": {
                "k_core": ctx.k_core if spec.kind.startswith("amazon") else None,
                "images": ctx.images,
                "mirror": settings.mirror,
                "from_dir": str(settings.local_dir) if settings.local_dir else None,
            },
            **result,
        }
        write_manifest(tmp, manifest)
    if verbose:
        counts = ", ".join(f"{k} {v:,}" for k, v in result.get("counts", {}).items() if isinstance(v, int))
        print(f"[mmrec.prepare] {name} ready in {final}: {counts}")
        if image_summary:
            print(f"[mmrec.prepare] {image_summary}")
        missing = result.get("features", {}).get("image", {}).get("missing") if spec.kind == "amazon2014" else None
        if missing:
            print(f"[mmrec.prepare] {missing} items lack image features (zero rows, mask false)")
    sys.stdout.flush()
