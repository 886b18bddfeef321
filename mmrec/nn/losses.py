"""Losses shared by models."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F


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
