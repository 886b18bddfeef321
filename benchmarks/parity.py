"""Reference parity: MMRec's own code and mmrec on the same data, the same hyper-parameters, N seeds each.

    python benchmarks/parity.py --mmrec /path/to/MMRec [--models freedom,lightgcn] [--datasets tiktok]
        [--seeds 5] [--epochs 30] [--device cuda] [--out ~/.cache/mmrec/parity]

Prints per model: mean ± sd test Recall@20 and NDCG@20 of both (test at the best-validation epoch), the
relative gap of means, Welch's p, epochs to the best validation, and training / validation-evaluation seconds
per epoch side by side. Every run's result is a JSON file under ``--out`` (outside the repository by default);
a present file is skipped, so an interrupted run resumes. ``--epochs E`` compares at matched, fixed epochs
(both sides train E epochs with early stopping off and report the test value at their best validation epoch);
without it both sides stop early by their own rule.

MMRec's side: the checkout given by ``--mmrec`` (its code is never copied into this repository). The harness
adds to it, when missing, ``src/run_fixed.py`` and ``tools/gen_user_graph_dict.py`` (from ``--tools``,
default ``../shared/mmrec-cpu``: one model, one fixed setting per run; a fast user–user graph),
``src/configs/dataset/<name>.yaml`` and ``data/<name>/`` (the interactions and the features: ``image`` in
MMRec's vision slot, the other modality in its text slot), ``user_graph_dict.npy`` (DualGNN, DRAGON) and
``item_graph_dict_2.npy`` (DA-MRS; written by mmrec's own behaviour-graph builder). ``--apply-patches`` runs
``git apply`` of ``<tools>/CPU_PATCHES.diff`` on a clean checkout (CPU machines; a GPU machine with MMRec's
own requirements runs the checkout unpatched). mmrec's side reads the very same ``data/<name>/`` folder
(modalities named as MMRec's slots) with ``protocol=mmrec``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import parity_lib  # noqa: E402

# Per model: MMRec's class name, the setting given to MMRec (its config keys; a grid key given here is fixed,
# every other grid key is collapsed to its first yaml value by run_fixed.py), and mmrec's overrides for the
# same setting (empty: mmrec's defaults already are it). Priority order: the harness runs them in this order.
SETTINGS: dict[str, dict[str, Any]] = {
    "freedom": {"mmrec": "FREEDOM", "ref": {"dropout": 0.8, "reg_weight": 1e-4}, "ours": {}},
    "lightgcn": {"mmrec": "LightGCN", "ref": {"n_layers": 2, "reg_weight": 1e-4}, "ours": {}},
    "vbpr": {"mmrec": "VBPR", "ref": {"reg_weight": 1e-4}, "ours": {"reg_weight": 1e-4}},
    "bm3": {"mmrec": "BM3", "ref": {"n_layers": 1, "reg_weight": 0.1, "dropout": 0.5}, "ours": {}},
    "lattice": {"mmrec": "LATTICE", "ref": {"reg_weight": 1e-5, "learning_rate": 5e-4}, "ours": {}},
    "mgcn": {"mmrec": "MGCN", "ref": {"cl_loss": 0.01}, "ours": {}},
    "smore": {
        "mmrec": "SMORE",
        "ref": {"n_ui_layers": 4, "image_knn_k": 40, "text_knn_k": 15, "reg_weight": 1e-4, "dropout_rate": 0.1},
        "ours": {},
    },
    # PGL's mode stays at PGL.yaml's first grid value, 'local' (``--mode`` would be read as ``--model``).
    "pgl": {"mmrec": "PGL", "ref": {"reg_weight": 0.0, "dropout": 0.2}, "ours": {}},
    "lgmrec": {"mmrec": "LGMRec", "ref": {}, "ours": {}},
    "damrs": {"mmrec": "DAMRS", "ref": {}, "ours": {}},
    "dualgnn": {"mmrec": "DualGNN", "ref": {"reg_weight": 0.1, "learning_rate": 1e-3, "aggr_mode": "add"}, "ours": {}},
    "dragon": {
        "mmrec": "DRAGON",
        "ref": {"reg_weight": 1e-3, "learning_rate": 1e-3, "aggr_mode": "add"},
        "ours": {"lr": 1e-3},
    },
    "mmgcn": {"mmrec": "MMGCN", "ref": {"reg_weight": 1e-5, "learning_rate": 1e-3}, "ours": {}},
    "grcn": {"mmrec": "GRCN", "ref": {"reg_weight": 1e-5, "learning_rate": 1e-3}, "ours": {}},
    "slmrec": {
        "mmrec": "SLMRec",
        "ref": {"learning_rate": 0.01, "ssl_temp": 0.2, "ssl_alpha": 0.1, "reg": 1e-4},
        "ours": {},
    },
}

DATASET_YAML = """# Written by mmrec's benchmarks/parity.py: MMRec dataset config for {name} (MMRec layout).
USER_ID_FIELD: userID
ITEM_ID_FIELD: itemID
TIME_FIELD: timestamp
filter_out_cod_start_users: True
inter_file_name: '{name}.inter'
vision_feature_file: 'image_feat.npy'
text_feature_file: 'text_feat.npy'
user_graph_dict_file: 'user_graph_dict.npy'
field_separator: "\\t"
"""


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ---- MMRec checkout ------------------------------------------------------------------------------------------
def prepare_checkout(checkout: Path, tools: Path, apply_patches: bool) -> None:
    """Make sure the checkout has the one-setting runner and the user-graph builder (patches on request)."""
    if not (checkout / "src" / "main.py").exists():
        raise SystemExit(f"--mmrec {checkout}: not an MMRec checkout (no src/main.py)")
    if apply_patches and not (checkout / "src" / "run_fixed.py").exists():
        diff = tools / "CPU_PATCHES.diff"
        if not diff.exists():
            raise SystemExit(f"--apply-patches: {diff} does not exist (set --tools)")
        subprocess.run(["git", "apply", str(diff)], cwd=checkout, check=True)
    for src, dst in (("run_fixed.py", "src/run_fixed.py"), ("gen_user_graph_dict.py", "tools/gen_user_graph_dict.py")):
        target = checkout / dst
        if not target.exists():
            if not (tools / src).exists():
                raise SystemExit(f"{target} is missing and {tools / src} does not exist (set --tools)")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(tools / src, target)


def prepare_dataset(checkout: Path, name: str, source: Path, ours_python: str, mmrec_python: str) -> Path:
    """``<checkout>/data/<name>/`` in MMRec's layout from a mmrec-layout folder; rebuilt when the source changes
    (stale cached ``*.pt`` item graphs are removed: MMRec keys them by ``knn_k`` only)."""
    inter = source / f"{name}.inter"
    feats = sorted(p for p in source.glob("*_feat.npy"))
    if not inter.exists():
        raise SystemExit(f"dataset {name}: {inter} does not exist")
    mods = [p.name[: -len("_feat.npy")] for p in feats]
    if "image" not in mods or len(mods) != 2:
        raise SystemExit(
            f"dataset {name}: {source} needs image_feat.npy and exactly one other <m>_feat.npy "
            f"(MMRec has a vision and a text slot); found {mods}"
        )
    other = next(m for m in mods if m != "image")
    out = checkout / "data" / name
    stamp = out / "mmrec_parity_source.json"
    want = {
        "inter": _sha(inter),
        "image": _sha(source / "image_feat.npy"),
        other: _sha(source / f"{other}_feat.npy"),
        "text_slot": other,
    }
    if not (stamp.exists() and json.loads(stamp.read_text()) == want):
        out.mkdir(parents=True, exist_ok=True)
        for p in out.glob("*.pt"):
            p.unlink()
        for f in ("user_graph_dict.npy", "item_graph_dict_2.npy"):
            (out / f).unlink(missing_ok=True)
        (out / f"{name}.inter").unlink(missing_ok=True)
        shutil.copyfile(inter, out / f"{name}.inter")
        for mod, slot in (("image", "image"), (other, "text")):
            x = np.load(source / f"{mod}_feat.npy").astype(np.float32)
            tmp = out / f".{slot}_feat.tmp.npy"
            np.save(tmp, x)
            os.replace(tmp, out / f"{slot}_feat.npy")
        stamp.write_text(json.dumps(want))
    cfg = checkout / "src" / "configs" / "dataset" / f"{name}.yaml"
    if not cfg.exists():
        cfg.write_text(DATASET_YAML.format(name=name))
    if not (out / "user_graph_dict.npy").exists():
        subprocess.run([mmrec_python, str(checkout / "tools" / "gen_user_graph_dict.py"), "-d", name], check=True)
    if not (out / "item_graph_dict_2.npy").exists():
        subprocess.run(
            [
                ours_python,
                str(HERE / "parity.py"),
                "--write-item-graph-dict",
                str(out / f"{name}.inter"),
                str(out / "item_graph_dict_2.npy"),
            ],
            check=True,
            cwd=ROOT,
        )
    return out


def write_item_graph_dict(inter: Path, target: Path, k: int = 2, min_count: int = 2) -> None:
    """DA-MRS's ``item_graph_dict_2.npy`` from mmrec's own behaviour-graph builder: per item, its top-``k``
    co-interacted items (≥ ``min_count`` common training users) and their counts (MMRec adds the self-loop)."""
    import pandas as pd
    import scipy.sparse as sp

    from mmrec.nn.consensus_item_graphs import cooccurrence_knn_edges

    df = pd.read_csv(inter, sep="\t")
    tr = df[df["x_label"] == 0]
    n_users, n_items = int(df["userID"].max()) + 1, int(df["itemID"].max()) + 1
    train = sp.csr_matrix(
        (np.ones(len(tr), dtype=np.float32), (tr["userID"].to_numpy(), tr["itemID"].to_numpy())),
        shape=(n_users, n_items),
    )
    train.data[:] = 1.0
    rows, cols = cooccurrence_knn_edges(train, k, min_count, ties="lowest_index")
    counts = (train.T @ train).tocsr()
    out: dict[int, list[list[int | float]]] = {}
    for r, c in zip(rows.tolist(), cols.tolist()):
        if r != c:
            entry = out.setdefault(r, [[], []])
            entry[0].append(c)
            entry[1].append(float(counts[r, c]))
    tmp = target.with_suffix(".tmp.npy")
    np.save(tmp, np.array(out, dtype=object), allow_pickle=True)
    os.replace(tmp, target)


# ---- one run per side ----------------------------------------------------------------------------------------
def run_mmrec_side(
    checkout: Path,
    python: str,
    model: str,
    dataset: str,
    seed: int,
    epochs: int | None,
    device: str,
    folder: Path,
    threads: int | None,
) -> dict[str, Any]:
    s = SETTINGS[model]
    args = [python, str(checkout / "src" / "run_fixed.py"), "-m", s["mmrec"], "-d", dataset, f"--seed={seed}"]
    args += parity_lib.runner_overrides(s["ref"])
    if epochs is not None:
        args += [f"--epochs={epochs}", "--stopping_step=1000000"]
    args.append(f"--use_gpu={'True' if device == 'cuda' else 'False'}")
    if threads:
        args.append(f"--threads={threads}")
    log = folder / "mmrec.log"
    t = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, cwd=checkout / "src")
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"MMRec {model} seed {seed} failed (exit {proc.returncode}); see {log}")
    runs = parity_lib.parse_mmrec_log(log.read_text(errors="replace"))
    if len(runs) != 1:
        raise RuntimeError(f"{log}: expected one run, found {len(runs)}")
    rec = parity_lib.mmrec_log_record(runs[0])
    rec["command"] = " ".join(args)
    rec["wall_s"] = wall
    return rec


def run_ours_side(
    python: str, model: str, dataset: str, data_dir: Path, seed: int, epochs: int | None, device: str, folder: Path
) -> dict[str, Any]:
    s = SETTINGS[model]
    run_dir = folder / "run"
    timer = folder / "epoch_times.jsonl"
    args = [
        python,
        str(ROOT / "train.py"),
        f"model={model}",
        f"dataset={dataset}",
        f"dataset.data_dir={data_dir}",
        "dataset.modalities=[image,text]",
        "protocol=mmrec",
        f"seed={seed}",
        "logger=none",
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
        "+callbacks.epoch_timer._target_=parity_timer.EpochTimer",
        f"+callbacks.epoch_timer.path={timer}",
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
    ]
    args += [f"model.{k}={parity_lib.yaml_value(v)}" for k, v in s["ours"].items()]
    if epochs is not None:
        args += [f"trainer.max_epochs={epochs}", "callbacks.early_stopping.patience=1000000"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = folder / "mmrec-ours.log"
    t = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"mmrec {model} seed {seed} failed (exit {proc.returncode}); see {log}")
    summary = json.loads((run_dir / "summary.json").read_text())
    times = [json.loads(line) for line in timer.read_text().splitlines() if line.strip()]
    rec = parity_lib.ours_record(summary, times)
    rec["command"] = " ".join(args)
    rec["wall_s"] = wall
    return rec


def result_path(out: Path, dataset: str, model: str, side: str, seed: int, epochs: int | None) -> Path:
    mode = "early_stopping" if epochs is None else f"fixed{epochs}"
    return out / dataset / mode / model / f"{side}-seed{seed}.json"


def claim(path: Path) -> bool:
    """Take ``<result>.lock`` for this process (several harnesses may share one ``--out``); False when another
    live process holds it. A lock whose process is gone is taken over."""
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
                return False
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale
                continue
            except PermissionError:
                return False
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def load_records(out: Path, datasets: list[str], models: list[str], seeds: list[int], epochs: int | None) -> list[dict]:
    recs = []
    for d in datasets:
        for m in models:
            for side in parity_lib.SIDES:
                for s in seeds:
                    p = result_path(out, d, m, side, s, epochs)
                    if p.exists():
                        recs.append(json.loads(p.read_text()))
    return recs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mmrec", type=Path, help="an MMRec checkout (enoche/MMRec; e775373 tested)")
    ap.add_argument("--models", default=",".join(SETTINGS), help="comma list (default: all, priority order)")
    ap.add_argument("--datasets", default="tiktok", help="comma list of dataset names")
    ap.add_argument(
        "--data-root",
        type=Path,
        default=ROOT.parent / "shared" / "datasets",
        help="folder holding <dataset>/ in the MMRec layout (default ../shared/datasets)",
    )
    ap.add_argument("--seeds", default="5", help="a count N (seeds 1..N) or a comma list")
    ap.add_argument("--epochs", type=int, default=None, help="matched fixed epochs (default: early stopping)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("MMREC_PARITY_OUT", Path.home() / ".cache" / "mmrec" / "parity")),
    )
    ap.add_argument(
        "--tools",
        type=Path,
        default=ROOT.parent / "shared" / "mmrec-cpu",
        help="folder with run_fixed.py, gen_user_graph_dict.py, CPU_PATCHES.diff",
    )
    ap.add_argument("--apply-patches", action="store_true", help="git apply <tools>/CPU_PATCHES.diff if needed")
    ap.add_argument("--mmrec-python", default=None, help="MMRec's interpreter (default <checkout>/.venv/bin/python)")
    ap.add_argument("--sides", default="MMRec,mmrec", help="which sides to run (the table shows what exists)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of MMRec's runs")
    ap.add_argument("--report-only", action="store_true", help="print the table of what is on disk")
    ap.add_argument("--write-item-graph-dict", nargs=2, metavar=("INTER", "TARGET"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.write_item_graph_dict:
        write_item_graph_dict(Path(a.write_item_graph_dict[0]), Path(a.write_item_graph_dict[1]))
        return
    models = [m.strip().lower() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SETTINGS]
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; choose from {list(SETTINGS)}")
    datasets = [d.strip() for d in a.datasets.split(",") if d.strip()]
    seeds = list(range(1, int(a.seeds) + 1)) if "," not in a.seeds else [int(s) for s in a.seeds.split(",")]
    sides = [s.strip() for s in a.sides.split(",")]
    if not a.report_only:
        if a.mmrec is None:
            raise SystemExit("--mmrec <checkout> is required (or --report-only)")
        checkout = a.mmrec.resolve()
        mmrec_python = a.mmrec_python or str(checkout / ".venv" / "bin" / "python")
        prepare_checkout(checkout, a.tools.resolve(), a.apply_patches)
        for d in datasets:
            data_dir = prepare_dataset(checkout, d, (a.data_root / d).resolve(), sys.executable, mmrec_python)
            for m in models:
                for s in seeds:
                    for side in sides:
                        path = result_path(a.out, d, m, side, s, a.epochs)
                        if path.exists() or not claim(path):
                            continue
                        folder = path.with_suffix("")
                        folder.mkdir(parents=True, exist_ok=True)
                        print(f"[parity] {d} {m} {side} seed {s} ...", flush=True)
                        try:
                            if side == "MMRec":
                                rec = run_mmrec_side(
                                    checkout, mmrec_python, m, d, s, a.epochs, a.device, folder, a.threads
                                )
                            else:
                                rec = run_ours_side(sys.executable, m, d, data_dir, s, a.epochs, a.device, folder)
                        except RuntimeError as e:
                            print(f"[parity] FAILED: {e}", flush=True)
                            path.with_suffix(".lock").unlink(missing_ok=True)
                            continue
                        rec.update({"model": m, "dataset": d, "seed": s, "epochs_mode": a.epochs})
                        tmp = path.with_suffix(".tmp")
                        tmp.write_text(json.dumps(rec, indent=1))
                        os.replace(tmp, path)
                        path.with_suffix(".lock").unlink(missing_ok=True)
                        print(
                            f"[parity]   test recall@20 {rec['test']['recall@20']:.4f} best epoch {rec['best_epoch']}",
                            flush=True,
                        )
    rows = parity_lib.summarise(load_records(a.out, datasets, models, seeds, a.epochs))
    print(parity_lib.format_table(rows))
    if rows:
        v = parity_lib.verdict(rows)
        print(
            f"\nbeyond ±3% and significant (p<0.05): {v['failing'] or 'none'}; mmrec below MMRec in "
            f"{v['n_below']}/{v['n_models']} models (sign test p = {v['sign_test_p']:.2f})"
        )


if __name__ == "__main__":
    main()
