"""Per-modality user–item GCN with free user preferences (the heterogeneous branch of DualGNN and DRAGON).

For every modality ``m`` (any names; ``d`` the latent size):

- items ``t_m = W²_m LeakyReLU(W¹_m x_m + b¹_m) + b²_m`` (``d_m → hidden_mult·d → d``);
- users a free preference table ``P_m`` [U, d];
- ``z_m = normalize_rows([P_m; t_m])`` [U+I, d] (zero rows stay zero);
- ``r_m = Σ_{l=0..L} Â^l z_m`` with ``Â`` the given user–item adjacency (MMRec's two ``Base_gcn`` hops:
  ``r = z + Âz + Â²z`` for ``L = 2``).

All modalities go through the graph in one SpMM of width ``M·d`` instead of ``M`` SpMMs of width ``d``.
Trainable parameters: ``Σ_m [U·d + (d_m + 1)·h·d + (h·d + 1)·d]`` with ``h = hidden_mult``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from mmrec.nn.edge_graph import EdgeGraph
from mmrec.nn.propagation import propagate


class ModalityPreferenceGCN(nn.Module):
    """``forward(graph, features) -> [U+I, M, d]``: one ``r_m`` per modality, in ``feature_dims`` order
    (``graph``: the normalised user–item adjacency as an :class:`EdgeGraph`)."""

    def __init__(self, n_users: int, feature_dims: Mapping[str, int], dim: int, n_hops: int = 2, hidden_mult: int = 4):
        super().__init__()
        self.n_users, self.dim, self.n_hops = n_users, dim, n_hops
        self.modalities = list(feature_dims)
        self.preference = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim))) for m in self.modalities}
        )
        self.mlp_in = nn.ModuleDict({m: nn.Linear(d_m, hidden_mult * dim) for m, d_m in feature_dims.items()})
        self.mlp_out = nn.ModuleDict({m: nn.Linear(hidden_mult * dim, dim) for m in self.modalities})

    def item_projection(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """``t_m`` [I, d] from raw features x [I, d_m]."""
        return self.mlp_out[modality](F.leaky_relu(self.mlp_in[modality](x)))

    def forward(self, graph: EdgeGraph, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        z = [
            F.normalize(torch.cat([self.preference[m], self.item_projection(m, features[m])], dim=0), dim=1)
            for m in self.modalities
        ]  # M × [U+I, d]
        r = propagate(graph, torch.cat(z, dim=1), self.n_hops, combine="sum")  # [U+I, M·d]
        return r.view(r.shape[0], len(z), self.dim)  # [U+I, M, d]
