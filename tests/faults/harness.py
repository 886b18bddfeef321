"""Runs tiny real jobs with a fault injected at the n-th atomic write of one kind of file.

:func:`run_forked` runs a job in a forked copy of the calling process (the process dies for real on SIGKILL,
without paying for a fresh interpreter's imports); ``python -m tests.faults.harness <spec.json>`` does the
same in a new interpreter. Disk-full faults run in-process (the write raises ``ENOSPC`` halfway, as a full
disk does).
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
SMALL = [
    "model=freedom",
    "dataset.synthetic.n_users=120",
    "dataset.synthetic.n_items=80",
    "dataset.synthetic.n_factors=4",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "model.knn_k=5",
]
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
        cfg = compose(
            "train",
            overrides=[
                *SMALL,
                f"paths.output_dir={run_dir}",
                f"paths.root_dir={REPO}",
                "paths.shared_datasets=/nonexistent",
                *overrides,
            ],
        )
    train(cfg)
    return summary.read(run_dir)


def write_report(folder: Path) -> dict[str, str]:
    """The report of every run below ``folder`` (tables and HTML); returns file name → content (with the
    folder's own path written ``<folder>``, so reports of copies compare equal; the HTML page, which carries
    the time it was made, is left out)."""
    from mmrec.report import build_report
    from mmrec.report import write_report as write

    files = write(build_report(folder), plots=False)
    return {
        Path(p).name: Path(p).read_text().replace(str(folder), "<folder>")
        for p in files.values()
        if Path(p).suffix != ".html"
    }


def start_forked(spec: dict[str, Any]) -> int:
    """Start ``spec`` in a forked child; returns its pid (see :func:`wait_forked`)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code (pytest)
        code = 1
        try:
            run_spec(spec)
            code = 0
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_forked(pid: int) -> int:
    """The child's exit code, or minus the signal that ended it."""
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_forked(spec: dict[str, Any]) -> int:
    return wait_forked(start_forked(spec))


def run_spec(spec: dict[str, Any]) -> None:
    with fault(spec["site"], spec["kind"], spec.get("occurrence", 1)):
        if spec["site"] == "report":
            write_report(Path(spec["folder"]))
        else:
            train_job(Path(spec["run_dir"]), *spec.get("overrides", []))


def main(spec_path: str) -> int:
    run_spec(json.loads(Path(spec_path).read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
