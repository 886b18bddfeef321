"""The default encoders on the real MovieLens-100K items (titles, genres, posters) from ../shared/datasets."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from scipy.stats import mannwhitneyu

from mmrec.features.encoders.image import EfficientNetLite0, open_rgb
from mmrec.features.encoders.text import SentenceTransformerText
from tests.conftest import shared_path
from tests.features.test_encoders_fixtures import items_dataset, read_items_jsonl

TEMPLATE = "{title} ({year}). Genres: {genres}."
# ImageNet classes a classifier gives to posters and covers: 916 web site, 917 comic book, 921 book jacket
POSTER_LIKE = {916, 917, 921}


@pytest.fixture(scope="module")
def ml100k():
    root = shared_path("ml100k-mm")
    items = read_items_jsonl(root / "items.jsonl")
    return items_dataset(items.to_dict("records"), data_dir=root, template=TEMPLATE)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _spy(encoder) -> list[int]:
    sizes: list[int] = []
    original = encoder._compute
    encoder._compute = lambda payload: (sizes.append(len(payload)), original(payload))[1]
    return sizes


@pytest.mark.parametrize("n_items", [300, pytest.param(1682, marks=pytest.mark.slow)])
def test_minilm_text_features_put_genre_sharing_movies_closer(ml100k, n_items, fresh_cache):
    rows = ml100k.items.sample(n=n_items, random_state=0) if n_items < len(ml100k.items) else ml100k.items
    data = items_dataset(rows.to_dict("records"), data_dir=ml100k.data_dir, template=TEMPLATE)
    enc = SentenceTransformerText(device="auto", name="minilm")
    t0 = time.perf_counter()
    feats = enc(data)
    print(f"\nMiniLM: {n_items} items in {time.perf_counter() - t0:.1f} s ({enc.report['text']})")
    x = feats.tensors["text"]
    assert x.shape == (n_items, 384) and feats.masks["text"].all()

    rng = np.random.default_rng(0)
    i, j = rng.integers(0, n_items, size=(2, 20000))
    i, j = i[i != j], j[i != j]
    genres = [set(g) for g in data.items["genres"]]
    shares = np.array([bool(genres[a] & genres[b]) for a, b in zip(i, j)])
    xn = torch.nn.functional.normalize(x, dim=1)
    sim = (xn[torch.from_numpy(i)] * xn[torch.from_numpy(j)]).sum(dim=1).numpy()
    print(
        f"cosine: genre-sharing {sim[shares].mean():.3f} ({shares.sum()} pairs), random {sim.mean():.3f}, "
        f"no shared genre {sim[~shares].mean():.3f}"
    )
    assert sim[shares].mean() > sim.mean() > sim[~shares].mean()
    assert mannwhitneyu(sim[shares], sim[~shares], alternative="greater").pvalue < 1e-6

    calls = _spy(enc)
    t0 = time.perf_counter()
    again = enc(data)
    print(f"MiniLM rerun from the cache: {time.perf_counter() - t0:.2f} s")
    assert calls == [] and torch.equal(again.tensors["text"], x)


@pytest.mark.slow
def test_effnet_image_features_for_all_posters(ml100k, fresh_cache):
    enc = EfficientNetLite0(device="auto")
    t0 = time.perf_counter()
    feats = enc(ml100k)
    print(
        f"\nEfficientNet-Lite0: {len(ml100k.items)} items in {time.perf_counter() - t0:.1f} s ({enc.report['image']})"
    )
    x, present = feats.tensors["image"], feats.masks["image"]
    assert x.shape == (1682, 1280)
    no_poster = ml100k.items["image"].isna().to_numpy()
    assert no_poster.sum() == 65 and present.numpy().tolist() == (~no_poster).tolist()
    assert enc.report["image"]["missing"]["no image"]["count"] == 65
    torch.testing.assert_close(x[~present], x[present].mean(dim=0).expand(65, -1))  # filled with the mean
    assert x[present].std(dim=0).mean() > 0.01  # posters differ

    calls = _spy(enc)
    t0 = time.perf_counter()
    again = enc(ml100k)
    print(f"EfficientNet-Lite0 rerun from the cache: {time.perf_counter() - t0:.2f} s")
    assert calls == [] and torch.equal(again.tensors["image"], x)


def test_effnet_imagenet_head_classifies_posters_consistently(ml100k):
    enc = EfficientNetLite0(device="cpu")
    paths = [ml100k.data_dir / p for p in ml100k.items["image"].dropna().tolist()[:40:2]]
    posters = [open_rgb(p) for p in paths]
    flipped = [ImageOps.mirror(p) for p in posters]
    logits = enc.classify(posters + flipped + [Image.open(paths[0]).convert("RGB")])  # [41, 1000]
    probs = logits.softmax(dim=1)
    top = probs.argmax(dim=1)
    n = len(posters)
    counts = Counter(top[:n].tolist())
    print(f"\nposter top-1 classes: {counts.most_common(5)}; mean max prob {probs[:n].max(1).values.mean():.3f}")
    # trained weights + right preprocessing: posters look like covers (random weights: an arbitrary class)
    assert counts.most_common(1)[0][0] in POSTER_LIKE
    assert sum(counts[c] for c in POSTER_LIKE) >= 0.25 * n
    assert probs[:n].max(dim=1).values.mean() > 50 / 1000  # far from the uniform 1/1000
    torch.testing.assert_close(logits[-1], logits[0], atol=1e-5, rtol=0)  # the same poster again
    flip_agree = (top[:n] == top[n : 2 * n]).float().mean()
    other_agree = (top[:n] == top[:n].roll(1)).float().mean()
    print(f"top-1 agreement: poster vs its mirror {flip_agree:.2f}, poster vs another poster {other_agree:.2f}")
    assert flip_agree >= 0.5 and flip_agree > other_agree
