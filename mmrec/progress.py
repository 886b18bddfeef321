"""Quiet mode's progress bar: one bar per run over the epochs (see :mod:`mmrec.console`)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar


class RunProgressBar(ProgressBar):
    """One bar per run over the epochs: ``epoch 12/40 | loss 0.4123 | val/recall@20 0.1834 (best 0.1901)``."""

    def __init__(self, monitor: str, stream: TextIO | None = None):
        super().__init__()
        self.monitor = monitor
        self.stream = stream
        self._enabled = True
        self._bar: Any = None
        self._best: float | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        from tqdm.auto import tqdm

        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        self._bar = tqdm(
            total=total,
            initial=trainer.current_epoch,
            desc="epoch",
            unit="ep",
            dynamic_ncols=True,
            leave=True,
            file=self.stream or sys.stderr,
            bar_format=None,
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is None:
            return
        metrics = trainer.callback_metrics
        parts = {}
        if "train/loss" in metrics:
            parts["loss"] = f"{float(metrics['train/loss']):.4f}"
        if self.monitor in metrics:
            value = float(metrics[self.monitor])
            self._best = value if self._best is None else max(self._best, value)
            parts[self.monitor] = f"{value:.4f}"
            parts["best"] = f"{self._best:.4f}"
        self._bar.set_postfix(parts, refresh=False)
        self._bar.update(1)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
