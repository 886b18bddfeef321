"""BPR-MF (Rendle et al., UAI 2009): matrix factorisation trained with the BPR loss."""

from __future__ import annotations

import torch
from torch import nn

from mmrec.data.datamodule import GraphData
from mmrec.models.base import Recommender
from mmrec.nn.losses import bpr_loss, emb_norm_reg


class BPR(Recommender):
    """Score ``s(u, i) = e_uᵀ e_i``; loss = BPR + ``reg_weight`` · MMRec's EmbLoss on batch embeddings.

    Trainable parameters: ``(U + I) · d``.
    """

    def __init__(self, data: GraphData, embedding_dim: int = 64, reg_weight: float = 1e-5, lr: float = 1e-3):
        super().__init__(data, lr=lr)
        self.reg_weight = reg_weight
        self.user_embedding = nn.Embedding(self.n_users, embedding_dim)
        self.item_embedding = nn.Embedding(self.n_items, embedding_dim)
        nn.init.xavier_normal_(self.user_embedding.weight)
        nn.init.xavier_normal_(self.item_embedding.weight)
        self.attach(data)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        u = self.user_embedding(batch["users"])  # [B, d]
        p, n = self.item_embedding(torch.cat([batch["pos_items"], batch["neg_items"]])).chunk(2)  # one gather
        return bpr_loss((u * p).sum(1), (u * n).sum(1)) + self.reg_weight * emb_norm_reg(u, p, n)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_embedding(users.to(self.device)) @ self.item_embedding.weight.T  # [b, I]
