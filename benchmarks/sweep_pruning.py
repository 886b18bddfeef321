"""The same FREEDOM sweep on the synthetic set with and without pruning: trials per hour and best value.

    python benchmarks/sweep_pruning.py [--trials 20] [--pruner median] [--max-epochs 1000] [-- overrides]

Both sweeps use the same sampler (TPE, seed 0), search space (conf/hparams_search/freedom.yaml) and trial
budget; only ``hydra/sweeper/pruner`` differs. Prints, per variant: wall time, trials per hour, epochs trained
(a machine-independent measure of the work), trials pruned, and the best validation value (``cfg.monitor``).
The target (issue 6): pruning at least doubles throughput with no worse best value. Results land in a
temporary folder (``--workdir`` to keep them); nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def epochs_trained(trial) -> int:  # noqa: ANN001 - an optuna FrozenTrial
    """Epochs the trial trained: its summary's ``epochs_run``, else its number of reported epochs."""
    import json

    try:
        record = json.loads((Path(trial.user_attrs["mmrec:run_dir"]) / "summary.json").read_text())
        if record.get("epochs_run"):
            return int(record["epochs_run"])
    except (KeyError, OSError, ValueError):
        pass
    return len(trial.intermediate_values)


def run_sweep(workdir: Path, name: str, pruner: str, args: argparse.Namespace, extra: list[str]) -> dict:
    import optuna

    from mmrec.sweeps.storage import open_storage, resolve_url

    url = resolve_url(str(workdir / "optuna-journal.log"))
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/sweeper=mmrec_optuna",
        f"model={args.model}",
        f"dataset={args.dataset}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.storage='{url}'",
        f"hydra.sweeper.output_root='{workdir}'",
        f"hydra/sweeper/pruner={pruner}",
        f"trainer.max_epochs={args.max_epochs}",
        "trainer.enable_progress_bar=false",
        *extra,
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "MMREC_CACHE": str(workdir / "cache")}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweep {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    trials = study.trials
    return {
        "variant": name,
        "pruner": pruner,
        "seconds": seconds,
        "trials": len(trials),
        "trials_per_hour": len(trials) / seconds * 3600,
        "epochs": sum(epochs_trained(t) for t in trials),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "failed": sum(t.state == optuna.trial.TrialState.FAIL for t in trials),
        "best_value": study.best_value,
        "best_params": study.best_params,
    }


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pruner", default="median", help="hydra/sweeper/pruner option for the pruned sweep")
    parser.add_argument("--model", default="freedom")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--workdir", default=None, help="keep the outputs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmrec-bench-") as tmp:
        workdir = Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        rows = [
            run_sweep(workdir, "bench-no-pruning", "none", args, extra),
            run_sweep(workdir, f"bench-{args.pruner}", args.pruner, args, extra),
        ]
    print(f"\n{args.trials}-trial {args.model} sweep on {args.dataset} (TPE seed 0, max {args.max_epochs} epochs)")
    print(f"{'variant':<22}{'wall s':>9}{'trials/h':>10}{'epochs':>8}{'pruned':>8}{'failed':>8}{'best value':>12}")
    for r in rows:
        print(
            f"{r['variant']:<22}{r['seconds']:>9.0f}{r['trials_per_hour']:>10.1f}{r['epochs']:>8}{r['pruned']:>8}"
            f"{r['failed']:>8}{r['best_value']:>12.5f}"
        )
    base, pruned = rows
    print(
        f"throughput ×{pruned['trials_per_hour'] / base['trials_per_hour']:.2f} (epochs ×"
        f"{base['epochs'] / max(pruned['epochs'], 1):.2f} fewer); best value {pruned['best_value']:.5f} vs "
        f"{base['best_value']:.5f}"
    )
    for r in rows:
        print(f"  {r['variant']}: best params {r['best_params']}")


if __name__ == "__main__":
    main()
