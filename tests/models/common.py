"""Helpers for model tests: build a model from its config file, train a few epochs, evaluate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from mmrec.models.base import Recommender

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    cfg.pop("name", None)
    cfg.update(overrides)
    return cfg


def make_model(name: str, dm: GraphDataModule, seed: int = 0, **overrides: Any) -> Recommender:
    """Instantiate ``conf/model/<name>.yaml`` (with overrides) on the datamodule's data, seeded."""
    cfg = model_config(name, **overrides)
    pl.seed_everything(seed, verbose=False)
    model = get_class(cfg.pop("_target_"))(data=dm.data, **cfg)
    model.configure_evaluation(seed=seed, run_seed=seed)
    return model


def with_features(dm: GraphDataModule, features: ItemFeatures | None, seed: int = 0) -> GraphDataModule:
    """A datamodule over the same interactions with other (e.g. knocked-out) features."""
    return GraphDataModule(dm.dataset, features, batch_size=dm.batch_size, seed=seed)


def trainer(epochs: int, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        deterministic="warn",
        **kwargs,
    )


class LossHistory(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


def fit(model: Recommender, dm: GraphDataModule, epochs: int, **kwargs: Any) -> list[float]:
    """Train ``epochs`` epochs (validation each epoch); returns the mean training loss per epoch."""
    history = LossHistory()
    if model.trainable:
        trainer(epochs, callbacks=[history], **kwargs).fit(model, datamodule=dm)
    else:
        model.fit(dm.train)
    return history.losses


def test_metrics(model: Recommender, dm: GraphDataModule) -> dict[str, float]:
    trainer(1).test(model, datamodule=dm, verbose=False)
    return dict(model.test_metrics)


def all_scores(model: Recommender, dm: GraphDataModule) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.score(torch.arange(dm.data.n_users))


def mostpop_recall_on(dm: GraphDataModule) -> float:
    model = make_model("mostpop", dm)
    fit(model, dm, 0)
    return test_metrics(model, dm)["recall@20"]


def assert_learns(model: Recommender, losses: list[float], dm: GraphDataModule, baseline_recall: float) -> None:
    """Finite training losses that decrease, and a test Recall@20 above ``baseline_recall`` (MostPop's)."""
    assert losses and all(math.isfinite(x) for x in losses) and losses[-1] < losses[0], losses
    assert test_metrics(model, dm)["recall@20"] > baseline_recall


def tiny_dm() -> GraphDataModule:
    """3 users × 4 items (7 training pairs), text [4, 3] and image [4, 5] random features, batch 4."""
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [0, 3]])
    ds = Dataset("tiny", Interactions(3, 4, train, np.array([[1, 0]]), np.array([[2, 0]])))
    g = torch.Generator().manual_seed(0)
    feats = ItemFeatures({"text": torch.randn(4, 3, generator=g), "image": torch.randn(4, 5, generator=g)})
    return GraphDataModule(ds, feats, batch_size=4, seed=0)


test_metrics.__test__ = False  # a helper, not a test (pytest collects names starting with "test")
