"""DRAGON (Zhou, Zhou, Zhang, Liu, Miao; ECAI 2023): dual representations from homogeneous graphs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.models.base import check_choice
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions, item_graph_weights
from mmrec.nn.edge_graph import EdgeGraph, edge_graph_from_sparse
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss
from mmrec.nn.modality_gcn import ModalityPreferenceGCN
from mmrec.nn.propagation import propagate
from mmrec.nn.user_graph_sampling import sampled_user_graph


class DRAGON(MultimodalRecommender):
    """DRAGON: heterogeneous (user–item) and homogeneous (item–item, user–user) graphs, concatenated.

    With modalities ``m = 1..M`` (any names: one heterogeneous branch each; the item graph sums the ``M``
    modality graphs; with one modality there is no fusion weight), ``d`` = ``embedding_dim``:

    - Heterogeneous graph (:class:`~mmrec.nn.modality_gcn.ModalityPreferenceGCN`): items
      ``t_m = W²_m LeakyReLU(W¹_m x_m)`` (``d_m → 4d → d``), users a free preference ``P_m`` [U, d];
      ``z_m = normalize([P_m; t_m])``, ``r_m = Σ_{l=0..L} Â^l z_m`` [U+I, d] (``n_layers`` = L = 2 in
      MMRec, hard-coded there as two ``Base_gcn`` calls), ``Â = D^-½AD^-½`` (``aggr_mode=add``) or ``D⁻¹A``
      (``mean``).
    - Attentive concatenation: items ``i = [r_1,i ‖ … ‖ r_M,i]`` [I, M·d]; users
      ``ũ = [w_u,1 r_1,u ‖ … ‖ w_u,M r_M,u]`` [U, M·d] with trainable ``w_u`` [U, M] (initialised to a softmax
      of a Xavier-normal draw, then free).
    - Item–item graph ``S = Σ_m α_m · sym(kNN_k(cos(x_m)))`` of the raw (post-knockout) features, frozen
      (``α`` = image 0.1 / text 0.9 as ``mm_image_weight``, equal shares for other modality sets, or
      ``modality_weights``; normalised to sum 1) — FREEDOM's graph: ``i ← i + S^{n_mm_layers} i``.
    - User–user graph: the top-``user_k`` co-interacting users (``GraphData.user_graph``), weights
      ``softmax`` of the co-interaction counts (``user_aggr``): ``u = ũ + Σ_v s_uv ũ_v``.
    - Score ``uᵀ i``. Loss ``BPR + reg_weight · (Σ_m mean(P_m,batch²) + mean(w_u²))``.

    ``faithful_to``:
        reference (MMRec = the authors' code): BPR with ``log₂`` (``-mean log₂ σ(s⁺ − s⁻)``, computed
            stably as ``BPR / ln 2``); user-neighbour lists shorter than ``user_k`` are padded every epoch
            with random duplicates (Pólya urn, :mod:`mmrec.nn.user_graph_sampling`); evaluation uses one fixed
            padding drawn from the data seed (MMRec scores with the representation of the last training batch
            and that epoch's padding; here evaluation recomputes the representation, so test-time knockout and
            reloads see the same user graph). MMRec's node-dropping edge lists, ``weight_i``,
            ``MLP_v/MLP_t/MLP_user``, ``image_trs/text_trs``, ``result_embed`` and the
            ``from_pretrained(freeze=False)`` feature tables are built but never reach the loss (no gradient):
            left out; MMRec's raw tables are thus effectively frozen (``freeze_features=true`` here; ``false``
            fine-tunes them).
        paper: natural-log BPR; each user's real neighbours only (no padding, deterministic).
    Trainable parameters: ``Σ_m [U·d + (d_m + 1)·4d + (4d + 1)·d] + [M ≥ 2]·U·M``
    (+ ``I · Σ_m d_m`` when ``freeze_features=false``).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "freeze_features": True, "lr": 1e-4}

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_layers: int = 2,
        n_mm_layers: int = 1,
        knn_k: int = 10,
        mm_image_weight: float = 0.1,
        modality_weights: Mapping[str, float] | None = None,
        user_k: int = 40,
        user_aggr: str = "softmax",
        aggr_mode: str = "add",
        reg_weight: float = 1e-3,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        check_choice("dragon.aggr_mode", aggr_mode, ("add", "mean"))
        check_choice("dragon.user_aggr", user_aggr, ("softmax", "mean"))
        self.aggr_mode, self.user_aggr = aggr_mode, user_aggr
        self.n_mm_layers, self.knn_k, self.user_k, self.reg_weight = n_mm_layers, knn_k, user_k, reg_weight
        self.dim = embedding_dim
        self.alpha = item_graph_weights(self.modality_names, mm_image_weight, modality_weights)
        self.gcn = ModalityPreferenceGCN(self.n_users, self.feature_dims, embedding_dim, n_hops=n_layers)
        n_mod = len(self.modality_names)
        self.user_weight: nn.Parameter | None = None
        if n_mod > 1:  # [U, M, 1] as in the reference: a Xavier-normal draw, then a softmax over modalities
            draw = nn.init.xavier_normal_(torch.empty(self.n_users, n_mod, 1))
            self.user_weight = nn.Parameter(torch.softmax(draw, dim=1))
        self.train_user_graph: EdgeGraph | None = None
        self.attach(data)

    # ---- derived structures ------------------------------------------------------------------------------
    def prepare(self, data: GraphData) -> None:
        adj = data.norm_adj() if self.aggr_mode == "add" else data.row_norm_adj()
        device = self._device_hint()
        self.graph = edge_graph_from_sparse(adj).to(device)  # Â, CSR
        # frozen item–item graph of the (post-knockout) raw features, CSR
        item_graph = data.weighted_item_knn({m: self.alpha[m] for m in self.modality_names}, self.knn_k)
        self.item_graph = edge_graph_from_sparse(item_graph).to(device)  # S
        self._user_edges = data.user_graph(self.user_k)
        generator = torch.Generator().manual_seed(int(data.seed))
        self.eval_user_graph = self._user_graph(generator).to(device)
        self.train_user_graph = None

    def _user_graph(self, generator: torch.Generator | None) -> EdgeGraph:
        pad = self.faithful_to == "reference"
        return sampled_user_graph(*self._user_edges, self.n_users, self.user_k, self.user_aggr, pad, generator)

    def on_epoch_start_hook(self) -> None:
        if self.faithful_to == "reference":  # fresh random padding each epoch (global RNG, seeded per epoch)
            self.train_user_graph = self._user_graph(None).to(self._device_hint())

    # ---- model -------------------------------------------------------------------------------------------
    def forward(self, user_graph: EdgeGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (users [U, M·d], items [I, M·d])."""
        feats = {m: self.features[m]() for m in self.modality_names}
        r = self.gcn(self.graph, feats)  # [U+I, M, d]
        r_user, r_item = r[: self.n_users], r[self.n_users :]
        if self.user_weight is not None:
            r_user = r_user * self.user_weight  # [U, M, d] attentive weights per user and modality
        users = r_user.reshape(self.n_users, -1)  # [U, M·d]
        items = r_item.reshape(self.n_items, -1)  # [I, M·d]
        items = items + propagate(self.item_graph, items, self.n_mm_layers, combine="last")
        users = users + user_graph.spmm(users)
        return users, items

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        graph = self.train_user_graph if self.train_user_graph is not None else self.eval_user_graph
        u_all, i_all = self.forward(graph)
        u = take_rows(u_all, users)
        loss = bpr_loss((u * take_rows(i_all, pos)).sum(1), (u * take_rows(i_all, neg)).sum(1))
        if self.faithful_to == "reference":
            loss = loss / math.log(2.0)  # -mean log₂ σ(·)
        reg = sum(take_rows(self.gcn.preference[m], users).pow(2).mean() for m in self.modality_names)
        if self.user_weight is not None:
            reg = reg + self.user_weight.pow(2).mean()
        return loss + self.reg_weight * reg

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(self.eval_user_graph)
