"""One model over 2 CPU processes (Lightning DDP, gloo): same metrics on the same weights, same training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmrec.distributed import shard_positions

JOB = Path(__file__).with_name("ddp_job.py")


def test_shards_of_a_batch_partition_it() -> None:
    for n, world in ((10, 2), (7, 3), (2, 4)):
        shards = [shard_positions(n, r, world) for r in range(world)]
        assert all(len(s) >= 1 for s in shards)
        if n >= world:  # a partition: every row exactly once
            assert sorted(np.concatenate(shards).tolist()) == list(range(n))


def test_triplet_shards_union_is_the_single_process_epoch() -> None:
    from mmrec.data.sampling import TripletSampler

    pairs = np.stack([np.arange(1000) % 50, np.arange(1000) % 97], axis=1)
    single = list(TripletSampler(pairs, 97, 128, seed=3, epoch_fn=lambda: 1, shard_fn=lambda: (0, 1)))
    ranks = [
        list(TripletSampler(pairs, 97, 128, seed=3, epoch_fn=lambda: 1, shard_fn=lambda r=r: (r, 2))) for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(single)  # same number of steps on every rank
    for b, batch in enumerate(single):
        whole = {tuple(t) for t in zip(*(batch[k].tolist() for k in ("users", "pos_items", "neg_items")))}
        parts = [
            tuple(t)
            for r in range(2)
            for t in zip(*(ranks[r][b][k].tolist() for k in ("users", "pos_items", "neg_items")))
        ]
        assert len(parts) == len(batch["users"]) and set(parts) == whole


def _run(devices: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    env.pop("MASTER_PORT", None)
    proc = subprocess.run(
        [sys.executable, str(JOB), "--devices", str(devices), "--out", str(out)],
        cwd=JOB.parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path: Path) -> None:
    one = _run(1, tmp_path / "one.json")
    two = _run(2, tmp_path / "two.json")
    assert (one["world"], two["world"]) == (1, 2)
    # the same initial weights: identical metrics, every user evaluated once after gathering
    assert two["init"] == one["init"] and two["n_init"] == one["n_init"]
    # training: the shards of each batch together are the single-process batch, so the runs agree within noise
    r1, r2 = one["trained"]["val/recall@20"], two["trained"]["val/recall@20"]
    assert r1 > one["init"]["val/recall@20"] + 0.05
    assert abs(r1 - r2) < 0.02
