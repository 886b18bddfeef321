"""One-hot attributes: lemmatisation, near-duplicate clustering on a fixed vocabulary, top-N + other, the matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import squareform

from mmrec.errors import ConfigError
from mmrec.features.lvlm.attributes import (
    OTHER,
    build_vocabulary,
    cluster_values,
    cosine_distances,
    load_attribute_matrix,
    normalise_value,
    save_attribute_matrix,
)


def char_ngrams(values: list[str], n: int = 3, dim: int = 512) -> np.ndarray:
    """A small deterministic text embedding: counts of hashed character trigrams (with word padding)."""
    out = np.zeros((len(values), dim))
    for i, value in enumerate(values):
        padded = f"  {value} "
        for j in range(len(padded) - n + 1):
            h = 0
            for ch in padded[j : j + n]:
                h = (h * 131 + ord(ch)) % dim
            out[i, h] += 1
    return out


# materials that mean the same thing, as a model might spell them
GROUPS = [
    ["silicone", "silicon"],
    ["stainless steel", "steel"],
    ["cotton", "organic cotton"],
    ["plastic", "bpa free plastic"],
    ["wood", "wooden"],
    ["bamboo"],
    ["glass"],
]


def test_normalise_value_lemmatises_and_lowercases() -> None:
    assert normalise_value("Wooden Toys") == "wooden toy"
    assert normalise_value("  INFANTS ") == "infant"
    assert normalise_value("Bottles, Cups") == "bottle cup"
    assert normalise_value("1990s") == "1990s"  # tokens with digits are kept as written
    assert normalise_value("6-12 Months") == "6 12 month"
    assert normalise_value("!!") == ""


def test_clustering_recovers_known_groups() -> None:
    values = [v for group in GROUPS for v in group]
    labels = cluster_values(values, char_ngrams, threshold=0.45)
    expected = np.repeat(np.arange(len(GROUPS)), [len(g) for g in GROUPS])
    # same partition (labels are numbered by first appearance, so they equal the group index here)
    assert labels.tolist() == expected.tolist()


def test_threshold_controls_merging() -> None:
    values = [v for group in GROUPS for v in group]
    assert len(set(cluster_values(values, char_ngrams, threshold=0.0).tolist())) == len(values)
    assert len(set(cluster_values(values, char_ngrams, threshold=1.0).tolist())) == 1
    assert cluster_values(["only"], char_ngrams).tolist() == [0]
    with pytest.raises(ConfigError):
        cluster_values(values, char_ngrams, method="ward")


def test_cosine_distances_handle_zero_vectors() -> None:
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    d = squareform(cosine_distances(x))
    assert d[0, 1] == pytest.approx(0.0)
    assert d[0, 3] == pytest.approx(1.0)
    assert d[2, 0] == 1.0 and d[2, 2] == 0.0
    assert np.isfinite(d).all()


def _parsed() -> list[dict[str, str] | None]:
    # 10 items; Material counts after lemmatising + merging: plastic 4, cotton 3, wood 1, glass 1; one item none
    return [
        {"Material": "Plastic", "Category": "feeding"},
        {"Material": "plastics", "Category": "feeding"},
        {"Material": "BPA-free plastic", "Category": "Feeding"},
        {"Material": "plastic", "Category": "toys"},
        {"Material": "cotton", "Category": "toy"},
        {"Material": "Organic cotton", "Category": "toys"},
        {"Material": "cottons", "Category": "bath"},
        {"Material": "wooden", "Category": "toy"},
        {"Material": "glass"},
        None,
    ]


def test_vocabulary_top_n_and_other_bucket() -> None:
    vocab = build_vocabulary(_parsed(), ["Category", "Material"], char_ngrams, threshold=0.45, top_n=2)
    # Category: toy 4 items, feeding 3, bath 1 (-> other)
    assert vocab.columns == [
        "Category=toy",
        "Category=feeding",
        f"Category={OTHER}",
        "Material=plastic",
        "Material=cotton",
        f"Material={OTHER}",
    ]
    m = vocab.transform(_parsed())
    assert m.shape == (10, 6)
    dense = m.toarray()
    assert set(np.unique(dense).tolist()) <= {0.0, 1.0}
    # every item with a value has exactly one 1 per attribute; the None item has none
    assert dense[:, :3].sum(axis=1).tolist() == [1] * 8 + [0, 0]
    assert dense[:, 2].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]  # Category=other: bath
    assert dense[:, 3:].sum(axis=1).tolist() == [1] * 9 + [0]
    assert dense[:, 3].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]  # plastic (incl. "BPA-free plastic")
    assert dense[:, 4].tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]  # cotton
    assert dense[:, 5].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]  # other: wood, glass
    # an unseen value goes to "other"; an unknown attribute is ignored
    unseen = vocab.transform([{"Material": "leather", "Colour": "red"}]).toarray()
    assert unseen.tolist() == [[0, 0, 0, 0, 0, 1]]


def test_vocabulary_without_other_when_all_fit() -> None:
    vocab = build_vocabulary(_parsed(), ["Material"], char_ngrams, top_n=10)
    assert f"Material={OTHER}" not in vocab.columns
    assert len(vocab.columns) == 4
    with pytest.raises(ConfigError):
        build_vocabulary(_parsed(), ["Material"], char_ngrams, top_n=0)


def test_matrix_round_trip(tmp_path) -> None:
    parsed = _parsed()
    vocab = build_vocabulary(parsed, ["Category", "Material"], char_ngrams, top_n=2)
    m = vocab.transform(parsed)
    ids = [f"i{k}" for k in range(len(parsed))]
    path = save_attribute_matrix(m, vocab, tmp_path / "attrs", ids)
    assert path.suffix == ".npz" and path.with_suffix(".columns.json").is_file()
    loaded, meta = load_attribute_matrix(path)
    assert (loaded != m).nnz == 0
    assert meta["columns"] == vocab.columns and meta["item_ids"] == ids
    assert not list(tmp_path.glob(".*.tmp"))
