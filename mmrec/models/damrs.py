"""DA-MRS (Xv et al., KDD 2024): denoised item graphs, denoised BPR and two alignments, on a LightGCN backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmrec.data.datamodule import GraphData
from mmrec.errors import ConfigError
from mmrec.models.multimodal import MultimodalRecommender
from mmrec.nn.consensus_item_graphs import behaviour_item_graph, consensus_item_graphs
from mmrec.nn.gather import take_rows
from mmrec.nn.propagation import bipartite_propagate, propagate


def symmetric_bernoulli_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """``KL(p_a‖p_b) + KL(p_b‖p_a)`` of Bernoulli(σ(z)) elementwise, in the closed form ``(p_a − p_b)(z_a − z_b)``
    (the reference evaluates ``p log p − p log q + (1−p) log(1−p) − …`` on σ(z), which is NaN once σ saturates)."""
    return (torch.sigmoid(logits_a) - torch.sigmoid(logits_b)) * (logits_a - logits_b)


class _GradedNeighbourLoss(torch.autograd.Function):
    """``L_AI`` (see :class:`DAMRS`) over row blocks of the batch items, with its gradient computed on the way.

    Every ``[rows, I]`` intermediate (cosines, label distributions, ``exp(cos/τ)``) lives for one block only, so
    its passes run in cache; the loss is a scalar, so the gradients of the anchors and views are formed in the
    forward (the products ``G_v h_v`` and ``G_vᵀ a_v`` the backward would do) and scaled by the incoming
    gradient. Pseudo-positives are drawn from the labels (no gradient), as in the reference."""

    @staticmethod
    def forward(
        ctx,
        anchors: torch.Tensor,
        views: torch.Tensor,
        n_pos: int,
        temperature: float,  # type: ignore[override]
        block: int,
    ) -> torch.Tensor:
        n_views, b = anchors.shape[0], anchors.shape[1]
        grad_anchors, grad_views = torch.zeros_like(anchors), torch.zeros_like(views)
        loss = anchors.new_zeros(())
        scale = 1.0 / (b * n_views)  # mean over the batch items, then over the views
        for start in range(0, b, block):
            a = anchors[:, start : start + block]  # [V, c, d]
            cosines = torch.bmm(a, views.transpose(1, 2))  # [V, c, I]
            probs = torch.softmax(cosines, dim=2)  # label distributions P_v
            total = probs.sum(0)  # [c, I] Σ_w P_w
            for v in range(n_views):
                mm = torch.topk(total + probs[v], n_pos, dim=1).indices  # [c, n] multimodal positives
                single = torch.topk(probs[v].scatter_(1, mm, 0.0), n_pos, dim=1).indices  # single-view
                e = cosines[v].div_(temperature).exp_()  # [c, I] exp(cos/τ)
                e_mm, e_single = e.gather(1, mm), e.gather(1, single)  # [c, n]
                t, m, s = e.sum(1), e_mm.sum(1), e_single.sum(1)  # [c]
                ratio_mm, ratio_single = m / t + 1e-9, s / (t - m) + 1e-9
                loss = loss - (torch.log(ratio_mm) + torch.log(ratio_single)).sum() * scale
                # ∂L/∂t, ∂L/∂m, ∂L/∂s of -log(m/t + ε) - log(s/(t - m) + ε)
                g_t = (m / t.square() / ratio_mm + s / (t - m).square() / ratio_single) * scale
                g_m = (-1.0 / t / ratio_mm - s / (t - m).square() / ratio_single) * scale
                g_s = (-1.0 / (t - m) / ratio_single) * scale
                # ∂L/∂cos_j = e_j / τ · (g_t + [j ∈ mm] g_m + [j ∈ single] g_s), in place over e
                e.mul_((g_t / temperature).unsqueeze(1))
                e.scatter_add_(1, mm, e_mm * (g_m / temperature).unsqueeze(1))
                e.scatter_add_(1, single, e_single * (g_s / temperature).unsqueeze(1))
                grad_anchors[v, start : start + block] = e @ views[v]  # [c, d]
                grad_views[v].addmm_(e.T, a[v])  # [I, d]
        ctx.save_for_backward(grad_anchors, grad_views)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grad_anchors, grad_views = ctx.saved_tensors
        return grad_anchors * grad, grad_views * grad, None, None, None


def graded_neighbour_loss(
    anchors: torch.Tensor, views: torch.Tensor, n_pos: int, temperature: float, block: int = 64
) -> torch.Tensor:
    """``L_AI = mean_v mean_x L_v(x)`` for row-normalised anchors [V, b, d] (the batch items in each view) and
    row-normalised views [V, I, d]; differentiable in both."""
    return _GradedNeighbourLoss.apply(anchors, views, n_pos, temperature, block)


class DAMRS(MultimodalRecommender):
    """DA-MRS: "Improving Multi-modal Recommender Systems by Denoising and Aligning Multi-modal Content and User
    Feedback" (Xv, Li, Xie, Lin, Liu, Xia, Kang, Lin; KDD 2024), with its default LightGCN backbone. Reference:
    the authors' ``XMUDM/DA-MRS`` (``src/models/lightgcn.py``), copied as MMRec's ``damrs.py``.

    Graphs (built from the data in ``prepare``, cached; see ``mmrec.nn.consensus_item_graphs``): one denoised
    item–item graph ``S_m`` per modality (top-``knn_k`` kNN restricted to pairs every modality rates above its
    mean similarity) and the item–item behaviour graph ``S_b`` (top-``behaviour_k`` co-interacted items with at
    least ``min_cooccurrence`` common users, plus self-loops), all unit-weight and ``D^-1/2 A D^-1/2``.
    The views are ``v ∈ {m_1..m_M, b}`` (``V = M + 1``).

    - Backbone: ``[u; i] = mean_{l≤L_ui} Â^l [E_u; E_i]``. Item views ``h_v = S_v^{L_mm} E_i`` [I, d] (ID
      embeddings). Item representation ``i + mean_v h_v``; score ``uᵀ(i + mean_v h_v)``.
    - Denoised BPR: with ``p_v = σ(uᵀ normalize(h_v[i⁺]))`` [V, B] and ``q_v`` the same for ``i⁻``:
      ``w⁺ = clip(mean_v p_v · exp(−var_v p_v)², 0, 1)`` (unbiased variance), ``w⁻ = clip((max_v p_v − q̄) ·
      [mean_v p_v < q̄], 0, 1)`` with ``q̄`` the mean of ``q`` over views *and the batch* (a scalar, as in the
      reference); both detached. ``L_BPR = −mean(w⁺ log σ(s⁺ − s⁻) + w⁻ log σ(s⁻ − s⁺))`` on the final scores.
    - Alignment guided by user preference: over the batch's unique users ``u`` and unique items ``j`` (positives
      and negatives), ``z_g = u · normalize(i_j)``, ``z_c = u · normalize(mean_v h_v[j])`` [U_b, I_b];
      ``L_AU = mean(KL(σ(z_g)‖σ(z_c)) + KL(σ(z_c)‖σ(z_g)))`` (Bernoulli).
    - Alignment guided by graded item relations: per view ``v``, ``P_v = softmax_j(cos(h_v[batch items], h_v))``
      [I_b, I]; multimodal positives = top-``n_pseudo_positives`` of ``Σ_w P_w + P_v``, single-view positives =
      top-``n_pseudo_positives`` of ``P_v`` outside them; with ``e = exp(cos(h_v[x], h_v[·])/τ)``:
      ``L_v = −log(Σ_mm e / Σ_all e + 1e-9) − log(Σ_single e / (Σ_all e − Σ_mm e) + 1e-9)``, averaged over the
      batch items; ``L_AI = mean_v L_v``.
    - Loss: ``L_BPR + neighbor_weight · L_AI + kl_weight · L_AU``.

    Any named modalities: one consensus graph per modality, the consensus over all of them; the reference is
    written for exactly image + text (``V = 3``). ``faithful_to``: no difference between the paper and the
    reference implementation is known to us; both values give the reference computation. Deviations (both
    modes): the reference's NaN-prone KL is evaluated in closed form (equal where finite); the unused
    ``image_trs``/``text_trs`` projections the reference creates are left out (they get no gradient); the consensus
    mean is computed in closed form (no dense ``I × I`` matrix).

    Trainable parameters: ``(U + I)·d``. Features enter only through the item graphs (they are rebuilt from
    knocked-out features at test time), so there are no feature tables and no ``freeze_features``.
    """

    adj: torch.Tensor  # buffers: declared for the type checker (register_buffer/register_derived)

    def __init__(
        self,
        data: GraphData,
        embedding_dim: int = 64,
        n_ui_layers: int = 2,
        n_mm_layers: int = 1,
        knn_k: int = 10,
        behaviour_k: int = 2,
        min_cooccurrence: int = 2,
        kl_weight: float = 1.0,
        neighbor_weight: float = 1e-3,
        n_pseudo_positives: int = 10,
        temperature: float = 0.2,
        faithful_to: str = "reference",
        lr: float = 1e-3,
    ):
        super().__init__(data, lr=lr, faithful_to=faithful_to)
        if min(knn_k, behaviour_k, n_pseudo_positives) < 1:
            raise ConfigError("damrs: knn_k, behaviour_k and n_pseudo_positives must be >= 1")
        if 2 * n_pseudo_positives >= self.n_items:
            raise ConfigError(
                f"damrs.n_pseudo_positives={n_pseudo_positives} needs more than "
                f"{2 * n_pseudo_positives} items; this data has {self.n_items}"
            )
        self.n_ui_layers, self.n_mm_layers = n_ui_layers, n_mm_layers
        self.knn_k, self.behaviour_k, self.min_cooccurrence = knn_k, behaviour_k, min_cooccurrence
        self.kl_weight, self.neighbor_weight = kl_weight, neighbor_weight
        self.n_pseudo_positives, self.temperature = n_pseudo_positives, temperature
        self.build_id_embeddings(embedding_dim)
        self.attach(data)

    # ---- graphs ------------------------------------------------------------------------------------------------
    def prepare(self, data: GraphData) -> None:
        self.register_derived("adj", data.norm_adj())
        for j, graph in enumerate(consensus_item_graphs(data, self.modality_names, self.knn_k)):
            self.register_derived(f"modality_graph_{j}", graph)
        self.register_derived("behaviour_adj", behaviour_item_graph(data, self.behaviour_k, self.min_cooccurrence))

    # ---- model -------------------------------------------------------------------------------------------------
    def forward(self) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """LightGCN users [U, d], items [I, d] and the item views ``h_v`` [I, d] (modalities, then behaviour)."""
        item_id = self.item_embedding.weight
        u, i = bipartite_propagate(self.adj, self.user_embedding.weight, item_id, self.n_ui_layers)
        graphs = [getattr(self, f"modality_graph_{j}") for j in range(len(self.modality_names))]
        graphs.append(self.behaviour_adj)
        views = [propagate(g, item_id, self.n_mm_layers, combine="last") for g in graphs]
        return u, i, views

    def bpr_weights(
        self, u: torch.Tensor, normalized: list[torch.Tensor], pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached (w⁺ [B], w⁻ [B]) of the denoised BPR from the row-normalised views."""
        with torch.no_grad():
            p = torch.stack([torch.sigmoid((u * take_rows(h, pos)).sum(1)) for h in normalized])  # [V, B]
            q = torch.stack([torch.sigmoid((u * take_rows(h, neg)).sum(1)) for h in normalized])  # [V, B]
            p_mean, p_var, p_max = p.mean(0), p.var(0), p.max(0).values  # [B]
            q_mean = q.mean()  # scalar over views and batch (reference)
            w_pos = (p_mean * torch.exp(-p_var) ** 2).clamp(0.0, 1.0)
            w_neg = ((p_max - q_mean) * (p_mean < q_mean).float()).clamp(0.0, 1.0)
        return w_pos, w_neg

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos_items"], batch["neg_items"]
        u_all, i_all, views = self.forward()
        batch_users = torch.unique(users)
        batch_items = torch.unique(torch.cat([pos, neg]))
        normalized = [F.normalize(h, dim=1) for h in views]  # V × [I, d]
        # alignment guided by graded item relations (one cosine product per view serves labels and loss)
        anchors = torch.stack([take_rows(h, batch_items) for h in normalized])  # [V, b, d]
        l_ai = graded_neighbour_loss(anchors, torch.stack(normalized), self.n_pseudo_positives, self.temperature)
        # alignment guided by user preference
        content = torch.stack(views).mean(0)  # [I, d]
        ub = take_rows(u_all, batch_users)  # [U_b, d]
        z_g = ub @ F.normalize(take_rows(i_all, batch_items), dim=1).T  # [U_b, I_b]
        z_c = ub @ F.normalize(take_rows(content, batch_items), dim=1).T  # [U_b, I_b]
        l_au = symmetric_bernoulli_kl(z_g, z_c).mean()
        # denoised BPR
        u = take_rows(u_all, users)
        w_pos, w_neg = self.bpr_weights(u, normalized, pos, neg)
        items = i_all + content
        diff = (u * take_rows(items, pos)).sum(1) - (u * take_rows(items, neg)).sum(1)  # [B]
        l_bpr = -(F.logsigmoid(diff) * w_pos + F.logsigmoid(-diff) * w_neg).mean()
        return l_bpr + self.neighbor_weight * l_ai + self.kl_weight * l_au

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, i, views = self.forward()
        return u, i + torch.stack(views).mean(0)
