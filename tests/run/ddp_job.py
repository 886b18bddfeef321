"""Run by ``test_ddp.py`` (not a test): LightGCN on a small synthetic set over ``--devices`` CPU processes.

Evaluates the seeded initial weights, trains ``--epochs`` epochs, evaluates again; global rank 0 writes the
metrics to ``--out`` as JSON. With ``--devices 2`` Lightning re-runs this script for rank 1 (gloo backend).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.synthetic import make_synthetic

CONF = Path(__file__).resolve().parents[2] / "conf" / "model" / "lightgcn.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = make_synthetic(n_users=300, n_items=200, interactions_per_user=14, split={"seed": 0})
    dm = GraphDataModule(ds, None, batch_size=256, seed=0, eval_block_users=16)  # 19 blocks: uneven shards
    cfg = OmegaConf.to_container(OmegaConf.load(CONF))
    cfg.pop("name", None)
    cfg["lr"] = 0.01
    pl.seed_everything(0, verbose=False)
    model = get_class(cfg.pop("_target_"))(data=dm.data, **cfg)
    model.configure_evaluation(seed=0, run_seed=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        use_distributed_sampler=False,
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=max(1, args.epochs),
        deterministic="warn",
    )
    trainer.validate(model, datamodule=dm, verbose=False)
    at_init = dict(model.val_history[-1]) if model.val_history else {}
    n_init = model._evaluator.n_evaluated
    model.val_history.clear()
    trainer.fit(model, datamodule=dm)
    trained = dict(model.val_history[-1])
    if trainer.is_global_zero:
        Path(args.out).write_text(
            json.dumps({"init": at_init, "n_init": n_init, "trained": trained, "world": trainer.world_size})
        )


if __name__ == "__main__":
    main()
