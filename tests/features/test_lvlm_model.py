"""LVLM encoders end to end on a tiny randomly initialised Qwen2-VL saved locally (same loading path as a hub
model): pooling, batch independence, caching, greedy generation -> JSONL store -> parsing -> description and
one-hot attribute features on a few ml100k-mm items (posters + titles)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrec.data.dataset import Dataset, Interactions
from mmrec.data.raw_format import read_items
from mmrec.errors import ConfigError
from mmrec.features.encoders.lvlm import LVLMAttributes, LVLMDescription, LVLMEmbedding
from mmrec.features.lvlm import generate as generate_module
from mmrec.features.lvlm.attributes import OTHER, normalise_value
from mmrec.features.lvlm.embed import embed_batch, pool_hidden_states
from mmrec.features.lvlm.generate import GenerationStore, generate_batch
from mmrec.features.lvlm.inputs import ItemContent, item_contents, open_image
from mmrec.features.lvlm.loading import LVLMSpec, load_lvlm, release
from mmrec.features.lvlm.prompts import load_prompt
from mmrec.features.lvlm.tiny import build_tiny_idefics3, build_tiny_qwen2vl, teach_answers
from tests.conftest import shared_path
from tests.features.test_lvlm_attributes import char_ngrams

MOVIES = load_prompt("movies")
TEMPLATE = "{title} ({year}). Genres: {genres}."
ITEM_IDS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "14"]  # item 14 has no poster


def taught_answer(genres: list[str]) -> dict[str, str]:
    """What the tiny model is taught to answer for a movie (derived from its genres)."""
    return {
        "Genre": genres[0].lower(),
        "Era": "1990s",
        "Mood": "light" if "Comedy" in genres else "dark",
        "Audience": "families" if "Children's" in genres else "adults",
        "Setting": "city",
    }


def as_answer_text(pairs: dict[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in pairs.items())


@pytest.fixture(scope="module")
def movies() -> Dataset:
    """Eleven ml100k-mm items (ten with a poster) with a few interactions."""
    root = shared_path("ml100k-mm")
    items = read_items(root / "items.jsonl").loc[ITEM_IDS].reset_index(drop=True)
    rng = np.random.default_rng(0)
    n_users, n_items = 6, len(items)
    pairs = np.array(sorted({(u, int(i)) for u in range(n_users) for i in rng.choice(n_items, 4, replace=False)}))
    inter = Interactions(n_users, n_items, pairs, pairs[:0], pairs[:0])
    return Dataset(
        "ml100k-mm-mini",
        inter,
        data_dir=root,
        item_ids=items["item_id"].to_numpy(),
        items=items,
        text_template=TEMPLATE,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_qwen2vl(tmp_path_factory.mktemp("lvlm") / "tiny-qwen2vl"))


@pytest.fixture(scope="module")
def tiny_idefics3(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_idefics3(tmp_path_factory.mktemp("lvlm") / "tiny-idefics3"))


@pytest.fixture(params=["qwen2vl", "idefics3"])
def tiny_any(request: pytest.FixtureRequest) -> str:
    """Both architectures: Qwen2-VL (the study's) and Idefics3 (SmolVLM)."""
    return request.getfixturevalue("tiny" if request.param == "qwen2vl" else "tiny_idefics3")


@pytest.fixture(scope="module")
def taught(tiny: str, movies: Dataset, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny model fine-tuned to answer the movies prompt for the ten items with a poster."""
    folder = tmp_path_factory.mktemp("lvlm") / "taught-qwen2vl"
    shutil.copytree(tiny, folder)
    contents = [c for c in item_contents(movies) if c.image_path is not None]
    genres = {str(r.item_id): list(r.genres) for r in movies.items.itertuples()}
    answers = [as_answer_text(taught_answer(genres[c.item_id])) for c in contents]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # backward passes slow down ~15x with 2 threads on a busy 2-core machine
    try:
        teach_answers(
            folder, MOVIES, [c.text for c in contents], [open_image(c.image_path) for c in contents], answers, steps=80
        )
    finally:
        torch.set_num_threads(threads)
    return str(folder)


@pytest.fixture()
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _lvlm(path: str):
    return load_lvlm(LVLMSpec(path, dtype="float32", device="cpu"))


def test_loads_slow_processor_through_the_hub_path(tiny: str, tiny_idefics3: str) -> None:
    lvlm = _lvlm(tiny)
    assert type(lvlm.processor).__name__ == "Qwen2VLProcessor"  # loaded without its video part (no torchvision)
    assert type(lvlm.processor.image_processor).__name__.endswith("Pil")  # slow, PIL-based
    assert type(lvlm.model).__name__ == "Qwen2VLForConditionalGeneration"
    assert lvlm.tokenizer.padding_side == "left"
    assert lvlm.image_token_id() == lvlm.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    other = _lvlm(tiny_idefics3)
    assert type(other.processor).__name__ == "Idefics3Processor"
    assert type(other.processor.image_processor).__name__.endswith("Pil")
    assert type(other.model).__name__ == "Idefics3ForConditionalGeneration"
    assert other.image_token_id() == other.tokenizer.convert_tokens_to_ids("<image>")


def test_pool_hidden_states_by_hand() -> None:
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)  # [B=2, T=4, d=3]
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    image = torch.tensor([[False, True, True, False], [False, False, False, False]])
    assert torch.equal(pool_hidden_states(hidden, left, "last"), hidden[:, 3])
    assert torch.equal(pool_hidden_states(hidden, right, "last")[0], hidden[0, 2])
    assert torch.allclose(pool_hidden_states(hidden, left, "mean")[0], hidden[0, 1:].mean(dim=0))
    assert torch.allclose(pool_hidden_states(hidden, left, "mean")[1], hidden[1].mean(dim=0))
    pooled = pool_hidden_states(hidden, left, "image", image)
    assert torch.allclose(pooled[0], hidden[0, 1:3].mean(dim=0))
    assert torch.equal(pooled[1], torch.zeros(3))  # no image tokens: zeros (callers mark it absent)
    with pytest.raises(ConfigError):
        pool_hidden_states(hidden, left, "max")
    with pytest.raises(ConfigError):
        pool_hidden_states(hidden, left, "image")


def _posters(movies: Dataset) -> tuple[list[str], list]:
    contents = item_contents(movies)[:3]
    return [c.text for c in contents], [open_image(c.image_path) for c in contents]


def test_pooling_shapes_and_choices_differ(tiny_any: str, movies: Dataset) -> None:
    lvlm = _lvlm(tiny_any)
    texts, images = _posters(movies)
    pooled = {}
    for pooling in ("last", "mean", "image"):
        x, ok = embed_batch(lvlm, MOVIES, texts, images, pooling)
        assert x.shape == (3, 32) and x.dtype == torch.float32
        assert ok.all() and torch.isfinite(x).all()
        pooled[pooling] = x
    assert not torch.allclose(pooled["last"], pooled["mean"], atol=1e-3)
    assert not torch.allclose(pooled["mean"], pooled["image"], atol=1e-3)
    assert not torch.allclose(pooled["last"], pooled["image"], atol=1e-3)
    # different items give different vectors
    assert not torch.allclose(pooled["last"][0], pooled["last"][1], atol=1e-3)
    # layer choice: the input embeddings (0) are not the last layer
    first, _ = embed_batch(lvlm, MOVIES, texts, images, "mean", layer=0)
    assert not torch.allclose(first, pooled["mean"], atol=1e-3)
    with pytest.raises(ConfigError, match="layer"):
        embed_batch(lvlm, MOVIES, texts, images, "mean", layer=50)


@pytest.mark.parametrize("pooling", ["last", "mean", "image"])
def test_embedding_does_not_depend_on_batch_mates(tiny_any: str, movies: Dataset, pooling: str) -> None:
    lvlm = _lvlm(tiny_any)
    texts, images = _posters(movies)
    alone, _ = embed_batch(lvlm, MOVIES, texts[:1], images[:1], pooling)
    again, _ = embed_batch(lvlm, MOVIES, texts[:1], images[:1], pooling)
    long_text = texts[1] + " A much longer description of the film, " * 8
    first, _ = embed_batch(lvlm, MOVIES, [texts[0], long_text], images[:2], pooling)
    last, _ = embed_batch(lvlm, MOVIES, [long_text, texts[2], texts[0]], [images[1], images[2], images[0]], pooling)
    assert torch.equal(alone, again)
    torch.testing.assert_close(first[0], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(last[2], alone[0], atol=1e-5, rtol=0)
    if pooling != "image":  # text-only items, also among longer ones
        solo, _ = embed_batch(lvlm, MOVIES, texts[:1], [None], pooling)
        mixed, _ = embed_batch(lvlm, MOVIES, [long_text, texts[0]], [None, None], pooling)
        torch.testing.assert_close(mixed[1], solo[0], atol=1e-5, rtol=0)
        assert not torch.allclose(solo[0], alone[0], atol=1e-3)  # the poster changes the vector


def test_embedding_encoder_caches_and_masks(tiny: str, movies: Dataset, fresh_cache: Path) -> None:
    enc = LVLMEmbedding(tiny, MOVIES, pooling="last", dtype="float32", device="cpu", batch_size=4)
    feats = enc(movies)
    x = feats.tensors["lvlm"]
    assert feats.modalities == ["lvlm"] and x.shape == (len(ITEM_IDS), 32)
    assert feats.masks["lvlm"].all()  # the item without a poster is embedded from its text
    assert enc.report["lvlm"]["computed"] == len(ITEM_IDS)
    again = LVLMEmbedding(tiny, "movies", pooling="last", dtype="float32", device="cpu", batch_size=1)
    torch.testing.assert_close(again(movies).tensors["lvlm"], x, atol=1e-5, rtol=0)
    assert again.report["lvlm"]["computed"] == 0 and again.report["lvlm"]["cached"] == len(ITEM_IDS)
    # batch size 1 vs 4 without the cache: the same vectors
    shutil.rmtree(fresh_cache)
    one = LVLMEmbedding(tiny, MOVIES, pooling="last", dtype="float32", device="cpu", batch_size=1)
    torch.testing.assert_close(one(movies).tensors["lvlm"], x, atol=1e-5, rtol=0)
    assert one.report["lvlm"]["computed"] == len(ITEM_IDS)
    # another pooling is another cache entry, and image pooling marks the poster-less item absent
    img = LVLMEmbedding(tiny, MOVIES, pooling="image", dtype="float32", device="cpu", batch_size=4)
    feats_img = img(movies)
    assert img.report["lvlm"]["computed"] == len(ITEM_IDS) - 1
    assert feats_img.masks["lvlm"].tolist() == [True] * 10 + [False]
    assert not torch.allclose(feats_img.tensors["lvlm"][:10], x[:10], atol=1e-3)


def test_generation_is_greedy_and_bounded(tiny: str, movies: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    lvlm = _lvlm(tiny)
    texts, images = _posters(movies)
    new_tokens: list[int] = []
    original = lvlm.model.generate

    def measured(**kwargs: object) -> torch.Tensor:
        out = original(**kwargs)
        new_tokens.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    monkeypatch.setattr(lvlm.model, "generate", measured)
    a = generate_batch(lvlm, MOVIES, texts, images, max_new_tokens=5)
    b = generate_batch(lvlm, MOVIES, texts, images, max_new_tokens=5)
    assert a == b and len(a) == 3 and all(isinstance(t, str) for t in a)
    assert new_tokens and max(new_tokens) <= 5
    with pytest.raises(ConfigError):
        generate_batch(lvlm, MOVIES, texts, images, max_new_tokens=0)


def test_store_resumes_after_an_interruption(fresh_cache: Path) -> None:
    contents = [ItemContent(str(i), f"movie {i}", None, f"key{i}") for i in range(5)]
    contents.append(ItemContent("5", None, None, None))  # nothing to show
    calls: list[list[str]] = []

    def flaky(batch: list[ItemContent]) -> list[str]:
        calls.append([c.item_id for c in batch])
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return [f"Genre: drama {c.item_id}" for c in batch]

    store = GenerationStore("test-store")
    with pytest.raises(RuntimeError):
        store.fill(contents, MOVIES, "m", flaky, batch_size=2, flush_every=1)
    assert len(store.load()) == 4  # two finished batches were written
    calls.clear()

    def steady(batch: list[ItemContent]) -> list[str]:
        calls.append([c.item_id for c in batch])
        return [f"Genre: drama {c.item_id}" for c in batch]

    records = store.fill(contents, MOVIES, "m", steady, batch_size=2)
    assert calls == [["4"]]  # only the item the interruption left out
    assert records[5] is None
    assert [r["item_id"] for r in records[:5]] == ["0", "1", "2", "3", "4"]
    assert records[4]["attributes"] == {"Genre": "drama 4"}
    lines = [json.loads(line) for line in store.path.read_text().splitlines()]
    assert len(lines) == 5 and {"item_id", "item_key", "prompt_id", "model", "raw", "attributes"} <= set(lines[0])


@pytest.mark.slow
def test_taught_model_description_and_attributes(
    taught: str, movies: Dataset, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genres = [list(g) for g in movies.items["genres"]]
    expected = [taught_answer(g) for g in genres]
    desc = LVLMDescription(
        taught, MOVIES, text_encoder=char_ngrams, max_new_tokens=64, dtype="float32", device="cpu", batch_size=4
    )
    _, records = desc.answers(movies)
    for rec, exp in zip(records[:10], expected[:10]):
        assert rec["attributes"] == exp, rec["raw"]
    report = desc.generation_report["parse"]
    assert report["n_answers"] == len(ITEM_IDS) and report["complete"] >= 10
    # the JSONL store holds one record per item
    store = Path(desc.generation_report["store"])
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    assert sorted(r["item_id"] for r in lines) == sorted(ITEM_IDS)
    assert all(r["prompt_id"] == "movies" for r in lines)
    texts = desc.descriptions(movies)
    assert texts[0] == "Genre: animation. Era: 1990s. Mood: light. Audience: families. Setting: city."
    feats = desc(movies)
    assert feats.modalities == ["description"] and feats.tensors["description"].shape == (len(ITEM_IDS), 512)
    torch.testing.assert_close(
        feats.tensors["description"][0], torch.as_tensor(char_ngrams([texts[0]])[0], dtype=torch.float32)
    )

    # the attribute encoder reuses the stored answers: generation must not run again
    def no_generation(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("generated again")

    monkeypatch.setattr("mmrec.features.encoders.lvlm.generate_batch", no_generation)
    attrs = LVLMAttributes(
        taught,
        MOVIES,
        top_n=3,
        value_encoder=char_ngrams,
        max_new_tokens=64,
        dtype="float32",
        device="cpu",
        batch_size=4,
    )
    feats = attrs(movies)
    x = feats.tensors["attributes"]
    meta = json.loads(Path(attrs.report["attributes"]["matrix"]).with_suffix(".columns.json").read_text())
    columns = meta["columns"]
    assert x.shape == (len(ITEM_IDS), len(columns)) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert meta["item_ids"] == ITEM_IDS
    for i, exp in enumerate(expected[:10]):
        row = {columns[j] for j in torch.nonzero(x[i]).flatten().tolist()}
        wanted = {a: normalise_value(v) for a, v in exp.items()}  # columns are named by lemmatised values
        wanted = {a: v if f"{a}={v}" in columns else OTHER for a, v in wanted.items()}
        assert row == {f"{a}={v}" for a, v in wanted.items()}, (i, row)
    assert "Audience=family" in columns and "Genre=drama" in columns
    assert generate_module.KIND in str(store)


def test_caption_prompt_skips_items_without_image(tiny: str, movies: Dataset, fresh_cache: Path) -> None:
    desc = LVLMDescription(
        tiny,
        "llava_caption",
        text_encoder=char_ngrams,
        use_text=False,
        max_new_tokens=8,
        dtype="float32",
        device="cpu",
        batch_size=4,
    )
    feats = desc(movies)
    assert feats.masks["description"].tolist() == [True] * 10 + [False]
    assert "parse" not in desc.report["description"]  # free-form: no attributes to parse


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="pooling"):
        LVLMEmbedding("x", MOVIES, pooling="max")
    with pytest.raises(ConfigError, match="use_image"):
        LVLMEmbedding("x", MOVIES, pooling="image", use_image=False)
    with pytest.raises(ConfigError, match="no attributes"):
        LVLMAttributes("x", "llava_caption")
    with pytest.raises(ConfigError, match="chat_format"):
        LVLMEmbedding("x", MOVIES, chat_format="xml")


def test_missing_model_folder_is_a_config_error(movies: Dataset, fresh_cache: Path, tmp_path: Path) -> None:
    release()
    missing = str(tmp_path / "no-such-lvlm")
    enc = LVLMEmbedding(missing, MOVIES, dtype="float32", device="cpu")
    with pytest.raises(ConfigError, match="no-such-lvlm"):
        enc(movies)


@pytest.fixture(scope="module")
def ml100k_first_items(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """ml100k-mm restricted to its first 40 movies, through the raw-layout loader (posters by absolute path)."""
    root = shared_path("ml100k-mm")
    folder = tmp_path_factory.mktemp("ml100k-first")
    keep = {str(i) for i in range(1, 41)}
    lines = []
    for line in (root / "items.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["item_id"] in keep:
            item["image"] = str(root / item["image"]) if item["image"] else None
            lines.append(json.dumps(item))
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    import pandas as pd

    inter = pd.read_csv(root / "interactions.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    inter[inter["item_id"].isin(keep)].to_csv(folder / "interactions.tsv", sep="\t", index=False)
    from mmrec.data import load_dataset

    return load_dataset(
        "ml100k-first", format="raw", data_dir=str(folder), k_core=3, text_template=TEMPLATE, split={"seed": 0}
    )


@pytest.mark.slow
def test_model_trains_on_lvlm_and_description_features(
    tiny: str, ml100k_first_items: Dataset, fresh_cache: Path
) -> None:
    from mmrec.data.datamodule import GraphDataModule
    from mmrec.features.encoders.combined import Combined
    from tests.models.common import fit, make_model, test_metrics

    ds = ml100k_first_items
    encoder = Combined(
        [
            LVLMEmbedding(tiny, MOVIES, pooling="last", dtype="float32", device="cpu", batch_size=8),
            LVLMDescription(tiny, MOVIES, max_new_tokens=12, dtype="float32", device="cpu", batch_size=8),
        ]
    )
    feats = encoder(ds)
    assert feats.modalities == ["lvlm", "description"]
    assert feats.tensors["lvlm"].shape == (ds.n_items, 32)
    assert feats.tensors["description"].shape == (ds.n_items, 384)  # all-MiniLM-L6-v2
    dm = GraphDataModule(ds, feats, batch_size=256, seed=0)
    model = make_model("vbpr", dm)
    losses = fit(model, dm, 2)
    assert len(losses) == 2 and all(np.isfinite(losses))
    metrics = test_metrics(model, dm)
    assert all(np.isfinite(v) for v in metrics.values())
    # both generated modalities reach the scores: knocking either one out changes them
    from mmrec.features.knockout import Knockout
    from tests.models.common import all_scores, with_features

    scores = all_scores(model, dm)
    for modality in ("lvlm", "description"):
        knocked = with_features(dm, Knockout(f"{modality}:zero").apply(feats, seed=0))
        changed = all_scores(model.attach(knocked.data), knocked)
        assert not torch.allclose(changed, scores), modality
    model.attach(dm.data)


@pytest.mark.slow
def test_attributeknn_on_decoded_attributes(taught: str, movies: Dataset, fresh_cache: Path) -> None:
    from mmrec.data.datamodule import GraphDataModule
    from tests.models.common import all_scores, fit, make_model

    attrs = LVLMAttributes(
        taught,
        MOVIES,
        top_n=5,
        value_encoder=char_ngrams,
        max_new_tokens=64,
        dtype="float32",
        device="cpu",
        batch_size=4,
    )
    feats = attrs(movies)
    dm = GraphDataModule(movies, feats, batch_size=64, seed=0)
    model = make_model("attributeknn", dm, k=3)
    fit(model, dm, 0)
    x = feats.tensors["attributes"]
    w = model.neighbours().to_dense()
    # rows 5, 6, 8, 9 (Shanghai Triad, Twelve Monkeys, Dead Man Walking, Richard III: dramas without comedy or
    # children's) were taught the same answer: identical one-hot rows, each other's k=3 neighbours at cosine 1
    assert torch.equal(x[5], x[6]) and torch.equal(x[5], x[8]) and torch.equal(x[5], x[9])
    assert w[5, [6, 8, 9]].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert w[5, 0] == 0  # Toy Story (animation, light, families) is not among them
    scores = all_scores(model, dm)
    assert scores.shape == (movies.n_users, movies.n_items) and torch.isfinite(scores).all()


PAPER_ANSWER = {
    "Category": "toys",
    "Age Group": "toddler",
    "Purpose": "fun",
    "Material": "plastic",
    "Usage Context": "home",
}


@pytest.mark.slow
def test_paper_preset_on_a_taught_model_writes_the_keyword_csv(
    tiny: str, movies: Dataset, fresh_cache: Path, tmp_path: Path
) -> None:
    """The study's Baby prompt (image only) -> `[Label] {value}` answers -> parsed attributes, the
    `Image Name,Keywords` CSV and one-hot features, through the real generation path. (The tiny model is taught
    one answer for every poster: telling items apart from the image alone would take far more steps.)"""
    prompt = load_prompt("baby_paper")
    folder = tmp_path / "taught-paper"
    shutil.copytree(tiny, folder)
    contents = [c for c in item_contents(movies, use_text=False) if c.image_path is not None]
    answer = "[Category] {Toys}, [Age Group] {Toddler}, [Purpose] {Fun}, [Material] {Plastic}, [Usage Context] {Home}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teach_answers(
            folder, prompt, [None] * 4, [open_image(c.image_path) for c in contents[:4]], [answer] * 4, steps=60
        )
    finally:
        torch.set_num_threads(threads)
    csv_path = tmp_path / "run" / "keywords.csv"
    attrs = LVLMAttributes(
        str(folder),
        "baby_paper",
        top_n=50,
        value_encoder=char_ngrams,
        use_text=False,
        max_new_tokens=64,
        dtype="float32",
        device="cpu",
        batch_size=5,
        keywords_csv=str(csv_path),
    )
    feats = attrs(movies)
    _, records = attrs.answers(movies)
    taught = [r for r in records if r is not None]
    assert len(taught) == 10  # the item without a poster has no content under an image-only prompt
    expected = {k: v.capitalize() for k, v in PAPER_ANSWER.items()}
    for record in taught:
        assert record["attributes"] == expected, record["raw"]
    rows = csv_path.read_text(encoding="utf-8").splitlines()
    assert rows == ["Image Name,Keywords"] + [f'{c.image_path.name},"{answer}"' for c in contents]
    x = feats.tensors["attributes"]
    meta = json.loads(Path(attrs.report["attributes"]["matrix"]).with_suffix(".columns.json").read_text())
    assert meta["columns"] == [f"{a}={normalise_value(v)}" for a, v in PAPER_ANSWER.items()]
    assert x[:10].sum(dim=1).tolist() == [5.0] * 10 and x[10].sum() == 0
