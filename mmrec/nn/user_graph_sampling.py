"""Per-user neighbour lists of the user–user co-occurrence graph, padded and weighted (DualGNN, DRAGON).

The framework builds the top-``k`` co-interaction graph (``GraphData.user_graph(k)``: edges with their number of
co-interacted items; ties at the ``k``-th place broken by ``knn.ties``). The reference implementations (MMRec's
DualGNN ``topk_sample``, copied by DRAGON) turn it into a fixed ``[U, k]`` neighbour table every epoch:

- a user with ``k`` or more neighbours keeps its ``k`` most co-interacting ones;
- a user with ``0 < n < k`` neighbours is padded to ``k`` by repeatedly appending a uniformly drawn entry of its
  *growing* list (a Pólya urn: duplicates can be drawn again), so some neighbours count several times;
- a user without neighbours aggregates nothing;
- weights: ``softmax`` of the co-interaction counts over the (padded) list, or ``mean`` (``1/k`` per entry).

Here the table is built vectorised (one step per padding position, ≤ k−1 steps over all users at once) and
returned as a sparse ``[U, U]`` :class:`EdgeGraph` whose duplicate entries are summed, so ``h_u = Σ_j w_uj e_j`` is
one SpMM. ``pad=False`` keeps each user's real neighbours only (softmax/mean over them): deterministic.
"""

from __future__ import annotations

import torch

from mmrec.errors import ConfigError
from mmrec.nn.edge_graph import EdgeGraph


def sampled_user_graph(
    rows: torch.Tensor,
    cols: torch.Tensor,
    counts: torch.Tensor,
    n_users: int,
    k: int,
    weighting: str = "softmax",
    pad: bool = True,
    generator: torch.Generator | None = None,
) -> EdgeGraph:
    """Weighted ``[U, U]`` neighbour graph (row = user, col = neighbour) from top-k co-occurrence edges.

    Args:
        rows, cols, counts: user–user edges and their co-interaction counts (``GraphData.user_graph(k)``).
        k: neighbours per user (longer lists keep their ``k`` largest counts).
        weighting: ``softmax`` (of counts over the list) or ``mean``.
        pad: pad short lists to ``k`` with Pólya-urn duplicates (reference behaviour; random, CPU generator).
    """
    if weighting not in ("softmax", "mean"):
        raise ConfigError(f"user graph weighting={weighting!r}; choose softmax or mean")
    # built on the host, deliberately: the padding draws come from a CPU generator, so a seed gives the same
    # graph on every device; the caller moves the (small, [U, k]) result to the model's device
    rows, cols, counts = rows.long().cpu(), cols.long().cpu(), counts.float().cpu()
    host = rows.device
    # row-major, largest counts first within a row (stable: ties keep the given order); GraphData.user_graph
    # already returns that order, so the sort is skipped when it holds
    same_row = rows[1:] == rows[:-1]
    if not bool(((rows[1:] > rows[:-1]) | (same_row & (counts[1:] <= counts[:-1]))).all()):
        order = torch.argsort(-counts, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]
        rows, cols, counts = rows[order], cols[order], counts[order]
    n_per_user = torch.bincount(rows, minlength=n_users)  # [U]
    start = torch.cumsum(n_per_user, 0) - n_per_user
    pos = torch.arange(len(rows), device=host) - start[rows]  # rank of the edge inside its user's list
    keep = pos < k
    nbr = torch.zeros(n_users, k, dtype=torch.long, device=host)  # [U, k]
    cnt = torch.zeros(n_users, k, device=host)  # [U, k]
    nbr[rows[keep], pos[keep]] = cols[keep]
    cnt[rows[keep], pos[keep]] = counts[keep]
    n = n_per_user.clamp(max=k)  # [U] real list length
    length = n.clone()
    if pad and k > 1:
        # one uniform per (user, position), fixed consumption
        draws = torch.rand(n_users, k, generator=generator, device=host)
        users = torch.arange(n_users, device=host)
        for t in range(1, k):  # position t is filled from the t entries before it
            need = (n > 0) & (n <= t)
            if not need.any():
                continue
            u = users[need]
            src = (draws[u, t] * t).long().clamp(max=t - 1)
            nbr[u, t] = nbr[u, src]
            cnt[u, t] = cnt[u, src]
        length = torch.where(n > 0, torch.full_like(n, k), n)
    valid = torch.arange(k, device=host).unsqueeze(0) < length.unsqueeze(1)  # [U, k]
    if weighting == "softmax":
        logits = cnt.masked_fill(~valid, float("-inf"))
        w = torch.softmax(logits, dim=1).nan_to_num(0.0)  # rows without neighbours → 0
    else:
        w = valid.float() / length.clamp_min(1).unsqueeze(1).float()
    nbr = nbr.masked_fill(~valid, n_users)  # invalid slots sort last within their row
    nbr, perm = torch.sort(nbr, dim=1, stable=True)  # per-row sort: duplicates become adjacent
    w, valid = torch.gather(w, 1, perm), torch.gather(valid, 1, perm)
    u_idx = torch.arange(n_users, device=host).unsqueeze(1).expand(n_users, k)
    keys = u_idx[valid] * n_users + nbr[valid]  # sorted: row-major, ascending neighbour
    keys, inverse = torch.unique_consecutive(keys, return_inverse=True)  # sum duplicates
    weights = torch.zeros(len(keys), device=host).index_add_(0, inverse, w[valid])
    return EdgeGraph(keys // n_users, keys % n_users, (n_users, n_users), weights)
