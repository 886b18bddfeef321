"""The LVLM study's presets: verbatim prompts, `[Label] {value}` answers, the `Image Name,Keywords` CSV and the
attribute pipeline's published sizes (50 values per label + "other" -> 255 features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from mmrec.errors import DataError
from mmrec.features.lvlm.attributes import OTHER, build_vocabulary
from mmrec.features.lvlm.inputs import ItemContent
from mmrec.features.lvlm.keywords import HEADER, keywords_text, read_keywords_csv, write_keywords_csv
from mmrec.features.lvlm.parse import parse_answer
from mmrec.features.lvlm.prompts import load_prompt

CONF = Path(__file__).resolve().parents[2] / "conf"

# Labels and example answers as published (../shared/papers/README.md), typed here, not read from the YAML.
PAPER = {
    "baby_paper": {
        "Category": "Feeding",
        "Age Group": "Infant",
        "Purpose": "Hygiene",
        "Material": "Silicone",
        "Usage Context": "Home",
    },
    "pets_paper": {
        "Category": "Toys",
        "Pet Type": "Dog",
        "Purpose": "Entertainment",
        "Material": "Rubber",
        "Usage Context": "Outdoor",
    },
    "clothing_paper": {
        "Type": "dress",
        "Color": "red",
        "Wear Location": "torso",
        "Material": "cotton",
        "Style": "casual",
    },
}
BABY_PROMPT = (
    "Imagine you're creating metadata for an image database of baby products. Your task is to select five keywords "
    "that best represent the image content. Fill in the blanks: [Category], [Age Group], [Purpose], [Material], "
    "[Usage Context]. For example, your answer will be: [Category] {Feeding}, [Age Group] {Infant}, "
    "[Purpose] {Hygiene}, [Material] {Silicone}, [Usage Context] {Home}."
)


def test_baby_prompt_is_verbatim_and_image_only() -> None:
    prompt = load_prompt("baby_paper")
    assert prompt.render("an item title that must not appear") == BABY_PROMPT
    assert not prompt.uses_text


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_prompts_list_the_labels_and_parse_their_own_example(name: str) -> None:
    prompt = load_prompt(name)
    expected = PAPER[name]
    assert prompt.attributes == tuple(expected)
    message = prompt.render(None)
    assert "Fill in the blanks: " + ", ".join(f"[{a}]" for a in expected) + "." in message
    example = message.split("your answer will be: ", 1)[1].rstrip(".")
    assert parse_answer(example, prompt) == expected


def test_parser_reads_label_brace_answers_as_models_write_them() -> None:
    prompt = load_prompt("baby_paper")
    answer = (
        "[Category] {Bath Toys}, [Age Group] {6-12 Months}\n[Purpose] { Fun, learning },"
        " [Material] {}, [Usage Context] {Bath}."
    )
    assert parse_answer(answer, prompt) == {
        "Category": "Bath Toys",
        "Age Group": "6-12 Months",
        "Purpose": "Fun, learning",
        "Usage Context": "Bath",
    }
    # the prompt's own blank list, echoed without values, gives nothing
    assert parse_answer("Fill in the blanks: [Category], [Age Group], [Purpose].", prompt) == {}


def test_keywords_csv_round_trip(tmp_path: Path) -> None:
    prompt = load_prompt("clothing_paper")
    contents = [
        ItemContent("a", None, Path("/imgs/B00A.jpg"), "k1"),
        ItemContent("b", "t", None, "k2"),
        ItemContent("c", None, None, None),
    ]
    records = [
        {"raw": "ignored", "attributes": PAPER["clothing_paper"]},
        {"raw": "A red,  dress\n", "attributes": {}},
        None,
    ]
    path = write_keywords_csv(tmp_path / "keywords.csv", contents, records, prompt)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(HEADER)
    assert (
        lines[1] == 'B00A.jpg,"[Type] {dress}, [Color] {red}, [Wear Location] {torso}, [Material] {cotton}, '
        '[Style] {casual}"'
    )
    assert lines[2] == 'b,"A red, dress"'  # nothing parsed: the raw answer; item c has no content: no row
    assert len(lines) == 3
    back = read_keywords_csv(path, prompt)
    assert back["B00A.jpg"] == PAPER["clothing_paper"]
    assert keywords_text({"Color": "red", "Type": "dress"}, prompt) == "[Type] {dress}, [Color] {red}"
    (tmp_path / "bad.csv").write_text("image,keywords\nx,y\n")
    with pytest.raises(DataError, match="header"):
        read_keywords_csv(tmp_path / "bad.csv", prompt)


def test_published_pipeline_gives_255_features() -> None:
    """60 distinct values per label, none alike: 50 kept per label + one "other" column each."""
    prompt = load_prompt("baby_paper")
    rng = np.random.default_rng(0)
    words = [f"value{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(60)]  # letters only: not lemmatised away
    parsed = []
    for _ in range(600):
        parsed.append({a: words[int(rng.integers(60))] for a in prompt.attributes})
    vocab_index = {w: i for i, w in enumerate(words)}

    def one_hot(values: list[str]) -> np.ndarray:  # orthogonal: no two values merge at any threshold < 1
        x = np.zeros((len(values), len(words)))
        x[np.arange(len(values)), [vocab_index[v] for v in values]] = 1.0
        return x

    vocab = build_vocabulary(parsed, prompt.attributes, one_hot, threshold=0.45, top_n=50)
    assert len(vocab.columns) == 255
    for attr in prompt.attributes:
        cols = [c for c in vocab.columns if c.startswith(f"{attr}=")]
        assert len(cols) == 51 and cols[-1] == f"{attr}={OTHER}"
        counts = {w: sum(p[attr] == w for p in parsed) for w in words}
        kept = {c.split("=", 1)[1] for c in cols[:-1]}
        # the kept values are the 50 most frequent (ties broken by name, as documented)
        assert kept == set(sorted(words, key=lambda w: (-counts[w], w))[:50])
    assert vocab.transform(parsed).sum(axis=1).tolist() == [[5.0]] * 600


def test_paper_encoder_preset_has_the_published_defaults() -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["encoder=lvlm_attributes_paper", "prompts@encoder.prompt=pets_paper"])
    enc = cfg.encoder
    assert (enc.top_n, enc.threshold, enc.use_text) == (50, 0.45, False)
    assert enc.value_encoder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert enc.model == "Qwen/Qwen2-VL-7B-Instruct" and enc.prompt.id == "pets_paper"
