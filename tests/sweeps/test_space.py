"""Search-space grammar, grids and overrides (mmrec.sweeps.space) and the shipped hparams_search files."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mmrec.errors import ConfigError
from mmrec.sweeps.space import (
    format_value,
    grid_size,
    overrides_for,
    parse_distribution,
    parse_grid,
    parse_space,
    suggest,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interval(1e-4, 1e-2, log=True)", FloatDistribution(1e-4, 1e-2, log=True)),
        ("interval(1.0e-4, 5.0e-3, log=true)", FloatDistribution(1e-4, 5e-3, log=True)),
        ("interval(0, 0.9, step=0.1)", FloatDistribution(0.0, 0.9, step=0.1)),
        ("interval(-1, 1)", FloatDistribution(-1.0, 1.0)),
        ("int(5, 20, step=5)", IntDistribution(5, 20, step=5)),
        ("int(16, 256, log=True)", IntDistribution(16, 256, log=True)),
        ("range(1, 5)", IntDistribution(1, 4)),
        ("range(0, 10, 3)", IntDistribution(0, 9, step=3)),
        ("choice(0.0, 1e-5, 1e-4)", CategoricalDistribution((0.0, 1e-5, 1e-4))),
        ("choice(mean, zero, 'a b', true, null)", CategoricalDistribution(("mean", "zero", "a b", True, None))),
    ],
)
def test_string_grammar(text: str, expected: object) -> None:
    assert parse_distribution(text, "k") == expected


def test_structured_form_and_fixed_values() -> None:
    space = parse_space(
        {
            "model": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}, "dim": 64},
            "model.layers": {"type": "int", "low": 1, "high": 3},
            "model.act": {"type": "categorical", "choices": ["relu", "tanh"]},
            "model.name_like": "interval_of_my_own",  # not a call of the grammar: a fixed string
        }
    )
    assert space.distributions == {
        "model.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "model.layers": IntDistribution(1, 3),
        "model.act": CategoricalDistribution(("relu", "tanh")),
    }
    assert space.fixed == {"model.dim": 64, "model.name_like": "interval_of_my_own"}


@pytest.mark.parametrize(
    "bad",
    [
        "interval(1)",
        "interval(1, 2, base=3)",
        "range(5, 1)",
        "choice()",
        "interval(a+b, 2)",
        {"type": "beta", "low": 0},
        {"type": "float", "low": 0},
    ],
)
def test_bad_entries_name_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match="model.lr"):
        parse_space({"model.lr": bad})


def test_grid_parsing() -> None:
    grid = parse_grid(
        {"model.reg": [0.0, 1e-3], "model.layers": "range(1, 4)", "model.d": 64, "model.act": "choice(relu, tanh)"}
    )
    assert grid == {"model.reg": [0.0, 1e-3], "model.layers": [1, 2, 3], "model.d": [64], "model.act": ["relu", "tanh"]}
    assert grid_size(grid) == 12
    with pytest.raises(ConfigError, match="continuous"):
        parse_grid({"model.lr": "interval(0, 1)"})


@pytest.mark.parametrize(
    "value", [0.001, 1e-5, 0.0, 2.0, -3, 7, True, False, None, "text_noise", "a,b:c=d", "it's", 'say "hi"']
)
def test_overrides_read_back_as_the_same_value(value: object) -> None:
    (line,) = overrides_for({"model.v": value})
    parsed = OverridesParser.create().parse_override(line)
    assert parsed.key_or_group == "model.v" and not parsed.is_sweep_override()
    assert parsed.value() == value and type(parsed.value()) is type(value)
    assert format_value(value) == line.split("=", 1)[1]


def test_suggest_respects_the_space() -> None:
    space = parse_space({"a": "interval(0.5, 0.6)", "b": "range(2, 4)", "c": "choice(x, y)", "d": 3})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = suggest(study.ask(), space)
        assert 0.5 <= values["a"] <= 0.6 and values["b"] in (2, 3) and values["c"] in ("x", "y")
        assert values["d"] == 3


@pytest.mark.parametrize("model", sorted(p.stem for p in (REPO / "conf" / "hparams_search").glob("*.yaml")))
def test_shipped_search_spaces_cover_their_grid(model: str) -> None:
    text = (REPO / "conf" / "hparams_search" / f"{model}.yaml").read_text()
    assert text.startswith("# @package _global_")
    sweeper = yaml.safe_load(text)["hydra"]["sweeper"]
    space, grid = parse_space(sweeper["params"]), parse_grid(sweeper["grid"])
    assert set(space.distributions) == set(grid)
    model_cfg = yaml.safe_load((REPO / "conf" / "model" / f"{model}.yaml").read_text())
    for key, values in grid.items():
        assert key.startswith("model.") and key.split(".", 1)[1] in model_cfg  # the key exists
        dist = space.distributions[key]
        assert all(dist._contains(dist.to_internal_repr(v)) for v in values), (key, values)
