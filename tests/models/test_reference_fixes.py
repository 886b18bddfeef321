"""Reference-parity fixes (issue 13), each against an independent derivation of MMRec's behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import EarlyStopping

from mmrec.data.datamodule import GraphDataModule
from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.item_features import ItemFeatures
from tests.models.common import CONF, make_model, trainer


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_dm(batch_size: int = 4, dims: tuple[int, int] = (6, 5)) -> GraphDataModule:
    train = np.array(
        [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [0, 3], [3, 1], [3, 2], [4, 0], [4, 4], [5, 4], [5, 3], [1, 4]]
    )
    ds = Dataset("tiny", Interactions(6, 5, train, np.array([[1, 0]]), np.array([[2, 0]])))
    g = torch.Generator().manual_seed(0)
    feats = ItemFeatures({"text": torch.randn(5, dims[0], generator=g), "image": torch.randn(5, dims[1], generator=g)})
    return GraphDataModule(ds, feats, batch_size=batch_size, seed=0)


def dense_propagated(dm: GraphDataModule, users: torch.Tensor, items: torch.Tensor, layers: int) -> torch.Tensor:
    """``mean_{k≤L} Â^k [E_u; E_i]`` with a dense ``Â = D^-1/2 A D^-1/2`` built here from the training matrix."""
    r = torch.from_numpy(dm.train.toarray()).float()
    nu, ni = r.shape
    a = torch.zeros(nu + ni, nu + ni)
    a[:nu, nu:], a[nu:, :nu] = r, r.T
    d = a.sum(1).clamp_min(1e-12).rsqrt()
    a_hat = d[:, None] * a * d[None, :]
    x = torch.cat([users, items])
    out, cur = [x], x
    for _ in range(layers):
        cur = a_hat @ cur
        out.append(cur)
    return torch.stack(out).mean(0)


@pytest.mark.parametrize("faithful_to", ["reference", "paper"])
def test_lightgcn_regulariser_is_mmrecs_embloss_in_reference_mode(faithful_to: str) -> None:
    dm = tiny_dm()
    m = make_model("lightgcn", dm, embedding_dim=4, reg_weight=0.5, faithful_to=faithful_to)
    batch = {
        "users": torch.tensor([0, 1, 2, 4]),
        "pos_items": torch.tensor([0, 1, 2, 4]),
        "neg_items": torch.tensor([2, 3, 0, 1]),
    }
    e_u, e_i = m.user_embedding.weight.detach(), m.item_embedding.weight.detach()
    rep = dense_propagated(dm, e_u, e_i, 2)
    u = rep[batch["users"]]
    p, n = rep[6 + batch["pos_items"]], rep[6 + batch["neg_items"]]
    bpr = -torch.log(torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()
    parts = [e_u[batch["users"]], e_i[batch["pos_items"]], e_i[batch["neg_items"]]]
    if faithful_to == "reference":  # EmbLoss: Σ of unsquared Frobenius norms over the batch size
        reg = sum(math.sqrt(float((t**2).sum())) for t in parts) / 4
    else:
        reg = sum(float((t**2).sum()) for t in parts) / 2 / 4
    assert float(m.loss(batch).detach()) == pytest.approx(float(bpr) + 0.5 * reg, rel=1e-5)


def test_vbpr_item_linear_is_xavier_normal_with_zero_bias() -> None:
    dm = tiny_dm(dims=(300, 212))  # F = 512 inputs, 64 outputs: 32,768 weights
    m = make_model("vbpr", dm, embedding_dim=64)
    w, b = m.item_linear.weight.detach(), m.item_linear.bias.detach()
    assert torch.count_nonzero(b) == 0
    xavier_std = math.sqrt(2.0 / (512 + 64))  # 0.059; PyTorch's default would give 1/sqrt(3·512) = 0.026
    assert float(w.std()) == pytest.approx(xavier_std, rel=0.03)
    assert float(w.abs().max()) > 1 / math.sqrt(512)  # a normal draw, not the default's bounded uniform


def test_freedom_projections_keep_pytorchs_default_initialisation() -> None:
    dm = tiny_dm(dims=(300, 212))
    m = make_model("freedom", dm)
    for name, lin in m.projections.items():
        fan_in = lin.weight.shape[1]
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=√5) and the bias: U(−1/√fan_in, 1/√fan_in)
        w = lin.weight.detach()
        assert float(w.abs().max()) <= bound, name
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05), name
        assert torch.count_nonzero(lin.bias) == lin.bias.numel(), name


def test_pgl_default_reg_weight_is_mmrecs_config() -> None:
    assert OmegaConf.load(CONF / "pgl.yaml").reg_weight == 0.0  # MMRec's PGL.yaml: reg_weight: [0]
    dm = tiny_dm()
    assert make_model("pgl", dm).reg_weight == 0.0


class _ProjectionTrace(pl.Callback):
    def __init__(self) -> None:
        self.snapshots: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.snapshots.append(module.projections["image"].weight.detach().clone())


@pytest.mark.parametrize("keeps_zeros", [False, True])
def test_lattice_zero_grad_switch(keeps_zeros: bool) -> None:
    """The projections reach the loss only through the learned graph, rebuilt with gradients on an epoch's first
    batch: torch ≥ 2 (default) steps them once per epoch; torch < 2's zero_grad kept zero gradients, so Adam
    went on moving them on momentum in every batch."""
    dm = tiny_dm(batch_size=3)  # 14 pairs: 5 batches
    m = make_model("lattice", dm, embedding_dim=4, feat_embed_dim=4, knn_k=2, zero_grad_keeps_zeros=keeps_zeros)
    trace = _ProjectionTrace()
    trainer(1, callbacks=[trace], limit_val_batches=0).fit(m, datamodule=dm)
    moves = [not torch.equal(a, b) for a, b in zip(trace.snapshots, trace.snapshots[1:])]
    assert len(moves) == 4
    assert moves == ([True] * 4 if keeps_zeros else [False] * 4)


def mmrec_stop_epoch(scores: list[float], stopping_step: int = 20) -> int:
    """MMRec's utils.early_stopping, re-derived: strictly better resets, stop once the count exceeds the step."""
    best, cur = -1.0, 0
    for epoch, v in enumerate(scores):
        if v > best:
            best, cur = v, 0
        else:
            cur += 1
            if cur > stopping_step:
                return epoch
    return len(scores) - 1


def lightning_stop_epoch(scores: list[float], patience: int) -> int:
    es = EarlyStopping(monitor="x", mode="max", patience=patience, check_finite=False)
    for epoch, v in enumerate(scores):
        stop, _ = es._evaluate_stopping_criteria(torch.tensor(v))
        if stop:
            return epoch
    return len(scores) - 1


def test_protocol_mmrec_early_stopping_matches_mmrecs_rule() -> None:
    patience = OmegaConf.load(CONF.parent / "protocol" / "mmrec.yaml").callbacks.early_stopping.patience
    rng = np.random.default_rng(0)
    for _ in range(20):
        best = int(rng.integers(0, 40))
        scores = list(np.minimum(np.arange(80) / 100, best / 100))  # rises until `best`, then flat (ties)
        scores = [s - (1e-4 * rng.random() if i > best else 0.0) for i, s in enumerate(scores)]
        assert lightning_stop_epoch(scores, patience) == mmrec_stop_epoch(scores) == best + 21


def test_item_graph_dict_for_mmrecs_damrs(tmp_path) -> None:
    """``item_graph_dict_2.npy``: per item its top-2 co-interacted items with at least 2 common training users,
    with their counts (brute-force count here; MMRec adds the self-loop itself)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("parity", Path(__file__).parents[2] / "benchmarks" / "parity.py")
    parity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(parity)
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 12
    rows = [(u, i, 0) for u in range(n_users) for i in range(n_items) if rng.random() < 0.25 + 0.04 * i]
    rows += [(0, 0, 1), (1, 2, 2)]  # validation and test rows never count
    inter = tmp_path / "x.inter"
    inter.write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{x}\n" for u, i, x in rows))
    parity.write_item_graph_dict(inter, tmp_path / "g.npy")
    got = np.load(tmp_path / "g.npy", allow_pickle=True).item()
    seen = {i: {u for u, j, x in rows if j == i and x == 0} for i in range(n_items)}
    for i in range(n_items):
        counts = {j: len(seen[i] & seen[j]) for j in range(n_items) if j != i}
        ranked = sorted((c, -j) for j, c in counts.items() if c >= 2)[::-1]
        if not ranked:
            assert i not in got
            continue
        want = {-j: float(c) for c, j in ranked[:2]}  # equal counts: the lowest id wins
        assert dict(zip(got[i][0], got[i][1])) == want, i
