"""A Lightning callback of the parity harness: wall-clock timestamps of every epoch's training and validation,
appended as JSON lines to ``path`` (the harness adds it with ``+callbacks.epoch_timer``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytorch_lightning as pl


class EpochTimer(pl.Callback):
    """``train_start`` (before the model's own epoch hook: FREEDOM's edge pruning counts as training, as in
    MMRec), ``val_start``, ``val_end`` and ``train_end`` per training epoch."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.current: dict[str, float] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.current = {"epoch": trainer.current_epoch, "train_start": time.perf_counter()}

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self.current:
            self.current["val_start"] = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self.current:
            self.current["val_end"] = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.current:
            self.current["train_end"] = time.perf_counter()
            with self.path.open("a") as f:
                f.write(json.dumps(self.current) + "\n")
            self.current = {}
