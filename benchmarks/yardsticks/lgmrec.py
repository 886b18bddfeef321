"""The matrix products LGMRec's math needs (see :mod:`benchmarks.yardsticks`)."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import MatmulCost, dense, graph_product, score_cost
from benchmarks.yardsticks.registry import register
from mmrec.models.lgmrec import LGMRec


def _products(model: LGMRec, training: bool, batch_size: int = 0) -> list[MatmulCost]:
    """Per step (training) or per evaluation: collaborative, modality and hypergraph embeddings, plus (training)
    the contrastive logits. A training step needs every row of ``G_m`` only where ``G_m`` supplies contrastive
    candidates (every modality after the first); the first modality's last hypergraph layer is needed on the
    batch's rows only (its items ``[i⁺; i⁻]``, its users). Only the last layer's user rows are ever needed."""
    d, n_hyper = model.user_embedding.embedding_dim, model.n_hyper_layers
    out: list[MatmulCost] = []
    if model.cf_model == "lightgcn" and model.n_ui_layers:
        out.append(graph_product("Â E (collaborative)", model.adj, d, grad_x=training, count=model.n_ui_layers))
    for j, m in enumerate(model.modality_names):
        x_grad = training and model.features[m].trainable
        d_m, a = model.hyperedges[m].shape  # [d_m, A]
        out += [
            dense(f"X_{m} W_{m}", model.n_items, d_m, d, grad_left=x_grad, grad_right=training),
            graph_product(f"R F_{m}", model.interactions, d, grad_x=training),
        ]
        if model.n_mm_layers:
            out.append(graph_product(f"Â E_{m}", model.adj, d, grad_x=training, count=model.n_mm_layers))
        out += [
            dense(f"X_{m} V_{m}", model.n_items, d_m, a, grad_left=x_grad, grad_right=training),
            graph_product(f"R X_{m} V_{m}", model.interactions, a, grad_x=training),
        ]
        full = not training or j > 0  # G_m's every row: evaluation, or contrastive candidates
        last_items = model.n_items if full else min(2 * batch_size, model.n_items)
        last_users = model.n_users if full else min(batch_size, model.n_users)
        g = dict(grad_left=training, grad_right=training)
        out.append(dense(f"H_{m}ᵀ E_i", a, model.n_items, d, count=n_hyper, **g))
        if n_hyper > 1:
            out.append(dense(f"H_{m} Λ (items, inner layers)", model.n_items, a, d, count=n_hyper - 1, **g))
        out += [
            dense(f"H_{m} Λ (items, last layer)", last_items, a, d, **g),
            dense(f"H_{m},users Λ (last layer)", last_users, a, d, **g),
        ]
    if training:
        n_pairs = len(model.modality_names) * (len(model.modality_names) - 1) // 2
        if n_pairs:
            out += [
                dense("HCL users [B, d] @ [d, U]", batch_size, d, model.n_users, grad_left=True, count=n_pairs),
                dense("HCL items [B, d] @ [d, I]", batch_size, d, model.n_items, grad_left=True, count=n_pairs),
            ]
    return out


def training(model: LGMRec, batch: dict[str, torch.Tensor]) -> list[MatmulCost]:
    batch_size = len(batch["users"])
    return _products(model, training=True, batch_size=batch_size)


def inference(model: LGMRec) -> list[MatmulCost]:
    return [*_products(model, training=False), score_cost(model, model.user_embedding.embedding_dim)]


register(LGMRec, training=training, inference=inference)
