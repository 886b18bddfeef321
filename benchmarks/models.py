"""Per-model speed benchmark on the Amazon Baby graph (prints figures; never asserted).

For each model: one training epoch (batch 2048, every training pair once), one full-ranking evaluation of
every user, peak memory (each model runs in its own process), and — in the same run — the unavoidable kernels:

- epoch kernels: per batch, one Adam step over the model's trainable parameters plus the dense and sparse
  products the model's math needs for that batch (its yardstick's ``training``: every forward product and the
  backward products of what is trained; see ``benchmarks.yardsticks``), plus its per-epoch products (``epoch``);
- evaluation kernels: the products computing every final representation needs (the yardstick's ``inference``) and the
  user × item score product in blocks plus top-50.

Each product is timed alone (best of 3) on random operands of its exact shape, sparse ones on the model's own
graph as CSR (the fastest CPU kernels). A test checks that every listed product is work a real step performs;
``benchmarks/product_check.py`` prints how much of the performed product work is listed.

Epochs are timed as the best of 3 (of 1 when an epoch takes over 10 s); evaluation as the best of 3 after a
warm-up pass. Ratios = measured / kernels (targets: epoch ≤ 1.5×,
evaluation ≤ 1.3×). Features are random with the real shapes (text 384-d, image 4096-d). ``--device cuda`` runs
the model, its yardstick and the evaluation on the GPU (timings synchronise the device; peak memory is then the
GPU's, ``torch.cuda.max_memory_allocated``). Usage::

    python benchmarks/models.py [model ...] [--data ../shared/datasets/amazon-graphs/baby.inter] [--threads 2]
        [--device cpu|cuda] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = [
    "bpr",
    "lightgcn",
    "vbpr",
    "freedom",
    "mmgcn",
    "grcn",
    "dualgnn",
    "lattice",
    "slmrec",
    "bm3",
    "mgcn",
    "dragon",
    "lgmrec",
    "smore",
    "damrs",
    "pgl",
]


DEVICE = "cpu"  # set by run_one (--device)


def _sync() -> None:
    if DEVICE != "cpu":
        import torch

        torch.cuda.synchronize()


def timed(fn, repeat: int = 1) -> float:
    _sync()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync()
    return (time.perf_counter() - t) / repeat


def best_time(fn, runs: int = 3, budget_s: float = 10.0) -> float:
    """The fastest of up to ``runs`` runs, stopping once ``budget_s`` is spent (a long epoch runs once)."""
    times: list[float] = []
    while len(times) < runs and sum(times) < budget_s:
        times.append(timed(fn))
    return min(times)


_product_times: dict[tuple, float] = {}


def product_time(p) -> float:
    """Seconds for one ``MatmulCost`` (forward + its listed backward products), best of 3 after a warm-up; sparse
    products run as CSR SpMM (and its stored transpose / sampled product backward), the fastest CPU kernels."""
    import torch

    from mmrec.nn.edge_graph import EdgeGraph, edge_graph_from_sparse

    key = (p.m, p.k, p.n, p.nnz, p.grad_left, p.grad_right, id(p.graph))
    if key in _product_times:
        return _product_times[key]
    device = torch.device(DEVICE)
    if p.sparse:
        g = p.graph if isinstance(p.graph, EdgeGraph) else edge_graph_from_sparse(p.graph)
        g = g.to(device)
        values = torch.rand(g.nnz, requires_grad=p.grad_left, device=device)
        x = torch.randn(p.k, p.n, requires_grad=p.grad_right, device=device)

        def run() -> None:
            y = g.spmm(x, values)
            if p.grad_left or p.grad_right:
                y.backward(grad)
    else:
        a = torch.randn(p.m, p.k, requires_grad=p.grad_left, device=device)
        b = torch.randn(p.k, p.n, requires_grad=p.grad_right, device=device)

        def run() -> None:
            y = a @ b
            if p.grad_left or p.grad_right:
                y.backward(grad)

    grad = torch.randn(p.m, p.n, device=device)
    with torch.enable_grad():
        run()
        best = min(timed(run) for _ in range(3))
    _product_times[key] = best
    return best


def products_time(products, show: bool = False) -> float:
    total = 0.0
    for p in products:
        t = product_time(p) * p.count
        total += t
        if show:
            kind = f"sparse nnz={p.nnz:,}" if p.sparse else "dense"
            print(
                f"  {t * 1e3:9.2f} ms  {p.label}  [{p.m}, {p.k}] @ [{p.k}, {p.n}] ×{p.count} {kind} "
                f"grads={'L' * p.grad_left}{'R' * p.grad_right}",
                file=sys.stderr,
            )
    return total


def run_one(name: str, data_path: Path, threads: int, show_products: bool = False, device: str = "cpu") -> dict:
    global DEVICE
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO))
    from mmrec.runtime import configure

    DEVICE = device
    configure(device)  # as mmrec.run.train does, for the model and its yardstick alike (before the thread pool)
    torch.set_num_threads(threads)
    from benchmarks.yardsticks import yardstick_for
    from mmrec.data import load_dataset
    from mmrec.data.datamodule import GraphDataModule
    from mmrec.data.item_features import ItemFeatures
    from tests.models.common import make_model

    ds = load_dataset("baby", format="mmrec", data_dir=str(data_path.parent))
    rng = np.random.default_rng(0)
    feats = ItemFeatures(
        {
            "text": torch.from_numpy(rng.standard_normal((ds.n_items, 384), dtype=np.float32)),
            "image": torch.from_numpy(rng.random((ds.n_items, 4096), dtype=np.float32)),
        }
    )
    dm = GraphDataModule(ds, feats, batch_size=2048, seed=0)
    t0 = time.perf_counter()
    model = make_model(name, dm).to(device)
    build = time.perf_counter() - t0
    yardstick = yardstick_for(model)
    if yardstick is None:
        raise SystemExit(f"{name}: no yardstick in benchmarks/yardsticks (the benchmark needs one)")
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt[0][0] if isinstance(opt, tuple) else opt
    batches = [{k: v.to(device) for k, v in b.items()} for b in dm.train_dataloader()]
    # ---- unavoidable kernels: the products the model's yardstick lists, timed first, in a clean
    # process (timed after training, with gradients and optimiser states resident, the same products run up to
    # 2x slower here: the yardstick is their best case) --------------------------------------------------------
    model.train()
    model.on_epoch_start_hook()
    if show_products:
        print(f"{name}: one training step's products (first batch)", file=sys.stderr)
        products_time(yardstick.training(model, batches[0]), show=True)
    step_kernels = sum(products_time(yardstick.training(model, b)) for b in batches)
    step_kernels += products_time(yardstick.epoch(model))
    model.eval()
    listed = yardstick.inference(model)
    score = next(p for p in listed if p.label == "score")
    u, i = torch.randn(ds.n_users, score.k, device=device), torch.randn(ds.n_items, score.k, device=device)
    block = dm.eval_block_users
    eval_kernels = products_time([p for p in listed if p.label != "score"]) + timed(
        lambda: [torch.topk(u[s : s + block] @ i.T, 50) for s in range(0, ds.n_users, block)]
    )
    # ---- the model's own epoch and evaluation -----------------------------------------------------------------
    model.train()

    def epoch() -> None:
        model.on_epoch_start_hook()
        for batch in batches:
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()

    epoch_s = best_time(epoch)  # short epochs: best of 3 (the first pays one-off costs), long ones once
    model.eval()
    test_blocks = [{k: v.to(device) for k, v in b.items()} for b in dm.test_dataloader()]

    def evaluate() -> None:  # the real path: Recommender._start_eval / _eval_step (score, mask, metrics)
        with torch.no_grad():
            model._start_eval()
            for b in test_blocks:
                model._eval_step(b)
            model._evaluator.compute()

    evaluate()  # warm-up pass (allocator, thread pool); then the best of 3
    eval_s = best_time(evaluate)
    # one fused Adam step over the trainable parameters (as base.configure_optimizers), per batch
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    adam = torch.optim.Adam(params, lr=1e-3, fused=True)  # fused exists on CPU and CUDA
    adam.step()  # creates the optimiser states (not part of a step)
    adam_s = min(timed(adam.step) for _ in range(5))
    epoch_kernels = step_kernels + len(batches) * adam_s
    return {
        "model": name,
        "build_s": build,
        "epoch_s": epoch_s,
        "epoch_kernels_s": epoch_kernels,
        "epoch_ratio": epoch_s / max(epoch_kernels, 1e-9),
        "eval_s": eval_s,
        "eval_kernels_s": eval_kernels,
        "eval_ratio": eval_s / max(eval_kernels, 1e-9),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "batches": len(batches),
        "device": device,
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if device != "cpu" else None,
        "gpu": torch.cuda.get_device_name() if device != "cpu" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/amazon-graphs/baby.inter")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--products", action="store_true", help="print each listed product's time (to stderr)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", type=Path, help="also write every model's figures to this file (JSON lines)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.data, args.threads, args.products, args.device)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Baby graph ({args.data}), batch 2048, {args.threads} threads, {args.device}")
    memory = "peak GPU GB" if args.device != "cpu" else "peak GB"
    for col in ("model", "epoch s", "kernels s", "ratio", "eval s", "kernels s", "ratio", memory, "build s"):
        table.add_column(col, justify="right")
    console = Console()
    for name in args.models:
        if not (REPO / "conf" / "model" / f"{name}.yaml").exists():
            console.print(f"[yellow]skipping {name}: no conf/model/{name}.yaml[/yellow]")
            continue
        p = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                name,
                "--data",
                str(args.data),
                "--threads",
                str(args.threads),
                "--device",
                args.device,
                *(["--products"] if args.products else []),
            ],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            console.print(f"[red]{name} failed[/red]: {p.stderr.strip().splitlines()[-1] if p.stderr else ''}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        table.add_row(
            name,
            f"{r['epoch_s']:.1f}",
            f"{r['epoch_kernels_s']:.1f}",
            f"{r['epoch_ratio']:.2f}",
            f"{r['eval_s']:.2f}",
            f"{r['eval_kernels_s']:.2f}",
            f"{r['eval_ratio']:.2f}",
            f"{r['peak_gpu_gb'] if args.device != 'cpu' else r['peak_rss_gb']:.2f}",
            f"{r['build_s']:.1f}",
        )
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps(r) + "\n")
        if args.products:
            print(p.stderr, file=sys.stderr)
        print(json.dumps(r), flush=True)
    console.print(table)


if __name__ == "__main__":
    main()
