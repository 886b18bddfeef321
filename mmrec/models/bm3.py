"""BM3 (Zhou, Zhou, Liu, Zeng, Miao, Wang, You, Jiang; WWW 2023): bootstrap latent representations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.models.multimodal import MultimodalRecommender, SharedOptions
from mmrec.nn.edge_graph import edge_graph_from_sparse
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import emb_norm_reg
from mmrec.nn.propagation import propagate
from mmrec.nn.ssl_losses import bootstrap_cosine_loss


class BM3(MultimodalRecommender):
    """BM3: negative-free self-supervision; content shapes training only, scores use ID embeddings.

    With ID embeddings ``E_u`` [U, d], ``E_i`` [I, d], a shared predictor ``f_p(x) = W_p x + b_p`` (d → d)
    and, per modality ``m`` (any names, one projection each), ``f_m(x) = W_m x + b_m`` (d_m → d):

    - ``[h_u; h_i] = mean_{l≤L} Â^l [E_u; E_i]`` (LightGCN, ``n_layers`` = L), then ``h_i ← h_i + E_i``.
    - Targets (no gradient): ``ḣ = dropout_p(sg(h))``, ``ḣ_m = dropout_p(sg(f_m(x_m)))``.
    - With ``C(a, b) = 1 − mean cos(a, sg(b))`` over the batch's interactions ``(u, i)``:
      ``L_rec = C(f_p(h_u), ḣ_i) + C(f_p(h_i), ḣ_u)``;
      ``L_align + L_mask = Σ_m C(f_p(f_m(x_m,i)), ḣ_i) + C(f_p(f_m(x_m,i)), ḣ_m,i)``.
    - Loss ``L_rec + reg_weight · (‖h_U‖_F + ‖h_I‖_F) / I + cl_weight · Σ_m (…)`` (MMRec's ``EmbLoss`` on the
      full propagated tables). Negative items of the batch are ignored (MMRec: ``use_neg_sampling: False``).
    - Score ``f_p(h_u)ᵀ f_p(h_i)``: content never enters a score, so a test-time knockout leaves the scores
      bit-identical (``uses_features_at_inference = False``); content reaches the scores only through the
      predictor ``f_p``, which the modality losses train.

    The batch's rows only are projected / dropped out (MMRec projects and drops out every item, then indexes
    the batch: the same distribution, less work).

    ``faithful_to``: ``reference`` (MMRec = the authors' repository, identical code) and ``paper`` are the
    same computation here: no paper-vs-code difference is implemented. Reference details kept under both: the
    residual ``+ E_i`` on item outputs, ``cl_weight`` (2.0) on the content terms, and the regulariser on the
    norms (not squared) of the whole propagated tables divided by the number of items.
    Trainable parameters: ``(U + I)·d + (d + 1)·d + Σ_m (d_m + 1)·d`` (+ ``I · Σ_m d_m`` when the raw feature
    tables are fine-tuned — the reference; ``freeze_features=true`` freezes them).
    """

    reads_feature_rows = True  # the tables are read by rows (the batch's items) only: sparse updates help
    uses_features_at_inference = False

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_layers: int = 1,
        dropout: float = 0.5,
        reg_weight: float = 0.1,
        cl_weight: float = 2.0,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"bm3.dropout={dropout!r}; must be in [0, 1)")
        self.n_layers, self.dropout = n_layers, dropout
        self.reg_weight, self.cl_weight = reg_weight, cl_weight
        self.build_id_embeddings(embedding_dim)
        self.predictor = nn.Linear(embedding_dim, embedding_dim)
        nn.init.xavier_normal_(self.predictor.weight)
        self.build_projections(embedding_dim, init=nn.init.xavier_normal_)
        self.attach(data)

    def prepare(self, data: GraphData) -> None:
        self.graph = edge_graph_from_sparse(data.norm_adj()).to(self._device_hint())  # Â, CSR
        # the tables take knocked-out inputs too, but only training reads them: a score cannot change

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagated (users [U, d], items [I, d]) before the predictor."""
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)  # [U+I, d]
        out = propagate(self.graph, ego, self.n_layers)
        return out[: self.n_users], out[self.n_users :] + self.item_embedding.weight

    def _target(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.dropout(x.detach(), self.dropout, training=True)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, items = batch["users"], batch["pos_items"]
        u_all, i_all = self.forward()
        u, i = take_rows(u_all, users), take_rows(i_all, items)  # [B, d]
        u_target, i_target = self._target(u), self._target(i)
        rec_ui = bootstrap_cosine_loss(self.predictor(u), i_target)  # user predicts its item
        rec_iu = bootstrap_cosine_loss(self.predictor(i), u_target)  # item predicts its user
        content = u.new_zeros(())
        for m in self.modality_names:
            f = self.projections[m](self.features[m](items))  # [B, d]
            online = self.predictor(f)
            align = bootstrap_cosine_loss(online, i_target)  # inter-modality: content predicts the ID item
            masked = bootstrap_cosine_loss(online, self._target(f))  # intra-modality: its own dropped view
            content = content + align + masked
        return rec_ui + rec_iu + self.reg_weight * emb_norm_reg(u_all, i_all) + self.cl_weight * content

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self.forward()
        return self.predictor(users), self.predictor(items)
