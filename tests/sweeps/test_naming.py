"""Study names: every key of the condition, distinct per condition, folder- and override-safe."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mmrec.errors import ConfigError
from mmrec.sweeps.naming import check_name, condition, study_name
from mmrec.sweeps.space import quote

CONF = Path(__file__).resolve().parents[2] / "conf"


def cfg(**changes: object) -> OmegaConf:
    base = {
        "dataset": {"name": "tiktok"},
        "encoder": {"name": "precomputed"},
        "model": {"name": "freedom", "freeze_features": False},
        "knockout": {
            "name": "none",
            "spec": "none",
            "phase": "train",
            "noise_mean": 1.0,
            "noise_std": 0.1,
            "constant_value": 1.0,
        },
        "protocol_name": "ours",
    }
    conf = OmegaConf.create(base)
    for key, value in changes.items():
        OmegaConf.update(conf, key, value)
    return conf


def test_name_spells_every_key_of_the_condition() -> None:
    assert study_name(cfg()) == "tiktok__freedom__precomputed__ko=none@train__freeze=false__protocol=ours"
    assert condition(cfg())["protocol"] == "ours"


@pytest.mark.parametrize(
    ("key", "value", "part"),
    [
        ("dataset.name", "baby", "baby__"),
        ("model.name", "vbpr", "__vbpr__"),
        ("encoder.name", "clip", "__clip__"),
        ("knockout.spec", "text:noise", "ko=text_noise@"),
        ("knockout.phase", "test", "@test__"),
        ("model.freeze_features", True, "freeze=true"),
        ("model.freeze_features", None, "freeze=default"),
        ("protocol_name", "mmrec", "protocol=mmrec"),
    ],
)
def test_each_key_changes_the_name(key: str, value: object, part: str) -> None:
    name = study_name(cfg(**{key: value}))
    assert name != study_name(cfg()) and part in name


def test_knockout_names() -> None:
    # a preset name survives while its spec matches; a custom spec is spelled out; parameters count
    assert "ko=text_noise@" in study_name(cfg(**{"knockout.name": "text_noise", "knockout.spec": "text:noise"}))
    assert "ko=image_noise@" in study_name(cfg(**{"knockout.name": "text_noise", "knockout.spec": "image:noise"}))
    custom = study_name(cfg(**{"knockout.name": "mine", "knockout.spec": "audio:noise,image:shuffle"}))
    assert "ko=mine@" in custom
    spelled = study_name(cfg(**{"knockout.name": None, "knockout.spec": "audio:noise,image:shuffle"}))
    assert "ko=audio-noise+image-shuffle@" in spelled
    std = study_name(cfg(**{"knockout.spec": "text:noise", "knockout.noise_std": 0.5}))
    assert "ko=text_noise(noise_std=0.5)@" in std
    # parameters of a knockout that knocks nothing out do not matter
    assert study_name(cfg(**{"knockout.noise_std": 0.5})) == study_name(cfg())


def test_names_are_safe_as_folders_and_override_values() -> None:
    name = study_name(
        cfg(**{"knockout.name": None, "knockout.spec": "audio:noise,image:shuffle", "knockout.noise_mean": 0.5})
    )
    assert check_name(name) == name
    parsed = OverridesParser.create().parse_override(f"study={quote(name)}")
    assert parsed.value() == name
    for bad in ("a/b", "", "..", "a b"):
        with pytest.raises(ConfigError):
            check_name(bad)


def _names(overrides: list[list[str]]) -> list[str]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return [study_name(compose("train", overrides=o, return_hydra_config=True)) for o in overrides]


def test_names_of_the_real_config_are_distinct_per_condition() -> None:
    combos = list(itertools.product(["freedom", "vbpr"], ["none", "text_noise"]))
    names = _names([[f"model={m}", f"knockout={k}"] for m, k in combos])
    assert len(set(names)) == len(combos)
    assert names[combos.index(("freedom", "text_noise"))] == (
        "synthetic__freedom__precomputed__ko=text_noise@train__freeze=false__protocol=ours"
    )


def test_protocol_preset_changes_the_study_name() -> None:
    # conf/protocol/mmrec.yaml sets protocol_name: mmrec; it must win over train.yaml's default (`_self_`
    # has to come before the optional protocol/experiment/hparams_search entries of the defaults list).
    ours, mmrec = _names([["model=vbpr"], ["model=vbpr", "protocol=mmrec"]])
    assert ours.endswith("protocol=ours") and mmrec.endswith("protocol=mmrec")


def test_feature_table_options_part_of_the_condition_only_when_not_default() -> None:
    plain = study_name(cfg())
    assert study_name(cfg(**{"model.feature_dtype": "float32", "model.feature_updates": "dense"})) == plain
    assert "feature_dtype" not in condition(cfg(**{"model.feature_dtype": "float32"}))
    half = study_name(cfg(**{"model.feature_dtype": "bfloat16"}))
    both = study_name(cfg(**{"model.feature_dtype": "float16", "model.feature_updates": "sparse"}))
    assert half == plain + "__tables=bfloat16"
    assert both == plain + "__tables=float16+sparse"
    assert condition(cfg(**{"model.feature_updates": "sparse"}))["feature_updates"] == "sparse"
    check_name(both)
