"""The matrix products PGL's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.pgl import PGL
from mmrec.nn.principal_subgraph import local_principal_subgraph


def _products(model: PGL, adj: torch.Tensor, training: bool) -> list[MatmulCost]:
    """Projecting every item (the graphs need them all), the item graph and the user–item graph ``adj``."""
    width = sum(model.projections[m].out_features for m in model.modality_names)  # M·d
    out = [
        linear(
            f"W_{m} x_{m}",
            model.n_items,
            model.projections[m],
            grad_input=training and model.features[m].trainable,
            trained=training,
        )
        for m in model.modality_names
    ]
    if model.n_mm_layers:
        out.append(graph_product("S h", model.mm_adj, width, grad_x=training, count=model.n_mm_layers))
    if model.n_ui_layers:
        out.append(graph_product("G x" if training else "Â x", adj, width, grad_x=training, count=model.n_ui_layers))
    return out


def training(model: PGL, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    batch_size = len(batch["users"])
    if model.train_adj is not None:
        adj = model.train_adj
    elif model.mode == "global":
        adj = model.global_subgraph
    else:  # before the first epoch: a stand-in sample of the same size (private generator: no RNG drawn)
        adj = local_principal_subgraph(
            model.edge_users,
            model.edge_items,
            model.n_users,
            model.n_items,
            model.keep_ratio,
            generator=torch.Generator(model.edge_users.device).manual_seed(0),
        )
    out = _products(model, adj, training=True)
    if model.reg_weight:  # in-batch InfoNCE logits of the users' and the positives' two dropout views
        width = sum(model.projections[m].out_features for m in model.modality_names)
        out.append(dense("InfoNCE [B, M·d] @ [M·d, B]", batch_size, width, batch_size, grad_left=True, count=2))
    return out


def inference(model: PGL) -> list[MatmulCost]:
    width = sum(model.projections[m].out_features for m in model.modality_names)
    return [*_products(model, model.adj, training=False), score_cost(model, width)]


register(PGL, training=training, inference=inference)
