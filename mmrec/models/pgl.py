"""PGL (Yu et al., AAAI 2025): principal graph learning on extracted user–item subgraphs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.models.base import check_choice
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions, item_graph_weights
from mmrec.nn.edge_graph import interaction_edges
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss, info_nce
from mmrec.nn.principal_subgraph import (
    cached_global_principal_subgraph,
    check_spectral_config,
    local_principal_subgraph,
)
from mmrec.nn.propagation import bipartite_propagate, propagate


class PGL(MultimodalRecommender):
    """PGL: "Mind Individual Information! Principal Graph Learning for Multimedia Recommendation" (Yu, Tan, Lu,
    Bao; AAAI 2025). Reference: the authors' ``demonph10/PGL`` (``src/models/pgl.py``), identical in MMRec.

    With modalities ``m = 1..M``, raw feature tables ``X_m`` [I, d_m] (fine-tuned by default, as in the reference),
    per-modality user embeddings ``E_u^m`` [U, d]:

    - Item content ``E_i = ‖_m normalize(X_m W_m + b_m)`` [I, M·d]; users ``E_u = ‖_m E_u^m`` [U, M·d]
      (no item ID embedding).
    - Latent item graph ``S = Σ_m w_m S_m`` with ``S_m`` FREEDOM's frozen unit-weight kNN graph of the raw
      features (``D^-1/2 A D^-1/2``), ``h = S^{L_mm} E_i``.
    - Principal graph learning: ``[u; i] = mean_{l≤L_ui} G^l [E_u; E_i]`` where ``G`` is the principal subgraph
      during training — ``mode=local``: a fresh degree-sensitive sample of ``⌊0.3 |E|⌋`` interactions each epoch;
      ``mode=global``: the fixed spectral subgraph ``[[0, B], [Bᵀ, 0]]`` (``mmrec.nn.principal_subgraph``) — and the
      complete normalised graph ``Â`` at inference. Final items ``i + h``; score ``uᵀ(i + h)``.
    - Loss: BPR + ``reg_weight`` · ½(InfoNCE_0.2(drop(u_B), drop(u_B)) + InfoNCE_0.2(drop(i⁺_B), drop(i⁺_B))), two
      independent dropout masks (rate ``dropout``) of the same batch embeddings as the two views.
    - Learning rate × ``lr_decay^(epoch / lr_decay_epochs)`` (MMRec's ``learning_rate_scheduler`` [0.96, 50]).

    Any named modalities: one user table and one projection per modality, concatenated; graph weights
    ``modality_weights`` (default image 0.1 / text 0.9 for text + image, as ``mm_image_weight``; equal shares
    otherwise). ``faithful_to``: no difference between the paper and the reference implementation is known to us;
    both values give the reference computation. Deviations (both modes): the global subgraph is built from the
    singular triplets of ``R̃`` and thresholded in chunks instead of a dense ``(U+I)²`` reconstruction (the same
    matrix, see ``principal_subgraph``); degree normalisations use exact degrees instead of ``deg + 1e-7``.

    Trainable parameters: ``M·U·d + Σ_m (d_m + 1)·d`` + ``I · Σ_m d_m`` (raw tables fine-tuned, the reference;
    ``freeze_features=true`` freezes them).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "lr_decay": 0.96, "lr_decay_epochs": 50}
    edge_users: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)
    edge_items: torch.Tensor
    adj: torch.Tensor
    mm_adj: torch.Tensor
    global_subgraph: torch.Tensor

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        mode: str = "local",
        n_ui_layers: int = 2,
        n_mm_layers: int = 1,
        knn_k: int = 10,
        keep_ratio: float = 0.3,
        svd_rank: int = 64,
        principal_fraction: float = 0.25,
        svd_threshold: float = 1e-3,
        reg_weight: float = 0.0,
        dropout: float = 0.2,
        temperature: float = 0.2,
        mm_image_weight: float = 0.1,
        modality_weights: Mapping[str, float] | None = None,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        check_choice("pgl.mode", mode, ("local", "global"))
        if not 0.0 < keep_ratio <= 1.0:
            raise ConfigError(f"pgl.keep_ratio={keep_ratio} must be in (0, 1]")
        check_spectral_config(svd_rank, principal_fraction)
        self.mode = mode
        self.n_ui_layers, self.n_mm_layers, self.knn_k = n_ui_layers, n_mm_layers, knn_k
        self.keep_ratio, self.svd_rank = keep_ratio, svd_rank
        self.principal_fraction, self.svd_threshold = principal_fraction, svd_threshold
        self.reg_weight, self.dropout, self.temperature = reg_weight, dropout, temperature
        self.weights = item_graph_weights(self.modality_names, mm_image_weight, modality_weights)
        user_embeddings = {m: nn.Embedding(self.n_users, embedding_dim) for m in self.modality_names}
        for emb in user_embeddings.values():
            nn.init.xavier_uniform_(emb.weight)
        self.user_embeddings = nn.ModuleDict(user_embeddings)
        self.build_projections(embedding_dim)
        edge_users, edge_items = interaction_edges(data.train_matrix)
        self.register_buffer("edge_users", edge_users, persistent=False)
        self.register_buffer("edge_items", edge_items, persistent=False)
        self.train_adj: torch.Tensor | None = None
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        self.register_derived("adj", data.norm_adj())
        # FREEDOM's frozen item–item graph from the (post-knockout) raw features
        self.register_derived(
            "mm_adj", data.weighted_item_knn({m: self.weights[m] for m in self.modality_names}, self.knn_k)
        )
        if self.mode == "global":
            self.register_derived(
                "global_subgraph",
                cached_global_principal_subgraph(data, self.svd_rank, self.principal_fraction, self.svd_threshold),
            )
        self.train_adj = None

    def on_epoch_start_hook(self) -> None:
        if self.mode == "global":
            self.train_adj = self.global_subgraph
        else:
            self.train_adj = local_principal_subgraph(
                self.edge_users, self.edge_items, self.n_users, self.n_items, self.keep_ratio
            )

    def forward(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Users [U, M·d] and items [I, M·d] propagated over ``adj`` (plus the item-graph term for items)."""
        items = torch.cat(
            [F.normalize(self.projections[m](self.features[m]()), dim=1) for m in self.modality_names], dim=1
        )  # [I, M·d]
        users = torch.cat(
            [cast(nn.Embedding, self.user_embeddings[m]).weight for m in self.modality_names], dim=1
        )  # [U, M·d]
        h = propagate(self.mm_adj, items, self.n_mm_layers, combine="last")  # [I, M·d]
        u, i = bipartite_propagate(adj, users, items, self.n_ui_layers)
        return u, i + h

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        if self.train_adj is None:
            self.on_epoch_start_hook()
        assert self.train_adj is not None  # set by on_epoch_start_hook
        u_all, i_all = self.forward(self.train_adj)
        u, p, n = take_rows(u_all, users), take_rows(i_all, pos), take_rows(i_all, neg)
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1))
        if self.reg_weight:

            def drop(x: torch.Tensor) -> torch.Tensor:
                return F.dropout(x, self.dropout, training=self.training)

            cl = info_nce(drop(u), drop(u), self.temperature) + info_nce(drop(p), drop(p), self.temperature)
            loss = loss + self.reg_weight * cl / 2
        return loss

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(self.adj)
