"""``python -m mmrec.report <folder> [--out DIR] [--metric recall --k 20] [--delta 0.02] [--alpha 0.05]``

Writes the files listed in :mod:`mmrec.report.write` into ``DIR`` (default ``<folder>/report``) and prints a
compact Δ% table per dataset (interval, outcome, seeds needed), one line per declared research question and
the HTML report's path. The research questions come from the study config, never from the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from mmrec.errors import MMRecError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m mmrec.report",
        description=("Tables, statistics, plots and an HTML page from every repeat summary.json below a folder."),
    )
    p.add_argument("folder", help="folder holding the study's runs (searched recursively)")
    p.add_argument("--metric", default="recall", help="metric name, e.g. recall, ndcg, or recall@20 (default recall)")
    p.add_argument("--k", type=int, default=None, help="cut-off K (default 20, or the K in --metric)")
    p.add_argument(
        "--delta",
        type=float,
        default=0.02,
        help="margin δ as a fraction of full's mean, used inside every test (default 0.02 = 2%%)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="level of each decision after Holm (default 0.05)")
    p.add_argument("--out", default=None, help="output folder (default <folder>/report)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--wandb-project", default=None, help="also upload to this W&B project (never fails the report)")
    p.add_argument(
        "--wandb",
        action="store_true",
        help="also log the rendered report to W&B, one run per study group (offline unless WANDB_MODE=online)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from mmrec.report import (
        ReportSettings,
        build_report,
        log_to_wandb,
        metric_name,
        print_summary,
        write_report,
    )

    args = parse_args(argv)
    try:
        settings = ReportSettings(
            metric=metric_name(args.metric, args.k),
            delta=args.delta,
            alpha=args.alpha,
        )
        report = build_report(args.folder, settings)
        write_report(report, args.out, plots=not args.no_plots)
    except MMRecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_summary(report)
    if args.wandb:
        import os

        from mmrec.report.wandb_export import export_to_wandb

        html = report.files.get("html")
        ids = export_to_wandb(
            html.parent if html else args.out,
            project=args.wandb_project or "mmrec",
            mode=os.environ.get("WANDB_MODE", "offline"),
        )
        with contextlib.suppress(Exception):  # flush the run files before the process (or the caller) goes on
            import wandb

            wandb.teardown()
        mode = os.environ.get("WANDB_MODE", "offline")
        where = html.parent / "wandb" if html else "wandb"
        upload = f"; upload: wandb sync {where}/offline-run-*" if mode == "offline" else ""
        print(f"W&B: {len(ids)} report runs logged ({mode}{upload})")
    elif args.wandb_project:
        log_to_wandb(report, args.wandb_project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
