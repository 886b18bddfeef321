"""How much of each model's product work is the work its math needs (prints figures; never asserted).

For one training step and one evaluation of every user, on a small synthetic set: the FLOPs of the products the
model's yardstick lists (``training`` / ``inference``, :mod:`benchmarks.yardsticks`) over the FLOPs of every
dense and sparse product the
step really executes. 1.00: no product beyond the math; below 1: products the math does not need (waste), or
work the list does not claim. Usage::

    python benchmarks/product_check.py [model ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    from benchmarks.models import DEFAULT_MODELS
    from benchmarks.yardsticks import yardstick_for
    from benchmarks.yardsticks.cost import total_flops
    from benchmarks.yardsticks.counter import count_work
    from mmrec.data import load_dataset
    from mmrec.data.datamodule import GraphDataModule
    from tests.models.common import make_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    args = parser.parse_args()
    ds = load_dataset(
        "synthetic-check",
        format="synthetic",
        split={"seed": 0},
        synthetic=dict(n_users=400, n_items=300, interactions_per_user=14, data_seed=3),
    )
    dm = GraphDataModule(ds, ds.features, batch_size=512, seed=0)

    def ratio(claimed: int, done: int) -> str:
        return f"{claimed / done:5.2f}" if done else "   - "

    print("model      train dense  sparse | eval dense  sparse   (listed / performed FLOPs)")
    for name in args.models:
        model = make_model(name, dm)
        yardstick = yardstick_for(model)
        if yardstick is None:
            print(f"{name:10s} (no yardstick)")
            continue
        model.train()
        model.on_epoch_start_hook()
        batch = next(iter(dm.train_dataloader()))
        listed = yardstick.training(model, batch) + yardstick.epoch(model)  # the first step of an epoch
        done = count_work(lambda m=model, b=batch: m.loss(b).backward())
        model.eval()
        with torch.no_grad():
            done_eval = count_work(lambda m=model: m.score(torch.arange(dm.data.n_users)))
        listed_eval = yardstick.inference(model)
        print(
            f"{name:10s} {ratio(total_flops(listed, False), done['dense']):>11s} "
            f"{ratio(total_flops(listed, True), done['sparse']):>7s} | "
            f"{ratio(total_flops(listed_eval, False), done_eval['dense']):>10s} "
            f"{ratio(total_flops(listed_eval, True), done_eval['sparse']):>7s}"
        )


if __name__ == "__main__":
    main()
