"""Shared constructor options (lr, its decay, faithful_to, the table options): each model takes exactly those in
its ``option_defaults``, they reach the base class, and the config check refuses the others by name."""

from __future__ import annotations

import inspect

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from mmrec.config import validate
from mmrec.errors import ConfigError
from mmrec.models.multimodal import MultimodalRecommender, SharedOptions
from tests.models.common import CONF, model_config

SHARED = set(SharedOptions.__annotations__)


def compose_cfg(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(CONF.parent), version_base="1.3"):
        return compose("train", overrides=overrides)


def takes_shared_options(name: str) -> bool:
    cls = get_class(model_config(name)["_target_"])
    params = inspect.signature(cls.__init__).parameters.values()
    return issubclass(cls, MultimodalRecommender) and any(p.kind is p.VAR_KEYWORD for p in params)


MODELS = sorted(p.stem for p in CONF.glob("*.yaml") if takes_shared_options(p.stem))


def test_every_model_with_content_tables_takes_the_shared_options() -> None:
    # VBPR (content always frozen) and DA-MRS (no tables) keep explicit signatures
    tables = "bm3 dragon dualgnn freedom grcn lattice lgmrec mgcn mmgcn pgl slmrec smore"
    assert MODELS == tables.split()


@pytest.mark.parametrize("name", MODELS)
def test_the_yaml_sets_every_shared_option_the_model_takes_and_no_other(name: str) -> None:
    cls = get_class(model_config(name)["_target_"])
    shared_in_yaml = set(model_config(name)) & SHARED
    assert shared_in_yaml == set(cls.option_defaults)


@pytest.mark.parametrize("name", MODELS)
def test_options_reach_the_base_class_and_defaults_fill_the_rest(name: str, synthetic_dm) -> None:
    cls = get_class(model_config(name)["_target_"])
    defaults = dict(cls.option_defaults)
    model = cls(synthetic_dm.data, lr=0.0123)
    assert model.lr == 0.0123
    assert model.freeze_features is defaults.get("freeze_features")
    assert model.feature_dtype == defaults.get("feature_dtype", "float32")
    assert model.lr_decay == defaults.get("lr_decay", 1.0)
    assert model.weight_decay == defaults.get("weight_decay", 0.0)
    # the tables follow freeze_features: frozen ones hold no trainable parameter
    flipped = cls(synthetic_dm.data, freeze_features=not defaults["freeze_features"])
    trainable = {m: any(p.requires_grad for p in flipped.table(m).parameters()) for m in flipped.modality_names}
    assert set(trainable.values()) == {defaults["freeze_features"]}


def not_taken(name: str) -> list[str]:
    return sorted(SHARED - set(get_class(model_config(name)["_target_"]).option_defaults))


def test_every_model_leaves_out_some_shared_option() -> None:
    assert all(not_taken(name) for name in MODELS)  # so the refusal test below covers every model


@pytest.mark.parametrize("name", MODELS)
def test_a_shared_option_the_model_does_not_take_is_refused_by_name(name: str, synthetic_dm) -> None:
    cls = get_class(model_config(name)["_target_"])
    missing = not_taken(name)
    with pytest.raises(TypeError, match=rf"{cls.__name__} takes no option\(s\) \['{missing[0]}'\]"):
        cls(synthetic_dm.data, **{missing[0]: 0.5})
    cfg = compose_cfg([f"model={name}"])
    OmegaConf.set_struct(cfg, False)
    cfg.model[missing[0]] = 0.5
    with pytest.raises(ConfigError, match=rf"unknown key\(s\) \['{missing[0]}'\] in 'model'.*accepted: .*'lr'"):
        validate(cfg)


def test_a_misspelt_model_key_is_still_refused_next_to_the_shared_options() -> None:
    cfg = compose_cfg(["model=mgcn"])
    OmegaConf.set_struct(cfg, False)
    cfg.model.lr_decay_epoch = 10  # lr_decay_epochs is the option
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lr_decay_epoch'\].*'lr_decay_epochs'"):
        validate(cfg)
