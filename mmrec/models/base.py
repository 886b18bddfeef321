"""The model contract.

Gradient models implement ``loss(batch) -> Tensor`` and either ``final_embeddings() -> (users [U, d], items
[I, d])``, whose inner products are the scores, or ``score(users) -> Tensor[len(users), n_items]`` (``forward`` as
they like). Models without gradient training (MostPop, ItemKNN, ...) set ``trainable = False``
and implement ``fit(train_matrix)`` and ``score(users)``. Everything else — the training loop, evaluation,
masking, logging, checkpointing — belongs to this base class or to Lightning.

Feature-derived structures (projections of frozen tables, kNN item graphs, ...) are built in ``prepare(data)``
as non-persistent buffers: checkpoints hold trained weights only, and ``attach(new_data)`` rebuilds everything
derived from features (used by test-time knockout).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import scipy.sparse as sp
import torch

from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.evaluation.metrics import DEFAULT_KS, METRICS, RankingEvaluator, mask_scores_, slice_rows
from mmrec.nn.features import FeatureTable
from mmrec.nn.optim import SplitOptimizer


def check_choice(key: str, value: Any, options: Sequence[Any]) -> None:
    """A ConfigError naming the key and the accepted values when ``value`` is not one of ``options``."""
    if value not in options:
        raise ConfigError(f"{key}={value!r}; choose one of {list(options)}")


class Recommender(pl.LightningModule):
    """Base class of every recommender.

    Class attributes a model sets:
        modalities_required: exact modality names the model is defined for (None: any / none).
        min_modalities: the least number of modalities it needs (0 for feature-free models).
        uses_features_at_inference: False when content only shapes training (test-time knockout is then
            "not applicable").
        trainable: False for models fitted in closed form (``fit``).
    """

    modalities_required: ClassVar[tuple[str, ...] | None] = None
    min_modalities: ClassVar[int] = 0
    uses_features_at_inference: ClassVar[bool] = False
    trainable: ClassVar[bool] = True

    def __init__(
        self,
        data: GraphData,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_decay: float = 1.0,
        lr_decay_epochs: float = 50,
    ):
        super().__init__()
        self.n_users = data.n_users
        self.n_items = data.n_items
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_decay, self.lr_decay_epochs = lr_decay, lr_decay_epochs  # lr × lr_decay^(epoch / lr_decay_epochs)
        self.optimizer_factory: Callable[..., torch.optim.Optimizer] | None = None
        self.check_modalities(data.modalities)
        self.data = data
        self.eval_ks: tuple[int, ...] = DEFAULT_KS
        self.eval_metrics: tuple[str, ...] = METRICS
        self.eval_seed = 0
        self.run_seed = 0
        self.val_history: list[dict[str, float]] = []
        self.test_per_user = None
        self.test_metrics: dict[str, float] = {}
        self._memo: dict[str, Any] = {}
        self._evaluator: RankingEvaluator | None = None
        self._eval_buffer: torch.Tensor | None = None  # score tiles during evaluation
        self.eval_memory_mb = 256.0

    # ---- the contract ----------------------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement loss(batch)")

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``u_allᵀ i_all`` rows of ``users`` from :meth:`final_embeddings` (memoised during evaluation)."""
        u_all, i_all = self.memo("final", self.final_embeddings)
        return u_all[users.to(self.device)] @ i_all.T

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [U, d], items [I, d]) whose inner products are the scores (override this or ``score``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement final_embeddings() or score(users)")

    def fit(self, train_matrix: sp.csr_matrix) -> None:
        raise NotImplementedError(f"{type(self).__name__} is not fitted in closed form")

    def prepare(self, data: GraphData) -> None:
        """Build feature/graph-derived, non-trainable structures (override; called by ``attach``)."""

    def load_content(self, data: GraphData) -> None:
        """Take ``data``'s item content into the model's own tables (called by ``attach`` before ``prepare``;
        see :class:`~mmrec.models.multimodal.MultimodalRecommender`)."""

    # ---- data attachment -------------------------------------------------------------------------------------
    @classmethod
    def check_modalities(cls, available: Sequence[str]) -> None:
        available = list(available)
        if cls.modalities_required is not None:
            missing = [m for m in cls.modalities_required if m not in available]
            if missing or len(available) != len(cls.modalities_required):
                raise ConfigError(
                    f"{cls.__name__} is defined for exactly the modalities {list(cls.modalities_required)}; "
                    f"this run has {available}"
                )
        if len(available) < cls.min_modalities:
            raise ConfigError(
                f"{cls.__name__} needs at least {cls.min_modalities} modality(ies); this run has {available}"
            )

    def attach(self, data: GraphData) -> Recommender:
        """Point the model at (possibly knocked-out) data and rebuild what derives from it."""
        if (data.n_users, data.n_items) != (self.n_users, self.n_items):
            raise ConfigError(
                f"data has {data.n_users} users × {data.n_items} items; model was built for "
                f"{self.n_users} × {self.n_items}"
            )
        self.check_modalities(data.modalities)
        self.data = data
        self._memo.clear()
        self.load_content(data)
        self.prepare(data)
        return self

    def build_id_embeddings(self, dim: int) -> None:
        """``user_embedding`` [U, dim] and ``item_embedding`` [I, dim], Xavier-uniform initialised (the ID
        embeddings most graph models share)."""
        self.user_embedding = torch.nn.Embedding(self.n_users, dim)
        self.item_embedding = torch.nn.Embedding(self.n_items, dim)
        torch.nn.init.xavier_uniform_(self.user_embedding.weight)
        torch.nn.init.xavier_uniform_(self.item_embedding.weight)

    def register_derived(self, name: str, tensor: torch.Tensor) -> None:
        """A non-persistent buffer (moves with the module, never saved in checkpoints)."""
        if name in self._buffers:
            self._buffers[name] = tensor.to(self._device_hint())
        else:
            self.register_buffer(name, tensor.to(self._device_hint()), persistent=False)

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Recommender:
        """``.to()`` / ``.cuda()`` / ``.half()``: parameters and buffers move by themselves; tensors a model keeps
        as plain attributes (the epoch's sampled graph, ...) move with them, and memoised evaluation results of
        the old placement are dropped."""
        super()._apply(fn, *args, **kwargs)
        self.__dict__.get("_memo", {}).clear()
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor) and name not in self._parameters and name not in self._buffers:
                setattr(self, name, fn(value))
        return self

    def _device_hint(self) -> torch.device:
        p = next(iter(self.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """Cache a full-graph computation during evaluation (cleared whenever weights may change)."""
        if self.training or torch.is_grad_enabled():
            return build()
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def configure_evaluation(
        self,
        ks: Sequence[int] = DEFAULT_KS,
        metrics: Sequence[str] = METRICS,
        seed: int = 0,
        run_seed: int = 0,
        memory_mb: float = 256.0,
    ) -> None:
        """Metrics, tie-break seed and the memory of the scores of one evaluation block (``evaluation.memory_mb``:
        a tile of items, or a sub-block of users for a model that overrides ``score``)."""
        self.eval_ks, self.eval_metrics, self.eval_seed, self.run_seed = tuple(ks), tuple(metrics), seed, run_seed
        self.eval_memory_mb = float(memory_mb)

    # ---- Lightning plumbing ----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # DDP: structures derived from the data are built identically on every rank; sparse ones cannot be
        # broadcast, so DDP is told to leave them alone (mmrec.distributed)
        self._ddp_params_and_buffers_to_ignore = [n for n, b in self.named_buffers() if b.layout != torch.strided]

    # Finiteness of the training loss is checked without a host–device synchronisation per step: each step folds
    # ``isfinite(loss)`` into a device scalar holding the first failing step (no sync); it is read (one sync)
    # every ``nonfinite_check_every`` steps and after the epoch's last step, before validation. The error names
    # the epoch and the first failing step.
    nonfinite_check_every: ClassVar[int] = 50

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self._memo.clear()
        loss = self.loss(batch)
        self._track_finite(loss.detach(), batch_idx)
        # logged for the epoch mean only: Lightning accumulates the tensor on its device (no .item() per step)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["users"]))
        return loss

    def _track_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Record the first step whose loss is not finite (device ops only); check it every N steps."""
        state = getattr(self, "_first_nonfinite_step", None)
        if state is None or state.device != loss.device:
            state = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss).all() & (state < 0)
        self._first_nonfinite_step = torch.where(bad, torch.full_like(state, batch_idx), state)
        every = max(1, int(self.nonfinite_check_every))
        trainer = self._trainer
        last = trainer is not None and batch_idx + 1 >= trainer.num_training_batches  # before validation runs
        if (batch_idx + 1) % every == 0 or last:
            self.check_finite_training()

    def check_finite_training(self) -> None:
        """Raise ``FloatingPointError`` naming the epoch and step if a loss since the epoch start was not finite
        (one host–device synchronisation)."""
        state = getattr(self, "_first_nonfinite_step", None)
        if state is None:
            return
        step = int(state)
        if step >= 0:
            raise FloatingPointError(
                f"{type(self).__name__}: non-finite training loss in epoch {self.current_epoch}, step {step} "
                "(lower the learning rate, check the features, or set trainer.detect_anomaly=true to locate it)"
            )

    def on_train_epoch_start(self) -> None:
        self._first_nonfinite_step = None
        # randomness inside models (edge dropout, augmentations) is a pure function of (run seed, epoch)
        seed = int(np.random.SeedSequence([self.run_seed, self.current_epoch, 17]).generate_state(1)[0])
        torch.manual_seed(seed)
        self.on_epoch_start_hook()

    def on_train_epoch_end(self) -> None:
        self.check_finite_training()

    def on_epoch_start_hook(self) -> None:
        """Per-epoch work such as FREEDOM's edge pruning (override)."""

    def configure_training(self, optimizer: Callable[..., torch.optim.Optimizer] | None = None) -> None:
        """``optimizer``: a factory ``(params, lr=, weight_decay=) -> Optimizer`` (the run's ``optimizer`` config,
        a Hydra ``_partial_``); None: Adam."""
        self.optimizer_factory = optimizer

    def configure_optimizers(self) -> Any:
        """The configured optimiser (default Adam) over the trainable parameters with the model's ``lr`` and
        ``weight_decay``; with ``lr_decay`` < 1 the rate is multiplied by ``lr_decay ** (epoch / lr_decay_epochs)``
        (MMRec's ``learning_rate_scheduler``, declared by LATTICE, MGCN, SMORE, PGL). Feature tables with
        ``feature_updates=sparse`` step with lazy Adam instead (:class:`~mmrec.nn.optim.SplitOptimizer`)."""
        sparse = [m.weight for m in self.modules() if isinstance(m, FeatureTable) and m.sparse and m.trainable]
        params = [p for p in self.parameters() if p.requires_grad and not any(p is q for q in sparse)]
        factory = self.optimizer_factory or functools.partial(torch.optim.Adam, fused=True)
        optimizer = self._dense_optimizer(factory, params) if params or not sparse else None
        if sparse:  # feature_updates=sparse: the tables step with lazy Adam beside the configured optimiser
            keywords = factory.keywords if isinstance(factory, functools.partial) else {}
            adam = {k: keywords[k] for k in ("betas", "eps") if k in keywords}
            optimizer = SplitOptimizer(optimizer, sparse, lr=self.lr, weight_decay=self.weight_decay, **adam)
        assert optimizer is not None
        decay, every = float(self.lr_decay), float(self.lr_decay_epochs)
        if decay == 1.0:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: decay ** (epoch / every))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def _dense_optimizer(
        self, factory: Callable[..., torch.optim.Optimizer], params: list[torch.nn.Parameter]
    ) -> torch.optim.Optimizer:
        try:  # Adam's fused kernel updates large fine-tuned feature tables ~7x faster than the default loop
            return factory(params, lr=self.lr, weight_decay=self.weight_decay)
        except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
            if not (isinstance(factory, functools.partial) and factory.keywords.get("fused")):
                raise
            unfused = functools.partial(factory.func, *factory.args, **{**factory.keywords, "fused": None})
            return unfused(params, lr=self.lr, weight_decay=self.weight_decay)

    def _start_eval(self) -> None:
        self._memo.clear()
        self._evaluator = RankingEvaluator(
            self.eval_ks, self.eval_metrics, seed=self.eval_seed, memory_budget_mb=self.eval_memory_mb
        )

    def _eval_step(self, batch: dict[str, torch.Tensor]) -> None:
        """Rank every item for a block of users. Scores that are inner products of :meth:`final_embeddings`
        (``score`` not overridden) are made tile by tile over items into one reused buffer and never held
        whole; an overridden ``score`` is called on sub-blocks of users whose [b, I] scores fit the budget."""
        evaluator = self._evaluator
        assert evaluator is not None
        users, exclude, relevant = batch["users"], batch["exclude"], batch["relevant"]
        n_items = int(relevant.shape[1])
        if type(self).score is Recommender.score:
            u_all, i_all = self.memo("final", self.final_embeddings)
            u_block, i_all = u_all[users.to(u_all.device)].float(), i_all.float()  # [b, d], [I, d]

            def score_tile(rows: torch.Tensor | None, lo: int, hi: int) -> torch.Tensor:
                u = u_block if rows is None else u_block[rows.to(u_block.device)]
                return torch.mm(u, i_all[lo:hi].T, out=self._tile_buffer(u.shape[0], hi - lo, u))  # [r, t]

            evaluator.update_scored_tiles(users, score_tile, n_items, exclude, relevant)
            return
        step = max(1, int(self.eval_memory_mb * 2**20 // (16 * n_items)))  # float32 scores + ranking, 4x headroom
        for start in range(0, len(users), step):
            stop = min(start + step, len(users))
            scores = self.score(users[start:stop]).float()  # [b', I]
            if scores._base is not None or not scores.is_contiguous():  # never mask a view of model state in place
                scores = scores.clone()
            scores = mask_scores_(scores, slice_rows(exclude, start, stop).to(scores.device))
            evaluator.update(users[start:stop], scores, slice_rows(relevant, start, stop).to(scores.device))

    def _tile_buffer(self, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A [rows, cols] view of one flat evaluation buffer, grown when needed (reused across tiles and blocks)."""
        buffer = self._eval_buffer
        if buffer is None or buffer.numel() < rows * cols or buffer.device != like.device or buffer.dtype != like.dtype:
            buffer = self._eval_buffer = torch.empty(rows * cols, dtype=like.dtype, device=like.device)
        return buffer[: rows * cols].view(rows, cols)

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        assert self._evaluator is not None
        self._evaluator.gather()  # DDP: every rank evaluated its share of the users
        metrics = self._evaluator.compute()
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=False)
        if not self.trainer.sanity_checking:
            self.val_history.append({"epoch": self.current_epoch, **{f"val/{k}": v for k, v in metrics.items()}})
        self._memo.clear()
        self._eval_buffer = None

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        assert self._evaluator is not None
        self._evaluator.gather()
        self.test_metrics = self._evaluator.compute()
        self.test_per_user = self._evaluator.per_user()
        self.log_dict({f"test/{k}": v for k, v in self.test_metrics.items()})
        self._memo.clear()
        self._eval_buffer = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mmrec_val_history"] = list(self.val_history)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_history = list(checkpoint.get("mmrec_val_history", []))

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def sparse_to(adj: torch.Tensor, device: torch.device) -> torch.Tensor:
    return adj.to(device) if adj.device != device else adj
