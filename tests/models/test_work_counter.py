"""The work counter behind the benchmark's yardstick counts exactly the products a step executes."""

from __future__ import annotations

import torch

from benchmarks.yardsticks.cost import dense, graph_product, total_flops
from benchmarks.yardsticks.counter import count_work
from mmrec.nn.edge_graph import EdgeGraph


def test_dense_product_forward_and_backward_flops() -> None:
    a = torch.randn(5, 7, requires_grad=True)
    b = torch.randn(7, 3, requires_grad=True)
    work = count_work(lambda: (a @ b).sum().backward())
    assert work == {"dense": 3 * 2 * 5 * 7 * 3, "sparse": 0}  # forward, G Bᵀ and Aᵀ G
    assert total_flops([dense("ab", 5, 7, 3, grad_left=True)]) == work["dense"]
    frozen = count_work(lambda: (a.detach() @ b).sum().backward())
    assert frozen["dense"] == 2 * 2 * 5 * 7 * 3  # no gradient for the frozen left operand


def test_sparse_products_count_stored_entries() -> None:
    rows, cols = torch.tensor([0, 0, 1, 2, 3]), torch.tensor([1, 2, 0, 3, 1])
    graph = EdgeGraph(rows, cols, (4, 4))
    x = torch.randn(4, 6, requires_grad=True)
    values = torch.rand(5, requires_grad=True)
    work = count_work(lambda: graph.spmm(x, values).sum().backward())
    assert work == {"dense": 0, "sparse": 3 * 2 * 5 * 6}  # SpMM, its transpose, the sampled value gradient
    listed = [graph_product("A x", graph, 6, grad_values=True)]
    assert total_flops(listed, sparse=True) == work["sparse"]
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.ones(5), (4, 4)).coalesce()
    assert count_work(lambda: torch.sparse.mm(coo, x).sum().backward())["sparse"] == 2 * 2 * 5 * 6
