"""A toy ``train.py`` with the lead's contract (no training): returns the best per-epoch value of a known
function of the parameters, reports each epoch to its Optuna trial, writes ``summary.json``.

    value(epoch) = (1 - (x - 0.3)^2 - 0.1 (y - 1)^2) * (epoch + 1) / epochs
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import hydra
import jsonschema
import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))  # the repository (for hydra_plugins + mmrec)

from mmrec.sweeps.link import TrialLink  # noqa: E402

# mmrec.summary would validate the same way, but importing it imports torch (seconds per job here).
SCHEMA = json.loads((REPO / "mmrec" / "summary.schema.json").read_text())


def objective(x: float, y: float) -> float:
    return 1.0 - (x - 0.3) ** 2 - 0.1 * (y - 1) ** 2


def write_summary(cfg: DictConfig, out: Path, status: str, best: float | None, error: str | None = None) -> None:
    val = {"score": best}
    test = {} if cfg.role == "trial" or best is None else {"score": best - 0.001 * cfg.seed}
    record = {
        "schema_version": 1,
        "role": cfg.role,
        "status": status,
        "error": error,
        "study": cfg.study or "toy",
        "trial_number": cfg.sweep.trial_number,
        "transfer_from": cfg.transfer_from,
        "condition": {
            "dataset": "toy",
            "model": cfg.model.name,
            "encoder": "none",
            "knockout": {},
            "knockout_phase": "train",
            "freeze_features": None,
            "protocol": "default",
        },
        "seeds": {"seed": cfg.seed, "split": 0, "run": cfg.seed, "knockout": 0},
        "hashes": {"interactions": "toy", "features": None},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "hparams": {"model.x": cfg.model.x, "model.y": cfg.model.y},
        "dataset_stats": {"n_users": 1, "n_items": 1, "n_train": 1, "n_val": 1, "n_test": 1},
        "metrics": {"val": val, "test": test},
        "n_eval_users": {},
        "timing": {},
        "memory": {},
        "versions": {},
        "git_sha": None,
        "paths": {"run_dir": str(out)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    jsonschema.validate(record, SCHEMA)
    (out / "summary.json").write_text(json.dumps(record, indent=2))


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    out = Path(HydraConfig.get().runtime.output_dir)
    link = None
    if cfg.sweep.trial_number is not None and cfg.sweep.prune:
        link = TrialLink(cfg.sweep.storage, cfg.sweep.study_name, cfg.sweep.trial_number)
    best = -math.inf
    try:
        if cfg.sweep.trial_number is not None and cfg.sweep.trial_number in cfg.crash_trials:
            raise RuntimeError(f"deliberate crash of trial {cfg.sweep.trial_number}")
        for epoch in range(cfg.epochs):
            time.sleep(cfg.sleep)
            value = objective(cfg.model.x, cfg.model.y) * (epoch + 1) / cfg.epochs
            best = max(best, value)
            if link is not None:
                link.report_or_prune(value, epoch)
    except optuna.TrialPruned:
        write_summary(cfg, out, "pruned", best)
        raise
    except Exception as e:
        write_summary(cfg, out, "failed", None, str(e))
        raise
    write_summary(cfg, out, "completed", best)
    return best


if __name__ == "__main__":
    main()
