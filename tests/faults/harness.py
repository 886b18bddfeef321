"""Runs tiny real jobs with a fault injected at the n-th atomic write of one kind of file.

``python -m tests.faults.harness <spec.json>`` (a subprocess per SIGKILL: the process dies for real), or the
functions below in-process (disk full: the write raises ``ENOSPC`` halfway, as a full disk does).
Every file mmrec writes goes through :func:`mmrec.atomic_io._write_all`; the fault writes half the bytes to the
temporary file, then kills the process or raises, so the test sees exactly what a real fault leaves behind.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SMALL = ["model=freedom", "dataset.synthetic.n_users=120", "dataset.synthetic.n_items=80",
         "dataset.synthetic.n_factors=4", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
         "logger=none", "model.knn_k=5"]
SITES = ("cache", "checkpoint", "summary", "report")


def site_of(tmp_name: str) -> str | None:
    """Which kind of file a temporary file (``.<target>.<random>.tmp``) is being written for."""
    path = Path(tmp_name)
    target = path.name[1:].rsplit(".", 2)[0]
    if target.endswith(".ckpt"):
        return "checkpoint"
    if target == "summary.json":
        return "summary"
    if path.parent.name == "report":
        return "report"
    if Path(os.environ.get("MMREC_CACHE", "")).resolve() in path.resolve().parents:
        return "cache"
    return None


@contextmanager
def fault(site: str, kind: str, occurrence: int = 1) -> Iterator[dict[str, int]]:
    """Make the ``occurrence``-th write for ``site`` fail halfway: ``kill`` (SIGKILL) or ``enospc``."""
    from mmrec import atomic_io

    original = atomic_io._write_all
    seen = {"writes": 0}

    def failing(f: Any, data: bytes) -> None:
        if site_of(f.name) == site:
            seen["writes"] += 1
            if seen["writes"] == occurrence:
                f.write(data[: len(data) // 2])
                f.flush()
                if kind == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f.name)
        original(f, data)

    atomic_io._write_all = failing
    try:
        yield seen
    finally:
        atomic_io._write_all = original


def train_job(run_dir: Path, *overrides: str) -> dict[str, Any]:
    """One training job (composed as ``train.py`` would), run in this process; returns its summary."""
    from hydra import compose, initialize_config_dir

    from mmrec import summary
    from mmrec.run import train

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*SMALL, f"paths.output_dir={run_dir}", f"paths.root_dir={REPO}",
                                          "paths.shared_datasets=/nonexistent", *overrides])
    train(cfg)
    return summary.read(run_dir)


def write_report(folder: Path) -> dict[str, str]:
    """The report of every run below ``folder`` (tables and HTML); returns file name → content (with the
    folder's own path written ``<folder>``, so reports of copies compare equal; the HTML page, which carries
    the time it was made, is left out)."""
    from mmrec.report.core import build_report
    from mmrec.report.core import write_report as write

    files = write(build_report(folder), plots=False)
    return {Path(p).name: Path(p).read_text().replace(str(folder), "<folder>") for p in files.values()
            if Path(p).suffix != ".html"}


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    with fault(spec["site"], spec["kind"], spec.get("occurrence", 1)):
        if spec["site"] == "report":
            write_report(Path(spec["folder"]))
        else:
            train_job(Path(spec["run_dir"]), *spec.get("overrides", []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
