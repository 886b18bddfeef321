"""Prompts and the answer parser: realistic good and malformed LVLM answers, description text, parse rate."""

from __future__ import annotations

import pytest

from mmrec.errors import ConfigError
from mmrec.features.lvlm.parse import (
    attribute_label,
    clean_value,
    description_text,
    normalise_name,
    parse_answer,
    parse_report,
)
from mmrec.features.lvlm.prompts import PROMPTS_DIR, Prompt, load_prompt

BABY = load_prompt("baby")
CLOTHING = load_prompt("clothing")
PETS = load_prompt("pets")
MOVIES = load_prompt("movies")

FULL = {
    "Category": "feeding",
    "Age Group": "infant",
    "Purpose": "bottle feeding",
    "Material": "silicone",
    "Usage Context": "home",
}

# (answer, expected parse) for the baby prompt; written as a model might answer, not produced by the parser
BABY_CORPUS = [
    # the asked-for form
    ("Category: feeding\nAge Group: infant\nPurpose: bottle feeding\nMaterial: silicone\nUsage Context: home", FULL),
    # bracketed values kept from the template, odd casing
    (
        "CATEGORY: [feeding]\nage group: [infant]\nPurpose: [bottle feeding]\nMATERIAL: [silicone]\n"
        "usage context: [home]",
        FULL,
    ),
    # all on one line, bracketed
    (
        "Category: [feeding] Age Group: [infant] Purpose: [bottle feeding] Material: [silicone] Usage Context: [home]",
        FULL,
    ),
    # missing and extra brackets
    (
        "Category: [feeding\nAge Group: infant]]\nPurpose: [[bottle feeding]\nMaterial: silicone]\n"
        "Usage Context: [home",
        FULL,
    ),
    # bracketed names
    (
        "[Category]: feeding\n[Age Group]: infant\n[Purpose]: bottle feeding\n[Material]: silicone\n"
        "[Usage Context]: home",
        FULL,
    ),
    # markdown, numbering, other separators, underscores
    (
        "Sure! Here is the filled form:\n1. **Category:** feeding\n2. **Age_Group**: infant\n- Purpose = bottle "
        "feeding\n* material - silicone\n5. Usage-Context: home.",
        FULL,
    ),
    # synonyms of attribute names
    ("Type: feeding\nAge range: infant\nFunction: bottle feeding\nMade of: silicone\nUse case: home", FULL),
    # JSON
    (
        '{"Category": "feeding", "Age Group": "infant", "Purpose": "bottle feeding", "Material": "silicone", '
        '"Usage Context": "home"}',
        FULL,
    ),
    # comma-separated pairs with an attribute the prompt did not ask for
    (
        "Category: feeding, Brand: Avent, Age Group: infant; Purpose: bottle feeding, Material: silicone, "
        "Usage Context: home",
        FULL,
    ),
    # sentences: pairs ended by full stops, an unknown field in between
    (
        "Category: feeding. Colour: blue. Age group: infant. Purpose: bottle feeding. Material: silicone. "
        "Usage context: home.",
        FULL,
    ),
    # the empty template echoed before the answer: the first real value wins
    (
        "Category: [...]\nAge Group: [...]\nAnswer:\nCategory: feeding\nAge Group: infant\nPurpose: bottle feeding\n"
        "Material: silicone\nUsage Context: home",
        FULL,
    ),
    # value on the line after its name
    ("Category:\nfeeding\nAge Group:\ninfant", {"Category": "feeding", "Age Group": "infant"}),
    # placeholders count as missing
    ("Category: toys\nAge Group: N/A\nPurpose: unknown\nMaterial: [ ]\nUsage Context: -", {"Category": "toys"}),
    # values with commas, digits and hyphens survive
    (
        "Category: toys\nAge Group: 6-12 months\nMaterial: cotton, polyester",
        {"Category": "toys", "Age Group": "6-12 months", "Material": "cotton, polyester"},
    ),
    # a truncated answer (max_new_tokens reached)
    (
        "Category: stroller\nAge Group: toddler\nPurpose: transp",
        {"Category": "stroller", "Age Group": "toddler", "Purpose": "transp"},
    ),
    # free text with no form at all
    ("This is a soft plush toy for babies, made of cotton, great for the nursery.", {}),
    ("", {}),
]


@pytest.mark.parametrize(("answer", "expected"), BABY_CORPUS)
def test_parse_corpus(answer: str, expected: dict[str, str]) -> None:
    assert parse_answer(answer, BABY) == expected


def test_parse_returns_prompt_order_and_canonical_names() -> None:
    parsed = parse_answer("usage context: park\nCATEGORY: stroller", BABY)
    assert list(parsed) == ["Category", "Usage Context"]


def test_longer_name_wins_over_a_synonym_inside_it() -> None:
    # pets: "type" is a synonym of Category and "pet" of Pet Type; "Pet Type" must still map to Pet Type
    parsed = parse_answer("Pet Type: dog\nType: chew toy\nPurpose: dental care", PETS)
    assert parsed == {"Pet Type": "dog", "Category": "chew toy", "Purpose": "dental care"}


def test_words_inside_values_are_not_taken_for_names() -> None:
    parsed = parse_answer("Type: dress\nColor: navy blue with a colour block\nStyle: casual type of look", CLOTHING)
    assert parsed == {"Type": "dress", "Color": "navy blue with a colour block", "Style": "casual type of look"}


def test_movies_prompt_attributes() -> None:
    answer = "Genre: Animated comedy\nEra: 1990s\nMood: Heartwarming\nAudience: Families\nSetting: A child's bedroom"
    assert parse_answer(answer, MOVIES) == {
        "Genre": "Animated comedy",
        "Era": "1990s",
        "Mood": "Heartwarming",
        "Audience": "Families",
        "Setting": "A child's bedroom",
    }


def test_clean_value_and_names() -> None:
    assert clean_value(" **[Feeding]**. ") == "Feeding"
    assert clean_value("[...]") is None
    assert clean_value("Not specified") is None
    assert normalise_name("Age_Group") == normalise_name("age-group") == "age group"
    assert attribute_label("Usage Context") == "Usage context"


def test_description_text() -> None:
    text = description_text({"Category": "feeding", "Age Group": "infant"}, BABY, raw="ignored")
    assert text == "Category: feeding. Age group: infant."
    # nothing parsed: the raw answer, whitespace collapsed
    assert description_text({}, BABY, raw="  a soft\n toy ") == "a soft toy"
    caption = load_prompt("llava_caption")
    assert description_text({}, caption, raw="A red bottle.") == "A red bottle."
    assert description_text({}, BABY, raw=None) == ""


def test_parse_report_counts() -> None:
    rows = [parse_answer(a, BABY) for a, _ in BABY_CORPUS]
    report = parse_report(rows, BABY)
    complete = sum(1 for _, e in BABY_CORPUS if len(e) == 5)
    empty = sum(1 for _, e in BABY_CORPUS if not e)
    assert report.n_answers == len(BABY_CORPUS)
    assert report.n_complete == complete and report.n_empty == empty
    assert report.n_partial == len(BABY_CORPUS) - complete - empty
    assert report.parse_rate == pytest.approx(complete / len(BABY_CORPUS))
    n_category = sum(1 for _, e in BABY_CORPUS if "Category" in e)
    assert report.per_attribute["Category"] == pytest.approx(n_category / len(BABY_CORPUS))
    assert "answers completely" in str(report)
    assert report.as_dict()["complete"] == complete


def test_every_domain_prompt_has_five_attributes_and_renders() -> None:
    for name in ("baby", "pets", "clothing", "movies"):
        prompt = load_prompt(name)
        assert len(prompt.attributes) == 5
        message = prompt.render("Some item title")
        assert "Some item title" in message
        for attr in prompt.attributes:
            assert f"{attr}: [...]" in message
        assert "{" not in message
    caption = load_prompt("llava_caption")
    assert not caption.structured and not caption.uses_text
    assert caption.render("ignored title") == (
        "Describe this product in fluent English. Mention its category, colour, shape and any distinctive features."
    )
    assert {p.stem for p in PROMPTS_DIR.glob("*.yaml")} >= {"baby", "pets", "clothing", "movies", "llava_caption"}


def test_prompt_fingerprint_changes_with_the_template() -> None:
    a = Prompt("x", "Item: {text}\n{blanks}", ("Color",))
    b = Prompt("x", "Product: {text}\n{blanks}", ("Color",))
    assert a.fingerprint() != b.fingerprint()
    assert (
        a.fingerprint()
        == Prompt.from_config({"id": "x", "template": "Item: {text}\n{blanks}", "attributes": ["Color"]}).fingerprint()
    )


def test_bad_prompt_configs() -> None:
    with pytest.raises(ConfigError, match="blanks"):
        Prompt("x", "{blanks}")
    with pytest.raises(ConfigError, match="repeat"):
        Prompt("x", "t", ("Color", "color"))
    with pytest.raises(ConfigError, match="not among"):
        Prompt.from_config({"id": "x", "template": "t", "attributes": ["Color"], "synonyms": {"Size": ["s"]}})
    with pytest.raises(ConfigError, match="unknown keys"):
        Prompt.from_config({"id": "x", "template": "t", "colour": 1})
    with pytest.raises(ConfigError, match="known prompts"):
        load_prompt("no_such_prompt")
