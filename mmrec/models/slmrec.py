"""SLMRec (Tao, Liu, Xia, Wang, Yang, Hua, Nie; IEEE TMM 2022): self-supervised learning for multimedia
recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import Unpack

from mmrec.data.datamodule import GraphData
from mmrec.data.graphs import cosine_normalize
from mmrec.errors import ConfigError
from mmrec.models.base import check_choice
from mmrec.models.multimodal import TABLE_OPTIONS, MultimodalRecommender, SharedOptions
from mmrec.nn.edge_graph import EdgeGraph, edge_graph_from_sparse
from mmrec.nn.gather import take_rows
from mmrec.nn.losses import info_nce
from mmrec.nn.ssl_losses import dot_info_nce

SSL_TASKS = ("FAC", "FD", "FM", "FD+FM")


class SLMRec(MultimodalRecommender):
    """SLMRec: one LightGCN view per modality plus the ID view, fused by a linear layer, trained with an
    in-batch InfoNCE main loss and a self-supervised auxiliary task.

    With ID embeddings ``E_u`` [U, d], ``E_i`` [I, d] and modalities ``m = 1..M`` (any names, one projection
    each; raw features L2-normalised per item, zero rows stay zero):

    - Views ``v ∈ {id, 1..M}`` with item inputs ``X_id = E_i``, ``X_m = W_m x̂_m + b_m`` [I, d]; every view
      shares the user table: ``[u_v; i_v] = mean_{l≤L} Â^l [E_u; X_v]`` (``n_layers`` = L; all ``M + 1`` views
      in one SpMM of width ``(M + 1)·d``).
    - Fusion: ``u = G_u fuse(u_id, u_1, …, u_M)``, ``i = G_i fuse(i_id, …)`` with ``fuse`` = concatenation
      (``G: (M + 1)d → d``, ``mm_fusion=concat``) or the mean (``G: d → d``). Score ``uᵀ i`` (the reference
      returns ``σ(uᵀ i)``: the same ranking).
    - Main loss: InfoNCE over the batch's (user, positive item) pairs, cosine logits ``/ temperature``;
      the batch's negative items are not used.
    - Auxiliary loss × ``ssl_alpha`` (``ssl_task``):
        * ``FAC`` (fine and coarse spaces): modalities ordered by ``fac_order`` (the paper's visual →
          acoustic → textual; unlisted modalities follow in run order); level ``ℓ`` has width ``d/2`` for
          modalities in ``fac_coarse`` (text), ``d`` otherwise. A chain ``z_0 = i_id``,
          ``z_ℓ = C_ℓ z_{ℓ-1}`` (linear) meets each modality's head ``H_m i_m`` at its level:
          ``Σ_m InfoNCE_dot(z_ℓ(m), H_m i_m) / ssl_temp`` over the batch's positive items, on raw inner
          products (no normalisation).
        * ``FD``: two views with independent dropout (``dropout_rate``) after every propagation layer;
          ``InfoNCE_cos(u¹, u²) + InfoNCE_cos(i¹, i²)`` over the batch (``/ ssl_temp``).
        * ``FM``: two views, each with one distinct view (of ``M + 1``, drawn at random per batch) whose item
          inputs are zeroed; the same contrast. ``FD+FM``: both.
    - Adam with L2 ``weight_decay`` (1e-4); MMRec's ``reg`` key is never read by its code (left out).

    ``faithful_to``:
        reference (MMRec, text + image): FAC keeps a chain step for every level of ``fac_order`` up to the
            deepest present modality, absent ones included: with image + text, MMRec's ``g_iv_iva`` (the audio
            level, whose loss it comments out) sits between the image and text levels. MMRec also builds
            ``g_a_iva`` without ever using it (left out: no gradient, no effect). Its ``FD``/``FM`` branches
            read config keys it never sets and crash; here they follow the authors' code.
        paper (= the authors' code when all of image, audio and text are present): the FAC chain has one step
            per present modality only.
    The authors' TikTok text features are a trainable word-embedding mean; here every modality is a given
    feature table (fixed, ``freeze_features=true``, as in MMRec; ``false`` fine-tunes the normalised tables).
    Trainable parameters: ``(U + I)·d + Σ_m (d_m + 1)·d + 2·(F + 1)·d`` with ``F = (M + 1)·d`` (concat) or
    ``d`` (mean); FAC adds ``Σ_{chain steps ℓ} (w_{ℓ-1} + 1)·w_ℓ + Σ_m (d + 1)·w_{ℓ(m)}`` (``w_0 = d``)
    (+ ``I · Σ_m d_m`` when fine-tuned).
    """

    option_defaults: ClassVar[SharedOptions] = {
        **TABLE_OPTIONS,
        "weight_decay": 1e-4,
        "freeze_features": True,
        "lr": 0.01,
    }

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_layers: int = 3,
        temperature: float = 0.2,
        ssl_task: str = "FAC",
        ssl_alpha: float = 0.1,
        ssl_temp: float = 0.2,
        dropout_rate: float = 0.3,
        mm_fusion: str = "concat",
        fac_order: Sequence[str] = ("image", "audio", "text"),
        fac_coarse: Sequence[str] = ("text",),
        **options: Unpack[SharedOptions],
    ):
        super().__init__(data, **self.with_defaults(options))
        if ssl_task not in SSL_TASKS:
            raise ConfigError(f"slmrec.ssl_task={ssl_task!r}; choose one of {list(SSL_TASKS)}")
        check_choice("slmrec.mm_fusion", mm_fusion, ("concat", "mean"))
        self.ssl_task, self.mm_fusion = ssl_task, mm_fusion
        self.n_layers, self.temperature = n_layers, temperature
        self.ssl_alpha, self.ssl_temp = ssl_alpha, ssl_temp
        self.dropout_rate, self.dim = dropout_rate, embedding_dim
        d, n_views = embedding_dim, len(self.modality_names) + 1
        self.build_id_embeddings(d)
        self.build_projections(d)  # Xavier-initialised below, with the fusion layers
        fused = n_views * d if mm_fusion == "concat" else d
        self.user_fusion = nn.Linear(fused, d)
        self.item_fusion = nn.Linear(fused, d)
        for lin in [*self.projections.values(), self.user_fusion, self.item_fusion]:
            nn.init.xavier_uniform_(lin.weight)
        if ssl_task == "FAC":
            self._build_fac(list(fac_order), set(fac_coarse))
        self.attach(data)

    def feature_input(self, data: GraphData, modality: str) -> torch.Tensor:
        return cosine_normalize(data.feature(modality).float())  # rows L2-normalised (zero rows stay zero)

    # ---- FAC hierarchy -----------------------------------------------------------------------------------
    def _build_fac(self, order: list[str], coarse: set[str]) -> None:
        levels = order + [m for m in self.modality_names if m not in order]
        present = [m for m in levels if m in self.modality_names]
        if self.faithful_to == "reference":
            levels = levels[: levels.index(present[-1]) + 1]  # every level up to the deepest present modality
        else:
            levels = present
        widths = [self.dim // 2 if m in coarse else self.dim for m in levels]
        self.fac_levels = levels
        self.fac_chain = nn.ModuleList(
            nn.Linear(w_in, w_out) for w_in, w_out in zip([self.dim, *widths[:-1]], widths, strict=True)
        )
        self.fac_heads = nn.ModuleDict(
            {m: nn.Linear(self.dim, w) for m, w in zip(levels, widths, strict=True) if m in self.modality_names}
        )
        for lin in [*self.fac_chain, *self.fac_heads.values()]:
            nn.init.xavier_uniform_(cast(nn.Linear, lin).weight)

    def fac_loss(self, item_views: torch.Tensor) -> torch.Tensor:
        """FAC over the batch's items; ``item_views`` [B, M+1, d] (ID view first, then run modalities)."""
        z = item_views[:, 0]
        loss = item_views.new_zeros(())
        for level, step in zip(self.fac_levels, self.fac_chain, strict=True):
            z = step(z)  # [B, w_ℓ]
            if level in self.fac_heads:
                head = self.fac_heads[level](item_views[:, 1 + self.modality_names.index(level)])  # [B, w_ℓ]
                loss = loss + dot_info_nce(z, head, self.ssl_temp)
        return loss

    # ---- views -------------------------------------------------------------------------------------------
    def prepare(self, data: GraphData) -> None:
        self.graph = edge_graph_from_sparse(data.norm_adj()).to(self._device_hint())  # Â, CSR
        g, n_u, n_i = self.graph, self.n_users, self.n_items  # its two blocks: users ← items, items ← users
        values = g.values
        assert values is not None  # the normalised adjacency carries its values
        up = g.row < n_u
        self.to_users = EdgeGraph(g.row[up], g.col[up] - n_u, (n_u, n_i), values[up])  # [U, I]
        self.to_items = EdgeGraph(g.row[~up] - n_u, g.col[~up], (n_i, n_u), values[~up])  # [I, U]

    def item_inputs(self) -> torch.Tensor:
        """The items' layer-0 inputs of all views side by side: [I, (M+1)·d] (ID view first)."""
        return torch.cat(
            [self.item_embedding.weight] + [self.projections[m](self.features[m]()) for m in self.modality_names], dim=1
        )

    def view_inputs(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Layer-0 inputs of all views side by side: [U+I, (M+1)·d] (users share ``E_u`` in every view)."""
        items = self.item_inputs() if items is None else items
        users = self.user_embedding.weight.repeat(1, items.shape[1] // self.dim)  # [U, (M+1)·d]
        return torch.cat([users, items], dim=0)

    def propagate_views_shared(
        self, items: torch.Tensor, user_ids: torch.Tensor | None = None, item_ids: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``propagate_views(view_inputs())`` (no dropout) for item inputs [I, (M+1)·d], with less work: by
        linearity ``Â^l [E_u; X] = Â^l [E_u; 0] + Â^l [0; X]``; the users' term is common to every view (width d)
        and, the graph being bipartite, each term crosses to the other side at every layer (one block of Â).
        All nodes: [U+I, M+1, d]; with ``user_ids``/``item_ids`` only those rows ([b, M+1, d] each): the views
        are combined after the gather, not for every node."""
        n_views, blocks = items.shape[1] // self.dim, {"users": self.to_users, "items": self.to_items}
        totals: dict[tuple[str, str], torch.Tensor] = {}  # (term, side) → Σ_l of that side's layers

        def add(key: tuple[str, str], x: torch.Tensor) -> None:
            totals[key] = totals[key] + x if key in totals else x

        terms = {"common": ("users", self.user_embedding.weight), "views": ("items", items)}
        for term, (side, x) in terms.items():
            add((term, side), x)
            for _ in range(self.n_layers):
                side = "items" if side == "users" else "users"
                x = blocks[side].spmm(x)  # users ← items: [U, ·]; items ← users: [I, ·]
                add((term, side), x)

        def combine(side: str, n: int, ids: torch.Tensor | None) -> torch.Tensor:
            common, view = totals.get(("common", side)), totals.get(("views", side))
            if ids is not None:
                n = ids.numel()
                common = None if common is None else take_rows(common, ids)
                view = None if view is None else take_rows(view, ids)
            common = 0.0 if common is None else common.unsqueeze(1)  # [n, 1, d]
            view = items.new_zeros(n, n_views, self.dim) if view is None else view.view(n, n_views, self.dim)
            return (view + common) / (self.n_layers + 1)  # [n, M+1, d]

        if user_ids is not None:
            return combine("users", self.n_users, user_ids), combine("items", self.n_items, item_ids)
        return torch.cat([combine("users", self.n_users, None), combine("items", self.n_items, None)])

    def propagate_views(self, x: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """``mean_{l≤L}`` of the layers (dropout after each propagation when given): [U+I, M+1, d]."""
        total, h = x, x
        for _ in range(self.n_layers):
            h = self.graph.spmm(h)  # [U+I, (M+1)·d]
            if dropout > 0:
                h = F.dropout(h, dropout, training=True)
            total = total + h
        out = total / (self.n_layers + 1)
        return out.view(out.shape[0], -1, self.dim)

    def fuse(
        self, views: torch.Tensor, users: torch.Tensor | None = None, items: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [U or |users|, d], items [I or |items|, d]) from per-view outputs [U+I, M+1, d]; with
        ``users``/``items`` only those rows are fused (the batch during training)."""
        u, i = views[: self.n_users], views[self.n_users :]
        if users is not None and items is not None:
            u, i = take_rows(u, users), take_rows(i, items)
        return self.fuse_rows(u, i)

    def fuse_rows(self, u: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [n, d], items [m, d]) from per-view rows u [n, M+1, d] and i [m, M+1, d]."""
        if self.mm_fusion == "concat":
            return self.user_fusion(u.flatten(1)), self.item_fusion(i.flatten(1))
        return self.user_fusion(u.mean(1)), self.item_fusion(i.mean(1))

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(users [U, d], items [I, d], per-view outputs [U+I, M+1, d])."""
        # all nodes (no ids): one tensor [U+I, M+1, d]
        views = cast(torch.Tensor, self.propagate_views_shared(self.item_inputs()))
        users, items = self.fuse(views)
        return users, items, views

    # ---- training ----------------------------------------------------------------------------------------
    def _two_view_loss(
        self, x1: torch.Tensor, x2: torch.Tensor, users: torch.Tensor, items: torch.Tensor, dropout: float
    ) -> torch.Tensor:
        u1, i1 = self.fuse(self.propagate_views(x1, dropout), users, items)  # [B, d] each
        u2, i2 = self.fuse(self.propagate_views(x2, dropout), users, items)
        return info_nce(u1, u2, self.ssl_temp) + info_nce(i1, i2, self.ssl_temp)

    def _masked(self, x: torch.Tensor, view: int) -> torch.Tensor:
        """``x`` [U+I, (M+1)·d] with the item inputs of view ``view`` zeroed (users untouched)."""
        n_views = x.shape[1] // self.dim
        keep = torch.ones(n_views, 1, dtype=x.dtype, device=x.device)
        keep[view] = 0
        items = (x[self.n_users :].view(self.n_items, n_views, self.dim) * keep).flatten(1)  # [I, (M+1)·d]
        return torch.cat([x[: self.n_users], items], dim=0)

    def ssl_loss(
        self, x: torch.Tensor | None, item_views: torch.Tensor, users: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """``item_views`` [B, M+1, d]: the batch items' per-view outputs (FAC's input)."""
        if self.ssl_task == "FAC":
            return self.fac_loss(item_views)
        if x is None:
            raise ValueError(f"slmrec: ssl_task={self.ssl_task!r} needs the view inputs x")
        if self.ssl_task == "FD":
            return self._two_view_loss(x, x, users, items, self.dropout_rate)
        n_views = len(self.modality_names) + 1  # FM / FD+FM: two distinct masked views
        first = int(torch.randint(n_views, ()))
        second = int((first + 1 + torch.randint(n_views - 1, ())) % n_views)
        dropout = self.dropout_rate if self.ssl_task == "FD+FM" else 0.0
        return self._two_view_loss(self._masked(x, first), self._masked(x, second), users, items, dropout)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, items = batch["users"], batch["pos_items"]
        item_x = self.item_inputs()  # [I, (M+1)·d]
        user_views, item_views = self.propagate_views_shared(item_x, users, items)  # [B, M+1, d] each
        x = None if self.ssl_task == "FAC" else self.view_inputs(item_x)  # FD / FM propagate their own views
        u, i = self.fuse_rows(user_views, item_views)  # [B, d] each: only the batch's rows are fused
        main = info_nce(u, i, self.temperature)
        return main + self.ssl_alpha * self.ssl_loss(x, item_views, users, items)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        u_all, i_all, _ = self.forward()
        return u_all, i_all
