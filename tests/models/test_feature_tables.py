"""Memory options of feature tables: half-precision storage of frozen tables, sparse row updates of fine-tuned
ones (lazy Adam through ``SplitOptimizer``), and the refusals of combinations that cannot hold."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.nn.features import FeatureTable
from mmrec.nn.optim import SplitOptimizer
from tests.models.common import fit, make_model, with_features

HALF = [torch.bfloat16, torch.float16]
NAMES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}


def unit_roundoff(dtype: torch.dtype) -> float:
    """u = 2^-p for a p-bit significand (round to nearest): half of ``finfo.eps``."""
    return torch.finfo(dtype).eps / 2


@pytest.mark.parametrize("dtype", HALF)
def test_half_storage_halves_bytes_and_rounds_once(dtype):
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    full, half = FeatureTable(x, trainable=False), FeatureTable(x, trainable=False, dtype=NAMES[dtype])
    assert half.weight.dtype == dtype and half.weight.element_size() * 2 == full.weight.element_size()
    assert half.nbytes() * 2 == full.nbytes()
    rows = torch.tensor([3, 0, 3, 49])
    assert half(rows).dtype == torch.float32 and half().dtype == torch.float32  # the math stays float32
    # round to nearest: |x̃ - x| <= u (|x| + smallest normal) (the second term covers subnormals)
    u, tiny = unit_roundoff(dtype), torch.finfo(dtype).smallest_normal
    assert ((half() - x).abs() <= u * (x.abs() + tiny)).all()
    assert torch.equal(half(rows), half()[rows])


def test_float32_storage_is_todays_table():
    x = torch.randn(6, 4)
    t = FeatureTable(x, trainable=False)
    assert t.weight.dtype == torch.float32 and torch.equal(t(), x) and t().data_ptr() == t.weight.data_ptr()


@pytest.mark.parametrize("dtype", HALF)
def test_knocked_out_constants_stay_exact(dtype):
    t = FeatureTable(torch.randn(8, 5), trainable=False, dtype=NAMES[dtype])
    ident = t.weight
    t.load(torch.zeros(8, 5))
    assert t.weight is ident and t.weight.dtype == dtype and torch.equal(t(), torch.zeros(8, 5))
    row = torch.randn(1, 5)
    t.load(row.expand(8, 5))
    assert (t() == t()[0]).all()  # a constant table stays constant: one rounding of one row
    assert torch.equal(t()[0], row[0].to(dtype).float())


def test_float16_range_is_checked():
    with pytest.raises(ConfigError, match="feature_dtype='float16'.*bfloat16"):
        FeatureTable(torch.tensor([[1e5, 0.0]]), trainable=False, dtype="float16")


@pytest.mark.parametrize("dtype", HALF)
def test_vbpr_scores_within_the_roundoff_bound(synthetic_dm, one_thread, dtype):
    """VBPR (reference) scores ``γ_uᵀγ_i + θ_uᵀ(E f_i + b)``: rounding f_i to f̃_i moves a score by
    ``θ_uᵀE(f̃_i - f_i)``, at most ``u · |θ_uᵀE| · (|f_i| + smallest normal)``; float32 arithmetic adds at most
    ``~n·eps32`` of the magnitudes (n = the products summed)."""
    a = make_model("vbpr", synthetic_dm, seed=0)
    b = make_model("vbpr", synthetic_dm, seed=0, feature_dtype=NAMES[dtype])
    assert all(b.table(m).weight.dtype == dtype for m in b.modality_names)
    users = torch.arange(synthetic_dm.data.n_users)
    with torch.no_grad():
        a.eval(), b.eval()
        s32, s16 = a.score(users), b.score(users)
        d = a.item_linear.out_features
        theta, w = a.user_embedding[:, d:], a.item_linear.weight  # [U, d], [d, F]
        f = a.content()  # [I, F]
        u, tiny = unit_roundoff(dtype), torch.finfo(dtype).smallest_normal
        bound = u * (theta @ w).abs() @ (f.abs() + tiny).T  # [U, I]
        i_all = a.item_representation()
        n = w.shape[1] + 2 * d
        slack = 2 * n * torch.finfo(torch.float32).eps * (a.user_embedding.abs() @ i_all.abs().T)
    assert not torch.equal(s32, s16)  # the rounding is real
    assert ((s16 - s32).abs() <= bound * (1 + 2 * u) + slack).all()


def test_vbpr_float32_scores_unchanged_by_the_table_path(synthetic_dm, one_thread):
    """The tables give VBPR exactly the concatenated content it read before (bit for bit)."""
    m = make_model("vbpr", synthetic_dm, seed=0)
    ref = torch.cat([synthetic_dm.data.feature(x) for x in synthetic_dm.data.modalities], dim=1)
    assert torch.equal(m.content(), ref)
    rows = torch.tensor([5, 1, 5])
    assert torch.equal(m.content(rows), ref[rows])


def test_half_tables_survive_knockout_attach(synthetic_dm, one_thread):
    m = make_model("freedom", synthetic_dm, freeze_features=True, feature_dtype="bfloat16")
    feats = synthetic_dm.data.features
    assert feats is not None
    zero = ItemFeatures({k: torch.zeros_like(t) for k, t in feats.tensors.items()})
    m.attach(with_features(synthetic_dm, zero).data)
    for name in m.modality_names:
        assert m.table(name).weight.dtype == torch.bfloat16 and not m.table(name).weight.any()


# ---- refusals ----------------------------------------------------------------------------------------------------
def test_refusals(synthetic_dm):
    with pytest.raises(ConfigError, match=r"freedom\.feature_dtype='bfloat16' needs frozen tables"):
        make_model("freedom", synthetic_dm, freeze_features=False, feature_dtype="bfloat16")
    with pytest.raises(ConfigError, match=r"feature_dtype='float64'; choose one of"):
        make_model("freedom", synthetic_dm, freeze_features=True, feature_dtype="float64")
    with pytest.raises(ConfigError, match=r"feature_updates='rowwise'; choose one of"):
        make_model("freedom", synthetic_dm, feature_updates="rowwise")
    with pytest.raises(ConfigError, match=r"freedom\.feature_updates='sparse' needs fine-tuned tables"):
        make_model("freedom", synthetic_dm, freeze_features=True, feature_updates="sparse")
    with pytest.raises(ConfigError, match=r"lattice\.feature_updates='sparse'.*whole feature tables"):
        make_model("lattice", synthetic_dm, freeze_features=False, feature_updates="sparse")


# ---- sparse updates ---------------------------------------------------------------------------------------------
def test_sparse_updates_move_only_touched_rows(synthetic_dm, one_thread):
    model = make_model("freedom", synthetic_dm, seed=0, feature_updates="sparse")
    opt = model.configure_optimizers()
    assert isinstance(opt, SplitOptimizer)
    before = {m: model.table(m).weight.detach().clone() for m in model.modality_names}
    emb = model.item_embedding.weight.detach().clone()
    batch = next(iter(synthetic_dm.train_dataloader()))
    touched = torch.zeros(model.n_items, dtype=torch.bool)
    model.train()
    model.on_epoch_start_hook()
    for step in range(3):
        lo = 64 * step
        part = {k: v[lo : lo + 64] for k, v in batch.items()}
        touched[part["pos_items"]] = True
        touched[part["neg_items"]] = True
        opt.zero_grad()
        model.loss(part).backward()
        assert model.table(model.modality_names[0]).weight.grad.is_sparse
        opt.step()
    assert 0 < int(touched.sum()) < model.n_items
    for m in model.modality_names:
        w = model.table(m).weight.detach()
        assert torch.equal(w[~touched], before[m][~touched])  # bitwise unchanged
        assert (w[touched] != before[m][touched]).any(dim=1).all()  # every touched row moved
    assert not torch.equal(model.item_embedding.weight.detach(), emb)  # the dense parameters step too


def hand_lazy_adam(w, grads, lr, b1, b2, eps, wd):
    """Adam written out for a table whose rows are all touched each step, with SparseAdam's ε placement:
    ``w -= lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m/(√v + ε)``, L2 ``wd·w`` added to the gradient."""
    w = w.clone().double()
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g.double() + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (1 - b2**t) ** 0.5 / (1 - b1**t) * m / (v.sqrt() + eps)
    return w


def test_split_optimizer_on_fully_touched_rows_is_adam():
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(5, 3, generator=g)
    target = torch.randn(5, 3, generator=g)
    index = torch.tensor([4, 0, 1, 2, 3, 0, 2])  # every row, some twice (their gradients add)
    table = torch.nn.Parameter(w0.clone())
    dense = torch.nn.Parameter(torch.randn(2, generator=g))
    lr, betas, eps, wd = 0.05, (0.8, 0.95), 1e-3, 0.1
    opt = SplitOptimizer(torch.optim.Adam([dense], lr=lr), [table], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    grads = []
    for _ in range(4):
        opt.zero_grad()
        rows = torch.nn.functional.embedding(index, table, sparse=True)
        loss = ((rows - target[index]) ** 2).sum() + (dense**2).sum()
        loss.backward()
        assert table.grad is not None and table.grad.is_sparse
        grads.append(table.grad.to_dense().clone())
        opt.step()
    want = hand_lazy_adam(w0, grads, lr, *betas, eps, wd)
    assert torch.allclose(table.detach().double(), want, rtol=0, atol=1e-6)


def test_split_optimizer_state_round_trip():
    def build():
        table, dense = torch.nn.Parameter(torch.ones(4, 2)), torch.nn.Parameter(torch.ones(3))
        return table, dense, SplitOptimizer(torch.optim.Adam([dense], lr=0.1), [table], lr=0.1)

    def step(table, dense, opt, index):
        opt.zero_grad()
        (torch.nn.functional.embedding(index, table, sparse=True).sum() * 2 + dense.sum()).backward()
        opt.step()

    t1, d1, o1 = build()
    step(t1, d1, o1, torch.tensor([0, 1]))
    t2, d2, o2 = build()
    with torch.no_grad():
        t2.copy_(t1), d2.copy_(d1)
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))  # as a checkpoint written and read back
    assert o2.sparse.state is o2.state and o2.sparse.param_groups[0] is o2.param_groups[1]
    for t, d, o in ((t1, d1, o1), (t2, d2, o2)):
        step(t, d, o, torch.tensor([1, 3]))
    assert torch.equal(t1, t2) and torch.equal(d1, d2)
    assert torch.equal(t1[2], torch.ones(2))  # never touched


def test_sparse_updates_train_through_lightning(synthetic_dm, one_thread):
    """The split optimiser runs under Lightning's automatic optimisation (closure, zero_grad, checkpoint state)."""
    model = make_model("freedom", synthetic_dm, seed=0, feature_updates="sparse")
    before = {m: model.table(m).weight.detach().clone() for m in model.modality_names}
    losses = fit(model, synthetic_dm, 2)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert all(not torch.equal(model.table(m).weight.detach(), before[m]) for m in model.modality_names)
    state = model.trainer.optimizers[0].state_dict()
    assert any("exp_avg_sq" in s and s["exp_avg_sq"].dim() == 2 for s in state["state"].values())
