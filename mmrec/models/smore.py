"""SMORE (Ong & Khong, WSDM 2025): spectrum-based modality representation fusion graph convolution."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.models.mgcn import sigmoid_gate
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.batch_nodes import batch_nodes
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_with_view_contrast
from mmrec.nn.propagation import bipartite_propagate, propagate
from mmrec.nn.sparse_ops import sparse_mm
from mmrec.nn.weighted_item_graphs import cached_weighted_knn_graph, max_pool_union, user_item_block


def spectral_filter(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``irfft(rfft(x) ⊙ w)`` along the feature axis (orthonormal): a learnable circular convolution.

    x: real [N, d]; weight: real [1, d//2 + 1, 2] (real and imaginary parts). Returns real [N, d].
    """
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")  # [N, d//2+1] complex
    return torch.fft.irfft(spectrum * torch.view_as_complex(weight), n=x.shape[1], dim=1, norm="ortho")


def spectral_fusion(xs: list[torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """``irfft(Π_m rfft(x_m) ⊙ w)``: the product of spectra is the circular convolution of all modalities."""
    spectrum = torch.fft.rfft(xs[0], dim=1, norm="ortho")  # [N, d//2+1]
    for x in xs[1:]:
        spectrum = spectrum * torch.fft.rfft(x, dim=1, norm="ortho")
    return torch.fft.irfft(spectrum * torch.view_as_complex(weight), n=xs[0].shape[1], dim=1, norm="ortho")


class SMORE(MultimodalRecommender):
    """SMORE: denoise each modality and fuse all of them in the frequency domain, then convolve item IDs over
    modality-specific and fused item graphs, weighted by behaviour-aware preferences.

    With modalities ``m = 1..M`` (any names: each has its own projection, spectral filter, gates and query; the
    fusion multiplies all ``M`` spectra and pools all ``M`` graphs), ID embeddings ``E_u`` [U, d], ``E_i`` [I, d]:

    - Spectral denoising ``z_m = irfft(rfft(W_m x_m + b_m) ⊙ w_m)`` [I, d] (``w_m`` complex [d/2+1]) and fusion
      ``z_f = irfft(Π_m rfft(W_m x_m + b_m) ⊙ w_f)`` [I, d].
    - Purified item inputs ``x̃_v = E_i ⊙ σ(G_v z_v)`` for ``v ∈ {1..M, f}``.
    - Item–item graphs: ``Ŝ_m`` the frozen cosine-weighted top-``k_m`` graph of the raw features
      (``D^-1/2 S D^-1/2``; ``image_knn_k``, ``text_knn_k``, ``knn_k`` for other modalities) and the fusion graph
      ``Ŝ_f`` = element-wise max over the union of the ``Ŝ_m`` edges. ``h_v = Ŝ_v^{L} x̃_v``,
      ``e_v = [R̂ h_v; h_v]`` with ``R̂ = D_u^-1/2 R D_i^-1/2``.
    - User–item view: ``e_id = mean_{l≤L_ui} Â^l [E_u; E_i]`` (LightGCN).
    - Modality-aware preference: ``a_m = softmax_dim(Q_m e_f) ⊙ e_m`` (softmax over the d features,
      ``Q_m = W²tanh(W¹· + b¹)``); ``p_v = dropout(σ(P_v e_id))``;
      ``e_side = mean(p_1 ⊙ a_1, …, p_M ⊙ a_M, p_f ⊙ e_f)``; final ``e = e_id + e_side``.
    - Loss: BPR + ``reg_weight`` · ½(‖u‖² + ‖i⁺‖² + ‖i⁻‖²)/B + ``cl_loss`` · (InfoNCE_τ(e_side, e_id) over the
      batch's positive items + over its users); score ``e_uᵀ e_i``.
    - Learning rate × ``lr_decay^(epoch / lr_decay_epochs)`` (MMRec's ``learning_rate_scheduler``).

    ``faithful_to``: ``reference`` (the authors' code, identical in MMRec) and ``paper`` are the same
    computation — no difference is known. The reference's ``temperature`` config key is ignored there (τ is
    hard-coded 0.2); here ``temperature`` is used and defaults to 0.2.

    Zero features (knockout) leave every item graph empty (cosine 0, where the reference divides 0 by 0 and
    gets NaN), so ``e_side = 0`` and the model reduces to its LightGCN view; constant features give fully tied
    similarities, broken per ``knn.ties``.

    Trainable parameters, with ``F = d//2 + 1``: ``(U + I)·d + Σ_m [(d_m + 1)·d + 3(d + 1)·d + d² + 2F]
    + 2(d + 1)·d + 2F`` (+ ``I · Σ_m d_m`` when the raw feature tables are fine-tuned — the reference;
    ``freeze_features=true`` freezes them).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "lr_decay": 0.96, "lr_decay_epochs": 50}
    adj: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)
    ui_block: torch.Tensor
    fusion_graph: torch.Tensor

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_ui_layers: int = 4,
        n_layers: int = 1,
        image_knn_k: int = 40,
        text_knn_k: int = 15,
        knn_k: int = 10,
        reg_weight: float = 1e-4,
        cl_loss: float = 0.01,
        temperature: float = 0.2,
        dropout_rate: float = 0.1,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        self.n_ui_layers, self.n_layers = n_ui_layers, n_layers
        self.knn_ks = {"image": image_knn_k, "text": text_knn_k}
        self.default_knn_k = knn_k
        self.reg_weight, self.cl_loss, self.temperature = reg_weight, cl_loss, temperature
        self.dropout_rate = dropout_rate
        d = embedding_dim
        n_freq = d // 2 + 1
        self.build_id_embeddings(d)
        self.build_projections(d)
        names = self.modality_names
        self.queries = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d, bias=False)) for m in names}
        )
        self.purifier_gates = nn.ModuleDict({m: sigmoid_gate(d) for m in names})
        self.preference_gates = nn.ModuleDict({m: sigmoid_gate(d) for m in names})
        self.fusion_purifier_gate = sigmoid_gate(d)
        self.fusion_preference_gate = sigmoid_gate(d)
        self.spectral_weights = nn.ParameterDict({m: nn.Parameter(torch.randn(1, n_freq, 2)) for m in names})
        self.fusion_spectral_weight = nn.Parameter(torch.randn(1, n_freq, 2))
        self.attach(data)

    def knn_k(self, modality: str) -> int:
        return self.knn_ks.get(modality, self.default_knn_k)

    def prepare(self, data: GraphData) -> None:
        adj = data.norm_adj()
        self.register_derived("adj", adj)
        self.register_derived("ui_block", user_item_block(adj, self.n_users))  # R̂ [U, I]
        graphs = [cached_weighted_knn_graph(data, m, self.knn_k(m)) for m in self.modality_names]
        for j, g in enumerate(graphs):
            self.register_derived(f"item_graph_{j}", g)
        self.register_derived("fusion_graph", max_pool_union(graphs))

    def _item_view(self, graph: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``[R̂ Ŝ^L x; Ŝ^L x]`` [U+I, d] for item inputs x [I, d]."""
        h = propagate(graph, x, self.n_layers, combine="last")  # [I, d]
        return torch.cat([sparse_mm(self.ui_block, h), h])

    def forward(self, nodes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(final, side, ID-view) embeddings [n, d] of ``nodes`` (ids on the U+I graph; all when None). The
        graphs run over every node; the per-node preference part (queries, gates) only over ``nodes``."""
        item_id = self.item_embedding.weight  # [I, d]
        projected = [self.projections[m](self.features[m]()) for m in self.modality_names]  # M × [I, d]
        u_id, i_id = bipartite_propagate(self.adj, self.user_embedding.weight, item_id, self.n_ui_layers)
        content = torch.cat([u_id, i_id])  # [U+I, d]
        fused = spectral_fusion(projected, self.fusion_spectral_weight)  # [I, d]
        fusion_view = self._item_view(self.fusion_graph, item_id * self.fusion_purifier_gate(fused))
        if nodes is not None:
            content, fusion_view = take_rows(content, nodes), take_rows(fusion_view, nodes)  # [n, d]
        parts = []
        for j, m in enumerate(self.modality_names):
            denoised = spectral_filter(projected[j], self.spectral_weights[m])  # [I, d]
            view = self._item_view(getattr(self, f"item_graph_{j}"), item_id * self.purifier_gates[m](denoised))
            view = view if nodes is None else take_rows(view, nodes)  # [n, d]
            attended = torch.softmax(self.queries[m](fusion_view), dim=-1) * view  # [n, d]
            prefer = F.dropout(self.preference_gates[m](content), self.dropout_rate, self.training)
            parts.append(prefer * attended)
        fusion_prefer = F.dropout(self.fusion_preference_gate(content), self.dropout_rate, self.training)
        parts.append(fusion_prefer * fusion_view)
        side = torch.stack(parts).mean(dim=0)  # [n, d]
        return content + side, side, content

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        nodes, rows = batch_nodes(batch, self.n_users)
        final, side, content = self.forward(nodes)
        return bpr_with_view_contrast(final, side, content, rows, self.reg_weight, self.cl_loss, self.temperature)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        final = self.forward()[0]
        return final[: self.n_users], final[self.n_users :]
