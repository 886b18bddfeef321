"""Helpers to run the toy Hydra app (tests/sweeps/toy_app) as a real multirun in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna

from mmrec.sweeps.storage import open_storage, resolve_url

REPO = Path(__file__).resolve().parents[2]
TOY = Path(__file__).resolve().parent / "toy_app" / "toy_train.py"
STUDY_QUAD = "toy__quad__none__ko=none@train__freeze=default__protocol=default"
STUDY_CUBE = "toy__cube__none__ko=none@train__freeze=default__protocol=default"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["OMP_NUM_THREADS"] = "1"
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("WANDB_MODE", "disabled")
    return e


def command(*overrides: str, multirun: bool = True) -> list[str]:
    return [sys.executable, str(TOY), *(["-m"] if multirun else []), *overrides]


def run_toy(cwd: Path, *overrides: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python toy_train.py -m <overrides>`` in ``cwd``; raises with its output when ``check`` and it fails."""
    proc = subprocess.run(command(*overrides), cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"toy sweep failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def spawn(cwd: Path, *overrides: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command(*overrides), cwd=cwd, env=env(), stdout=out, stderr=subprocess.STDOUT)


def load_study(name: str, storage: str | None = None, cwd: Path | None = None) -> optuna.Study:
    url = resolve_url(storage, (cwd or Path.cwd()) / "outputs")
    return optuna.load_study(study_name=name, storage=open_storage(url))


def study_names(storage_url: str) -> list[str]:
    return sorted(s.study_name for s in optuna.get_all_study_summaries(open_storage(storage_url)))


def summary_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def objective(x: float, y: float) -> float:
    """The toy app's function, reached at its last epoch."""
    return 1.0 - (x - 0.3) ** 2 - 0.1 * (y - 1) ** 2


def best_value(x: float, y: float, epochs: int = 4) -> float:
    """What the toy app returns: the best of its per-epoch values ``objective * (epoch + 1) / epochs``."""
    return max(objective(x, y) * (e + 1) / epochs for e in range(epochs))
