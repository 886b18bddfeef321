"""GRCN (Wei et al., ACM MM 2020): a user–item graph refined (softly pruned) by per-modality attention."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.edge_graph import EdgeGraph, bipartite_edge_graph, interaction_edges
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss


class GRCN(MultimodalRecommender):
    """Graph refining layer, per modality ``m`` (``C`` = latent_dim), on the symmetric user–item graph:

    - items ``f_m = normalize(LeakyReLU(W_m x_m + b_m))`` [I, C], users ``p_m = normalize(P_m)`` [U, C];
    - (paper only) ``n_routing`` routing steps: ``α_ui = softmax_{i∈N(u)} p_uᵀ f_i``,
      ``p_u ← normalize(p_u + Σ_i α_ui f_i)``;
    - ``z = [p_m; f_m]`` [U+I, C]; attention on every directed edge ``s→t``:
      ``α^m_ts = softmax_{s∈N(t)} z_tᵀ z_s``; content representation ``c_m = z + Σ_s α^m_ts z_s``;
    - edge weight ``w_ts = ReLU(max_m α^m_ts · κ_s,m)`` with ``κ`` [U+I, M] the trainable per-node modality
      confidence (of the source node), i.e. soft pruning of low-confidence edges.

    Graph convolution on the refined graph: ``e⁰ = normalize(E_id)``, ``eᵏ⁺¹_t = Σ_s w_ts eᵏ_s`` (2 layers),
    ``r_id = e⁰ + e¹ + e²``. Representation ``r = [r_id ‖ c_1 ‖ … ‖ c_M]`` [U+I, d + M·C]; score ``r_uᵀ r_i``.
    Any set of named modalities (one attention branch each; ``κ`` has one column per modality).
    Attention scores are one CSR SDDMM per interaction (shared by both directions), messages one CSR SpMM
    (:mod:`mmrec.nn.edge_graph`); no [E, C] message tensor is materialised.

    Loss: BPR + ``reg_weight`` · (mean(E_id,u²) + ½ mean(E_id,i⁺²) + ½ mean(E_id,i⁻²) + Σ_m mean(P_m,u²)
    [+ mean(P_image²) over all users: an extra term of MMRec only, kept under ``reference``]).

    ``faithful_to``:
        reference (MMRec, and the authors' code): the routing loop aggregates user→item messages at the
            *items* (PyG's source→target flow over user→item edges), so users receive nothing and the loop
            reduces to re-normalising ``p``: it is skipped here (same result, no wasted passes).
            MMRec scores with the representation of the last training batch; here evaluation recomputes it.
        paper: the routing updates the user preferences as the paper describes.
    Features are fixed inputs (``freeze_features=true``; ``false`` fine-tunes them as tables).

    Trainable parameters: ``(U + I)·d + Σ_m (U·C + (d_m + 1)·C) + (U + I)·M`` (+ ``I·Σ_m d_m`` when fine-tuned).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "freeze_features": True}
    to_directed: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        latent_dim: int = 64,
        n_routing: int = 3,
        reg_weight: float = 1e-5,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        self.reg_weight, self.n_routing = reg_weight, n_routing
        n_nodes, n_mod = self.n_users + self.n_items, len(self.modality_names)
        self.id_embedding = nn.Parameter(nn.init.xavier_normal_(torch.rand(n_nodes, embedding_dim)))
        self.preference = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_normal_(torch.rand(self.n_users, latent_dim))) for m in self.modality_names}
        )
        self.build_projections(latent_dim, init=nn.init.xavier_normal_)
        self.confidence = nn.Parameter(nn.init.xavier_normal_(torch.rand(n_nodes, n_mod)))  # κ [U+I, M]
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        users, items = interaction_edges(data.train_matrix)
        device = self._device_hint()
        self.graph = bipartite_edge_graph(users, items, self.n_users, self.n_items).to(device)  # [U+I, U+I]
        self.user_item = EdgeGraph(users, items, (self.n_users, self.n_items)).to(device)  # [U, I]
        # a score p_uᵀ f_i serves both directions u→i and i→u: index of each directed edge's undirected score
        inverse = torch.argsort(self.user_item.order)  # caller edge → position in user_item's stored order
        self.register_derived("to_directed", torch.cat([inverse, inverse])[self.graph.order])

    def _content(self, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_m [U+I, C], α^m [2E] in the graph's stored edge order)."""
        f = F.normalize(F.leaky_relu(self.projections[m](self.features[m]())), dim=1)  # [I, C]
        p = F.normalize(self.preference[m], dim=1)  # [U, C]
        if self.faithful_to == "paper":
            for _ in range(self.n_routing):
                a = self.user_item.row_softmax(self.user_item.sddmm(p, f))  # [E] over each user's items
                p = F.normalize(p + self.user_item.spmm(f, a), dim=1)
        z = torch.cat([p, f], dim=0)  # [U+I, C]
        scores = take_rows(self.user_item.sddmm(p, f), self.to_directed)  # [2E] z_tᵀ z_s, each pair computed once
        alpha = self.graph.row_softmax(scores)  # [2E] softmax over each target's sources
        return z + self.graph.spmm(z, alpha), alpha

    def forward(self, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """Node representations [U+I, d + M·C] (only the rows ``nodes`` when given)."""
        content, alphas = zip(*(self._content(m) for m in self.modality_names))
        kappa = take_rows(self.confidence, self.graph.col)  # [2E, M] confidence of each edge's source node
        w = torch.relu((torch.stack(alphas, dim=1) * kappa).max(dim=1).values)  # [2E]
        e0 = F.normalize(self.id_embedding, dim=1)  # [U+I, d]
        e1 = self.graph.spmm(e0, w)
        e2 = self.graph.spmm(e1, w)
        parts = [e0 + e1 + e2, *content]
        if nodes is not None:  # gather each part, not the concatenation of every node's
            parts = [take_rows(x, nodes) for x in parts]
        return torch.cat(parts, dim=1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        nodes = torch.cat([users, self.n_users + pos, self.n_users + neg])
        u, p, n = self.forward(nodes).chunk(3)  # [B, d + M·C] each
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1))
        e_u, e_p, e_n = take_rows(self.id_embedding, nodes).chunk(3)  # one gather (one scatter in backward)
        reg = e_u.pow(2).mean() + 0.5 * e_p.pow(2).mean() + 0.5 * e_n.pow(2).mean()
        for m in self.modality_names:
            reg = reg + take_rows(self.preference[m], users).pow(2).mean()
        if self.faithful_to == "reference" and "image" in self.preference:
            reg = reg + self.preference["image"].pow(2).mean()
        return loss + self.reg_weight * reg

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        rep = self.forward()
        return rep[: self.n_users], rep[self.n_users :]
