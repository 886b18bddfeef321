"""Scale benchmark (prints figures; never asserted): LightGCN, VBPR, FREEDOM from Baby to 1M users × 200k items.

For each size and model, in its own process (for its peak memory): data generation / loading, datamodule,
model build (kNN graphs included), one training epoch (batch 2048, every training pair once), one full-ranking
evaluation of every test user (the real path: score, mask, metrics in user blocks) and the peak resident
memory. Then kNN build time (exact and approximate) and the approximate graph's recall of the true 10
neighbours on sampled rows. Growth exponents are least-squares slopes of log(time) against log(users),
log(items) and log(users × items) over the synthetic sizes.

Sizes: ``baby`` (``../shared/datasets/amazon-graphs/baby.inter``, random features of the real shapes) and
synthetic ``UxI`` (``100000x50000``, ``300000x100000``, ``1000000x200000``; ~20 interactions per user; text
384-d, image 4096-d, the image table frozen above 100k items). Every result is appended as one JSON line to
``--out/results.jsonl``; a rerun skips what is there (resumable). Run it under the timing lock::

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


def run_one(size: str, name: str, threads: int) -> dict:
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
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    model.train()
    t = time.perf_counter()
    model.on_epoch_start_hook()
    n_batches = 0
    for batch in dm.train_dataloader():
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
        n_batches += 1
    timing["epoch_s"] = time.perf_counter() - t
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        model._start_eval()
        for b in dm.test_dataloader():
            model._eval_step(b)
        metrics = model._evaluator.compute()
    timing["eval_s"] = time.perf_counter() - t
    return {
        "size": size,
        "model": name,
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_train": int(dm.train.nnz),
        "batches": n_batches,
        **timing,
        "recall@20": metrics["recall@20"],
        "knn": dm.data.knn_builds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "load": uptime_load(),
        "threads": threads,
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


def exponent(xs: list[float], ys: list[float]) -> float | None:
    import numpy as np

    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def report(rows: list[dict]) -> None:
    runs = [r for r in rows if not r.get("knn") and "error" not in r]
    print(
        f"\n{'size':>16} {'model':>9} {'data s':>8} {'dm s':>7} {'build s':>8} {'epoch s':>8} {'eval s':>8} "
        f"{'peak GB':>8} {'load':>5}"
    )
    for r in runs:
        print(
            f"{r['size']:>16} {r['model']:>9} {r['data_s']:8.1f} {r['datamodule_s']:7.1f} {r['build_s']:8.1f} "
            f"{r['epoch_s']:8.1f} {r['eval_s']:8.1f} {r['peak_rss_gb']:8.2f} {r['load']:5.1f}"
        )
    print("\ngrowth exponents over the synthetic sizes (time ∝ size^e):")
    for name in MODELS:
        syn = [r for r in runs if r["model"] == name and r["size"] != "baby"]
        if len(syn) < 2:
            continue
        cells = [r["n_users"] * r["n_items"] for r in syn]
        for q in ("epoch_s", "eval_s", "peak_rss_gb"):
            ys = [r[q] for r in syn]
            e_u, e_i = exponent([r["n_users"] for r in syn], ys), exponent([r["n_items"] for r in syn], ys)
            e_c = exponent(cells, ys)
            print(f"  {name:>9} {q:>12}: per users {e_u:.2f}, per items {e_i:.2f}, per users×items {e_c:.2f}")
    knn = [r for r in rows if r.get("knn") and "error" not in r]
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
    parser.add_argument("--knn-sizes", nargs="*", type=int, default=KNN_SIZES)
    parser.add_argument("--knn-exact-max", type=int, default=50_000, help="largest n for the exact kNN timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/work/runs/scale"))
    parser.add_argument("--report", action="store_true", help="only print the table of what is recorded")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--knn-one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.threads)))
        return
    if args.knn_one:
        print(json.dumps(run_knn(int(args.knn_one[0]), args.knn_one[1], args.knn_one[2], args.threads)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r.get("size"), r.get("model")) for r in rows} | {
        (r.get("n_items"), r.get("modality"), r.get("method")) for r in rows if r.get("knn")
    }
    jobs: list[list[str]] = []
    if not args.report:
        jobs += [["--one", s, m] for m in args.models for s in args.sizes if (s, m) not in done]
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
            [sys.executable, __file__, *job, "--threads", str(args.threads)], capture_output=True, text=True, env=env
        )
        if p.returncode != 0:
            row = {"size": job[1], "model": job[2], "error": (p.stderr.strip().splitlines() or ["?"])[-1]}
            print("  failed:", row["error"], flush=True)
            if job[0] == "--knn-one":
                row = {"knn": True, "n_items": int(job[1]), "modality": job[2], "method": job[3], **row}
        else:
            row = json.loads(p.stdout.strip().splitlines()[-1])
            print("  ", json.dumps(row), flush=True)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
    report(rows)


if __name__ == "__main__":
    main()
