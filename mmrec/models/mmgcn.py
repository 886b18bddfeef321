"""MMGCN (Wei et al., ACM MM 2019): one graph convolution network per modality over the user–item graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.edge_graph import normalized_bipartite_edge_graph
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import bpr_loss


class _ModalLayer(nn.Module):
    """One MMGCN layer of one modality: aggregation weight ``W1`` [a_in, a_out], ``W2`` (a_in → d), ``W3``."""

    def __init__(self, a_in: int, a_out: int, dim: int, concat: bool, xavier_combine: bool):
        super().__init__()
        self.concat = concat
        self.conv = nn.Linear(a_in, a_out, bias=False)  # W1: message transform (PyG-style x·W)
        self.linear = nn.Linear(a_in, dim)  # W2
        self.combine = nn.Linear(a_out + dim if concat else a_out, dim)  # W3
        nn.init.xavier_normal_(self.conv.weight)
        nn.init.xavier_normal_(self.linear.weight)
        if xavier_combine:  # the reference initialises only the first layer's W3 this way
            nn.init.xavier_normal_(self.combine.weight)

    def forward(self, h: torch.Tensor, x: torch.Tensor, id_emb: torch.Tensor) -> torch.Tensor:
        """h [N, a_out] = mean-aggregated ``x W1`` (before activation), x [N, a_in] → [N, d]."""
        h = F.leaky_relu(h)  # eq. (1)
        x_hat = F.leaky_relu(self.linear(x)) + id_emb  # eq. (5)
        if self.concat:  # W3 [h ‖ x̂] + b = W3_h h + W3_x x̂ + b, without materialising the concatenation
            a_out = h.shape[1]
            w = self.combine.weight  # [d, a_out + d]
            return F.leaky_relu(torch.addmm(self.combine.bias, h, w[:, :a_out].T) + x_hat @ w[:, a_out:].T)
        return F.leaky_relu(self.combine(h) + x_hat)


class MMGCN(MultimodalRecommender):
    """Per modality ``m`` with item features ``f_m`` and user preferences ``p_m``:

    - ``x⁰_m = normalize([p_m; P_m f_m])`` [U+I, a_m], ``P_m`` a linear projection to ``a_m = latent_dims[m]``
      for the modalities listed there (reference: image → 256) and the identity otherwise (``a_m = d_m``);
    - ``L`` layers: ``h = LeakyReLU(mean_{j∈N(n)} x_j W1)``, ``x̂ = LeakyReLU(W2 x) + e_id``,
      ``x ← LeakyReLU(W3 [h ‖ x̂])`` (``concat=true``) or ``LeakyReLU(W3 h + x̂)``;
      mean aggregation = ``D⁻¹A`` of the bipartite graph (a CSR SpMM);
    - representation ``r = mean_m x^L_m`` (reference) / ``Σ_m x^L_m`` (paper); score ``r_uᵀ r_i``.

    Any set of named modalities works: every modality gets its own GCN (``ModuleDict``).
    Loss: BPR + ``reg_weight`` · (mean(e_id,u²) + ½ mean(e_id,i⁺²) + ½ mean(e_id,i⁻²) + Σ mean(p_m²)), the last
    sum over the image modality only in the reference (where every term is a constant: nothing it regularises is
    trained), over every modality in the paper mode.

    ``faithful_to``:
        reference (MMRec, and the authors' code): ``e_id`` [U+I, d] and ``p_m`` are plain tensors, never trained
            (kept as persistent buffers so checkpoints reproduce them); modalities are averaged; MMRec's
            ``n_layers: 2`` is ignored by its GCN, which always stacks three layers (``n_layers=3`` here);
            its ``concate='False'`` is a non-empty string, hence true: layers concatenate (``concat=true``).
            MMRec scores with the representation of the last training batch (one optimiser step stale);
            here evaluation recomputes it.
        paper: ``e_id`` and ``p_m`` are trained; modalities are summed (``u* = Σ_m u_m``).
    Features are fixed inputs (``freeze_features=true``); ``false`` fine-tunes them as tables.

    Trainable parameters, ``d`` = embedding_dim, ``a_m`` as above, ``c(x) = (x + d)·d + d`` with concat else
    ``x·d + d``:  ``Σ_m [ (d_m + 1)·a_m·[projected] + a_m² + a_m·d + d + c(a_m)
    + (L−1)·(2d² + d + c(d)) ]`` (+ ``(U+I)·d + U·Σ_m a_m`` for ``paper``; + ``I·Σ_m d_m`` when fine-tuned).
    """

    option_defaults: ClassVar[SharedOptions] = {**TABLE_OPTIONS, "freeze_features": True}
    id_embedding: torch.Tensor  # a parameter (paper) or a buffer (reference): set through _tensor

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_layers: int = 3,
        latent_dims: Mapping[str, int] | None = None,
        concat: bool = True,
        reg_weight: float = 1e-5,
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        if n_layers < 1:
            raise ConfigError(f"mmgcn.n_layers={n_layers}; needs at least 1")
        self.reg_weight, self.n_layers = reg_weight, n_layers
        latent = {"image": 256} if latent_dims is None else {str(m): int(v) for m, v in latent_dims.items() if v}
        dims = self.feature_dims
        self.projections = nn.ModuleDict({m: nn.Linear(d_m, latent[m]) for m, d_m in dims.items() if m in latent})
        self.in_dims = {m: latent.get(m, d_m) for m, d_m in dims.items()}
        n_nodes, d = self.n_users + self.n_items, embedding_dim
        trained = self.faithful_to == "paper"
        self._tensor("id_embedding", nn.init.xavier_normal_(torch.rand(n_nodes, d)), trained)
        self.preference = nn.ParameterDict() if trained else None
        for m in self.modality_names:
            p = nn.init.xavier_normal_(torch.rand(self.n_users, self.in_dims[m]))
            if self.preference is not None:  # trained
                self.preference[m] = nn.Parameter(p)
            else:
                self.register_buffer(f"preference_{m}", p)
        self.layers = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    [_ModalLayer(a, a, d, concat, xavier_combine=True)]
                    + [_ModalLayer(d, d, d, concat, xavier_combine=False) for _ in range(n_layers - 1)]
                )
                for m, a in self.in_dims.items()
            }
        )
        self.register_load_state_dict_post_hook(self._refresh_fixed_inputs)
        self.attach(data)

    def _tensor(self, name: str, value: torch.Tensor, trained: bool) -> None:
        if trained:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    def user_preference(self, m: str) -> torch.Tensor:
        return self.preference[m] if self.preference is not None else getattr(self, f"preference_{m}")

    def prepare(self, data: GraphData) -> None:
        # D⁻¹A: mean over neighbours (PyG aggr="mean")
        self.graph = normalized_bipartite_edge_graph(data.train_matrix, "mean").to(self._device_hint())
        self._refresh_fixed_inputs()

    def _fixed(self, m: str) -> bool:
        """Reference mode, no projection, frozen features: ``x⁰_m`` is a constant (preferences never train)."""
        return self.faithful_to == "reference" and m not in self.projections and not self.features[m].trainable

    def _refresh_fixed_inputs(self, *_: object) -> None:
        """Precompute constant ``x⁰_m`` and ``D⁻¹A x⁰_m`` (layer 1 then needs ``(D⁻¹A x⁰) W1``, no SpMM per step).
        Re-run after loading weights: the checkpoint may hold other (fixed) preferences."""
        for m in self.modality_names:
            if self._fixed(m):
                with torch.no_grad():
                    x0 = F.normalize(torch.cat([self.user_preference(m), self.features[m]()], dim=0), dim=1)
                    self.register_derived(f"fixed_x0_{m}", x0)  # [U+I, d_m]
                    self.register_derived(f"fixed_ax0_{m}", self.graph.spmm(x0))  # [U+I, d_m]

    def forward(self) -> torch.Tensor:
        """Final node representations [U+I, d]."""
        x = {}
        for m in self.modality_names:
            if self._fixed(m):
                x[m] = getattr(self, f"fixed_x0_{m}")
                continue
            f = self.features[m]()  # [I, d_m]
            t = self.projections[m](f) if m in self.projections else f  # [I, a_m]
            x[m] = F.normalize(torch.cat([self.user_preference(m), t], dim=0), dim=1)  # [U+I, a_m]
        for depth in range(self.n_layers):
            for m in self.modality_names:
                layer = cast(_ModalLayer, cast(nn.ModuleList, self.layers[m])[depth])
                if depth == 0 and self._fixed(m):
                    h = layer.conv(getattr(self, f"fixed_ax0_{m}"))  # (D⁻¹A x⁰) W1 = D⁻¹A (x⁰ W1)
                else:
                    h = self.graph.spmm(layer.conv(x[m]))  # mean over neighbours of x W1: [U+I, a_out]
                x[m] = layer(h, x[m], self.id_embedding)  # [U+I, d]
        rep = torch.stack([x[m] for m in self.modality_names])  # [M, U+I, d]
        return rep.mean(0) if self.faithful_to == "reference" else rep.sum(0)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        rep = self.forward()
        nodes = torch.cat([users, self.n_users + pos, self.n_users + neg])
        u, p, n = take_rows(rep, nodes).chunk(3)  # one gather
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1))
        e_u, e_p, e_n = take_rows(self.id_embedding, nodes).chunk(3)
        reg = e_u.pow(2).mean() + 0.5 * e_p.pow(2).mean() + 0.5 * e_n.pow(2).mean()
        reg_modalities = (
            self.modality_names if self.faithful_to == "paper" else [m for m in self.modality_names if m == "image"]
        )
        for m in reg_modalities:
            reg = reg + self.user_preference(m).pow(2).mean()
        return loss + self.reg_weight * reg

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        rep = self.forward()
        return rep[: self.n_users], rep[self.n_users :]
