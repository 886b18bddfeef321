"""``python -m mmrec.extract``: run an encoder over a dataset's items and write MMRec-layout feature files.

For shipping features to another machine: ``OUT/<modality>_feat.npy`` (float32, row i = item i of the loaded
dataset; missing content filled per ``--fill``), ``OUT/item_map.tsv`` (``item_id`` -> ``itemID`` row) and
``OUT/features.json`` (encoder, dims, the items that lacked each modality). Every file is written atomically.

    python -m mmrec.extract --dataset-dir ../shared/datasets/ml100k-mm --encoder minilm_effnet --out feats/ \\
        --text-template "{title} ({year}). Genres: {genres}."

``--encoder`` is a preset of ``conf/encoder`` (minilm, effnet, minilm_effnet, clip, vit) or a path to such a
YAML file; ``--set key=value`` overrides its fields (e.g. ``--set device=cpu``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from mmrec.cache import atomic_write_bytes, atomic_write_text
from mmrec.errors import ConfigError, MMRecError
from mmrec.features.encoders.base import Encoder
from mmrec.features.encoders.modality import item_ids

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "encoder"


def encoder_config(encoder: str, overrides: list[str] | None = None) -> Any:
    """The OmegaConf config of a ``conf/encoder`` preset (by name) or of a YAML file (by path)."""
    path = Path(encoder)
    if not path.suffix:
        path = CONF_DIR / f"{encoder}.yaml"
    if not path.is_file():
        presets = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown encoder {encoder!r}: no file {path}; presets: {presets}")
    cfg = OmegaConf.load(path)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return cfg


def build_encoder(encoder: str, overrides: list[str] | None = None) -> Encoder:
    """Instantiate an encoder exactly as Hydra does for ``encoder=<name>``."""
    from hydra.utils import instantiate

    enc = instantiate(encoder_config(encoder, overrides))
    if not isinstance(enc, Encoder):
        raise ConfigError(f"encoder {encoder!r} builds a {type(enc).__name__}, not an mmrec Encoder")
    return enc


def write_features(features: Any, ids: list[str], out: Path, meta: dict[str, Any]) -> list[Path]:
    """``<modality>_feat.npy`` per modality + ``item_map.tsv`` + ``features.json``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for m in features.modalities:
        buf = io.BytesIO()
        np.save(buf, features.tensors[m].cpu().numpy().astype(np.float32), allow_pickle=False)
        path = out / f"{m}_feat.npy"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    atomic_write_text(out / "item_map.tsv", "item_id\titemID\n" + "".join(f"{r}\t{i}\n" for i, r in enumerate(ids)))
    atomic_write_text(out / "features.json", json.dumps(meta, indent=2) + "\n")
    return written + [out / "item_map.tsv", out / "features.json"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmrec.extract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset-dir", required=True, help="raw-layout folder (items.jsonl, interactions.tsv)")
    parser.add_argument("--format", default="raw", choices=["raw"], help="dataset layout (only raw has content)")
    parser.add_argument("--name", default=None, help="dataset name (default: the folder name)")
    parser.add_argument("--encoder", default="minilm_effnet", help="conf/encoder preset or a YAML file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--text-template", default=None, help='e.g. "{title} ({year}). Genres: {genres}."')
    parser.add_argument("--fill", default="mean", choices=["mean", "zero"], help="value for items lacking content")
    parser.add_argument(
        "--k-core",
        type=int,
        default=0,
        help="k-core filter before extracting (0 = every item "
        "that has an interaction); use the value of your dataset config to match its item ids",
    )
    parser.add_argument("--min-rating", type=float, default=None)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the encoder config (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from mmrec.data import load_dataset

    try:
        encoder = build_encoder(args.encoder, args.overrides)
        data_dir = Path(args.dataset_dir)
        dataset = load_dataset(
            name=args.name or data_dir.name,
            format=args.format,
            data_dir=str(data_dir),
            fill=args.fill,
            text_template=args.text_template,
            k_core=args.k_core,
            min_rating=args.min_rating,
        )
        features = encoder(dataset)
    except MMRecError as e:
        parser.exit(2, f"error: {e}\n")
    ids = item_ids(dataset)
    meta = {
        "encoder": encoder.name,
        "encoder_config": OmegaConf.to_container(encoder_config(args.encoder, args.overrides)),
        "dataset_dir": str(Path(args.dataset_dir).resolve()),
        "text_template": args.text_template,
        "fill": args.fill,
        "k_core": args.k_core,
        "n_items": len(ids),
        "dims": features.dims(),
        "missing": {
            m: [ids[i] for i in (~features.masks[m]).nonzero().flatten().tolist()] for m in features.modalities
        },
        "report": getattr(encoder, "report", {}),
    }
    for path in write_features(features, ids, Path(args.out), meta):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
