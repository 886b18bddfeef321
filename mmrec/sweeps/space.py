"""Search spaces: the format of ``conf/hparams_search/<model>.yaml`` and how a trial turns into overrides.

A search-space file is a ``# @package _global_`` config that sets ``hydra.sweeper.params`` (what Optuna's
samplers explore) and, optionally, ``hydra.sweeper.grid`` (the exact grid a ``GridSampler`` walks, e.g. the
grid the reference code tuned)::

    # @package _global_
    hydra:
      sweeper:
        params:
          model.lr: interval(1e-4, 1e-2, log=True)     # float, log-uniform
          model.reg_weight: choice(0.0, 1e-5, 1e-4)    # categorical
          model.n_layers: range(1, 5)                  # int 1..4 (stop excluded, like Python/Hydra)
          model.dropout: interval(0.0, 0.9, step=0.1)  # float on a 0.1 grid
          model.knn_k: int(5, 20, step=5)              # int 5..20, both ends included
          model.embedding_size: 64                     # a plain value: fixed, not searched
          model.weight_decay:                          # the structured form of any of the above
            type: float                                #   float | int | categorical
            low: 1.0e-6
            high: 1.0e-2
            log: true
        grid:
          model.reg_weight: [0.0, 1.0e-5, 1.0e-4, 1.0e-3]
          model.n_layers: [1, 2, 3, 4]

Keys are override paths of the job config (``model.lr`` becomes the override ``model.lr=<value>``); they must
exist in the config. Nested mappings are read as dotted paths too (``params: {model: {lr: ...}}``).

The string grammar (parsed with :mod:`ast`, never ``eval``): ``interval(low, high[, log=..., step=...])``
→ ``FloatDistribution``; ``int(low, high[, log=..., step=...])`` → ``IntDistribution`` (both ends included);
``range(start, stop[, step])`` → ``IntDistribution`` over ``start, start+step, …`` below ``stop``;
``choice(a, b, …)`` → ``CategoricalDistribution`` (bare words are strings; ``true/false/null`` are read as
YAML reads them). Anything else is a fixed value. Which sampler reads ``grid``: only a sampler whose
constructor takes ``search_space`` (``optuna.samplers.GridSampler``); every other sampler reads ``params``.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mmrec.errors import ConfigError

_WORDS = {"true": True, "false": False, "null": None, "none": None, "True": True, "False": False, "None": None}


@dataclass(frozen=True)
class SearchSpace:
    """What a study searches (``distributions``) and what it pins (``fixed``), by override path."""

    distributions: dict[str, BaseDistribution]
    fixed: dict[str, Any]

    def signature(self) -> dict[str, str]:
        """A JSON-able description, stored with the study so a resume with another space is caught."""
        out = {k: _describe(d) for k, d in sorted(self.distributions.items())}
        out.update({k: f"fixed({v!r})" for k, v in sorted(self.fixed.items())})
        return out

    def placeholder(self) -> dict[str, Any]:
        """One valid value per searched parameter (to check the keys compose before any trial exists)."""
        values: dict[str, Any] = dict(self.fixed)
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                values[key] = dist.choices[0]
            else:
                values[key] = dist.low  # type: ignore[attr-defined]
        return values

    def without(self, keys: set[str]) -> SearchSpace:
        return SearchSpace(
            {k: d for k, d in self.distributions.items() if k not in keys},
            {k: v for k, v in self.fixed.items() if k not in keys},
        )


def _describe(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"choice{tuple(dist.choices)!r}"
    kind = "int" if isinstance(dist, IntDistribution) else "interval"
    return f"{kind}({dist.low!r}, {dist.high!r}, log={dist.log}, step={dist.step!r})"  # type: ignore


def flatten(params: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested mappings → dotted keys; a mapping with a ``type`` key is a structured distribution (a leaf)."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and "type" not in value:
            out.update(flatten(value, prefix=path + "."))
        else:
            out[path] = value
    return out


def parse_space(params: Mapping[str, Any] | None) -> SearchSpace:
    """``hydra.sweeper.params`` → :class:`SearchSpace` (ConfigError naming the key on a bad entry)."""
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    for key, value in flatten(params).items():
        parsed = parse_distribution(value, key)
        if isinstance(parsed, BaseDistribution):
            distributions[key] = parsed
        else:
            fixed[key] = parsed
    return SearchSpace(distributions, fixed)


def parse_grid(grid: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """``hydra.sweeper.grid`` → {key: list of values}; a single value or ``choice(...)`` is accepted too."""
    out: dict[str, list[Any]] = {}
    for key, value in flatten(grid).items():
        if isinstance(value, str):
            parsed = parse_distribution(value, key)
            if isinstance(parsed, CategoricalDistribution):
                value = list(parsed.choices)
            elif isinstance(parsed, IntDistribution) and not parsed.log:
                value = list(range(parsed.low, parsed.high + 1, parsed.step))
            elif isinstance(parsed, BaseDistribution):
                raise ConfigError(f"hydra.sweeper.grid.{key}: {value!r} is continuous; a grid needs a list")
            else:
                value = [parsed]
        elif not isinstance(value, list | tuple):
            value = [value]
        values = list(value)
        if not values:
            raise ConfigError(f"hydra.sweeper.grid.{key} is empty")
        for v in values:
            if v is not None and not isinstance(v, str | int | float | bool):
                raise ConfigError(f"hydra.sweeper.grid.{key}: {v!r} is not a str, int, float, bool or null")
        out[key] = values
    return out


def grid_as_space(grid: Mapping[str, list[Any]]) -> SearchSpace:
    """The grid as categorical distributions (what the trial suggests when a GridSampler drives it)."""
    return SearchSpace(
        {k: CategoricalDistribution(tuple(v)) for k, v in grid.items() if len(v) > 1},
        {k: v[0] for k, v in grid.items() if len(v) == 1},
    )


def grid_size(grid: Mapping[str, list[Any]]) -> int:
    return math.prod(len(v) for v in grid.values()) if grid else 0


def parse_distribution(value: Any, key: str = "?") -> BaseDistribution | Any:
    """One entry of ``params``: a distribution, or the value itself when it is a plain (fixed) value."""
    if isinstance(value, Mapping):
        return _structured(dict(value), key)
    if not isinstance(value, str):
        return value
    text = value.strip()
    # quote bare Python keywords (e.g. choice(local, global)) so ast can parse them as strings
    text = re.sub(
        r"(?<![\w'\".])([A-Za-z_]\w*)(?![\w'\"(])",
        lambda m: (
            repr(m.group(1))
            if keyword.iskeyword(m.group(1)) and m.group(1) not in ("True", "False", "None")
            else m.group(1)
        ),
        text,
    )
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return value
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return value
    func = node.func.id
    if func not in ("interval", "int", "range", "choice"):
        return value
    try:
        args = [_literal(a) for a in node.args]
        kwargs = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    except ValueError as e:
        raise ConfigError(f"search space '{key}': cannot read {text!r}: {e}") from None
    try:
        return _build(func, args, kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"search space '{key}': {text!r} is not valid ({e}); expected interval(low, high, log=False, "
            "step=None), int(low, high, log=False, step=1), range(start, stop, step=1) or choice(a, b, ...)"
        ) from None


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Name):  # bare word: a string (or a YAML keyword)
        return _WORDS.get(node.id, node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _literal(node.operand)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant):
        return node.value
    raise ValueError(f"{ast.unparse(node)!r} is not a literal")


def _build(func: str, args: list[Any], kwargs: dict[str, Any]) -> BaseDistribution:
    if func == "choice":
        if kwargs:
            raise ValueError("choice() takes no keyword arguments")
        if not args:
            raise ValueError("choice() needs at least one value")
        return CategoricalDistribution(tuple(args))
    if func == "range":
        if not 2 <= len(args) <= 3:
            raise ValueError("range() takes start, stop[, step]")
        step = int(args[2] if len(args) == 3 else kwargs.pop("step", 1))
        if kwargs:
            raise ValueError(f"unknown arguments {sorted(kwargs)}")
        if step <= 0:
            raise ValueError("step must be positive")
        values = range(int(args[0]), int(args[1]), step)
        if not values:
            raise ValueError("empty range")
        return IntDistribution(values[0], values[-1], step=step)
    if len(args) != 2:
        raise ValueError(f"{func}() takes low and high")
    low, high = args
    unknown = set(kwargs) - {"log", "step"}
    if unknown:
        raise ValueError(f"unknown arguments {sorted(unknown)}")
    log = bool(kwargs.get("log", False))
    if func == "int":
        return IntDistribution(int(low), int(high), log=log, step=int(kwargs.get("step", 1)))
    step = kwargs.get("step")
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def _structured(spec: dict[str, Any], key: str) -> BaseDistribution:
    kind = str(spec.pop("type", "")).lower()
    try:
        if kind in ("float", "interval", "uniform"):
            step = spec.pop("step", None)
            dist: BaseDistribution = FloatDistribution(
                float(spec.pop("low")),
                float(spec.pop("high")),
                log=bool(spec.pop("log", False)),
                step=None if step is None else float(step),
            )
        elif kind == "int":
            dist = IntDistribution(
                int(spec.pop("low")),
                int(spec.pop("high")),
                log=bool(spec.pop("log", False)),
                step=int(spec.pop("step", 1)),
            )
        elif kind in ("categorical", "choice"):
            dist = CategoricalDistribution(tuple(spec.pop("choices")))
        else:
            raise ValueError(f"type {kind!r}: choose float, int or categorical")
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"search space '{key}': {e}") from None
    if spec:
        raise ConfigError(f"search space '{key}': unknown fields {sorted(spec)}")
    return dist


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Ask an Optuna trial for a value of every searched parameter; add the fixed ones."""
    values: dict[str, Any] = {}
    for key, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            values[key] = trial.suggest_categorical(key, dist.choices)
        elif isinstance(dist, IntDistribution):
            values[key] = trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            assert isinstance(dist, FloatDistribution)
            values[key] = trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
    values.update(space.fixed)
    return values


def format_value(value: Any) -> str:
    """A Python value as a Hydra override value that reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return quote(str(value))


def quote(text: str) -> str:
    """Quote a string for Hydra's override grammar (so ``,``, ``=``, ``:`` and spaces stay literal)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "'" + text.replace("'", "\\'") + "'"


def overrides_for(values: Mapping[str, Any]) -> list[str]:
    return [f"{k}={format_value(v)}" for k, v in values.items()]
