"""Device handling without a GPU: every model's training step, epoch hook and evaluation create tensors on the
model's device only (``tests.device_audit``), nothing it holds stays behind when it moves, the training step
makes no host synchronisation, and a non-finite loss is reported with its epoch and step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mmrec.models.base import Recommender
from tests.device_audit import DeviceAudit, stray_tensors
from tests.models.common import make_model, trainer

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
ALL_MODELS = sorted(p.stem for p in CONF.glob("*.yaml"))
HERE = Path(__file__).resolve()
# inputs of the host-side user-graph sampler (CPU generator: the same padding on every device), kept on the CPU
HOST_SIDE = {"DualGNN._user_edges", "DRAGON._user_edges"}
OVERRIDES = {"attributeknn": {"modality": "text"}}  # the synthetic set has no LVLM attributes


# ---- the audit itself, on planted bugs ---------------------------------------------------------------------------
class _Tiny(Recommender):
    """A one-table model whose loss and score can carry a planted device bug."""

    def __init__(self, data, bug: str = "none"):
        super().__init__(data)
        self.bug = bug
        self.build_id_embeddings(8)

    def loss(self, batch):
        u = self.user_embedding(batch["users"])
        i = self.item_embedding(batch["pos_items"])
        scores = (u * i).sum(1)
        if self.bug == "factory":
            scores = scores + torch.zeros(len(scores))  # the bug: a CPU tensor next to a CUDA one on a GPU
        elif self.bug == "generator":
            gen = torch.Generator().manual_seed(0)
            scores = scores + torch.rand(len(scores), generator=gen, device=scores.device)
        else:
            scores = scores + torch.zeros(len(scores), device=scores.device)
        if self.bug == "sync":
            self.last = scores.sum().item()
        return -scores.mean()

    def score(self, users):
        s = self.user_embedding(users) @ self.item_embedding.weight.T
        if self.bug == "numpy":
            np.asarray(users.numpy())  # fails for a CUDA tensor
        return s


def _audit(model: Recommender, batch: dict) -> DeviceAudit:
    audit = DeviceAudit("cpu", roots=(HERE,))
    with audit:
        model.loss(batch).backward()
        model.score(batch["users"])
    return audit


@pytest.mark.parametrize(
    "bug, found", [("factory", "torch.zeros without device="), ("numpy", ".numpy() without .cpu()")]
)
def test_the_audit_catches_planted_device_bugs(synthetic_dm, bug: str, found: str) -> None:
    batch = next(iter(synthetic_dm.train_dataloader()))
    assert _audit(_Tiny(synthetic_dm.data), batch).violations == []  # the same model without the bug is clean
    violations = _audit(_Tiny(synthetic_dm.data, bug), batch).violations
    assert len(violations) == 1 and found in violations[0].what and "test_device.py" in violations[0].where


def test_audit_checks_generators_against_the_model_device(synthetic_dm) -> None:
    """A CPU generator is right for a CPU model (not reported there); audited as a model on another device, the
    same call is reported."""
    batch = next(iter(synthetic_dm.train_dataloader()))
    assert _audit(_Tiny(synthetic_dm.data, "generator"), batch).violations == []
    audit = DeviceAudit("meta", roots=(HERE,))
    with audit:
        _Tiny(synthetic_dm.data, "generator").loss(batch)
    assert any("rand(generator on cpu)" in v.what for v in audit.violations)


def test_the_audit_records_host_syncs(synthetic_dm) -> None:
    batch = next(iter(synthetic_dm.train_dataloader()))
    assert [s.what for s in _audit(_Tiny(synthetic_dm.data, "sync"), batch).syncs] == [".item()"]
    assert _audit(_Tiny(synthetic_dm.data), batch).syncs == []


class _Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.kept = torch.ones(3)  # a plain attribute: does not move with .to()
        self.register_buffer("moved", torch.ones(3), persistent=False)


def test_stray_tensors_finds_a_plain_attribute_and_the_model_moves_its_own(synthetic_dm) -> None:
    model = _Tiny(synthetic_dm.data)
    model.holder = _Holder()
    model.sampled = torch.ones(3)  # a Recommender's own plain tensors move with it (Recommender._apply)
    model._memo["final"] = torch.ones(3)  # memoised evaluation results are dropped on a move
    assert stray_tensors(model) == ["_Holder.holder.kept on cpu"]
    assert model.sampled.device.type == "meta" and model._memo == {}


# ---- every model ---------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
@pytest.mark.parametrize("name", ALL_MODELS)
def test_models_create_tensors_on_their_device_only(synthetic_dm, name: str) -> None:
    model = make_model(name, synthetic_dm, **OVERRIDES.get(name, {}))
    batch = next(iter(synthetic_dm.train_dataloader()))
    blocks = list(synthetic_dm.test_dataloader())  # data loading is host-side by design: outside the audit
    if not model.trainable:
        model.fit(synthetic_dm.train)
    audit = DeviceAudit("cpu")
    with audit:
        model.train()
        model.on_epoch_start_hook()
        if model.trainable:
            model.training_step(batch, 0).backward()
        model.eval()
        with torch.no_grad():
            model._start_eval()
            for block in blocks:
                model._eval_step(block)
            model._evaluator.compute()
    audit.check()
    if model.trainable:  # the epoch hook may sync (it builds graphs once per epoch); the step itself never
        step = DeviceAudit("cpu")
        with step:
            model.train()
            model.training_step(batch, 1).backward()
        assert step.syncs == [], f"host synchronisations in a training step: {step.syncs}"
    stray = [s for s in stray_tensors(model) if not any(s.startswith(h) for h in HOST_SIDE)]
    assert stray == [], f"tensors that would stay on the CPU when the model moves: {stray}"


# ---- finiteness without a sync per step -----------------------------------------------------------------------------
class _NaNAt(_Tiny):
    def __init__(self, data, step: int):
        super().__init__(data)
        self.bad_step, self.calls = step, 0

    def loss(self, batch):
        loss = super().loss(batch)
        self.calls += 1
        return loss * float("nan") if self.calls == self.bad_step + 1 else loss


def test_a_nonfinite_loss_names_its_epoch_and_step(synthetic_dm) -> None:
    n_batches = len(synthetic_dm.train_dataloader())
    assert n_batches >= 3
    model = _NaNAt(synthetic_dm.data, step=n_batches + 1)  # the second step of the second epoch
    with pytest.raises(FloatingPointError, match="epoch 1, step 1"):
        trainer(3, limit_val_batches=0).fit(model, datamodule=synthetic_dm)
    assert model.calls == 2 * n_batches  # found at the epoch's last step (before validation), not later


def test_the_check_waits_for_its_interval(synthetic_dm) -> None:
    """Between checks a non-finite loss only sets the device flag; the check every N steps raises."""
    model = _Tiny(synthetic_dm.data)
    model.nonfinite_check_every = 4
    nan, one = torch.tensor(float("nan")), torch.tensor(1.0)
    model._track_finite(one, 0)
    model._track_finite(nan, 1)  # no check at step 1 or 2
    model._track_finite(one, 2)
    with pytest.raises(FloatingPointError, match="step 1"):
        model._track_finite(one, 3)  # the 4th step reads the flag
