"""Parse a generated answer into attribute -> value pairs, robustly, and turn the pairs into description text.

Accepted forms (any casing, any mix): ``Category: feeding`` lines; bracketed values ``Category: [feeding]``
(also with a missing or extra bracket); bracketed names ``[Category]: feeding``; the LVLM study's
``[Category] {Feeding}, [Age Group] {Infant}, ...`` (``prompts@encoder.prompt=baby_paper``); ``Category = feeding``,
``Category - feeding``, ``Category [feeding]``; markdown (``**Category:** feeding``, ``- Category: ...``,
numbered lists); several pairs on one line (``Category: feeding, Age Group: infant``); JSON-like objects;
attribute names written as a synonym from the prompt (``Age`` for ``Age Group``) or with ``_``/``-`` for spaces.
Placeholders (``[...]``, ``N/A``, ``unknown`` ...) count as missing; the first real value of an attribute wins
(so an echo of the empty template before the answer does no harm).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmrec.features.lvlm.prompts import Prompt

PLACEHOLDERS = frozenset(
    {
        "",
        "...",
        "..",
        "…",
        "n/a",
        "na",
        "n.a",
        "none",
        "null",
        "nil",
        "unknown",
        "not specified",
        "unspecified",
        "not applicable",
        "not available",
        "not mentioned",
        "not visible",
        "not sure",
        "-",
        "--",
        "?",
        "blank",
        "tbd",
        "fill in",
        "answer",
        "value",
    }
)
_PLACEHOLDER_NAMES = frozenset(" ".join(re.sub(r"[^0-9a-z]+", " ", p).split()) for p in PLACEHOLDERS)
_EDGE = "\"'`*_[](){}<>.,;:|#•·–—- \t\r\n"
_VALUE_STOP = re.compile(r"(?:[,;|]|\.\s)\s*[\*\"'\[]*[A-Z][A-Za-z ]{0,30}[\*\"'\]]*\s*:")


def normalise_name(name: str) -> str:
    """Lowercase, any run of non-alphanumerics as one space: ``Age_Group`` -> ``age group``."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.lower()).split())


def alias_table(prompt: Prompt) -> dict[str, str]:
    """Normalised name or synonym -> canonical attribute (canonical names win over another's synonym)."""
    table: dict[str, str] = {}
    for attr in prompt.attributes:
        for alias in prompt.synonyms.get(attr, ()):
            table.setdefault(normalise_name(alias), attr)
    for attr in prompt.attributes:
        table[normalise_name(attr)] = attr
    return {k: v for k, v in table.items() if k}


def _alias_pattern(alias: str) -> str:
    return r"[\s_\-]*".join(re.escape(tok) for tok in alias.split())


def _key_regex(aliases: Iterable[str]) -> re.Pattern[str]:
    alternation = "|".join(_alias_pattern(a) for a in sorted(aliases, key=len, reverse=True))
    return re.compile(
        r"(?<![0-9A-Za-z])[\*_\"'`\[]*\s*"  # start of a word, optional opening decoration
        rf"(?P<key>{alternation})"
        r"\s*[\*_\"'`\]]*\s*"  # optional closing decoration
        r"(?::|=|[-–—](?=\s)|(?=\[)|(?=\{))",  # the separator: ':', '=', a spaced dash, an opening [ or {
        re.IGNORECASE,
    )


def clean_value(value: str) -> str | None:
    """A value without decoration and trailing punctuation; None for placeholders."""
    value = value.replace("[", " ").replace("]", " ").replace("{", " ").replace("}", " ").replace("**", " ")
    value = " ".join(value.split()).strip(_EDGE)
    if normalise_name(value) in _PLACEHOLDER_NAMES or not re.search(r"[0-9A-Za-z]", value):
        return None
    return value


def parse_answer(text: str | None, prompt: Prompt) -> dict[str, str]:
    """``{attribute: value}`` for the prompt's attributes found in ``text`` (canonical names, prompt order)."""
    if not text or not prompt.attributes:
        return {}
    table = alias_table(prompt)
    matches = list(_key_regex(table).finditer(text))
    found: dict[str, str] = {}
    for i, m in enumerate(matches):
        attr = table[normalise_name(m.group("key"))]
        if attr in found:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end() : end].lstrip()
        value = value.split("\n", 1)[0]
        stop = _VALUE_STOP.search(value)
        if stop is not None:
            value = value[: stop.start()]
        cleaned = clean_value(value)
        if cleaned is not None:
            found[attr] = cleaned
    return {a: found[a] for a in prompt.attributes if a in found}


def attribute_label(name: str) -> str:
    """``Age Group`` -> ``Age group`` (sentence case, as in the description text)."""
    return name[:1].upper() + name[1:].lower()


def description_text(attributes: Mapping[str, str], prompt: Prompt, raw: str | None = None) -> str:
    """``"Category: feeding. Age group: infant. ..."`` from the parsed pairs; the raw answer (whitespace
    collapsed) when the prompt is free-form or nothing could be parsed; "" when there is nothing."""
    pairs = [(a, attributes[a]) for a in prompt.attributes if attributes.get(a)]
    if pairs:
        return " ".join(f"{attribute_label(a)}: {v.rstrip('.')}." for a, v in pairs)
    return " ".join((raw or "").split())


@dataclass
class ParseReport:
    """How well answers parsed: complete = every attribute found, empty = none found."""

    n_answers: int
    n_complete: int
    n_partial: int
    n_empty: int
    per_attribute: dict[str, float] = field(default_factory=dict)

    @property
    def parse_rate(self) -> float:
        """Share of answers with every attribute parsed."""
        return self.n_complete / self.n_answers if self.n_answers else 0.0

    @property
    def field_rate(self) -> float:
        """Share of (answer, attribute) slots filled."""
        return sum(self.per_attribute.values()) / len(self.per_attribute) if self.per_attribute else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_answers": self.n_answers,
            "parse_rate": round(self.parse_rate, 4),
            "field_rate": round(self.field_rate, 4),
            "complete": self.n_complete,
            "partial": self.n_partial,
            "empty": self.n_empty,
            "per_attribute": {k: round(v, 4) for k, v in self.per_attribute.items()},
        }

    def __str__(self) -> str:
        per = ", ".join(f"{k} {v:.0%}" for k, v in self.per_attribute.items())
        return (
            f"parsed {self.n_complete}/{self.n_answers} answers completely ({self.parse_rate:.1%}), "
            f"{self.n_partial} partly, {self.n_empty} not at all; per attribute: {per}"
        )


def parse_report(parsed: Iterable[Mapping[str, str]], prompt: Prompt) -> ParseReport:
    rows = list(parsed)
    k = len(prompt.attributes)
    counts = {a: 0 for a in prompt.attributes}
    complete = partial = empty = 0
    for row in rows:
        n_found = sum(1 for a in prompt.attributes if row.get(a))
        for a in prompt.attributes:
            counts[a] += bool(row.get(a))
        if k and n_found == k:
            complete += 1
        elif n_found:
            partial += 1
        else:
            empty += 1
    n = len(rows)
    return ParseReport(n, complete, partial, empty, {a: (c / n if n else 0.0) for a, c in counts.items()})
