"""FREEDOM (Zhou & Shen, ACM MM 2023): a frozen item–item graph and a denoised user–item graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.models.multimodal import MultimodalRecommender, SharedOptions, item_graph_weights
from mmrec.nn.edge_graph import interaction_edges
from mmrec.nn.edge_pruning import pruned_norm_adj
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss
from mmrec.nn.propagation import bipartite_propagate, propagate


class FREEDOM(MultimodalRecommender):
    """
    - Item graph ``S = Σ_m w_m · norm(kNN_k(cos(x_m)))``, built once from the (post-knockout) raw features and
      frozen; ``h = S^{L_mm} e_item`` (``n_mm_layers``).
    - User–item graph: each training epoch keeps ``⌊|E|(1−p)⌋`` edges sampled ∝ ``1/sqrt(d_u d_i)`` and
      re-normalises them (degree-sensitive pruning); the full graph at inference.
    - ``[u; i] = mean_{k≤L_ui} Â^k [E_u; E_i]``; item representation ``i + h``; score ``uᵀ(i + h)``.
    - Loss: BPR(u, i⁺+h, i⁻+h) + ``reg_weight`` · Σ_m BPR(u, W_m x_m,i⁺, W_m x_m,i⁻).
    Modality weights: ``modality_weights`` (default image 0.1, text 0.9 as ``mm_image_weight`` = 0.1; other
    modalities equal shares), normalised to sum 1 over the run's modalities.
    Trainable parameters: ``(U + I)d + Σ_m (d_m + 1)·d_f`` (+ ``I · Σ_m d_m`` when features are fine-tuned,
    the reference behaviour; ``freeze_features=true`` freezes them).
    """

    option_defaults: ClassVar[SharedOptions] = {
        "lr": 1e-3,
        "freeze_features": False,
        "feature_dtype": "float32",
        "feature_updates": "dense",
    }
    reads_feature_rows = True  # the tables are read by rows (the batch's items) only: sparse updates help
    edge_users: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)
    edge_items: torch.Tensor
    adj: torch.Tensor
    mm_adj: torch.Tensor

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        feat_embed_dim: int = 64,
        knn_k: int = 10,
        n_mm_layers: int = 1,
        n_ui_layers: int = 2,
        dropout: float = 0.8,
        reg_weight: float = 1e-4,
        mm_image_weight: float = 0.1,
        modality_weights: Mapping[str, float] | None = None,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        self.knn_k, self.n_mm_layers, self.n_ui_layers = knn_k, n_mm_layers, n_ui_layers
        self.dropout, self.reg_weight = dropout, reg_weight
        self.weights = item_graph_weights(self.modality_names, mm_image_weight, modality_weights)
        self.build_id_embeddings(embedding_dim)
        # PyTorch's default Linear initialisation, as in the reference (MMRec's image_trs / text_trs)
        self.build_projections(feat_embed_dim)
        edge_users, edge_items = interaction_edges(data.train_matrix)
        self.register_buffer("edge_users", edge_users, persistent=False)
        self.register_buffer("edge_items", edge_items, persistent=False)
        self.train_adj: torch.Tensor | None = None
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        self.register_derived("adj", data.norm_adj())
        # frozen item–item graph from the (post-knockout) raw features
        self.register_derived(
            "mm_adj", data.weighted_item_knn({m: self.weights[m] for m in self.modality_names}, self.knn_k)
        )

    def on_epoch_start_hook(self) -> None:
        self.train_adj = (
            pruned_norm_adj(self.edge_users, self.edge_items, self.n_users, self.n_items, self.dropout)
            if self.dropout > 0
            else self.adj
        )

    def forward(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = propagate(self.mm_adj, self.item_embedding.weight, self.n_mm_layers, combine="last")  # [I, d]
        u, i = bipartite_propagate(adj, self.user_embedding.weight, self.item_embedding.weight, self.n_ui_layers)
        return u, i + h

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        adj = self.train_adj if self.train_adj is not None else self.adj
        u_all, i_all = self.forward(adj)
        u = take_rows(u_all, users)
        items = torch.cat([pos, neg])
        p, n = take_rows(i_all, items).chunk(2)
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1))
        for m in self.modality_names:  # only the batch's items are projected: exactly equivalent, less work
            # one gather of the table (one dense table gradient per step, not one per gather)
            fp, fn = self.projections[m](self.features[m](items)).chunk(2)
            loss = loss + self.reg_weight * bpr_loss((u * fp).sum(1), (u * fn).sum(1))
        return loss

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(self.adj)
