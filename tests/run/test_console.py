"""What a user sees: mmrec errors as one clean block (exit 2), a quiet console by default, verbose=true for all."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mmrec import summary
from mmrec.console import HARMLESS_WARNINGS, error_block, quiet, run_cli
from mmrec.errors import ConfigError, DataError, find_mmrec_error
from tests.run.test_train import REPO, SMALL, run_train

BANNER = ("GPU available", "TPU available", "Tip:", "litlogger", "litmodels")


def run_multirun(args: list[str], sweep_dir: Path) -> subprocess.CompletedProcess:
    """``train.py -m hydra/sweeper=basic`` (a plain grid) on the small synthetic set; stderr into stdout, in
    order."""
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/sweeper=basic",
        *SMALL,
        f"hydra.sweep.dir={sweep_dir}",
        *args,
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        cmd, cwd=sweep_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=600
    )


def _bad_dataset(tmp_path: Path) -> list[str]:
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    (folder / "bad.inter").write_text("userID\titemID\n1\t2\n")  # no x_label column, no rating, 1 row
    return ["dataset.format=mmrec", f"dataset.data_dir={folder}", "dataset.name=bad"]


def test_data_error_is_one_clean_block_and_the_record_stays(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    p = run_train(_bad_dataset(tmp_path), run_dir, check=False)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = p.stderr.strip().splitlines()
    assert lines[0].startswith(f"mmrec: error: {tmp_path / 'bad'}"), p.stderr
    assert lines[1].startswith("hint: ")
    for noise in ("Traceback", "Error executing job", "InstantiationException", "full_key", "Error in call"):
        assert noise not in p.stderr + p.stdout
    record = summary.read(run_dir)
    assert record["status"] == "failed" and record["error"].startswith("DataError: ")
    assert str(run_dir / "summary.json") in p.stderr
    # HYDRA_FULL_ERROR=1 gives the whole trace instead
    p = run_train(_bad_dataset(tmp_path), tmp_path / "run2", env={"HYDRA_FULL_ERROR": "1"}, check=False)
    assert p.returncode == 1
    assert "Traceback" in p.stderr and "mmrec.errors.DataError" in p.stderr and "mmrec: error:" not in p.stderr


def test_config_error_in_a_multirun_is_the_same_block(tmp_path: Path) -> None:
    p = run_multirun(["monitor=val/recall@7", "seed=0,1"], tmp_path / "sweep")
    assert p.returncode == 2, p.stdout[-2000:]
    assert "mmrec: error: monitor='val/recall@7' is not computed" in p.stdout
    assert "\nhint: " in p.stdout and "Traceback" not in p.stdout


def test_quiet_by_default_and_verbose_brings_the_rest_back(tmp_path: Path) -> None:
    """A two-job multirun: job 0 quiet (the default), job 1 with verbose=true."""
    p = run_multirun(
        ["model=bpr", "trainer.max_epochs=3", "trainer.enable_progress_bar=true", "verbose=false,true"],
        tmp_path / "sweep",
    )
    assert p.returncode == 0, p.stdout[-3000:]
    quiet_out, verbose_out = p.stdout.split("#1 : ", 1)
    assert "verbose=false" in quiet_out.lower() and "verbose=true" in verbose_out.splitlines()[0].lower()
    for noise in (*BANNER, "Warning", "warnings.warn", "IterableDataset", "LeafSpec"):
        assert noise not in quiet_out, (noise, quiet_out[-3000:])
    assert "GPU available" in verbose_out
    # one line per finished job, with the numbers of its record
    jobs = re.findall(
        r"^bpr on synthetic, knockout none, seed 0: val recall@20 (0\.\d{4}) \(epoch (\d)\) "
        r"test recall@20 0\.\d{4} \d+s  → (\S+)$",
        p.stdout.replace("\r", "\n"),
        flags=re.M,
    )
    assert [Path(j[2]).name for j in jobs] == ["0", "1"]
    for val, epoch, run_dir in jobs:
        record = summary.read(Path(run_dir))
        assert f"{record['metrics']['val']['recall@20']:.4f}" == val and record["best_epoch"] == int(epoch)
    # quiet: one bar per run whose last state shows the epochs, the loss and the monitored validation metric;
    # Lightning's own bars (per epoch, validation, testing) do not appear
    finals = re.findall(
        r"epoch: 100%\|[^|]*\| 3/3 \[[^\]]*loss=\d\.\d{4}, val/recall@20=0\.\d{4}, best=0\.\d{4}\]", quiet_out
    )
    assert finals and "Validation" not in quiet_out and "Testing" not in quiet_out


def test_quiet_filters_only_the_listed_warnings() -> None:
    listed = "Your `IterableDataset` has `__len__` defined. In combination with multi-process data loading ..."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet()
        warnings.warn(listed, UserWarning, stacklevel=1)
        warnings.warn("Your `IterableDataset` has `__len__` defined", DeprecationWarning, stacklevel=1)  # other kind
        warnings.warn("a warning mmrec does not know", UserWarning, stacklevel=1)
        assert [str(w.message) for w in seen] == [
            "Your `IterableDataset` has `__len__` defined",
            "a warning mmrec does not know",
        ]
        quiet(verbose=True)
        warnings.warn(listed, UserWarning, stacklevel=1)
        assert str(seen[-1].message) == listed
    assert all(isinstance(message, str) and category is not Warning for category, message in HARMLESS_WARNINGS)


def test_error_block_and_the_exception_chain() -> None:
    data = DataError("/data/baby/baby.inter", "missing column(s) ['x_label']", "add a split column")
    try:
        try:
            raise data
        except DataError as e:
            raise RuntimeError("Error in call to target 'mmrec.data.load_dataset'") from e
    except RuntimeError as wrapped:
        assert find_mmrec_error(wrapped) is data
    block = error_block(data).splitlines()
    assert block[:2] == [
        "mmrec: error: /data/baby/baby.inter: missing column(s) ['x_label']",
        "hint: add a split column",
    ]
    assert error_block(ConfigError("knockout.spec='text:nois'", hint="strategies: keep noise ...")).splitlines()[
        :2
    ] == ["mmrec: error: knockout.spec='text:nois'", "hint: strategies: keep noise ..."]
    assert find_mmrec_error(ValueError("plain")) is None


def test_run_cli_keeps_hydras_short_message_for_its_own_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra.errors import ConfigCompositionException

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def bad_override() -> None:
        raise ConfigCompositionException("Could not override 'model.lrr'.")

    out = io.StringIO()
    assert run_cli(bad_override, stream=out) == 1
    assert out.getvalue().startswith("Could not override 'model.lrr'.") and "HYDRA_FULL_ERROR=1" in out.getvalue()

    def data_error() -> None:
        raise DataError("/d/x.inter", "no rows")

    out = io.StringIO()
    assert run_cli(data_error, stream=out) == 2
    assert out.getvalue().splitlines()[0] == "mmrec: error: /d/x.inter: no rows"
    assert "HYDRA_FULL_ERROR" not in os.environ  # restored after the call
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(DataError):
        run_cli(data_error, stream=out)
