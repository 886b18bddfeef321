"""Fault injection: SIGKILL and disk full during each kind of write, racing jobs, a corrupted last checkpoint.

After each fault: no partial file is read as good, the next run completes, and its metrics equal an undisturbed
run's (tiny FREEDOM jobs, 2 epochs; kills run in a subprocess, disk-full faults in this process).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from pathlib import Path

import pytest

from mmrec import cache
from mmrec.errors import DataError
from tests.faults import harness

pytestmark = pytest.mark.slow
OCCURRENCE = {"cache": 1, "checkpoint": 1, "summary": 1, "report": 1}  # checkpoint: the first best.ckpt


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An undisturbed job and the report of its folder."""
    root = tmp_path_factory.mktemp("baseline")
    os.environ["MMREC_CACHE"] = str(root / "cache")
    record = harness.train_job(root / "runs" / "run")
    return {"record": record, "report": harness.write_report(root / "runs"), "run_dir": root / "runs" / "run"}


def _setup(site: str, tmp_path: Path, baseline: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))  # fresh: the cache is built (and written) again
    spec = {"site": site, "run_dir": str(tmp_path / "run"), "folder": str(tmp_path / "runs")}
    if site == "report":
        shutil.copytree(baseline["run_dir"], tmp_path / "runs" / "run")
    return spec


def _hidden_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp")] if folder.exists() else []


def _check_nothing_partial_is_good(site: str, tmp_path: Path) -> None:
    entries = cache.list_entries(tmp_path / "cache") if (tmp_path / "cache").exists() else []
    for row in entries:  # every visible cache entry is complete and intact
        cache.decode_entry(Path(row["path"]).read_bytes(), row["kind"], row["key"])
    if site == "checkpoint":
        # the interrupted best.ckpt is not there, nor last.ckpt (a link to best, made after it is complete)
        folder = tmp_path / "run" / "checkpoints"
        assert not (folder / "best.ckpt").exists() and not (folder / "last.ckpt").exists()
    if site == "summary":
        assert not (tmp_path / "run" / "summary.json").exists()
    if site == "report":
        assert not (tmp_path / "runs" / "report").exists() or not any(
            p.suffix in (".csv", ".md", ".tex", ".html") and p.stat().st_size == 0
            for p in (tmp_path / "runs" / "report").iterdir()
        )


def _recover_and_compare(site: str, tmp_path: Path, baseline: dict) -> None:
    if site == "report":
        assert harness.write_report(tmp_path / "runs") == baseline["report"]
        return
    record = harness.train_job(tmp_path / "run2")
    assert record["status"] == "completed"
    assert record["metrics"]["test"] == baseline["record"]["metrics"]["test"]
    assert record["best_epoch"] == baseline["record"]["best_epoch"]


@pytest.mark.parametrize("site", harness.SITES)
def test_sigkill_during_a_write(site: str, tmp_path: Path, baseline: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {**_setup(site, tmp_path, baseline, monkeypatch), "kind": "kill", "occurrence": OCCURRENCE[site]}
    assert harness.run_forked(spec) == -signal.SIGKILL
    assert _hidden_leftovers(tmp_path), "the kill did not happen during a write"
    _check_nothing_partial_is_good(site, tmp_path)
    _recover_and_compare(site, tmp_path, baseline)


@pytest.mark.parametrize("site", harness.SITES)
def test_disk_full_during_a_write(site: str, tmp_path: Path, baseline: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _setup(site, tmp_path, baseline, monkeypatch)
    with harness.fault(site, "enospc", OCCURRENCE[site]) as seen, pytest.raises(OSError) as info:
        if site == "report":
            harness.write_report(Path(spec["folder"]))
        else:
            harness.train_job(Path(spec["run_dir"]))
    assert info.value.errno == errno.ENOSPC and seen["writes"] == OCCURRENCE[site]
    assert _hidden_leftovers(tmp_path) == []  # the failed write removed its temporary file
    _check_nothing_partial_is_good(site, tmp_path)
    _recover_and_compare(site, tmp_path, baseline)


def test_two_jobs_racing_to_build_the_same_cache_key(
    tmp_path: Path, baseline: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))
    pids = [
        harness.start_forked({"site": "none", "kind": "kill", "run_dir": str(tmp_path / f"run{i}")}) for i in range(2)
    ]  # both start with an empty cache and build the same keys at the same time
    assert [harness.wait_forked(pid) for pid in pids] == [0, 0]
    from mmrec import summary

    for i in range(2):
        assert summary.read(tmp_path / f"run{i}")["metrics"]["test"] == baseline["record"]["metrics"]["test"]
    rows = cache.list_entries(tmp_path / "cache")
    assert rows and len({(r["kind"], r["key"]) for r in rows}) == len(rows)
    for row in rows:
        cache.decode_entry(Path(row["path"]).read_bytes(), row["kind"], row["key"])


@pytest.mark.parametrize("damage", ["truncated", "planted pickle"])
def test_resume_from_a_corrupted_last_checkpoint_is_a_clear_error(damage: str, tmp_path: Path, baseline: dict) -> None:
    run = tmp_path / "run"
    shutil.copytree(baseline["run_dir"], run)
    last = run / "checkpoints" / "last.ckpt"
    marker = tmp_path / "executed"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    else:
        import io

        import torch

        class Payload:
            def __reduce__(self):  # noqa: ANN204
                return (open, (str(marker), "w"))

        buf = io.BytesIO()
        torch.save({"state_dict": {}, "epoch": 0, "x": Payload()}, buf)
        last.write_bytes(buf.getvalue())
    (run / "summary.json").unlink()
    with pytest.raises(DataError, match="not a readable checkpoint") as info:
        harness.train_job(run, "resume=true")
    assert str(last) in str(info.value) and "without resume=true" in str(info.value)
    assert not marker.exists()
    record = harness.train_job(tmp_path / "fresh")  # the advice works: a fresh run gives the same results
    assert record["metrics"]["test"] == baseline["record"]["metrics"]["test"]
