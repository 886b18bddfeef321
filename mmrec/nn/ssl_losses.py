"""Self-supervised objectives shared by multimodal models (BM3's bootstrap loss, SLMRec's FAC InfoNCE).

``mmrec.nn.losses.info_nce`` is the cosine (normalised) InfoNCE; the two objectives here differ from it:

- :func:`bootstrap_cosine_loss`: the negative-free BYOL/BM3 objective ``1 − mean_b cos(p_b, sg(t_b))``
  between an online prediction and a stop-gradient target.
- :func:`dot_info_nce`: InfoNCE on *raw* inner products (no normalisation), SLMRec's FAC alignment loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bootstrap_cosine_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 − mean_b cos(online_b, sg(target_b))`` over row-aligned [B, d] views (gradient to ``online`` only).

    Norms are clamped at 1e-8 (``F.cosine_similarity``), so a zero row has cosine 0 instead of NaN.
    """
    return 1.0 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


def dot_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """``CE(a bᵀ / τ, diag)``: InfoNCE with in-batch negatives on raw inner products of row-aligned
    ``a`` [B, d] and ``b`` [B, d] (row ``i`` of ``a`` must pick row ``i`` of ``b``)."""
    logits = a @ b.T / temperature  # [B, B]
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


class _SumLogSumExp(torch.autograd.Function):
    """``Σ_b logsumexp_j ⟨a_b, c_j⟩`` over row blocks of ``a``; the gradient (``P c`` and ``Pᵀ a`` with ``P`` the
    row softmax, the two products autograd's backward would do) is formed in the forward, so each ``[rows, N]``
    block of logits is used while it is in cache and never stored."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, c: torch.Tensor, block: int) -> torch.Tensor:  # type: ignore[override]
        grad_a, grad_c = torch.empty_like(a), torch.zeros_like(c)
        total = a.new_zeros(())
        for start in range(0, a.shape[0], block):
            rows = a[start : start + block]  # [r, d]
            p = rows @ c.T  # [r, N] logits
            top = p.amax(dim=1, keepdim=True)
            p.sub_(top).exp_()
            z = p.sum(dim=1, keepdim=True)
            total = total + (top + z.log()).sum()
            p.div_(z)  # row softmax
            grad_a[start : start + block] = p @ c
            grad_c.addmm_(p.T, rows)
        ctx.save_for_backward(grad_a, grad_c)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grad_a, grad_c = ctx.saved_tensors
        return grad_a * grad, grad_c * grad, None


def sum_logsumexp(a: torch.Tensor, c: torch.Tensor, block: int = 128) -> torch.Tensor:
    """``Σ_b logsumexp_j ⟨a_b, c_j⟩`` for a [B, d] against c [N, d] (InfoNCE's denominator over N candidates),
    differentiable in both; never materialises the [B, N] logits."""
    return _SumLogSumExp.apply(a, c, block)
