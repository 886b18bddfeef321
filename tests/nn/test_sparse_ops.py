"""Sparse products on cached CSR kernels: same values and gradients as torch.sparse.mm, the cache reused."""

from __future__ import annotations

import torch

from mmrec.nn.propagation import propagate
from mmrec.nn.sparse_ops import sparse_mm


def _graph(requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 30, (2, 120), generator=g)
    values = torch.rand(120, generator=g, dtype=torch.float64, requires_grad=requires_grad)
    return torch.sparse_coo_tensor(idx, values, (30, 30)).coalesce(), values


def test_fixed_graph_matches_torch_sparse_and_reuses_its_csr_forms() -> None:
    adj, _ = _graph()
    x1 = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    y1 = propagate(adj, x1, 2, combine="mean")
    g = torch.randn_like(y1)
    y1.backward(g)
    expected = (x2 + torch.sparse.mm(adj, x2) + torch.sparse.mm(adj, torch.sparse.mm(adj, x2))) / 3
    expected.backward(g)
    torch.testing.assert_close(y1, expected)
    torch.testing.assert_close(x1.grad, x2.grad)
    cached = dict(adj._mmrec_csr)
    assert set(cached) == {False, True}  # forward and transposed forms, built once
    sparse_mm(adj, x1).sum().backward()
    assert all(adj._mmrec_csr[k] is cached[k] for k in cached)


def test_inference_builds_no_transpose_and_learned_values_get_their_gradient() -> None:
    adj, _ = _graph()
    with torch.no_grad():
        sparse_mm(adj, torch.randn(30, 4, dtype=torch.float64))
    assert set(adj._mmrec_csr) == {False}
    learned, values = _graph(requires_grad=True)
    x = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(30, 4, dtype=torch.float64)
    got = torch.autograd.grad(sparse_mm(learned, x), (values, x), g)
    learned2, values2 = _graph(requires_grad=True)
    want = torch.autograd.grad(torch.sparse.mm(learned2, x), (values2, x), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
