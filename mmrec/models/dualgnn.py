"""DualGNN (Wang et al., IEEE TMM 2021): per-modality user–item GCNs fused per user, plus a user–user graph."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.models.base import check_choice
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.edge_graph import EdgeGraph, normalized_bipartite_edge_graph
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss
from mmrec.nn.modality_gcn import ModalityPreferenceGCN
from mmrec.nn.user_graph_sampling import sampled_user_graph


class DualGNN(MultimodalRecommender):
    """Single-modal representation learning, per modality ``m`` (``d`` = embedding_dim):

    - items ``t_m = W²_m LeakyReLU(W¹_m x_m + b¹) + b²`` (``d_m → 4d → d``), users a free preference ``P_m``;
      ``z_m = normalize([P_m; t_m])`` [U+I, d];
    - ``r_m = z_m + Â z_m + Â² z_m`` with ``Â`` the user–item graph normalised ``D^-½AD^-½`` (``aggr_mode=add``)
      or ``D⁻¹A`` (``mean``); all modalities in one SpMM of width ``M·d``. Parameters are
      :class:`~mmrec.nn.modality_gcn.ModalityPreferenceGCN`'s (shared with DRAGON); the propagation runs on a CSR
      :class:`~mmrec.nn.edge_graph.EdgeGraph` (faster than a COO ``torch.sparse.mm`` forward and backward).

    Multi-modal fusion: items ``i = Σ_m r_m,i``; users ``ũ = Σ_m w_u,m r_m,u`` with trainable per-user weights
    ``w_u`` [U, M] (initialised to a softmax, then free). User co-occurrence graph: ``u = ũ + Σ_{v} s_uv ũ_v``
    over the top-``user_k`` co-interacting users (``GraphData.user_graph``; ties at the ``user_k``-th count are
    broken by ``knn.ties``, random by default), ``s_u = softmax`` of the counts
    (``user_aggr=softmax``) or uniform (``mean``). Score ``uᵀ i``. Any set of named modalities works (one
    branch each; with one modality there is no fusion weight).

    Loss: ``-mean log₂ σ(s⁺ − s⁻)`` (reference; natural log under ``paper``) + ``reg_weight`` ·
    (Σ_m mean(P_m,u²) + mean(w_u²) [+ mean(w_i²) under ``reference``]).

    ``faithful_to``:
        reference (MMRec): ``representation += t_rep`` adds in place into the vision (``image``) tensor, so the
            user fusion is ``w_u,img · Σ_m r_m + Σ_{m≠img} w_u,m r_m`` (text+image: w_img·image +
            (w_img + w_text)·text) whatever the modality order (no image: the first modality takes the sum);
            short neighbour lists are padded to ``user_k`` every epoch by random duplicates (Pólya urn, see
            :mod:`mmrec.nn.user_graph_sampling`;
            evaluation uses one fixed padding drawn from the run seed); the loss uses log₂; a per-item weight
            ``w_i`` [I, M] exists, is never used in a score and is only L2-regularised (kept for fidelity).
            MMRec's node-dropping masks and ``MLP_user``/``MLP_v``/``MLP_t`` are built but unused (left out).
            MMRec scores with the representation of the last training batch; here evaluation recomputes it.
        paper: fusion ``Σ_m w_u,m r_m``; each user's real neighbours only (no padding, deterministic); ln-BPR;
            no ``w_i``.
    Features are fixed inputs (``freeze_features=true``; ``false`` fine-tunes them as tables).

    Trainable parameters: ``Σ_m (U·d + (d_m + 1)·4d + (4d + 1)·d) + [M ≥ 2]·(U·M + [reference]·I·M)``
    (+ ``I·Σ_m d_m`` when fine-tuned).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "freeze_features": True}

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        user_k: int = 40,
        aggr_mode: str = "add",
        user_aggr: str = "softmax",
        reg_weight: float = 0.1,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        check_choice("dualgnn.aggr_mode", aggr_mode, ("add", "mean"))
        check_choice("dualgnn.user_aggr", user_aggr, ("softmax", "mean"))
        self.reg_weight, self.user_k = reg_weight, user_k
        self.aggr_mode, self.user_aggr, self.dim = aggr_mode, user_aggr, embedding_dim
        d, n_mod = embedding_dim, len(self.modality_names)
        self.gcn = ModalityPreferenceGCN(self.n_users, self.feature_dims, d, n_hops=2)
        self.user_weight = self.item_weight = None
        if n_mod > 1:  # [U, M, 1] as in the reference: xavier-normal draw, then a softmax over modalities
            self.user_weight = nn.Parameter(
                torch.softmax(nn.init.xavier_normal_(torch.randn(self.n_users, n_mod, 1)), 1)
            )
            if self.faithful_to == "reference":
                self.item_weight = nn.Parameter(
                    torch.softmax(nn.init.xavier_normal_(torch.randn(self.n_items, n_mod, 1)), 1)
                )
        self.train_user_graph: EdgeGraph | None = None
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        device = self._device_hint()
        norm = "sym" if self.aggr_mode == "add" else "mean"  # D^-½AD^-½ (MMRec's Base_gcn, aggr="add") or D⁻¹A
        self.graph = normalized_bipartite_edge_graph(data.train_matrix, norm).to(device)
        rows, cols, counts = data.user_graph(self.user_k)
        self._user_edges = (rows, cols, counts)
        gen = torch.Generator().manual_seed(int(data.seed))
        self.eval_user_graph = self._user_graph(gen).to(device)
        self.train_user_graph = None

    def _user_graph(self, generator: torch.Generator | None) -> EdgeGraph:
        rows, cols, counts = self._user_edges
        return sampled_user_graph(
            rows,
            cols,
            counts,
            self.n_users,
            self.user_k,
            weighting=self.user_aggr,
            pad=self.faithful_to == "reference",
            generator=generator,
        )

    def on_epoch_start_hook(self) -> None:
        if self.faithful_to == "reference":  # fresh random padding each epoch (global RNG, seeded per epoch)
            self.train_user_graph = self._user_graph(None).to(self._device_hint())

    def forward(self, user_graph: EdgeGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (users [U, d], items [I, d])."""
        z = []
        for m in self.modality_names:
            t = self.gcn.item_projection(m, self.features[m]())  # [I, d]
            z.append(F.normalize(torch.cat([self.gcn.preference[m], t], dim=0), dim=1))  # [U+I, d]
        x = torch.cat(z, dim=1)  # [U+I, M·d]
        h1 = self.graph.spmm(x)
        r = (x + h1 + self.graph.spmm(h1)).view(-1, len(z), self.dim)  # [U+I, M, d]
        r_user, r_item = r[: self.n_users], r[self.n_users :]
        items = r_item.sum(1)  # [I, d]
        if self.user_weight is None:
            fused = r_user[:, 0]
        else:
            fused = (r_user * self.user_weight).sum(1)  # [U, d] Σ_m w_u,m r_m
            if self.faithful_to == "reference":  # MMRec's vision slot holds Σ_m r_m (its in-place +=)
                acc = self._accumulator_slot()
                others = r_user.sum(1) - r_user[:, acc]
                fused = fused + self.user_weight[:, acc] * others
        return fused + user_graph.spmm(fused), items

    def _accumulator_slot(self) -> int:
        """The modality whose tensor MMRec's ``representation += t_rep`` adds into: its vision slot (``image``)
        whatever the order of ``data.modalities``; the first modality when there is no image."""
        return self.modality_names.index("image") if "image" in self.modality_names else 0

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        graph = self.train_user_graph if self.train_user_graph is not None else self.eval_user_graph
        u_all, i_all = self.forward(graph)
        u = take_rows(u_all, users)
        loss = bpr_loss((u * take_rows(i_all, pos)).sum(1), (u * take_rows(i_all, neg)).sum(1))
        if self.faithful_to == "reference":
            loss = loss / math.log(2.0)  # log₂
        reg = sum(take_rows(self.gcn.preference[m], users).pow(2).mean() for m in self.modality_names)
        for w in (self.user_weight, self.item_weight):
            if w is not None:
                reg = reg + w.pow(2).mean()
        return loss + self.reg_weight * reg

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(self.eval_user_graph)
