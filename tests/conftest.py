"""Shared fixtures: real data from ../shared/datasets, a session-wide synthetic dataset, isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# one thread per test process (the suite runs on 2 workers with pytest-xdist); MMREC_TEST_THREADS overrides
torch.set_num_threads(int(os.environ.get("MMREC_TEST_THREADS", "1")))
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMREC_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


def shared_path(name: str) -> Path:
    """Path of a real dataset under ../shared/datasets: skip locally when absent, fail when CI=true."""
    path = SHARED / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared dataset {path} is missing")
        pytest.skip(f"shared dataset {path} not available")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where CUDA is available (skipped elsewhere, CI included)."""
    if torch.cuda.is_available() or os.environ.get("MMREC_GPU_STANDIN"):  # standin: a CPU dry run of the tests
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is false)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test session uses one private cache folder (never the user's)."""
    root = tmp_path_factory.getbasetemp() / "mmrec-cache"
    monkeypatch.setenv("MMREC_CACHE", str(root))


# ---- shared datamodules (built once per session) ---------------------------------------------------------------
SMALL_SYNTHETIC = dict(n_users=400, n_items=300, n_factors=8, interactions_per_user=14, temperature=0.5, data_seed=3)


@pytest.fixture(scope="session")
def synthetic_dataset():
    from mmrec.data import load_dataset

    return load_dataset("synthetic-small", format="synthetic", split={"seed": 0}, synthetic=SMALL_SYNTHETIC)


@pytest.fixture(scope="session")
def synthetic_dm(synthetic_dataset):
    """A small synthetic datamodule with text (informative), image (weak) and audio (noise) features."""
    from mmrec.data.datamodule import GraphDataModule

    return GraphDataModule(synthetic_dataset, synthetic_dataset.features, batch_size=512, seed=0)


@pytest.fixture(scope="session")
def tiktok_dm():
    """The real TikTok set (MMRec layout, image + audio), once per session."""
    from mmrec.data import load_dataset
    from mmrec.data.datamodule import GraphDataModule

    ds = load_dataset("tiktok", format="mmrec", data_dir=str(shared_path("tiktok")))
    return GraphDataModule(ds, ds.features, batch_size=4096, seed=0)
