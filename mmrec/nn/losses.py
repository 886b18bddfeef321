"""Losses shared by models."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F

from mmrec.nn.gather import take_rows


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: ``-mean(log σ(s⁺ - s⁻))`` (numerically stable)."""
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def l2_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """``Σ ||t||² / 2 / batch``: the squared-L2 regulariser on batch embeddings (LightGCN, FREEDOM, ...)."""
    batch = tensors[0].shape[0]
    # builtins.sum is typed int | T: a sum of tensors is a tensor
    return cast(torch.Tensor, sum(t.pow(2).sum() for t in tensors)) / 2.0 / batch


def emb_norm_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """MMRec's ``EmbLoss``: ``Σ ||t||₂ / batch`` (Frobenius norms, not squared)."""
    batch = tensors[-1].shape[0]
    return cast(torch.Tensor, sum(torch.norm(t, p=2) for t in tensors)) / batch


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between row-aligned views ``a`` [n, d] and ``b`` [n, d] (cosine similarity, in-batch negatives)."""
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.T / temperature  # [n, n]
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def bpr_with_view_contrast(
    final: torch.Tensor,
    side: torch.Tensor,
    content: torch.Tensor,
    rows: torch.Tensor,
    reg_weight: float,
    cl_weight: float,
    temperature: float,
) -> torch.Tensor:
    """MGCN's objective (SMORE keeps it): BPR over the batch's rows of ``final`` [n, d] + ``reg_weight`` · l2_reg,
    plus ``cl_weight`` × InfoNCE_τ between the ``side`` and ``content`` views [n, d], over the batch's positive
    items and over its users. ``rows`` [3B]: the users', positives' and negatives' rows in the node tensors."""
    u, p, n = take_rows(final, rows).chunk(3)
    loss = bpr_loss((u * p).sum(1), (u * n).sum(1)) + reg_weight * l2_reg(u, p, n)
    user_rows, item_rows, _ = rows.chunk(3)
    cl = info_nce(take_rows(side, item_rows), take_rows(content, item_rows), temperature)
    cl = cl + info_nce(take_rows(side, user_rows), take_rows(content, user_rows), temperature)
    return loss + cl_weight * cl
