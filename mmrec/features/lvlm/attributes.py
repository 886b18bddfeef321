"""One-hot attributes from parsed descriptions: lemmatise, merge near-duplicates, keep the top values.

Per attribute: each value is lower-cased and lemmatised word by word (simplemma; tokens with digits are kept as
they are), the distinct values are embedded by a text encoder and merged by agglomerative clustering on cosine
distance (average linkage; ``threshold`` = the largest merge distance, default 0.45); a cluster is named by its
most frequent value. The ``top_n`` clusters by item count become columns ``"<Attribute>=<value>"``, the rest
share one ``"<Attribute>=other"`` column. The result is a sparse item x attribute-value matrix with at most one
1 per (item, attribute).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from mmrec.cache import atomic_write_bytes, atomic_write_text
from mmrec.data.graphs import SparseMatrix
from mmrec.errors import ConfigError

EmbedFn = Callable[[list[str]], np.ndarray]
OTHER = "other"
LINKAGES = ("average", "complete", "single")
_TOKEN = re.compile(r"[0-9a-z]+(?:['’][a-z]+)?")


@lru_cache(maxsize=65536)
def _lemma(token: str, lang: str) -> str:
    import simplemma

    if any(ch.isdigit() for ch in token):
        return token
    return simplemma.lemmatize(token, lang=lang).lower()


def normalise_value(value: str, lang: str = "en") -> str:
    """Lower-case, tokenise, lemmatise: ``"Wooden Toys"`` -> ``"wooden toy"``; "" when nothing is left."""
    return " ".join(_lemma(t, lang) for t in _TOKEN.findall(value.lower()))


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """Condensed cosine distances between the rows of ``x`` [n, d]; a zero row is at distance 1 from all."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # [n, 1]
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)  # [n, d]
    dist = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)  # [n, n]
    zero = norms[:, 0] == 0
    dist[zero, :] = 1.0
    dist[:, zero] = 1.0
    np.fill_diagonal(dist, 0.0)
    return squareform(dist, checks=False)


def cluster_values(
    values: Sequence[str], embed: EmbedFn, threshold: float = 0.45, method: str = "average"
) -> np.ndarray:
    """Cluster label (0-based, int) of each value: agglomerative clustering of their embeddings."""
    if method not in LINKAGES:
        raise ConfigError(f"attribute clustering linkage {method!r} unknown; choose one of {list(LINKAGES)}")
    if threshold < 0:
        raise ConfigError(f"attribute clustering threshold must be >= 0, got {threshold}")
    n = len(values)
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    x = np.asarray(embed(list(values)), dtype=np.float64)
    if x.shape[0] != n:
        raise ValueError(f"embedding function returned {x.shape[0]} rows for {n} values")
    tree = linkage(cosine_distances(x), method=method)
    labels = fcluster(tree, t=threshold, criterion="distance")
    # renumber in order of first appearance so labels do not depend on scipy's numbering
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    remap = np.empty(labels.max() + 1, dtype=np.int64)
    remap[np.unique(labels)[order]] = np.arange(len(order))
    return remap[labels]


@dataclass
class AttributeVocabulary:
    """The columns and, per attribute, which (normalised) value goes to which column."""

    attributes: tuple[str, ...]
    columns: list[str]
    value_to_column: dict[str, dict[str, int]]
    lang: str = "en"

    def column(self, attribute: str, value: str) -> int | None:
        table = self.value_to_column.get(attribute, {})
        norm = normalise_value(value, self.lang)
        if norm in table:
            return table[norm]
        other = f"{attribute}={OTHER}"
        return self.columns.index(other) if norm and other in self.columns else None

    def transform(self, parsed: Sequence[Mapping[str, str] | None]) -> sp.csr_matrix:
        """The ``[n_items, n_columns]`` 0/1 matrix (float32) of parsed attribute dicts (None = no answer)."""
        rows, cols = [], []
        for i, pairs in enumerate(parsed):
            for attr, value in (pairs or {}).items():
                j = self.column(attr, value) if attr in self.attributes else None
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        data = np.ones(len(rows), dtype=np.float32)
        m = sp.csr_matrix((data, (rows, cols)), shape=(len(parsed), len(self.columns)), dtype=np.float32)
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": list(self.attributes),
            "columns": self.columns,
            "value_to_column": self.value_to_column,
            "lang": self.lang,
        }


def build_vocabulary(
    parsed: Sequence[Mapping[str, str] | None],
    attributes: Sequence[str],
    embed: EmbedFn,
    threshold: float = 0.45,
    top_n: int = 20,
    method: str = "average",
    lang: str = "en",
) -> AttributeVocabulary:
    """Columns from the values found in ``parsed`` (one dict per item)."""
    if top_n < 1:
        raise ConfigError(f"attribute top_n must be >= 1, got {top_n}")
    columns: list[str] = []
    value_to_column: dict[str, dict[str, int]] = {}
    for attr in attributes:
        counts = Counter(normalise_value(p[attr], lang) for p in parsed if p and p.get(attr))
        counts.pop("", None)
        if not counts:
            value_to_column[attr] = {}
            continue
        values = sorted(counts, key=lambda v: (-counts[v], v))  # [n_values], most frequent first
        labels = cluster_values(values, embed, threshold, method)
        clusters: dict[int, list[str]] = {}
        for v, lab in zip(values, labels.tolist()):
            clusters.setdefault(lab, []).append(v)
        named = []
        for members in clusters.values():
            name = min(members, key=lambda v: (-counts[v], len(v), v))
            named.append((sum(counts[v] for v in members), name, members))
        named.sort(key=lambda t: (-t[0], t[1]))
        table: dict[str, int] = {}
        for size_rank, (_, name, members) in enumerate(named):
            if size_rank < top_n:
                columns.append(f"{attr}={name}")
                target = len(columns) - 1
            else:
                if size_rank == top_n:
                    columns.append(f"{attr}={OTHER}")
                target = columns.index(f"{attr}={OTHER}")
            table.update({m: target for m in members})
        value_to_column[attr] = table
    return AttributeVocabulary(tuple(attributes), columns, value_to_column, lang)


def save_attribute_matrix(
    matrix: SparseMatrix, vocabulary: AttributeVocabulary, path: str | Path, item_ids: Sequence[str] | None = None
) -> Path:
    """Write ``<path>.npz`` (scipy.sparse) and ``<path>.columns.json`` (vocabulary, item ids), atomically."""
    path = Path(path).with_suffix(".npz")
    buf = io.BytesIO()
    sp.save_npz(buf, sp.csr_matrix(matrix), compressed=True)
    atomic_write_bytes(path, buf.getvalue())
    meta = vocabulary.to_json()
    meta["item_ids"] = list(item_ids) if item_ids is not None else None
    atomic_write_text(path.with_suffix(".columns.json"), json.dumps(meta, ensure_ascii=False, indent=1))
    return path


def load_attribute_matrix(path: str | Path) -> tuple[sp.csr_matrix, dict[str, Any]]:
    path = Path(path).with_suffix(".npz")
    meta = json.loads(path.with_suffix(".columns.json").read_text(encoding="utf-8"))
    # load_npz gives a csr/coo matrix; scipy-stubs' return type (_data_matrix) lacks tocsr
    return sp.load_npz(path).tocsr(), meta  # pyright: ignore[reportAttributeAccessIssue]
