"""PGL (Yu et al., AAAI 2025): principal graph learning on extracted user–item subgraphs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmrec.cache import cached_tensor, hash_parts
from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.models.base import Recommender, check_choice
from mmrec.models.products import Product, dense, graph_product, linear
from mmrec.nn.features import feature_tables
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss, info_nce
from mmrec.nn.principal_subgraph import (
    check_spectral_config,
    global_principal_subgraph,
    local_principal_subgraph,
)
from mmrec.nn.propagation import bipartite_propagate, propagate


def item_graph_weights(names: list[str], image_weight: float, given: Mapping[str, float] | None) -> dict[str, float]:
    """Item-graph weights summing to 1: ``given``, else image ``image_weight`` / text the rest for exactly
    text + image (MMRec's ``mm_image_weight``), else equal shares."""
    if given:
        w = {m: float(given.get(m, 0.0)) for m in names}
    elif set(names) == {"text", "image"}:
        w = {"image": image_weight, "text": 1.0 - image_weight}
    else:
        w = {m: 1.0 for m in names}
    total = sum(w.values())
    return {m: v / total for m, v in w.items()} if total > 0 else {m: 1.0 / len(names) for m in names}


class PGL(Recommender):
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

    min_modalities = 1
    uses_features_at_inference = True
    fine_tunes_features_by_default = True

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
        lr_decay: float = 0.96,
        lr_decay_epochs: int = 50,
        faithful_to: str = "reference",
        freeze_features: bool = False,
        lr: float = 1e-3,
    ):
        super().__init__(data, lr=lr)
        check_choice("pgl.faithful_to", faithful_to, ("reference", "paper"))
        check_choice("pgl.mode", mode, ("local", "global"))
        if not 0.0 < keep_ratio <= 1.0:
            raise ConfigError(f"pgl.keep_ratio={keep_ratio} must be in (0, 1]")
        check_spectral_config(svd_rank, principal_fraction)
        self.faithful_to, self.mode = faithful_to, mode
        self.n_ui_layers, self.n_mm_layers, self.knn_k = n_ui_layers, n_mm_layers, knn_k
        self.keep_ratio, self.svd_rank = keep_ratio, svd_rank
        self.principal_fraction, self.svd_threshold = principal_fraction, svd_threshold
        self.reg_weight, self.dropout, self.temperature = reg_weight, dropout, temperature
        self.lr_decay, self.lr_decay_epochs = lr_decay, lr_decay_epochs
        self.freeze_features = freeze_features
        self.modality_names = list(data.modalities)
        self.weights = item_graph_weights(self.modality_names, mm_image_weight, modality_weights)
        feats = {m: data.feature(m) for m in self.modality_names}
        self.user_embeddings = nn.ModuleDict({m: nn.Embedding(self.n_users, embedding_dim) for m in feats})
        for emb in self.user_embeddings.values():
            nn.init.xavier_uniform_(emb.weight)
        self.features = feature_tables(feats, trainable=not freeze_features)
        self.projections = nn.ModuleDict({m: nn.Linear(x.shape[1], embedding_dim) for m, x in feats.items()})
        edges = torch.from_numpy(np.vstack(data.train_matrix.nonzero()).astype(np.int64))
        self.register_buffer("edge_users", edges[0], persistent=False)
        self.register_buffer("edge_items", edges[1], persistent=False)
        self.train_adj: torch.Tensor | None = None
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        self.register_derived("adj", data.norm_adj())
        for m in self.modality_names:  # test-time knockout: the tables take the knocked-out inputs
            self.features[m].load(data.feature(m))
        mm_adj = None
        for m in self.modality_names:  # FREEDOM's frozen item–item graph from the (post-knockout) raw features
            g = data.item_knn(m, self.knn_k, norm="sym") * self.weights[m]
            mm_adj = g if mm_adj is None else (mm_adj + g).coalesce()
        self.register_derived("mm_adj", mm_adj)
        if self.mode == "global":
            key = hash_parts("pgl-global", data.interactions_hash, self.svd_rank, self.principal_fraction,
                             self.svd_threshold)
            sub = cached_tensor("principal", key, lambda: global_principal_subgraph(
                data.train_matrix, self.svd_rank, self.principal_fraction, self.svd_threshold))
            self.register_derived("global_subgraph", sub)
        self.train_adj = None

    def on_epoch_start_hook(self) -> None:
        if self.mode == "global":
            self.train_adj = self.global_subgraph
        else:
            self.train_adj = local_principal_subgraph(self.edge_users, self.edge_items, self.n_users, self.n_items,
                                                      self.keep_ratio)

    def forward(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Users [U, M·d] and items [I, M·d] propagated over ``adj`` (plus the item-graph term for items)."""
        items = torch.cat([F.normalize(self.projections[m](self.features[m]()), dim=1) for m in self.modality_names],
                          dim=1)  # [I, M·d]
        users = torch.cat([self.user_embeddings[m].weight for m in self.modality_names], dim=1)  # [U, M·d]
        h = propagate(self.mm_adj, items, self.n_mm_layers, combine="last")  # [I, M·d]
        u, i = bipartite_propagate(adj, users, items, self.n_ui_layers)
        return u, i + h

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        if self.train_adj is None:
            self.on_epoch_start_hook()
        u_all, i_all = self.forward(self.train_adj)
        u, p, n = take_rows(u_all, users), take_rows(i_all, pos), take_rows(i_all, neg)
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1))
        if self.reg_weight:
            def drop(x: torch.Tensor) -> torch.Tensor:
                return F.dropout(x, self.dropout, training=self.training)

            cl = info_nce(drop(u), drop(u), self.temperature) + info_nce(drop(p), drop(p), self.temperature)
            loss = loss + self.reg_weight * cl / 2
        return loss

    def score(self, users: torch.Tensor) -> torch.Tensor:
        u_all, i_all = self.memo("final", lambda: self.forward(self.adj))
        return u_all[users.to(self.device)] @ i_all.T



    # ---- the products the math needs (mmrec.models.products) ----------------------------------------------------
    def _products(self, adj: torch.Tensor, training: bool) -> list[Product]:
        """Projecting every item (the graphs need them all), the item graph and the user–item graph ``adj``."""
        width = sum(self.projections[m].out_features for m in self.modality_names)  # M·d
        out = [linear(f"W_{m} x_{m}", self.n_items, self.projections[m],
                      grad_input=training and self.features[m].trainable, trained=training)
               for m in self.modality_names]
        if self.n_mm_layers:
            out.append(graph_product("S h", self.mm_adj, width, grad_x=training, count=self.n_mm_layers))
        if self.n_ui_layers:
            out.append(graph_product("G x" if training else "Â x", adj, width, grad_x=training,
                                     count=self.n_ui_layers))
        return out

    def training_products(self, batch: dict[str, torch.Tensor]) -> list[Product]:
        batch_size = len(batch["users"])
        if self.train_adj is not None:
            adj = self.train_adj
        elif self.mode == "global":
            adj = self.global_subgraph
        else:  # before the first epoch: a stand-in sample of the same size (private generator: no RNG drawn)
            adj = local_principal_subgraph(self.edge_users, self.edge_items, self.n_users, self.n_items,
                                           self.keep_ratio,
                                           generator=torch.Generator(self.edge_users.device).manual_seed(0))
        out = self._products(adj, training=True)
        if self.reg_weight:  # in-batch InfoNCE logits of the users' and the positives' two dropout views
            width = sum(self.projections[m].out_features for m in self.modality_names)
            out.append(dense("InfoNCE [B, M·d] @ [M·d, B]", batch_size, width, batch_size, grad_left=True, count=2))
        return out

    def inference_products(self) -> list[Product]:
        width = sum(self.projections[m].out_features for m in self.modality_names)
        return [*self._products(self.adj, training=False), self.score_product(width)]
