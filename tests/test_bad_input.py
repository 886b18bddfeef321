"""Bad input, broadly: each kind in README's "Reliability" table, its message and that nothing is half-written.

Every case prepares its input in ``tmp_path`` and returns the action that must fail. The test checks the
exception type, that the message names the file or key (``names``) and the problem (``problem``), and that the
action left no new file behind (no temporary file, no partial output; a failed run may leave only its complete,
valid ``summary.json`` with status ``failed``). The README table is this list, row for row.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mmrec.errors import ConfigError, DataError
from tests.data.test_loaders import TOY, write_mmrec, write_raw

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "dataset.synthetic.n_users=60",
    "dataset.synthetic.n_items=40",
    "dataset.synthetic.n_factors=4",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "trainer.max_epochs=1",
    "model=bpr",
]


def cfg_of(*overrides: str):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def validate_with(*overrides: str, edit: Callable | None = None) -> Callable[[Path], Callable[[], object]]:
    def prepare(tmp: Path) -> Callable[[], object]:
        from mmrec.config import validate

        cfg = cfg_of(*overrides)
        if edit is not None:
            OmegaConf.set_struct(cfg, False)
            edit(cfg)
        return lambda: validate(cfg)

    return prepare


def train_with(*overrides: str, before: Callable[[Path], None] | None = None) -> Callable[[Path], Callable]:
    def prepare(tmp: Path) -> Callable[[], object]:
        from mmrec.run import train

        if before is not None:
            before(tmp)
        cfg = cfg_of(
            *SMALL,
            f"paths.output_dir={tmp / 'run'}",
            f"paths.root_dir={REPO}",
            "paths.shared_datasets=/nonexistent",
            *(o.format(tmp=tmp) for o in overrides),
        )
        return lambda: train(cfg)

    return prepare


def mmrec_folder(mutate: Callable[[Path], object], modalities: list[str] | None = None) -> Callable:
    def prepare(tmp: Path) -> Callable[[], object]:
        from mmrec.data import load_dataset

        folder = write_mmrec(tmp / "ds", TOY, {"image": np.ones((4, 2), dtype=np.float32)})
        mutate(folder)
        return lambda: load_dataset("toy", format="mmrec", data_dir=str(folder), modalities=modalities)

    return prepare


def raw_folder(mutate: Callable[[Path], object], **kwargs: object) -> Callable:
    def prepare(tmp: Path) -> Callable[[], object]:
        from mmrec.data import load_dataset

        folder = write_raw(tmp / "ds")
        mutate(folder)
        return lambda: load_dataset("toy", format="raw", data_dir=str(folder), **kwargs)

    return prepare


def inter(text: str) -> Callable[[Path], object]:
    return lambda d: (d / "toy.inter").write_text("userID\titemID\tx_label\n" + text)


def storage_open(url: str, block_driver: bool = False) -> Callable:
    def prepare(tmp: Path) -> Callable[[], object]:
        from mmrec.sweeps.storage import open_storage

        def act() -> object:
            if not block_driver:
                return open_storage(url)
            saved = {k: v for k, v in sys.modules.items() if k == "psycopg2" or k.startswith("psycopg2.")}
            sys.modules["psycopg2"] = None  # type: ignore[assignment] - `import psycopg2` now fails
            try:
                return open_storage(url)
            finally:
                del sys.modules["psycopg2"]
                sys.modules.update(saved)

        return act

    return prepare


def read_summary(text: str) -> Callable:
    def prepare(tmp: Path) -> Callable[[], object]:
        from mmrec import summary

        (tmp / "run").mkdir()
        (tmp / "run" / "summary.json").write_text(text)
        return lambda: summary.read(tmp / "run")

    return prepare


def env_cache_is_a_file(tmp: Path) -> Callable[[], object]:
    from mmrec import cache

    (tmp / "cachefile").write_text("not a folder")
    os.environ["MMREC_CACHE"] = str(tmp / "cachefile")
    return cache.cache_root


def _read_only_folder() -> Path | None:
    """A folder this process cannot write in: /sys/fs for root on Linux, else a chmod 555 folder."""
    import tempfile

    if os.geteuid() == 0:
        candidate = Path("/sys/fs")
    else:
        candidate = Path(tempfile.mkdtemp(prefix="mmrec-ro-"))
        candidate.chmod(0o555)
    try:
        fd, probe = tempfile.mkstemp(dir=candidate)
    except OSError:
        return candidate
    os.close(fd)
    os.unlink(probe)
    return None


@dataclass
class Case:
    id: str
    area: str
    prepare: Callable[[Path], Callable[[], object]]
    error: type[Exception]
    problem: str
    names: list[str] = field(default_factory=list)  # "{tmp}" is replaced by the test's folder
    new_files_allowed: tuple[str, ...] = ()


def _ro_output(tmp: Path) -> Callable[[], object]:
    ro = _read_only_folder()
    if ro is None:
        pytest.skip("no folder this process cannot write in")
    (tmp / "ro").symlink_to(ro)
    return train_with("paths.output_dir={tmp}/ro/run")(tmp)


CASES = [
    # ---- configuration
    Case(
        "misspelt model key",
        "config",
        validate_with(edit=lambda c: setattr(c.model, "lrr", 0.1)),
        ConfigError,
        "unknown key(s) ['lrr']",
        ["'model'"],
    ),
    Case(
        "unknown top-level key",
        "config",
        validate_with(edit=lambda c: setattr(c, "sed", 1)),
        ConfigError,
        "unknown top-level key(s) ['sed']",
    ),
    Case(
        "monitor not computed",
        "config",
        validate_with("monitor=val/recall@7"),
        ConfigError,
        "is not computed",
        ["monitor='val/recall@7'"],
    ),
    Case(
        "monitor on test data",
        "config",
        validate_with("monitor=test/recall@20"),
        ConfigError,
        "must be a validation metric",
        ["monitor='test/recall@20'"],
    ),
    Case(
        "knockout of a modality the dataset lacks",
        "config",
        validate_with("dataset=tiktok", "knockout=text_noise"),
        ConfigError,
        "text",
        ["image", "audio"],
    ),
    Case(
        "knockout drops every modality",
        "config",
        validate_with("model=vbpr", "knockout=none", "knockout.spec=all:drop+text:drop"),
        ConfigError,
        "drops every modality",
    ),
    Case("unknown role", "config", validate_with("role=boss"), ConfigError, "choose one of", ["role='boss'"]),
    Case(
        "test-time knockout without a source run",
        "config",
        validate_with("knockout.phase=test"),
        ConfigError,
        "set knockout.from_run=",
        ["knockout.phase=test"],
    ),
    Case(
        "model class that cannot be imported",
        "config",
        validate_with(edit=lambda c: setattr(c.model, "_target_", "mmrec.models.nope.Nope")),
        ConfigError,
        "cannot be imported",
        ["model._target_"],
    ),
    Case(
        "unknown knn.ties",
        "config",
        train_with("knn.ties=sometimes"),
        ConfigError,
        "choose one of",
        ["knn.ties='sometimes'"],
        ("run/summary.json",),
    ),
    Case(
        "unknown datamodule.negatives",
        "config",
        train_with("datamodule.negatives=some"),
        ConfigError,
        "choose one of",
        ["datamodule.negatives='some'"],
        ("run/summary.json",),
    ),
    Case(
        "unknown evaluation.cold_items",
        "config",
        train_with("evaluation.cold_items=maybe"),
        ConfigError,
        "choose keep or drop",
        ["evaluation.cold_items='maybe'"],
        ("run/summary.json",),
    ),
    Case(
        "split method the dataset cannot do",
        "config",
        train_with("dataset.split.method=temporal"),
        ConfigError,
        "split at random only",
        ["dataset.split.method='temporal'"],
        ("run/summary.json",),
    ),
    Case(
        "unknown split method",
        "data",
        raw_folder(lambda d: None, split={"method": "weird"}),
        ConfigError,
        "unknown split method",
        ["'weird'"],
    ),
    Case(
        "resume without a checkpoint",
        "config",
        train_with("resume=true"),
        ConfigError,
        "does not exist",
        ["{tmp}/run/checkpoints/last.ckpt", "resume=true"],
        ("run/summary.json",),
    ),
    Case(
        "storage that is neither a path nor a URL",
        "config",
        lambda tmp: lambda: __import__("mmrec.sweeps.storage", fromlist=["x"]).resolve_url("my-db"),
        ConfigError,
        "expected null",
        ["'my-db'"],
    ),
    Case(
        "unknown dataset format",
        "config",
        lambda tmp: lambda: __import__("mmrec.data", fromlist=["x"]).load_dataset("x", format="parquet"),
        ConfigError,
        "unknown format",
        ["'parquet'"],
    ),
    # ---- data files
    Case(
        "dataset folder missing",
        "data",
        lambda tmp: (
            lambda: __import__("mmrec.data", fromlist=["x"]).load_dataset(
                "x", format="mmrec", data_dir=str(tmp / "nope")
            )
        ),
        DataError,
        "does not exist",
        ["{tmp}/nope"],
    ),
    Case(
        "no .inter file",
        "data",
        mmrec_folder(lambda d: (d / "toy.inter").unlink()),
        DataError,
        "no 'toy.inter'",
        ["{tmp}/ds"],
    ),
    Case(
        "missing column",
        "data",
        mmrec_folder(lambda d: (d / "toy.inter").write_text("userID\titemID\n0\t1\n")),
        DataError,
        "missing column(s) ['x_label']",
        ["{tmp}/ds/toy.inter"],
    ),
    Case(
        "non-integer id",
        "data",
        mmrec_folder(inter("0\t1\t0\n0\tx\t0\n")),
        DataError,
        "line 3",
        ["{tmp}/ds/toy.inter", "'itemID'"],
    ),
    Case(
        "negative id",
        "data",
        mmrec_folder(inter("0\t1\t0\n-1\t1\t1\n")),
        DataError,
        "is negative",
        ["{tmp}/ds/toy.inter", "line 3"],
    ),
    Case(
        "split label out of range",
        "data",
        mmrec_folder(inter("0\t1\t0\n1\t1\t7\n")),
        DataError,
        "x_label 7",
        ["{tmp}/ds/toy.inter", "line 3"],
    ),
    Case(
        "empty validation split",
        "data",
        mmrec_folder(inter("0\t1\t0\n1\t1\t2\n")),
        DataError,
        "val split is empty",
        ["{tmp}/ds/toy.inter"],
    ),
    Case(
        "feature rows != items",
        "data",
        mmrec_folder(lambda d: np.save(d / "image_feat.npy", np.ones((3, 2)))),
        DataError,
        "has 3 rows but the interactions have 4 items",
        ["{tmp}/ds/image_feat.npy"],
    ),
    Case(
        "NaN features",
        "data",
        mmrec_folder(lambda d: np.save(d / "image_feat.npy", np.full((4, 2), np.nan))),
        DataError,
        "contain NaN/inf",
        ["{tmp}/ds/image_feat.npy"],
    ),
    Case(
        "1-d feature array",
        "data",
        mmrec_folder(lambda d: np.save(d / "image_feat.npy", np.ones(4))),
        DataError,
        "expected a 2-d",
        ["{tmp}/ds/image_feat.npy"],
    ),
    Case(
        "unreadable .npy",
        "data",
        mmrec_folder(lambda d: (d / "image_feat.npy").write_bytes(b"garbage")),
        DataError,
        "cannot read .npy",
        ["{tmp}/ds/image_feat.npy"],
    ),
    Case(
        "requested modality has no file",
        "data",
        mmrec_folder(lambda d: None, modalities=["text"]),
        DataError,
        "missing feature file for modality 'text'",
        ["{tmp}/ds/text_feat.npy"],
    ),
    Case(
        "items.jsonl line not JSON",
        "data",
        raw_folder(lambda d: (d / "items.jsonl").write_text('{"item_id": "m0"}\n{not json}\n')),
        DataError,
        "line 2: not valid JSON",
        ["{tmp}/ds/items.jsonl"],
    ),
    Case(
        "interaction with an unknown item",
        "data",
        raw_folder(lambda d: (d / "items.jsonl").write_text('{"item_id": "m0"}\n')),
        DataError,
        "is not in items.jsonl",
        ["{tmp}/ds/interactions.tsv"],
    ),
    Case(
        "duplicate item_id",
        "data",
        raw_folder(lambda d: (d / "items.jsonl").write_text('{"item_id": "m0"}\n{"item_id": "m0"}\n')),
        DataError,
        "appears more than once",
        ["{tmp}/ds/items.jsonl", "'m0'"],
    ),
    Case(
        "nothing survives k-core",
        "data",
        raw_folder(lambda d: None, k_core=50),
        DataError,
        "no interaction survives 50-core filtering",
        ["{tmp}/ds/interactions.tsv"],
    ),
    Case(
        "temporal split without timestamps",
        "data",
        raw_folder(
            lambda d: (d / "interactions.tsv").write_text(
                "user_id\titem_id\n" + "".join(f"u{u}\tm{i}\n" for u in range(12) for i in range(7))
            ),
            k_core=1,
            split={"method": "temporal"},
        ),
        ConfigError,
        "needs a timestamp column",
        ["split.method=temporal"],
    ),
    Case(
        "summary.json not JSON", "data", read_summary("{half"), DataError, "not valid JSON", ["{tmp}/run/summary.json"]
    ),
    Case(
        "summary.json against its schema",
        "data",
        read_summary(json.dumps({"schema_version": 1})),
        DataError,
        "invalid summary",
        ["{tmp}/run/summary.json"],
    ),
    # ---- environment
    Case(
        "database driver not installed",
        "environment",
        storage_open("postgresql://u@127.0.0.1:1/db", True),
        ConfigError,
        "driver is not installed",
        ["postgresql://u@127.0.0.1:1/db", "mmrec[postgres]"],
    ),
    Case(
        "unreachable storage",
        "environment",
        storage_open("postgresql+psycopg2://u:pw@127.0.0.1:1/db"),
        ConfigError,
        "cannot connect",
        ["postgresql+psycopg2://u:***@127.0.0.1:1/db"],
    ),
    Case(
        "unknown database dialect",
        "environment",
        storage_open("nosuchdb://u@h/db"),
        ConfigError,
        "not a usable database URL",
        ["nosuchdb://u@h/db"],
    ),
    Case(
        "read-only output folder",
        "environment",
        _ro_output,
        ConfigError,
        "not a folder mmrec can write in",
        ["output folder (hydra.run.dir)", "{tmp}/ro/run"],
    ),
    Case(
        "output folder under a file",
        "environment",
        train_with("paths.output_dir={tmp}/afile/run", before=lambda t: (t / "afile").write_text("x")),
        ConfigError,
        "not a folder mmrec can write in",
        ["{tmp}/afile/run"],
    ),
    Case(
        "$MMREC_CACHE is a file",
        "environment",
        env_cache_is_a_file,
        ConfigError,
        "not a folder mmrec can write in",
        ["$MMREC_CACHE", "{tmp}/cachefile"],
    ),
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_message_and_leaves_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMREC_CACHE", os.environ.get("MMREC_CACHE", str(tmp_path / "cache")))
    act = case.prepare(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(Exception) as info:
        act()
    error = info.value
    if type(error).__name__ == "InstantiationException" and error.__cause__ is not None:
        error = error.__cause__  # Hydra's instantiate wraps what the dataset's loader raised
    assert isinstance(error, case.error), repr(error)
    message = str(error)
    assert case.problem in message, message
    for name in case.names:
        assert name.format(tmp=tmp_path) in message, (name, message)
    after = _tree(tmp_path)
    new = {k for k in after if k not in before and not k.startswith("cache/")}
    assert new <= set(case.new_files_allowed), new
    assert {k for k in before if after.get(k) != before[k]} == set(), "an input file was changed"
    if "run/summary.json" in new:  # a failed run's record: complete, valid, status failed
        from mmrec import summary

        assert summary.read(tmp_path / "run")["status"] == "failed"
    assert not [k for k in after if k.endswith(".tmp")]


def test_the_table_has_at_least_25_kinds_across_the_three_areas() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25
    assert {c.area for c in CASES} == {"config", "data", "environment"}
