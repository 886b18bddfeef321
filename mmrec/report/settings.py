"""What the report is asked: the metric, the margin δ, α, and the pre-declared research questions.

A **question** says which condition should come out how, e.g. "text alone matches full"
(``text-only`` → ``equivalent``) or "image alone loses" (``image-only`` → ``worse``). Each question is one
Holm family, across every dataset that declares it and every model. Questions come from the study config
(``report.questions`` in ``conf/experiment/knockout_study.yaml``, recorded in every run's ``summary.json``),
keyed by dataset name with ``default`` for the others::

    report:
      questions:
        default: {equivalent: [text-only], worse: [image-only]}
        tiktok: {equivalent: [image-only], worse: [audio-only]}

They are declared before the runs: the command line cannot change them (the API can, for tests and
simulations, and the report then says so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mmrec.errors import ConfigError

OUTCOMES = ("equivalent", "worse", "better", "inconclusive")
EXPECTATIONS = ("equivalent", "worse", "better")
_METRIC_RE = re.compile(r"^[a-z_]+@\d+$")


def metric_name(metric: str = "recall", k: int | None = None) -> str:
    """``recall@20`` from ``("recall", 20)``, ``("recall@20", None)`` or ``("Recall@20", 20)``."""
    metric = metric.strip().lower()
    if "@" in metric:
        base, _, k_text = metric.partition("@")
        if k is not None and int(k_text) != int(k):
            raise ConfigError(f"metric '{metric}' names K={k_text} but --k is {k}: give one of them")
        name = metric
    else:
        name = f"{metric}@{20 if k is None else int(k)}"
    if not _METRIC_RE.match(name):
        raise ConfigError(f"metric '{name}' is not of the form name@K, e.g. recall@20 or ndcg@10")
    return name


@dataclass(frozen=True)
class Question:
    """One pre-declared research question: cells labelled ``condition`` are expected to be ``expect``."""

    condition: str  # a base condition label: text-only, no-audio, all-noise, ...
    expect: str  # equivalent | worse | better

    @property
    def family(self) -> str:
        """The Holm family's name (shared by every dataset that asks this question)."""
        return f"{self.condition} → {self.expect}"

    @property
    def subject(self) -> str:
        """Words for the condition: ``text alone``, ``without audio``, ``all-noise``."""
        if self.condition.endswith("-only"):
            return f"{self.condition.removesuffix('-only')} alone"
        if self.condition.startswith("no-"):
            return f"without {self.condition.removeprefix('no-').replace('+', ' and ')}"
        return self.condition


def parse_questions(raw: Any, where: str) -> dict[str, tuple[Question, ...]]:
    """``{dataset|default: {expect: [condition, ...]}}`` → dataset → questions; errors name ``where``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: report.questions must map a dataset name (or 'default') to questions")
    out: dict[str, tuple[Question, ...]] = {}
    for dataset, block in raw.items():
        if not isinstance(block, Mapping):
            raise ConfigError(f"{where}: report.questions.{dataset} must map an outcome to condition labels")
        questions = []
        for expect, conditions in block.items():
            if expect not in EXPECTATIONS:
                raise ConfigError(
                    f"{where}: report.questions.{dataset}.{expect}: expected outcome must be one of "
                    f"{', '.join(EXPECTATIONS)}"
                )
            if isinstance(conditions, str) or not all(isinstance(c, str) for c in conditions or []):
                raise ConfigError(f"{where}: report.questions.{dataset}.{expect} must be a list of labels")
            questions += [Question(c, str(expect)) for c in conditions]
        out[str(dataset)] = tuple(questions)
    return out


@dataclass(frozen=True)
class ReportSettings:
    """Every choice that changes a number or a word in the report (recorded in every output)."""

    metric: str = "recall@20"
    delta: float = 0.02  # margin, a fraction of full's mean: the tests compare cond with (1 ∓ δ) · full
    alpha: float = 0.05  # level of each decision after Holm; intervals shown at 1 − 2α
    power: float = 0.8  # power the "seeds needed" line asks for
    questions: Mapping[str, tuple[Question, ...]] | None = field(default=None, compare=False)  # None: config

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", metric_name(self.metric))
        if not 0 < self.delta < 1:
            raise ConfigError(f"delta is a fraction of full's mean (0.02 = 2%), got {self.delta}")
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"alpha must lie in (0, 0.5), got {self.alpha}")
        if not 0 < self.power < 1:
            raise ConfigError(f"power must lie in (0, 1), got {self.power}")
        if self.questions is not None and not isinstance(next(iter(self.questions.values()), ()), tuple):
            object.__setattr__(self, "questions", parse_questions(self.questions, "ReportSettings.questions"))

    @property
    def level(self) -> float:
        """Level of the shown intervals: 1 − 2α, the interval the decisions are read from."""
        return 1.0 - 2.0 * self.alpha


def settings_dict(settings: ReportSettings) -> dict[str, Any]:
    """JSON-ready settings (questions as ``{dataset: {expect: [conditions]}}``)."""
    out = {k: v for k, v in asdict(settings).items() if k != "questions"}
    out["level"] = settings.level
    if settings.questions is not None:
        out["questions"] = questions_dict(settings.questions)
    return out


def questions_dict(questions: Mapping[str, tuple[Question, ...]]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for dataset, qs in questions.items():
        for q in qs:
            out.setdefault(dataset, {}).setdefault(q.expect, []).append(q.condition)
    return out
