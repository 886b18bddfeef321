"""VBPR (He & McAuley, AAAI 2016): matrix factorisation with a content-projected item factor."""

from __future__ import annotations

import torch
from torch import nn

from mmrec.data.datamodule import GraphData
from mmrec.models.multimodal import MultimodalRecommender
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss, emb_norm_reg


class VBPR(MultimodalRecommender):
    """``s(u, i) = [γ_u; θ_u]ᵀ [γ_i; E f_i]`` with ``f_i`` the concatenation of every modality's features.

    ``faithful_to: reference`` (MMRec, default) is exactly that, with ``E`` a biased linear layer;
    ``paper`` adds the paper's item bias ``β_i`` and content bias ``β'ᵀ f_i``.
    Loss: BPR + ``reg_weight`` · EmbLoss (MMRec). Features are fixed inputs (never fine-tuned): one frozen table
    per modality (``feature_dtype`` sets their storage dtype), concatenated per read. ``E`` starts
    Xavier-normal with a zero bias (MMRec's initialisation; the paper names none).
    Trainable parameters: ``2dU + dI + (F + 1)d`` (+ ``I + F`` for ``paper``), ``F = Σ_m d_m``.
    """

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        reg_weight: float = 1e-3,
        dropout: float = 0.0,
        faithful_to: str = "reference",
        feature_dtype: str = "float32",
        lr: float = 1e-3,
    ):
        super().__init__(data, lr=lr, faithful_to=faithful_to, freeze_features=True, feature_dtype=feature_dtype)
        self.reg_weight = reg_weight
        self.dropout = dropout
        feat_dim = sum(data.features.dims().values()) if data.features is not None else 0
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, 2 * embedding_dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, embedding_dim)))
        self.item_linear = nn.Linear(feat_dim, embedding_dim)
        nn.init.xavier_normal_(self.item_linear.weight)  # MMRec's xavier_normal_initialization: weight, zero bias
        nn.init.zeros_(self.item_linear.bias)
        if faithful_to == "paper":
            self.item_bias = nn.Parameter(torch.zeros(self.n_items))
            self.content_bias = nn.Linear(feat_dim, 1, bias=False)
            nn.init.zeros_(self.content_bias.weight)
        self.attach(data)

    def content(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``f_i``, the modalities' features concatenated (float32), for ``items`` (all when None): [n, F]."""
        return torch.cat([self.features[m](items) for m in self.modality_names], dim=1)

    def item_representation(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``[γ_i; E f_i]`` for ``items`` (all when None): [n, 2d]. Only the requested rows are projected."""
        if items is None:
            return torch.cat([self.item_embedding, self.item_linear(self.content())], dim=1)
        content = self.item_linear(self.content(items))
        return torch.cat([take_rows(self.item_embedding, items), content], dim=1)

    def forward(self, users: torch.Tensor | None = None, items: torch.Tensor | None = None):
        """(user factors, item factors), dropout applied in training (element-wise, as in the reference)."""
        u = self.user_embedding if users is None else take_rows(self.user_embedding, users)
        i = self.item_representation(items)
        drop = nn.functional.dropout
        return drop(u, self.dropout, self.training), drop(i, self.dropout, self.training)

    def _bias(self, items: torch.Tensor | None = None) -> torch.Tensor:
        b = self.item_bias + self.content_bias(self.content()).squeeze(1)  # [I]
        return b if items is None else take_rows(b, items)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        u, items = self.forward(users, torch.cat([pos, neg]))
        p, n = items.split(len(pos))
        s_pos, s_neg = (u * p).sum(1), (u * n).sum(1)
        if self.faithful_to == "paper":
            s_pos, s_neg = s_pos + self._bias(pos), s_neg + self._bias(neg)
        return bpr_loss(s_pos, s_neg) + self.reg_weight * emb_norm_reg(u, p, n)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        i_all = self.memo("items", self.item_representation)
        s = self.user_embedding[users.to(self.device)] @ i_all.T  # [b, I]
        return s + self.memo("bias", self._bias).unsqueeze(0) if self.faithful_to == "paper" else s
