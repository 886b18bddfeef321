"""The matrix products SLMRec's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.slmrec import SLMRec


def _propagation_products(model: SLMRec, training: bool) -> list[MatmulCost]:
    """``Â^l [E_u; X_v]`` of every view ``v``, ``l ≤ L``. By linearity it is ``Â^l [E_u; 0] + Â^l [0; X_v]``:
    the users' part is common to all views (width d), the items' part is per view (width (M+1)·d); on the
    bipartite graph each part alternates between the two blocks of Â (layer 1: the users' part reaches the
    items, the items' parts reach the users)."""
    to_users, to_items = model.to_users, model.to_items
    d, views, odd, even = model.dim, len(model.modality_names) + 1, (model.n_layers + 1) // 2, model.n_layers // 2
    spec = [
        ("Â_IU: user part (common to the views)", to_items, d, odd),
        ("Â_UI: user part (common to the views)", to_users, d, even),
        ("Â_UI: item parts of the views", to_users, views * d, odd),
        ("Â_IU: item parts of the views", to_items, views * d, even),
    ]
    return [graph_product(label, g, n, grad_x=training, count=c) for label, g, n, c in spec if c]


def _dropout_propagation_products(model: SLMRec, live: int, masked: int, count: int) -> list[MatmulCost]:
    """``count`` FD propagations (dropout after every layer) of ``live`` view blocks with item inputs and
    ``masked`` blocks whose item inputs are zero. Layer 1 before its dropout is the main propagation's;
    each later layer is the whole Â for the live blocks and one block of Â for a masked one (zero on one
    side: layer 2 reaches the users, layer 3 the items, ...)."""
    to_users, to_items = model.to_users, model.to_items
    d, later = model.dim, model.n_layers - 1
    spec = [
        ("Â h (dropout view)", model.graph, live * d, later),
        ("Â_UI h (dropout view, masked block)", to_users, d, masked * (model.n_layers // 2)),
        ("Â_IU h (dropout view, masked block)", to_items, d, masked * ((model.n_layers - 1) // 2)),
    ]
    return [graph_product(label, g, n, count=count * c) for label, g, n, c in spec if c]


def _fusion_products(model: SLMRec, rows_u: int, rows_i: int, training: bool, count: int = 1) -> list[MatmulCost]:
    return [
        linear("G_u fuse(u views)", rows_u, model.user_fusion, grad_input=training, trained=training, count=count),
        linear("G_i fuse(i views)", rows_i, model.item_fusion, grad_input=training, trained=training, count=count),
    ]


def training(model: SLMRec, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    batch_size = len(batch["users"])
    b, d, n_views = batch_size, model.dim, len(model.modality_names) + 1
    out = [
        linear(f"W_{m} x̂_{m}", model.n_items, model.projections[m], grad_input=model.features[m].trainable)
        for m in model.modality_names
    ]
    out += _propagation_products(model, training=True)
    out += _fusion_products(model, b, b, training=True)  # the batch's users and positive items only
    out.append(dense("main InfoNCE u iᵀ", b, d, b, grad_left=True))
    if model.ssl_task == "FAC":
        for level, step in zip(model.fac_levels, model.fac_chain, strict=True):
            out.append(linear(f"FAC chain → {level}", b, step, grad_input=True))
            if level in model.fac_heads:
                head = model.fac_heads[level]
                out.append(linear(f"FAC head {level}", b, head, grad_input=True))
                out.append(dense(f"FAC InfoNCE {level}", b, head.out_features, b, grad_left=True))
        return out
    # FD / FM / FD+FM: two more views, contrasted on the batch's users and items. Without dropout (FM) a
    # masked view's propagation is the main one's parts (no product); with dropout layers 2.. are new.
    if model.ssl_task == "FD":
        out += _dropout_propagation_products(model, n_views, 0, count=2)
    elif model.ssl_task == "FD+FM":
        out += _dropout_propagation_products(model, n_views - 1, 1, count=2)
    out += _fusion_products(model, b, b, training=True, count=2)
    out.append(dense("SSL InfoNCE (users, items)", b, d, b, grad_left=True, count=2))
    return out


def inference(model: SLMRec) -> list[MatmulCost]:
    out = [linear(f"W_{m} x̂_{m}", model.n_items, model.projections[m], trained=False) for m in model.modality_names]
    out += _propagation_products(model, training=False)
    out += _fusion_products(model, model.n_users, model.n_items, training=False)
    return [*out, score_cost(model, model.dim)]


register(SLMRec, training=training, inference=inference)
