"""``python -m mmrec.prepare <name>``: download and convert a public data set (``list`` shows them)."""

from __future__ import annotations

import argparse
import shlex
import sys

from mmrec.errors import MMRecError
from mmrec.prepare import DATASETS, prepare
from mmrec.prepare.download import MIRROR_ENV, DownloadSettings
from mmrec.prepare.output import DATA_ENV, data_root
from mmrec.prepare.registry import SOURCES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmrec.prepare",
        description="Turn a public data set into a folder the mmrec loaders read (with manifest.json).",
        epilog=_datasets_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", help="data set name, or 'list' to show them all")
    parser.add_argument("--root", default=None, help=f"data root (default ${DATA_ENV} or ~/.cache/mmrec/data)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder is already prepared")
    parser.add_argument(
        "--mirror",
        default=None,
        help=f"fetch <mirror>/<host>/<path> instead of each URL (default ${MIRROR_ENV})",
    )
    parser.add_argument(
        "--from-dir",
        default=None,
        help="folder with hand-downloaded source files (used instead of downloading them)",
    )
    images = parser.add_mutually_exclusive_group()
    images.add_argument(
        "--images",
        dest="images",
        action="store_true",
        default=None,
        help="download item images (default: on for Amazon 2023, off otherwise)",
    )
    images.add_argument("--no-images", dest="images", action="store_false", help="skip item images")
    parser.add_argument("--workers", type=int, default=16, help="concurrent image downloads")
    parser.add_argument("--k-core", type=int, default=5, help="k-core filter for the Amazon raw sets")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network read")
    parser.add_argument("--retries", type=int, default=3, help="attempts per file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _datasets_epilog() -> str:
    """The data sets, one line each, for ``--help``."""
    width = max(len(name) for name in DATASETS)
    lines = [f"  {name:<{width}}  {_first_sentence(spec.description)}" for name, spec in sorted(DATASETS.items())]
    return "data sets (`list` adds layout and source):\n" + "\n".join(lines)


def _first_sentence(text: str, limit: int = 100) -> str:
    line = " ".join(text.split()).split(". ")[0].rstrip(".")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _list() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mmrec.prepare data sets")
    for column in ("name", "layout", "source", "description"):
        table.add_column(column)
    for name, spec in sorted(DATASETS.items()):
        table.add_row(name, spec.layout, SOURCES[spec.source].title, spec.description)
    Console().print(table)
    print(f"data root: {data_root()}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.name == "list":
        _list()
        return 0
    settings = DownloadSettings.from_env(
        mirror=args.mirror, timeout_s=args.timeout, retries=args.retries, progress=not args.no_progress
    )
    command = "python -m mmrec.prepare " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        prepare(
            args.name,
            args.root,
            force=args.force,
            settings=settings,
            images=args.images,
            workers=args.workers,
            k_core=args.k_core,
            from_dir=args.from_dir,
            command=command,
        )
    except MMRecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written (partial downloads are resumed next time)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
