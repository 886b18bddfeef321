"""Scale benchmark (prints figures; never asserted): LightGCN, VBPR, FREEDOM from Baby to 1M users × 200k items.

For each size and model, in its own process (for its peak memory): data generation / loading, datamodule,
model build (kNN graphs included), an epoch's training (batch 2048: drawing the epoch's BPR triples, one warm-up
step, then ``--steps`` timed steps; the epoch time is the draw plus mean step × batches when the epoch has more
batches than that, marked ``*``, and measured whole otherwise), one full-ranking evaluation of every test user
(the real path: score, mask, metrics in user blocks) and the peak resident memory. Extra LightGCN sizes,
evaluation only, vary one axis at a time, so the growth of evaluation time is fitted per axis
(log t = c + e_u log users + e_i log items, least squares). Then kNN build time (exact and approximate) and the
approximate graph's recall of the true 10 neighbours on sampled rows.

Sizes: ``baby`` (``../shared/datasets/amazon-graphs/baby.inter``, random features of the real shapes) and
synthetic ``UxI`` (``100000x50000``, ``300000x100000``, ``1000000x200000``; ~20 interactions per user; text
384-d, image 4096-d, the image table frozen above 100k items). Every result is appended as one JSON line to
``--out/results.jsonl`` (default ``outputs/benchmarks/scale``); a rerun skips what is there and retries
what failed (resumable). Run it under the timing lock::

    flock /tmp/mmrec-timing.lock python benchmarks/scale.py [--sizes baby 100000x50000 ...] [--models ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = ["baby", "100000x50000", "300000x100000", "1000000x200000"]
MODELS = ["lightgcn", "vbpr", "freedom"]
KNN_SIZES = [10_000, 20_000, 50_000, 100_000, 200_000]
EVAL_SIZES = ["300000x50000", "1000000x50000", "100000x100000", "100000x200000"]


def uptime_load() -> float:
    return float(os.getloadavg()[0])


def load(size: str, with_features: bool):
    import numpy as np
    import torch

    from mmrec.data import load_dataset
    from mmrec.data.item_features import ItemFeatures
    from mmrec.data.synthetic import make_synthetic

    if size == "baby":
        ds = load_dataset("baby", format="mmrec", data_dir=str(REPO.parent / "shared/datasets/amazon-graphs"))
        if not with_features:
            return ds, None
        rng = np.random.default_rng(0)
        return ds, ItemFeatures(
            {
                "text": torch.from_numpy(rng.standard_normal((ds.n_items, 384), dtype=np.float32)),
                "image": torch.from_numpy(rng.random((ds.n_items, 4096), dtype=np.float32)),
            }
        )
    users, items = (int(v) for v in size.split("x"))
    modalities = {"text": {"dim": 384, "signal": 0.9}, "image": {"dim": 4096, "signal": 0.4}} if with_features else {}
    ds = make_synthetic(n_users=users, n_items=items, interactions_per_user=20, modalities=modalities)
    return ds, (ds.features if with_features else None)


def run_one(size: str, name: str, threads: int, steps: int, train: bool = True) -> dict:
    """Data, datamodule, model, ``steps`` timed training steps (after one untimed warm-up step; the whole epoch
    when it has no more batches than that) and one full evaluation of every test user, in this process."""
    import torch

    sys.path.insert(0, str(REPO))
    from mmrec.runtime import configure

    configure()
    torch.set_num_threads(threads)
    from mmrec.data.datamodule import GraphDataModule
    from tests.models.common import make_model

    timing: dict[str, float] = {}
    t = time.perf_counter()
    ds, feats = load(size, with_features=name != "lightgcn")
    timing["data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    dm = GraphDataModule(ds, feats, batch_size=2048, seed=0, knn_method="auto")
    timing["datamodule_s"] = time.perf_counter() - t
    overrides = {"freeze_features": True} if name == "freedom" and ds.n_items > 100_000 else {}
    t = time.perf_counter()
    model = make_model(name, dm, **overrides)
    timing["build_s"] = time.perf_counter() - t
    row: dict = {
        "size": size,
        "model": name,
        "kind": "train" if train else "eval",
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_train": int(dm.train.nnz),
    }
    if train:
        row.update(train_steps(model, dm, steps))
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        model._start_eval()
        n_eval = 0
        for b in dm.test_dataloader():
            model._eval_step(b)
            n_eval += len(b["users"])
        metrics = model._evaluator.compute()
    timing["eval_s"] = time.perf_counter() - t
    return {
        **row,
        **timing,
        "eval_users": n_eval,
        "recall@20": metrics["recall@20"],
        "knn": dm.data.knn_builds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "load": uptime_load(),
        "threads": threads,
    }


def train_steps(model, dm, steps: int) -> dict:
    """Time an epoch: drawing its BPR triples, then one warm-up step and ``steps`` timed ones. With more batches
    than that, the epoch time is the draw plus the mean step × batches (``epoch_measured`` false)."""
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    model.train()
    model.on_epoch_start_hook()
    dl = dm.train_dataloader()
    n_batches = len(dl)
    t = time.perf_counter()
    loader = iter(dl)
    first = next(loader)
    sample_s = time.perf_counter() - t

    def step(batch) -> None:
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()

    t = time.perf_counter()
    step(first)
    warmup_s = time.perf_counter() - t
    limit = n_batches - 1 if steps <= 0 or steps + 1 >= n_batches else steps
    t = time.perf_counter()
    timed = 0
    for batch in loader:
        if timed == limit:
            break
        step(batch)
        timed += 1
    timed_s = time.perf_counter() - t
    measured = timed == n_batches - 1
    step_s = timed_s / max(timed, 1)
    epoch_s = sample_s + warmup_s + timed_s if measured else sample_s + step_s * n_batches
    return {
        "batches": n_batches,
        "steps_timed": timed,
        "sample_s": sample_s,
        "step_s": step_s,
        "epoch_s": epoch_s,
        "epoch_measured": measured,
    }


def run_knn(n: int, modality: str, method: str, threads: int) -> dict:
    import torch

    sys.path.insert(0, str(REPO))
    torch.set_num_threads(threads)
    from mmrec.data.knn import build_knn
    from mmrec.data.synthetic import make_synthetic

    dim, signal = (384, 0.9) if modality == "text" else (4096, 0.4)
    ds = make_synthetic(
        n_users=100,
        n_items=n,
        interactions_per_user=4,
        sampler="blocked",
        modalities={modality: {"dim": dim, "signal": signal}},
    )
    _, _, info = build_knn(ds.features.tensors[modality], 10, method, recall_sample=1000)
    return {
        "knn": True,
        "n_items": n,
        "modality": modality,
        **info,
        "load": uptime_load(),
        "threads": threads,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def exponents(rows: list[dict], q: str) -> tuple[float, float] | None:
    """Least-squares (e_users, e_items) of log q = c + e_u log users + e_i log items; None when the rows do not
    vary the two axes independently (then only the product's exponent is defined)."""
    import numpy as np

    if len(rows) < 3:
        return None
    X = np.column_stack(
        [np.ones(len(rows)), [np.log(r["n_users"]) for r in rows], [np.log(r["n_items"]) for r in rows]]
    )
    if np.linalg.matrix_rank(X) < 3 or np.linalg.cond(X[:, 1:] - X[:, 1:].mean(0)) > 20:
        return None  # the sizes move both axes together: the two exponents are not identified
    coef = np.linalg.lstsq(X, np.log([r[q] for r in rows]), rcond=None)[0]
    return float(coef[1]), float(coef[2])


def exponent(xs: list[float], ys: list[float]) -> float | None:
    import numpy as np

    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def fmt(v: float | None, spec: str = "8.1f") -> str:
    return format(v, spec) if v is not None else format("-", spec[: spec.index(".")] if "." in spec else spec)


def report(rows: list[dict]) -> None:
    runs = [r for r in rows if r.get("knn") is not True and "error" not in r]  # model rows list their kNN builds
    print(
        f"\n{'size':>16} {'model':>9} {'kind':>5} {'data s':>8} {'dm s':>7} {'build s':>8} {'step s':>8} "
        f"{'epoch s':>9} {'eval s':>8} {'peak GB':>8} {'load':>5}"
    )
    for r in runs:
        epoch = f"{r['epoch_s']:8.0f}{'' if r.get('epoch_measured', True) else '*'}" if "epoch_s" in r else " " * 8
        print(
            f"{r['size']:>16} {r['model']:>9} {r.get('kind', 'train'):>5} {r['data_s']:8.1f} "
            f"{r['datamodule_s']:7.1f} {r['build_s']:8.1f} {fmt(r.get('step_s'), '8.3f')} {epoch:>9} "
            f"{r['eval_s']:8.1f} {r['peak_rss_gb']:8.2f} {r['load']:5.1f}"
        )
    print("  * epoch extrapolated: the triples' draw + mean step time × batches (steps timed: see results.jsonl)")
    failed = [r for r in rows if "error" in r]
    for r in failed:
        print(f"  failed: {r.get('size', r.get('n_items'))} {r.get('model', r.get('modality'))}: {r['error']}")
    print("\ngrowth exponents over the synthetic sizes (time ∝ users^e_u · items^e_i; or ∝ (users×items)^e):")
    for name in MODELS:
        syn = [r for r in runs if r["model"] == name and r["size"] != "baby"]
        trained = [r for r in syn if "step_s" in r]
        for q, sel in (("step_s", trained), ("epoch_s", trained), ("eval_s", syn), ("peak_rss_gb", syn)):
            if len(sel) < 2:
                continue
            both = exponents(sel, q)
            cells = exponent([r["n_users"] * r["n_items"] for r in sel], [r[q] for r in sel])
            axes = f"users {both[0]:.2f}, items {both[1]:.2f}; " if both else ""
            per_users = exponent([r["n_users"] for r in sel], [r[q] for r in sel])
            print(
                f"  {name:>9} {q:>12}: {axes}users×items {fmt(cells, '.2f')}, users alone {fmt(per_users, '.2f')}"
                f" ({len(sel)} sizes)"
            )
    knn = [r for r in rows if r.get("knn") is True and "error" not in r]
    if knn:
        print(f"\n{'kNN items':>10} {'modality':>8} {'method':>7} {'seconds':>8} {'recall@10':>9} {'load':>5}")
        for r in knn:
            rec = f"{r['recall']:.3f}" if "recall" in r else "exact"
            print(
                f"{r['n_items']:>10} {r['modality']:>8} {r['method']:>7} {r['seconds']:8.1f} {rec:>9} {r['load']:5.1f}"
            )
        for modality in ("text", "image"):
            for method in ("exact", "approx"):
                sel = [r for r in knn if r["modality"] == modality and r["method"] == method]
                e = exponent([r["n_items"] for r in sel], [r["seconds"] for r in sel])
                if e is not None:
                    print(f"  kNN {modality} {method}: time ∝ items^{e:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=SIZES)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument(
        "--eval-sizes",
        nargs="*",
        default=EVAL_SIZES,
        help="extra LightGCN sizes, evaluation only, that vary one axis (for the axis exponents)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=50,
        help="timed training steps per run (0 or more than the epoch's batches: the whole epoch)",
    )
    parser.add_argument("--knn-sizes", nargs="*", type=int, default=KNN_SIZES)
    parser.add_argument("--knn-exact-max", type=int, default=50_000, help="largest n for the exact kNN timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "scale")
    parser.add_argument("--report", action="store_true", help="only print the table of what is recorded")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--knn-one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, name, kind = args.one
        print(json.dumps(run_one(size, name, args.threads, args.steps, train=kind == "train")))
        return
    if args.knn_one:
        print(json.dumps(run_knn(int(args.knn_one[0]), args.knn_one[1], args.knn_one[2], args.threads)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    ok = [r for r in rows if "error" not in r]  # failed jobs are tried again
    done = {(r.get("size"), r.get("model"), r.get("kind", "train")) for r in ok if r.get("knn") is not True}
    done |= {(r.get("n_items"), r.get("modality"), r.get("method")) for r in ok if r.get("knn") is True}
    jobs: list[list[str]] = []
    if not args.report:
        wanted = [(s, m, "train") for m in args.models[:1] for s in args.sizes]
        wanted += [(s, "lightgcn", "eval") for s in args.eval_sizes if (s, "lightgcn", "train") not in wanted]
        wanted += [(s, m, "train") for s in args.sizes for m in args.models[1:]]
        jobs += [["--one", s, m, k] for s, m, k in wanted if (s, m, k) not in done]
        jobs += [
            ["--knn-one", str(n), mod, meth]
            for n in args.knn_sizes
            for mod in ("text", "image")
            for meth in ("exact", "approx")
            if (n, mod, meth) not in done and not (meth == "exact" and n > args.knn_exact_max)
        ]
    env = {**os.environ, "MMREC_CACHE": os.environ.get("MMREC_CACHE", str(args.out / "cache"))}
    for job in jobs:
        print("running", *job, f"(load {uptime_load():.1f})", flush=True)
        p = subprocess.run(
            [sys.executable, __file__, *job, "--threads", str(args.threads), "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
            if job[0] == "--knn-one":
                row = {"knn": True, "n_items": int(job[1]), "modality": job[2], "method": job[3], "error": tail}
            else:
                row = {"size": job[1], "model": job[2], "kind": job[3], "error": tail}
            print("  failed:", row["error"], flush=True)
        else:
            row = json.loads(p.stdout.strip().splitlines()[-1])
            print("  ", json.dumps(row), flush=True)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
    report(rows)


if __name__ == "__main__":
    main()
