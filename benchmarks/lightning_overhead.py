"""Lightning's cost per epoch: ``train.py``'s real path against the bare loop of ``benchmarks/models.py``
(prints figures; never asserted).

One process, two identical models on the Baby graph (random features of the real shapes, batch 2048). The
Lightning model trains through a Trainer built exactly as ``mmrec.run`` builds it (``conf/trainer/<trainer>``,
the default callbacks and loggers: progress bar, CSV + offline W&B, early stopping, checkpoints, validation every
epoch); at the start of each of its epochs a callback first runs one bare epoch of the other model (the loop of
``benchmarks/models.py``: pre-drawn batches, ``zero_grad``, ``loss().backward()``, ``step()``), so the two
alternate and see the same machine load. A Lightning epoch is timed from its start to the end of its last
training batch (its negative sampling and per-epoch hook included, validation excluded); validation is timed
separately. Usage::

    flock /tmp/mmrec-timing.lock python benchmarks/lightning_overhead.py [--model freedom] [--epochs 4]
        [--device cpu|cuda] [--threads 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="freedom")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/amazon-graphs/baby.inter")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from mmrec.runtime import configure

    configure(args.device)
    import numpy as np
    import pytorch_lightning as pl
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mmrec.data import load_dataset
    from mmrec.data.datamodule import GraphDataModule
    from mmrec.data.item_features import ItemFeatures
    from mmrec.run import AtomicCheckpointIO, _loggers
    from tests.models.common import make_model

    torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_MODE", "offline")
    out = args.out or Path(tempfile.mkdtemp(prefix="mmrec-overhead-"))
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("baby", format="mmrec", data_dir=str(args.data.parent))
    rng = np.random.default_rng(0)
    feats = ItemFeatures(
        {
            "text": torch.from_numpy(rng.standard_normal((ds.n_items, 384), dtype=np.float32)),
            "image": torch.from_numpy(rng.random((ds.n_items, 4096), dtype=np.float32)),
        }
    )
    dm = GraphDataModule(ds, feats, batch_size=2048, seed=0)
    device = torch.device(args.device)
    bare = make_model(args.model, dm).to(device)
    bare_opt = bare.configure_optimizers()
    bare_opt = bare_opt["optimizer"] if isinstance(bare_opt, dict) else bare_opt
    batches = [{k: v.to(device) for k, v in b.items()} for b in dm.train_dataloader()]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def bare_epoch() -> float:
        sync()
        t, c = time.perf_counter(), time.process_time()
        bare.train()
        bare.on_epoch_start_hook()
        for batch in batches:
            bare_opt.zero_grad()
            bare.loss(batch).backward()
            bare_opt.step()
        sync()
        times["bare_cpu"].append(time.process_time() - c)
        return time.perf_counter() - t

    # wall seconds, and the process's CPU seconds (robust to other processes competing for the cores; with
    # OMP_WAIT_POLICY=PASSIVE and one thread it is the work done)
    times: dict[str, list[float]] = {
        "bare": [],
        "lightning": [],
        "validation": [],
        "cycle": [],
        "bare_cpu": [],
        "lightning_cpu": [],
    }

    class Alternate(pl.Callback):
        start: float | None = None

        def on_train_epoch_start(self, trainer, module) -> None:  # noqa: ANN001
            sync()
            if self.start is not None:  # the whole previous epoch: batches, validation, checkpoints, callbacks
                times["cycle"].append(time.perf_counter() - self.start)
            times["bare"].append(bare_epoch())
            sync()
            self.start, self.start_cpu = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            if batch_idx + 1 == trainer.num_training_batches:
                sync()
                times["lightning"].append(time.perf_counter() - self.start)
                times["lightning_cpu"].append(time.process_time() - self.start_cpu)

        def on_validation_epoch_start(self, trainer, module) -> None:  # noqa: ANN001
            sync()
            self.val_start = time.perf_counter()

        def on_validation_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
            sync()
            times["validation"].append(time.perf_counter() - self.val_start)

    trainer_name = "gpu" if device.type == "cuda" else "default"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"model={args.model}",
                f"trainer={trainer_name}",
                f"trainer.max_epochs={args.epochs}",
                f"paths.output_dir={out}",
            ],
        )
    model = make_model(args.model, dm)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [Alternate()]
    loggers = _loggers(
        cfg, out, "overhead", {"dataset": "baby", "model": args.model, "encoder": "random", "knockout": "none"}
    )
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(out),
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(model, datamodule=dm)

    def summary(xs: list[float]) -> str:
        rest = xs[1:] or xs  # the first epoch of each pays one-off costs
        return f"median {statistics.median(rest):.2f} s (epochs {', '.join(f'{x:.2f}' for x in xs)})"

    bare_s, light_s = (
        statistics.median(times["bare"][1:] or times["bare"]),
        statistics.median(times["lightning"][1:] or times["lightning"]),
    )
    print(f"{args.model} on the Baby graph, {args.device}, {args.threads} threads, {len(batches)} batches/epoch")
    print(f"  bare loop        {summary(times['bare'])}")
    print(f"  train.py's path  {summary(times['lightning'])}")
    print(f"  validation       {summary(times['validation'])}")
    if times["cycle"]:  # start to start: everything Lightning does per epoch except the bare model's epoch
        cycles = [c - v for c, v in zip(times["cycle"], times["validation"])]
        print(f"  epoch without validation, checkpoints and callbacks included: {summary(cycles)}")
    print(f"  overhead         {100 * (light_s / bare_s - 1):+.1f}% (wall)")
    bare_c = statistics.median(times["bare_cpu"][1:] or times["bare_cpu"])
    light_c = statistics.median(times["lightning_cpu"][1:] or times["lightning_cpu"])
    print(f"  CPU seconds      bare {summary(times['bare_cpu'])}")
    print(f"                   train.py's path {summary(times['lightning_cpu'])}")
    print(f"  overhead         {100 * (light_c / bare_c - 1):+.1f}% (process CPU time)")
    record = {
        "model": args.model,
        "device": args.device,
        "bare_s": times["bare"],
        "lightning_s": times["lightning"],
        "validation_s": times["validation"],
        "cycle_s": times["cycle"],
        "overhead": light_s / bare_s - 1,
        "bare_cpu_s": times["bare_cpu"],
        "lightning_cpu_s": times["lightning_cpu"],
        "load": os.getloadavg(),
    }
    print(json.dumps(record))
    if args.json:
        args.json.write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
