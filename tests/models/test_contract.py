"""What every gradient model promises, checked for all of them: seeded determinism, finiteness under degenerate
knockouts, and a run on real data. Model-specific maths lives in each model's own test file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks.yardsticks import yardstick_for
from benchmarks.yardsticks.cost import total_flops
from benchmarks.yardsticks.counter import count_work
from mmrec.features.knockout import Knockout
from tests.models.common import all_scores, fit, make_model, test_metrics, with_features

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
NOT_GRADIENT = {"mostpop", "itemknn", "attributeknn"}
MODELS = sorted(p.stem for p in CONF.glob("*.yaml") if p.stem not in NOT_GRADIENT)
MULTIMODAL = [m for m in MODELS if m not in ("bpr", "lightgcn")]


def test_the_zoo_is_complete() -> None:
    study = {
        "vbpr",
        "mmgcn",
        "grcn",
        "dualgnn",
        "lattice",
        "slmrec",
        "bm3",
        "freedom",
        "mgcn",
        "dragon",
        "lgmrec",
        "smore",
        "damrs",
        "pgl",
    }
    assert study <= set(MULTIMODAL)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_scores(synthetic_dm, name: str) -> None:
    runs = []
    for _ in range(2):
        model = make_model(name, synthetic_dm, seed=5)
        fit(model, synthetic_dm, 2, limit_train_batches=2, limit_val_batches=0)
        runs.append(all_scores(model, synthetic_dm))
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("spec", ["all:zero", "all:constant"])
@pytest.mark.parametrize("name", MULTIMODAL)
def test_finite_under_degenerate_knockouts(synthetic_dm, name: str, spec: str) -> None:
    dm = with_features(synthetic_dm, Knockout(spec).apply(synthetic_dm.data.features, seed=0))
    model = make_model(name, dm)
    losses = fit(model, dm, 2, limit_train_batches=2, limit_val_batches=0)
    assert losses and all(math.isfinite(x) for x in losses)
    assert all(math.isfinite(v) for v in test_metrics(model, dm).values())
    assert torch.isfinite(all_scores(model, dm)).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_runs_on_tiktok(tiktok_dm, name: str) -> None:
    model = make_model(name, tiktok_dm)
    losses = fit(model, tiktok_dm, 1, limit_train_batches=2, limit_val_batches=1)
    assert math.isfinite(losses[0])
    assert all(math.isfinite(v) for v in test_metrics(model, tiktok_dm).values())


def _claims_within_work(declared: list, work: dict[str, int]) -> None:
    for kind, sparse in (("dense", False), ("sparse", True)):
        claimed = total_flops(declared, sparse=sparse)
        assert claimed <= work[kind] * 1.0001 + 1, f"{kind}: claims {claimed:,} FLOPs, performs {work[kind]:,}"


@pytest.mark.parametrize("name", MODELS)
def test_listed_products_are_work_the_model_performs(synthetic_dm, name: str) -> None:
    """The benchmark's yardstick (``benchmarks/yardsticks``: ``training`` / ``inference``) may only hold
    products a real training step / evaluation executes, forward and backward (counted at the aten level).
    Only models with a yardstick are checked: a model needs none to be trained or tested."""
    model = make_model(name, synthetic_dm)
    yardstick = yardstick_for(model)
    if yardstick is None:
        pytest.skip(f"{name} has no yardstick (not in the speed benchmark)")
    model.train()
    model.on_epoch_start_hook()
    batch = next(iter(synthetic_dm.train_dataloader()))
    declared = yardstick.training(model, batch) + yardstick.epoch(model)  # the epoch's first step
    assert all(p.count >= 1 and min(p.m, p.k, p.n) >= 1 for p in declared)
    _claims_within_work(declared, count_work(lambda: model.loss(batch).backward()))
    model.eval()
    declared = yardstick.inference(model)
    assert [p.label for p in declared].count("score") == 1
    with torch.no_grad():
        work = count_work(lambda: model.score(torch.arange(synthetic_dm.data.n_users)))
    _claims_within_work(declared, work)


@pytest.mark.parametrize("name", ["lattice", "mgcn", "smore", "pgl"])
def test_declared_learning_rate_schedule(synthetic_dm, name: str) -> None:
    """MMRec's ``learning_rate_scheduler``: lr × lr_decay^(epoch / lr_decay_epochs), from the model's config."""
    model = make_model(name, synthetic_dm, lr=0.01, lr_decay=0.5, lr_decay_epochs=4)
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    optimizer = scheduler.optimizer
    for _ in range(8):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.25)  # 8 epochs = two halvings
    assert make_model("bpr", synthetic_dm).configure_optimizers().__class__ is torch.optim.Adam  # no decay: none
