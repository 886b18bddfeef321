"""Learnable hypergraphs over items and users (LGMRec's global hypergraph embedding).

A hypergraph with ``A`` hyperedges is given by soft assignment matrices ``H_i`` [I, A] (items → hyperedges) and
``H_u`` [U, A] (users → hyperedges). One hypergraph layer gathers the items into the hyperedges and scatters back:
``Λ = H_iᵀ E_i`` [A, d], ``E_i ← H_i Λ`` [I, d], ``E_u = H_u Λ`` [U, d].
"""

from __future__ import annotations

import torch


def gumbel_softmax(
    logits: torch.Tensor, tau: float, dim: int = -1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``softmax((logits + g) / τ)`` with ``g = -log(Exp(1))`` i.i.d. Gumbel noise (``F.gumbel_softmax``'s soft
    sample, draw for draw the same numbers from the global RNG when ``generator`` is None). The exponential draws
    are clamped away from 0 so a draw can never give ``+inf`` noise."""
    exp = torch.empty_like(logits).exponential_(generator=generator)
    gumbels = -exp.clamp_min(torch.finfo(exp.dtype).tiny).log()
    return torch.softmax((logits + gumbels) / tau, dim=dim)


def hypergraph_propagate(
    item_hyper: torch.Tensor, user_hyper: torch.Tensor, item_emb: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_layers`` hypergraph layers from item embeddings [I, d]: returns (users [U, d], items [I, d]).

    Args:
        item_hyper: ``H_i`` [I, A]; user_hyper: ``H_u`` [U, A]; item_emb: ``E_i`` [I, d]; n_layers ≥ 1.
    """
    if n_layers < 1:
        raise ValueError("hypergraph_propagate needs n_layers >= 1")
    items = item_emb
    users = item_emb.new_zeros(user_hyper.shape[0], item_emb.shape[1])
    for _ in range(n_layers):
        latent = item_hyper.T @ items  # [A, d]
        items = item_hyper @ latent  # [I, d]
        users = user_hyper @ latent  # [U, d]
    return users, items
