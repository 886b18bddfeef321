"""LGMRec (Guo et al., AAAI 2024): local graph embeddings plus global hypergraph embeddings."""

from __future__ import annotations

from typing import ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.data.graphs import scipy_to_torch
from mmrec.errors import ConfigError
from mmrec.models.base import check_choice
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.gather import take_rows
from mmrec.nn.hypergraph import gumbel_softmax, hypergraph_propagate
from mmrec.nn.losses import bpr_loss, emb_norm_reg
from mmrec.nn.propagation import bipartite_propagate, propagate
from mmrec.nn.ssl_losses import sum_logsumexp


class LGMRec(MultimodalRecommender):
    """LGMRec: "Local and Global Graph Learning for Multimodal Recommendation" (Guo, Li, Li, Wang, Shi, Ruan;
    AAAI 2024). Reference: MMRec's ``lgmrec.py`` (= the authors' code with one bug fixed, see below).

    With ID embeddings ``E_u`` [U, d], ``E_i`` [I, d], raw features ``X_m`` [I, d_m] (frozen by default),
    ``R`` [U, I] the binary training matrix and ``Â`` its normalised bipartite adjacency [U+I, U+I]:

    - Collaborative graph embedding: ``E_c = mean_{l≤L_ui} Â^l [E_u; E_i]`` [U+I, d] (``cf_model=lightgcn``;
      ``mf``: ``E_c = [E_u; E_i]``).
    - Modality graph embedding, per modality: ``F_m = X_m W_m`` [I, d] (``W_m`` [d_m, d], no bias), users the mean
      of their items ``D_u^-1 R F_m`` [U, d]; ``E_m = Â^{L_mm} [D_u^-1 R F_m; F_m]`` (last layer) [U+I, d].
      Local embedding ``E_l = E_c + Σ_m normalize(E_m)``.
    - Global hypergraph embedding, per modality, ``A`` hyperedges: item logits ``X_m V_m`` [I, A], user logits
      ``R X_m V_m`` [U, A]; ``H_i^m``, ``H_u^m`` their row-wise Gumbel-softmax (τ = 0.2), dropout ``1 − keep_rate``;
      ``L_hyper`` layers of ``Λ = H_iᵀ E_i'``, ``E_i' ← H_i Λ``, ``E_u' = H_u Λ`` starting from the collaborative
      item embeddings ``E_i' = E_c[items]``, giving ``G_m = [E_u'; E_i']``. Final ``E = E_l + α normalize(Σ_m G_m)``;
      score ``e_uᵀ e_i``.
    - Loss: BPR + ``cl_weight`` · Σ_{m<m'} [HCL(G_m[users], G_m'[users]; all users of G_m') + HCL(G_m[i⁺],
      G_m'[i⁺]; all items of G_m')] + ``reg_weight`` · Σ‖·‖₂/B over the batch's final (u, i⁺, i⁻) embeddings
      (MMRec's unsquared norm), with ``HCL(a, b; c) = −Σ_b log(exp(cos(a_b, b_b)/τ) / Σ_j exp(cos(a_b, c_j)/τ))``
      summed over the batch (τ = 0.2).

    Any named modalities: one projection and one hyperedge matrix per modality (a ``ParameterDict``); the
    contrastive term runs over every pair of modalities in the run's order (for text + image, image first as in
    the reference). With one modality there is no pair and that term is 0 (the reference only has a two-modality
    path). ``embedding_dim`` and ``feat_embed_dim`` must be equal (the embeddings are summed).

    ``faithful_to``:
    - ``reference`` (MMRec): ``full_sort_predict`` runs ``forward`` again, so evaluation also draws Gumbel noise
      into the hyperedge assignments (MMRec draws it afresh for every block of users). Here the noise is drawn
      once per evaluation pass from a generator seeded by (run seed, evaluation seed): the same distribution,
      deterministic, and every user sees the same item embeddings.
    - ``paper``: our reading of the Gumbel-softmax as a training-time reparameterisation — evaluation uses the
      noise-free ``softmax(logits / τ)``. Training is identical.
    The authors' repository assigns the text user-hyperedge softmax to the image one (``uv_hyper = …(ut_hyper)``)
    and leaves the text user logits un-normalised; MMRec fixed it; neither mode reproduces that bug.

    Trainable parameters: ``(U + I)·d + Σ_m d_m·(d + A)`` (+ ``I · Σ_m d_m`` with ``freeze_features=false``; the
    reference keeps the raw features frozen).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "freeze_features": True}
    adj: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)
    # LGMRec's projections are bare weight matrices, not the base class's nn.Linear modules
    projections: nn.ParameterDict  # pyright: ignore[reportIncompatibleVariableOverride]
    hyperedges: nn.ParameterDict

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        feat_embed_dim: int = 64,
        cf_model: str = "lightgcn",
        n_ui_layers: int = 2,
        n_mm_layers: int = 2,
        n_hyper_layers: int = 1,
        hyper_num: int = 4,
        keep_rate: float = 0.5,
        alpha: float = 0.3,
        cl_weight: float = 1e-4,
        reg_weight: float = 1e-6,
        temperature: float = 0.2,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        check_choice("lgmrec.cf_model", cf_model, ("lightgcn", "mf"))
        if embedding_dim != feat_embed_dim:
            raise ConfigError(
                f"lgmrec: embedding_dim ({embedding_dim}) and feat_embed_dim ({feat_embed_dim}) must "
                "be equal (collaborative and modality embeddings are added)"
            )
        if n_hyper_layers < 1 or hyper_num < 1:
            raise ConfigError(f"lgmrec: n_hyper_layers={n_hyper_layers} and hyper_num={hyper_num} must be >= 1")
        if not 0.0 < keep_rate <= 1.0:
            raise ConfigError(f"lgmrec.keep_rate={keep_rate} must be in (0, 1]")
        self.cf_model = cf_model
        self.n_ui_layers, self.n_mm_layers, self.n_hyper_layers = n_ui_layers, n_mm_layers, n_hyper_layers
        self.keep_rate, self.alpha, self.temperature = keep_rate, alpha, temperature
        self.cl_weight, self.reg_weight = cl_weight, reg_weight
        self.build_id_embeddings(embedding_dim)
        dims = self.feature_dims
        self.projections = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(d_m, feat_embed_dim))) for m, d_m in dims.items()}
        )
        self.hyperedges = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(d_m, hyper_num))) for m, d_m in dims.items()}
        )
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        self.register_derived("adj", data.norm_adj())
        interactions = scipy_to_torch(data.train_matrix)  # binary R [U, I]
        self.register_derived("interactions", interactions)
        degree = torch.sparse.sum(interactions, dim=1).to_dense()  # [U]
        self.register_derived("inv_user_degree", (1.0 / degree.clamp_min(1.0)).unsqueeze(1))  # [U, 1]

    # ---- the three embeddings ----------------------------------------------------------------------------------
    def collaborative(self) -> torch.Tensor:
        """``E_c`` [U+I, d]."""
        if self.cf_model == "mf":
            return torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        u, i = bipartite_propagate(self.adj, self.user_embedding.weight, self.item_embedding.weight, self.n_ui_layers)
        return torch.cat([u, i])

    def feature_products(self, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(``X_m W_m`` [I, d], ``X_m V_m`` [I, A]) as one product ``X_m [W_m | V_m]``: the feature table is read
        once, and the weight gradient is one ``X_mᵀ G`` of width d + A (alone, the skinny ``X_mᵀ G_V`` of width
        A = 4 runs ~7x slower than its FLOPs on CPU BLAS)."""
        w, v = self.projections[m], self.hyperedges[m]
        return (self.features[m]() @ torch.cat([w, v], dim=1)).split([w.shape[1], v.shape[1]], dim=1)

    def modality(self, m: str, items: torch.Tensor | None = None) -> torch.Tensor:
        """``E_m`` [U+I, d] of one modality (``items``: ``X_m W_m`` when already computed)."""
        items = self.feature_products(m)[0] if items is None else items  # [I, d]
        users = torch.sparse.mm(self.interactions, items) * self.inv_user_degree  # [U, d] mean of the user's items
        return propagate(self.adj, torch.cat([users, items]), self.n_mm_layers, combine="last")

    def hyperedge_assignments(
        self, m: str, generator: torch.Generator | None, noise: bool, item_logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(``H_i`` [I, A], ``H_u`` [U, A]) of one modality, before dropout (``item_logits``: ``X_m V_m``)."""
        item_logits = self.feature_products(m)[1] if item_logits is None else item_logits  # [I, A]
        user_logits = torch.sparse.mm(self.interactions, item_logits)  # [U, A]
        if noise:
            return (
                gumbel_softmax(item_logits, self.temperature, generator=generator),
                gumbel_softmax(user_logits, self.temperature, generator=generator),
            )
        return torch.softmax(item_logits / self.temperature, 1), torch.softmax(user_logits / self.temperature, 1)

    def forward(
        self, generator: torch.Generator | None = None, noise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Final users [U, d], items [I, d] and the per-modality hypergraph embeddings ``G_m`` [U+I, d]."""
        drop = 1.0 - self.keep_rate
        collab = self.collaborative()  # [U+I, d]
        local, products = collab, {}
        for m in self.modality_names:
            products[m] = self.feature_products(m)
            local = local + F.normalize(self.modality(m, products[m][0]), dim=1)
        hyper: dict[str, torch.Tensor] = {}
        for m in self.modality_names:
            h_items, h_users = self.hyperedge_assignments(m, generator, noise, products[m][1])
            h_items = F.dropout(h_items, drop, training=self.training)
            h_users = F.dropout(h_users, drop, training=self.training)
            u, i = hypergraph_propagate(h_items, h_users, collab[self.n_users :], self.n_hyper_layers)
            hyper[m] = torch.cat([u, i])  # [U+I, d]
        final = local + self.alpha * F.normalize(cast(torch.Tensor, sum(hyper.values())), dim=1)
        return final[: self.n_users], final[self.n_users :], hyper

    # ---- training and scoring ----------------------------------------------------------------------------------
    def hypergraph_contrast(
        self, anchor: torch.Tensor, positive: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        """``−Σ_b log(exp(cos(a_b, p_b)/τ) / Σ_j exp(cos(a_b, c_j)/τ))`` (summed over the batch)."""
        a = F.normalize(anchor, dim=1) / self.temperature  # [B, d] (1/τ folded into the anchors)
        pos = (a * F.normalize(positive, dim=1)).sum(1)  # [B]
        return sum_logsumexp(a, F.normalize(candidates, dim=1)) - pos.sum()  # blocked: no [B, N] logits

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        u_all, i_all, hyper = self.forward()
        u, p, n = take_rows(u_all, users), take_rows(i_all, pos), take_rows(i_all, neg)
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1)) + self.reg_weight * emb_norm_reg(u, p, n)
        names, cl = self.modality_names, u.new_zeros(())
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                ga, gb = hyper[names[a]], hyper[names[b]]
                cl = cl + self.hypergraph_contrast(take_rows(ga, users), take_rows(gb, users), gb[: self.n_users])
                item_nodes = self.n_users + pos
                cl = cl + self.hypergraph_contrast(
                    take_rows(ga, item_nodes), take_rows(gb, item_nodes), gb[self.n_users :]
                )
        return loss + self.cl_weight * cl

    def order_modalities(self, names: list[str]) -> list[str]:
        return ["image", "text"] if set(names) == {"image", "text"} else names

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.faithful_to == "paper":
            u, i, _ = self.forward(noise=False)
            return u, i
        seed = int(np.random.SeedSequence([self.run_seed, self.eval_seed, 29]).generate_state(1)[0])
        generator = torch.Generator(device=self.user_embedding.weight.device).manual_seed(seed)
        u, i, _ = self.forward(generator=generator)
        return u, i
