"""LightGCN (He et al., SIGIR 2020): embeddings smoothed over the normalised user–item graph."""

from __future__ import annotations

import torch

from mmrec.data.datamodule import GraphData
from mmrec.models.base import Recommender, check_choice
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss, emb_norm_reg, l2_reg
from mmrec.nn.propagation import bipartite_propagate, propagate


class LightGCN(Recommender):
    """``E_final = mean_{k=0..L} Â^k E⁰`` with ``Â = D^-1/2 A D^-1/2`` of the bipartite graph; score ``e_uᵀ e_i``.

    Loss: BPR + ``reg_weight`` · R(E⁰_batch) on the layer-0 (ego) embeddings of the batch's users, positives and
    negatives: ``faithful_to=reference`` (MMRec's ``EmbLoss``) R = Σ ‖E⁰_part‖_F / B (unsquared norms);
    ``paper`` R = ½ Σ ‖E⁰_part‖²_F / B (squared L2).
    Trainable parameters: ``(U + I) · d``.
    """

    adj: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_layers: int = 2,
        reg_weight: float = 1e-4,
        lr: float = 1e-3,
        faithful_to: str = "reference",
    ):
        super().__init__(data, lr=lr)
        check_choice("model.faithful_to", faithful_to, ("reference", "paper"))
        self.faithful_to = faithful_to
        self.n_layers = n_layers
        self.reg_weight = reg_weight
        self.build_id_embeddings(embedding_dim)
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        self.register_derived("adj", data.norm_adj())

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ([U, d], [I, d]) embeddings."""
        return bipartite_propagate(self.adj, self.user_embedding.weight, self.item_embedding.weight, self.n_layers)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # [U+I, d]
        rep = propagate(self.adj, ego, self.n_layers)  # [U+I, d]
        nodes = torch.cat([batch["users"], self.n_users + batch["pos_items"], self.n_users + batch["neg_items"]])
        u, p, n = take_rows(rep, nodes).chunk(3)  # one gather (and one scatter in backward) for the whole batch
        reg = (emb_norm_reg if self.faithful_to == "reference" else l2_reg)(*take_rows(ego, nodes).chunk(3))
        return bpr_loss((u * p).sum(1), (u * n).sum(1)) + self.reg_weight * reg

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward()
