"""MGCN (Yu et al., ACM MM 2023): multi-view graph convolution with behaviour-guided feature purification."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.batch_nodes import batch_nodes
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_with_view_contrast
from mmrec.nn.propagation import bipartite_propagate, propagate
from mmrec.nn.sparse_ops import sparse_mm
from mmrec.nn.weighted_item_graphs import cached_weighted_knn_graph, user_item_block


def sigmoid_gate(dim: int) -> nn.Sequential:
    """``σ(W x + b)`` [*, dim] → [*, dim]."""
    return nn.Sequential(nn.Linear(dim, dim), nn.Sigmoid())


class MGCN(MultimodalRecommender):
    """MGCN: a user–item view and one item–item view per modality, fused by behaviour-aware attention.

    With modalities ``m = 1..M`` (any names: each gets its own projection, purifier gate and preference gate;
    the attention is a softmax over the ``M`` views), ID embeddings ``E_u`` [U, d], ``E_i`` [I, d]:

    - Behaviour-guided purifier: ``x̃_m = E_i ⊙ σ(W_m^g (W_m x_m + b_m) + b_m^g)`` [I, d].
    - Item–item view: ``h_m = Ŝ_m^{L} x̃_m`` with ``Ŝ_m`` the frozen cosine-weighted top-``k`` graph of the raw
      features, ``D^-1/2 S D^-1/2``; users ``R̂ h_m`` with ``R̂ = D_u^-1/2 R D_i^-1/2``; ``e_m = [R̂ h_m; h_m]``.
    - User–item view: ``e_id = mean_{l≤L_ui} Â^l [E_u; E_i]`` (LightGCN).
    - Behaviour-aware fuser: ``α = softmax_m(qᵀ tanh(W_q e_m + b_q))`` [N, M]; ``e_c = Σ_m α_m e_m``;
      ``e_side = (e_c + Σ_m σ(W_m^p e_id + b_m^p) ⊙ (e_m − e_c)) / (M + 1)``; final ``e = e_id + e_side``.
    - Loss: BPR(u, i⁺, i⁻) + ``reg_weight`` · ½(‖u‖² + ‖i⁺‖² + ‖i⁻‖²)/B + ``cl_loss`` · (InfoNCE_τ(e_side, e_id)
      over the batch's positive items + the same over its users); score ``e_uᵀ e_i``.
    - Learning rate × ``lr_decay^(epoch / lr_decay_epochs)`` (MMRec's ``learning_rate_scheduler``).

    ``faithful_to``: ``reference`` (MMRec) and ``paper`` are the same computation — no difference is known
    between them. The authors' repository takes the fusion softmax over dim 0 (across all users and items
    rather than across the modalities), which neither the paper nor MMRec does; it is not reproduced.

    Zero features (knockout) leave every item graph empty (cosine 0, where the reference divides 0 by 0 and
    gets NaN), so ``e_side = 0`` and the model reduces to its LightGCN view; constant features give fully tied
    similarities, broken per ``knn.ties``.

    Trainable parameters: ``(U + I)·d + Σ_m [(d_m + 1)·d + 2(d + 1)·d] + (d + 1)·d + d`` (+ ``I · Σ_m d_m`` when
    the raw feature tables are fine-tuned — the reference; ``freeze_features=true`` freezes them).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "lr_decay": 0.96, "lr_decay_epochs": 50}
    adj: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)
    ui_block: torch.Tensor

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_ui_layers: int = 2,
        n_layers: int = 1,
        knn_k: int = 10,
        reg_weight: float = 1e-4,
        cl_loss: float = 0.01,
        temperature: float = 0.2,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        self.n_ui_layers, self.n_layers, self.knn_k = n_ui_layers, n_layers, knn_k
        self.reg_weight, self.cl_loss, self.temperature = reg_weight, cl_loss, temperature
        d = embedding_dim
        self.build_id_embeddings(d)
        self.build_projections(d)
        self.purifier_gates = nn.ModuleDict({m: sigmoid_gate(d) for m in self.modality_names})
        self.preference_gates = nn.ModuleDict({m: sigmoid_gate(d) for m in self.modality_names})
        self.query_common = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        adj = data.norm_adj()
        self.register_derived("adj", adj)
        self.register_derived("ui_block", user_item_block(adj, self.n_users))  # R̂ [U, I]
        for j, m in enumerate(self.modality_names):
            self.register_derived(f"item_graph_{j}", cached_weighted_knn_graph(data, m, self.knn_k))

    def forward(self, nodes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(final, side, ID-view) embeddings [n, d] of ``nodes`` (ids on the U+I graph; all when None). The
        graphs run over every node; the per-node fusion (attention, preference gates) only over ``nodes``."""
        item_id = self.item_embedding.weight  # [I, d]
        u_id, i_id = bipartite_propagate(self.adj, self.user_embedding.weight, item_id, self.n_ui_layers)
        content = torch.cat([u_id, i_id])  # [U+I, d]
        views = []
        for j, m in enumerate(self.modality_names):
            purified = item_id * self.purifier_gates[m](self.projections[m](self.features[m]()))  # [I, d]
            h = propagate(getattr(self, f"item_graph_{j}"), purified, self.n_layers, combine="last")  # [I, d]
            views.append(torch.cat([sparse_mm(self.ui_block, h), h]))  # [U+I, d]
        stacked = torch.stack(views, dim=1)  # [U+I, M, d]
        if nodes is not None:
            stacked, content = take_rows(stacked, nodes), take_rows(content, nodes)  # [n, M, d], [n, d]
        attention = torch.softmax(self.query_common(stacked).squeeze(-1), dim=1)  # [n, M]
        common = (attention.unsqueeze(-1) * stacked).sum(dim=1)  # [n, d]
        side = common
        for j, m in enumerate(self.modality_names):
            side = side + self.preference_gates[m](content) * (stacked[:, j] - common)
        side = side / (len(self.modality_names) + 1)
        return content + side, side, content

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        nodes, rows = batch_nodes(batch, self.n_users)
        final, side, content = self.forward(nodes)
        return bpr_with_view_contrast(final, side, content, rows, self.reg_weight, self.cl_loss, self.temperature)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        final = self.forward()[0]
        return final[: self.n_users], final[self.n_users :]
