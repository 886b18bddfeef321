"""The matrix products LATTICE's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, linear, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.lattice import LATTICE


def _graph_products(model: LATTICE, training: bool) -> list[MatmulCost]:
    """Building the learned graph: per modality the projection of every item and the all-pairs cosine
    similarity ``ẑ ẑᵀ`` its top-k needs (no gradient: the neighbour choice is not differentiable)."""
    out = []
    for m in model.modality_names:
        proj = model.projections[m]
        out.append(
            linear(
                f"W_{m} x_{m}",
                model.n_items,
                proj,
                grad_input=training and model.features[m].trainable,
                trained=training,
            )
        )
        out.append(
            dense(f"kNN: cos(z_{m}) all pairs", model.n_items, proj.out_features, model.n_items, grad_right=False)
        )
    return out


def _propagation_products(
    model: LATTICE, training: bool, item_graph: torch.Tensor, learned_values: bool = False
) -> list[MatmulCost]:
    """``Ã^{L_i}`` over the item IDs and the CF backbone over the user–item graph; every dense operand is a
    trained embedding or derives from one. ``learned_values``: Ã carries gradients (its edge values' gradient
    is one sampled product over its edges)."""
    d, out = model.item_embedding.embedding_dim, []
    if model.n_layers > 0:
        out.append(
            graph_product(
                "Ã h (item graph)", item_graph, d, grad_x=training, grad_values=learned_values, count=model.n_layers
            )
        )
    if model.cf_model == "lightgcn" and model.n_ui_layers > 0:
        out.append(graph_product("Â x (user–item)", model.adj, d, grad_x=training, count=model.n_ui_layers))
    elif model.cf_model == "ngcf":
        n = model.n_users + model.n_items
        for layer, (gc, bi) in enumerate(zip(model.gc_linears, model.bi_linears, strict=True)):
            out.append(graph_product(f"ngcf{layer}: Â e", model.adj, gc.in_features, grad_x=training))
            out.append(linear(f"ngcf{layer}: W_gc side", n, gc, grad_input=training, trained=training))
            out.append(linear(f"ngcf{layer}: W_bi (e ⊙ side)", n, bi, grad_input=training, trained=training))
    return out


def _current_item_graph(model: LATTICE) -> torch.Tensor:
    """The learned graph a step runs on (the epoch's one when built; else built now, without gradients)."""
    if model.train_item_graph is not None and model.faithful_to == "reference":
        return model.train_item_graph
    with torch.no_grad():
        return model.item_graph()


def training(model: LATTICE, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    """``paper``: every step rebuilds the graph with gradients. ``reference``: a step on the epoch's detached
    graph (the rebuild of each epoch's first step is in :func:`epoch`)."""
    paper = model.faithful_to == "paper"
    out = _graph_products(model, True) if paper else []
    return [*out, *_propagation_products(model, True, _current_item_graph(model), learned_values=paper)]


def epoch(model: LATTICE) -> list[MatmulCost]:
    """``reference``: the first step of each epoch rebuilds the graph with gradients (projections forward and
    backward, all-pairs similarities)."""
    if model.faithful_to != "reference":
        return []
    graph = _current_item_graph(model)
    values_grad = MatmulCost(
        "Ã values' gradient: sampled ⟨g_r, h_c⟩ per edge",
        graph.shape[0],
        graph.shape[1],
        model.item_embedding.embedding_dim,
        grad_right=False,
        count=model.n_layers,
        nnz=int(graph._nnz()),
        graph=graph,
    )  # as many FLOPs as one forward product
    return [*_graph_products(model, True), values_grad] if model.n_layers else _graph_products(model, True)


def inference(model: LATTICE) -> list[MatmulCost]:
    with torch.no_grad():
        graph = model.item_graph()
    return [
        *_graph_products(model, False),
        *_propagation_products(model, False, graph),
        score_cost(model, model.item_embedding.embedding_dim),
    ]


register(LATTICE, training=training, epoch=epoch, inference=inference)
