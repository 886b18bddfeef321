"""FREEDOM's degree-sensitive edge pruning of the user–item graph."""

from __future__ import annotations

import torch


def degree_weights(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """``1 / sqrt(deg_u · deg_i)`` per edge (degrees in the given edge set)."""
    du = torch.bincount(users, minlength=n_users).float()
    di = torch.bincount(items, minlength=n_items).float()
    return du[users].clamp_min(1).rsqrt() * di[items].clamp_min(1).rsqrt()


def sample_edges(weights: torch.Tensor, keep_ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of ``⌊|E| · keep_ratio⌋`` edges drawn without replacement with probability ∝ ``weights``."""
    n_keep = int(weights.numel() * keep_ratio)
    if n_keep >= weights.numel():
        return torch.arange(weights.numel(), device=weights.device)
    return torch.multinomial(weights, n_keep, replacement=False, generator=generator)


def pruned_norm_adj(
    users: torch.Tensor,
    items: torch.Tensor,
    n_users: int,
    n_items: int,
    dropout: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Keep ``⌊|E|(1 − dropout)⌋`` edges sampled by degree weight, then re-normalise them symmetrically in the
    kept graph; returns sparse [U+I, U+I]."""
    keep = sample_edges(degree_weights(users, items, n_users, n_items), 1.0 - dropout, generator)
    u, i = users[keep], items[keep]
    values = degree_weights(u, i, n_users, n_items)
    rows = torch.cat([u, i + n_users])
    cols = torch.cat([i + n_users, u])
    n = n_users + n_items
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.cat([values, values]), (n, n)).coalesce()
