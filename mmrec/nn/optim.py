"""One optimiser over dense parameters and sparse-gradient feature tables (``feature_updates=sparse``).

:class:`SplitOptimizer` steps the dense parameters with the run's configured optimiser (Adam by default) and the
sparse tables with lazy Adam (``torch.optim.SparseAdam``), as one ``torch.optim.Optimizer`` (Lightning's
automatic optimisation and the lr schedulers see one optimiser; checkpoints hold both states).

Lazy Adam is not dense Adam:

- only the rows a step touched move, and only their moments are updated: the moments of untouched rows do not
  decay (dense Adam would keep moving a row on its old momentum after its gradient became zero);
- its step counter is the table's, not the row's: a row first touched at step t gets the bias correction of step
  t, not of its own first step;
- its ε sits outside the bias correction (``lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)``, Kingma & Ba's ε̂), i.e.
  dense Adam's update with ``ε/√(1-β₂ᵗ)``; with every row touched every step the two agree up to that ε;
- weight decay (the model's ``weight_decay``, coupled L2 as in Adam) is added to the gradient of the touched
  rows only.

Memory: the table's gradient is sparse (touched rows × d + their indices) instead of dense, but SparseAdam's two
moment tensors are dense: a fine-tuned table costs 3 table copies (values, m, v) instead of 4 (+ the gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class SplitOptimizer(torch.optim.Optimizer):
    """``dense`` for the dense parameters and ``torch.optim.SparseAdam`` for ``sparse`` ones (see the module)."""

    def __init__(
        self,
        dense: torch.optim.Optimizer | None,
        sparse: Sequence[torch.Tensor],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        self.dense = dense
        self.sparse = torch.optim.SparseAdam(list(sparse), lr=lr, betas=betas, eps=eps)
        for group in self.sparse.param_groups:
            group["weight_decay"] = weight_decay
        self.n_dense = len(dense.param_groups) if dense is not None else 0
        groups = (dense.param_groups if dense is not None else []) + self.sparse.param_groups
        super().__init__(groups, {})
        self._bind()

    def _bind(self) -> None:
        """Point both inner optimisers at this one's groups and (shared) state."""
        if self.dense is not None:
            self.dense.param_groups = self.param_groups[: self.n_dense]
            self.dense.state = self.state
        self.sparse.param_groups = self.param_groups[self.n_dense :]
        self.sparse.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._bind()

    def step(self, closure: Callable[[], float] | None = None) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.sparse.param_groups:
                wd = float(group.get("weight_decay", 0.0))
                for p in group["params"]:
                    if wd and p.grad is not None:  # L2 on the touched rows only
                        g = p.grad.coalesce()
                        rows = g.indices()[0]
                        p.grad = torch.sparse_coo_tensor(g.indices(), g.values() + wd * p[rows], g.shape)
        if self.dense is not None:
            self.dense.step()
        self.sparse.step()
        return loss
