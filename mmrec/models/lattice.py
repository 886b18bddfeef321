"""LATTICE (Zhang et al., ACM MM 2021): latent item–item structures learned from multimodal features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss, l2_reg
from mmrec.nn.propagation import bipartite_propagate, propagate
from mmrec.nn.weighted_item_graphs import (
    cached_weighted_knn_graph,
    edge_cosine,
    knn_edges,
    sparse_graph,
    sym_normalize_values,
)

CF_MODELS = ("lightgcn", "ngcf", "mf")


class LATTICE(MultimodalRecommender):
    """LATTICE: mine a latent item graph from (projected) modality features and convolve item IDs over it.

    With modalities ``m = 1..M`` (any names; each gets its own projection), raw features ``x_m`` [I, d_m] and
    modality weights ``w = softmax(α)`` (α trainable, initialised equal):

    - Projections ``z_m = W_m x_m + b_m`` [I, f]; learned graphs ``S_m = topk_k(cos(z_m))`` [I, I] (weights =
      cosine, self included), combined ``S = Σ_m w_m S_m`` and normalised ``Ŝ = D^-1/2 S D^-1/2``.
    - Frozen graphs ``Ŝ⁰_m`` built the same way from the raw features once (and after a test-time knockout).
    - Item graph ``Ã = (1 − λ) Ŝ + λ Σ_m w_m Ŝ⁰_m``; ``h = Ã^{L_i} e_item`` [I, d] (``n_layers``).
    - CF backbone over the user–item graph (``cf_model``: ``lightgcn`` mean of ``L_ui = len(weight_size)``
      propagation layers, ``ngcf``, or ``mf``): ``[u; i]``; item representation ``i + h / ‖h‖``.
    - Score ``uᵀ(i + h/‖h‖)``; loss BPR + ``reg_weight`` · ½(‖u‖² + ‖i⁺‖² + ‖i⁻‖²) / B on the final embeddings.
    - Learning rate × ``lr_decay^(epoch / lr_decay_epochs)`` (MMRec's ``learning_rate_scheduler``).

    The learned graph is a sparse top-``k`` per row computed in row chunks (``knn_indices``); the reference builds
    dense I × I similarity matrices (memory ``O(I²)`` vs ``O(I·k)`` here; equal results up to tied neighbours).

    ``faithful_to``:
        ``reference`` (MMRec and the authors' code, default): the learned graph is rebuilt, with gradients, on
        the first batch of each epoch and reused *detached* by the epoch's other batches (so projections,
        α and fine-tuned feature tables get gradients from one batch per epoch); the user–item graph is
        ``D^-1 (A + I)`` (row-normalised, with self-loops), inherited from NGCF's data loader.
        ``paper``: the learned graph is rebuilt with gradients at every step (end-to-end structure learning)
        and the LightGCN backbone uses LightGCN's ``D^-1/2 A D^-1/2``.
    Both rebuild the learned graph from the current weights for every evaluation.

    Degenerate features (knockouts): zero features give empty frozen graphs (cosine 0; the reference gets NaN
    from 0/0 and ranks nothing); constant features give fully tied similarities, broken per ``knn.ties``. In
    both cases the projections ``W·x + b`` are identical for every item, so the learned graph is tie-broken too
    (random neighbours under ``knn.ties=random``) and ``h/‖h‖`` injects that structure into every item.

    Trainable parameters: ``(U + I)·d + Σ_m (d_m + 1)·f + M`` (+ ``I · Σ_m d_m`` when the raw feature tables are
    fine-tuned — the reference; ``freeze_features=true`` freezes them) (+ ``2 Σ_l (s_l + 1)·s_{l+1}`` for
    ``ngcf`` with ``s = [d] + weight_size``).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "lr_decay": 0.96, "lr_decay_epochs": 50, "lr": 5e-4}
    adj: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        feat_embed_dim: int = 64,
        weight_size: Sequence[int] = (64, 64),
        n_layers: int = 1,
        knn_k: int = 10,
        lambda_coeff: float = 0.9,
        reg_weight: float = 1e-5,
        cf_model: str = "lightgcn",
        mess_dropout: Sequence[float] = (0.1, 0.1),
        zero_grad_keeps_zeros: bool = False,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        self.zero_grad_keeps_zeros = zero_grad_keeps_zeros
        if cf_model not in CF_MODELS:
            raise ConfigError(f"lattice.cf_model={cf_model!r}; choose one of {list(CF_MODELS)}")
        weight_size = [int(s) for s in weight_size]
        if cf_model == "ngcf" and len(mess_dropout) != len(weight_size):
            raise ConfigError(f"lattice.mess_dropout needs one rate per layer of weight_size {weight_size}")
        self.cf_model = cf_model
        self.n_ui_layers, self.n_layers, self.knn_k = len(weight_size), n_layers, knn_k
        self.lambda_coeff, self.reg_weight = lambda_coeff, reg_weight
        self.build_id_embeddings(embedding_dim)
        self.build_projections(feat_embed_dim)
        self.modal_weight = nn.Parameter(torch.full((len(self.modality_names),), 0.5))
        if cf_model == "ngcf":
            sizes = [embedding_dim, *weight_size]
            self.gc_linears = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(weight_size)))
            self.bi_linears = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(weight_size)))
            self.mess_dropout = [float(p) for p in mess_dropout]
        self.train_item_graph: torch.Tensor | None = None  # the epoch's detached graph (reference)
        self.rebuild_item_graph = True
        self.attach(data)

    # ---- structures derived from data --------------------------------------------------------------------------
    def prepare(self, data: GraphData) -> None:
        self.register_derived(
            "adj", data.self_loop_row_norm_adj() if self.faithful_to == "reference" else data.norm_adj()
        )
        for j, m in enumerate(self.modality_names):  # frozen graphs Ŝ⁰_m of the raw features
            self.register_derived(f"original_graph_{j}", cached_weighted_knn_graph(data, m, self.knn_k))
        self.knn_ties, self.knn_seed = data.knn_ties, data.seed
        self.train_item_graph, self.rebuild_item_graph = None, True

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        """``zero_grad_keeps_zeros=true``: torch < 2's ``zero_grad`` (zeros left in place, not ``None``), under
        which MMRec's published LATTICE numbers were made: Adam then keeps stepping the parameters that only the
        first batch's learned graph reaches (projections, fine-tuned tables, modal weights) on their momentum in
        every batch. Default ``false``: torch ≥ 2 (MMRec run today), where they step once per epoch."""
        optimizer.zero_grad(set_to_none=not self.zero_grad_keeps_zeros)

    def on_epoch_start_hook(self) -> None:
        self.rebuild_item_graph = True

    # ---- the model ---------------------------------------------------------------------------------------------
    def item_graph(self) -> torch.Tensor:
        """``Ã = (1 − λ) D^-1/2 (Σ_m w_m S_m) D^-1/2 + λ Σ_m w_m Ŝ⁰_m``, sparse [I, I], differentiable in the
        projections, α and the feature tables."""
        n = self.n_items
        w = torch.softmax(self.modal_weight, dim=0)  # [M]
        rows, cols, vals = [], [], []
        for j, m in enumerate(self.modality_names):
            z = self.projections[m](self.features[m]())  # [I, f]
            r, c = knn_edges(z, self.knn_k, self.knn_ties, self.knn_seed)  # I·k edges
            rows.append(r)
            cols.append(c)
            vals.append(w[j] * edge_cosine(z, r, c))  # [I·k]
        r, c = torch.cat(rows), torch.cat(cols)
        learned = (1.0 - self.lambda_coeff) * sym_normalize_values(r, c, torch.cat(vals), n)  # degrees of Σ_m
        idx, values = [torch.stack([r, c])], [learned]
        for j in range(len(self.modality_names)):
            g = getattr(self, f"original_graph_{j}")
            idx.append(g.indices())
            values.append(self.lambda_coeff * w[j] * g.values())
        all_idx = torch.cat(idx, dim=1)
        return sparse_graph(all_idx[0], all_idx[1], torch.cat(values), n)

    def _ngcf(self, ego: torch.Tensor) -> torch.Tensor:
        layers = [ego]
        for gc, bi, p in zip(self.gc_linears, self.bi_linears, self.mess_dropout, strict=True):
            side = torch.sparse.mm(self.adj, ego)  # [U+I, s_l]
            ego = F.leaky_relu(gc(side)) + F.leaky_relu(bi(ego * side))  # [U+I, s_{l+1}]
            ego = F.dropout(ego, p, self.training)
            layers.append(F.normalize(ego, p=2, dim=1))
        return torch.stack(layers, dim=1).mean(dim=1)

    def forward(self, item_graph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user [U, d] and item [I, d] representations over the given item graph."""
        h = propagate(item_graph, self.item_embedding.weight, self.n_layers, combine="last")  # [I, d]
        users, items = self.user_embedding.weight, self.item_embedding.weight
        if self.cf_model == "lightgcn":
            users, items = bipartite_propagate(self.adj, users, items, self.n_ui_layers)
        elif self.cf_model == "ngcf":
            users, items = torch.split(self._ngcf(torch.cat([users, items])), [self.n_users, self.n_items])
        return users, items + F.normalize(h, p=2, dim=1)

    def _training_graph(self) -> torch.Tensor:
        if self.faithful_to == "paper" or self.rebuild_item_graph or self.train_item_graph is None:
            graph = self.item_graph()
            self.train_item_graph, self.rebuild_item_graph = graph.detach(), False
            return graph
        return self.train_item_graph

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        u_all, i_all = self.forward(self._training_graph())
        u, p, n = take_rows(u_all, users), take_rows(i_all, pos), take_rows(i_all, neg)
        return bpr_loss((u * p).sum(1), (u * n).sum(1)) + self.reg_weight * l2_reg(u, p, n)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(self.item_graph())
