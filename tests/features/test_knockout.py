"""Knockout strategies: their effect on the tensors, seeding, spec parsing and the Hydra presets."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

import mmrec.features.knockout as knockout_module
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError
from mmrec.features.knockout import (
    PRESETS,
    STRATEGIES,
    Knockout,
    KnockoutSpec,
    cyclic_derangement,
    parse_spec,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
KNOCKED = ("noise", "matched", "constant", "zero", "mean", "shuffle")


def make_features(n: int = 300, seed: int = 0) -> ItemFeatures:
    """Three modalities with distinct, per-dimension shifted and scaled values; a few text items missing."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(n, 16, generator=g) * torch.linspace(0.5, 3.0, 16) + torch.linspace(-4.0, 4.0, 16)
    image = torch.rand(n, 8, generator=g) * 10.0 - 2.0
    audio = torch.randn(n, 4, generator=g)
    text_mask = torch.ones(n, dtype=torch.bool)
    text_mask[::7] = False
    return ItemFeatures({"text": text, "image": image, "audio": audio}, {"text": text_mask})


# --- spec parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "audio:noise,image:keep",
        "audio:noise+image:keep",
        " audio : noise , image:KEEP ",
        {"audio": "noise", "image": "keep"},
        ["audio:noise", "image:keep"],
    ],
)
def test_parse_spec_forms_agree(spec: object) -> None:
    assert parse_spec(spec) == {"audio": "noise", "image": "keep"}


@pytest.mark.parametrize("spec", ["none", "", "None", None, {}, []])
def test_parse_spec_none(spec: object) -> None:
    assert parse_spec(spec) == {}


def test_parse_spec_star_means_all() -> None:
    assert parse_spec("*:noise,text:keep") == {"all": "noise", "text": "keep"}
    assert parse_spec({"*": "zero"}) == parse_spec("all:zero")


def test_unknown_strategy_lists_strategies() -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec("text:blur")
    for strategy in STRATEGIES:
        assert strategy in str(err.value)


@pytest.mark.parametrize("spec", ["text", "text:noise:1", "text:noise,text:zero", "te xt?:noise"])
def test_malformed_spec_is_rejected(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_spec(spec)


def test_label_is_sorted_and_canonical() -> None:
    assert Knockout("image:keep,audio:noise").label == "audio:noise,image:keep"
    assert Knockout("text:keep,*:noise").label == "all:noise,text:keep"
    assert Knockout("none").label == "none"
    assert KnockoutSpec.parse({"b": "zero", "a": "drop"}).label == "a:drop,b:zero"


# --- resolve ----------------------------------------------------------------------------------------------


def test_resolve_fills_keep_and_expands_all() -> None:
    modalities = ["image", "audio", "text"]
    assert Knockout("audio:noise").resolve(modalities) == {"image": "keep", "audio": "noise", "text": "keep"}
    assert Knockout("all:zero").resolve(modalities) == dict.fromkeys(modalities, "zero")
    expected = {"image": "noise", "audio": "noise", "text": "keep"}
    assert Knockout("*:noise,text:keep").resolve(modalities) == expected
    assert Knockout("none").resolve(modalities) == dict.fromkeys(modalities, "keep")


def test_unknown_modality_lists_the_datasets_modalities() -> None:
    with pytest.raises(ConfigError) as err:
        Knockout("text:noise").resolve(["image", "audio"])
    message = str(err.value)
    assert "'text'" in message and "image" in message and "audio" in message


def test_cannot_drop_every_modality() -> None:
    with pytest.raises(ConfigError, match="drops every modality"):
        Knockout("all:drop").resolve(["text", "image"])
    with pytest.raises(ConfigError, match="drops every modality"):
        Knockout("text:drop,image:drop").apply(make_features().select(["text", "image"]), seed=0)
    assert Knockout("all:drop,text:keep").resolve(["text", "image"]) == {"text": "keep", "image": "drop"}


# --- each strategy's effect -------------------------------------------------------------------------------


def test_noise_statistics_and_parameters() -> None:
    features = make_features(n=2000)
    out = Knockout("text:noise").apply(features, seed=3)
    x = out.tensors["text"]
    assert x.shape == (2000, 16) and x.dtype == torch.float32
    assert abs(x.mean().item() - 1.0) < 0.005  # 32,000 draws: standard error of the mean 0.0006
    assert abs(x.std().item() - 0.1) < 0.003
    per_dim_mean = x.mean(dim=0)
    assert torch.all((per_dim_mean - 1.0).abs() < 0.02)  # every dimension has the same distribution
    assert out.masks["text"].all()  # every item now has a vector
    assert out.spec["text"] == "noise"

    custom = Knockout("text:noise", noise_mean=-2.0, noise_std=3.0).apply(features, seed=3).tensors["text"]
    assert abs(custom.mean().item() + 2.0) < 0.1 and abs(custom.std().item() - 3.0) < 0.1


def test_noise_is_independent_of_the_real_values() -> None:
    a = make_features(n=200, seed=0)
    b = make_features(n=200, seed=1)
    knockout = Knockout("text:noise")
    assert torch.equal(knockout.apply(a, seed=5).tensors["text"], knockout.apply(b, seed=5).tensors["text"])


def test_matched_keeps_per_dimension_statistics_and_breaks_the_link() -> None:
    features = make_features(n=4000)
    real, mask = features.tensors["text"], features.masks["text"]
    out = Knockout("text:matched").apply(features, seed=11)
    x = out.tensors["text"]
    assert x.shape == real.shape and x.dtype == torch.float32
    present = real[mask]
    real_mean, real_std = present.mean(dim=0), present.std(dim=0)
    # standard error of a mean over 4000 draws is std/63; of a std about std/89
    assert torch.all((x.mean(dim=0) - real_mean).abs() < 5 * real_std / 63)
    assert torch.all((x.std(dim=0) / real_std - 1.0).abs() < 0.06)
    # the item <-> content link is gone: each dimension is uncorrelated with the real one
    centred_real, centred_x = real - real.mean(dim=0), x - x.mean(dim=0)
    corr = (centred_real * centred_x).sum(0) / (centred_real.norm(dim=0) * centred_x.norm(dim=0))
    assert torch.all(corr.abs() < 0.1)
    assert out.masks["text"].all()


def test_matched_uses_present_items_only() -> None:
    n = 3000
    real = torch.randn(n, 3)
    mask = torch.ones(n, dtype=torch.bool)
    mask[: n // 2] = False
    real[~mask] = 1000.0  # rows of missing items must not leak into the statistics
    features = ItemFeatures({"text": real, "image": torch.randn(n, 2)}, {"text": mask})
    x = Knockout("text:matched").apply(features, seed=0).tensors["text"]
    assert x.abs().mean() < 2.0


def test_matched_with_a_zero_variance_dimension_is_finite() -> None:
    real = torch.randn(50, 4)
    real[:, 2] = 7.0
    out = Knockout("text:matched").apply(ItemFeatures({"text": real, "image": torch.randn(50, 2)}), seed=0)
    x = out.tensors["text"]
    assert torch.isfinite(x).all()
    assert torch.all(x[:, 2] == 7.0)


@pytest.mark.parametrize("value", [1.0, -0.25])
def test_constant(value: float) -> None:
    out = Knockout("image:constant", constant_value=value).apply(make_features(), seed=0)
    x = out.tensors["image"]
    assert x.shape == (300, 8) and x.dtype == torch.float32
    assert torch.all(x == value)
    assert out.masks["image"].all()


def test_zero() -> None:
    features = make_features()
    out = Knockout("text:zero").apply(features, seed=0)
    assert out.tensors["text"].shape == (300, 16)
    assert torch.count_nonzero(out.tensors["text"]) == 0
    assert out.masks["text"].all() and not features.masks["text"].all()


def test_mean_gives_every_item_the_mean_of_present_items() -> None:
    features = make_features()
    real, mask = features.tensors["text"], features.masks["text"]
    out = Knockout("text:mean").apply(features, seed=0)
    x = out.tensors["text"]
    assert torch.all(x == x[0])  # rows identical
    torch.testing.assert_close(x[0], real[mask].double().mean(dim=0).float())
    assert out.masks["text"].all()


def test_shuffle_is_a_derangement_of_the_rows() -> None:
    features = make_features()
    real, mask = features.tensors["text"], features.masks["text"]
    out = Knockout("text:shuffle").apply(features, seed=4)
    x = out.tensors["text"]
    assert x.shape == real.shape and x.dtype == torch.float32
    # rows are unique here, so each output row identifies the real row it came from
    matches = (x[:, None, :] == real[None, :, :]).all(dim=2)  # [n, n]
    assert torch.all(matches.sum(dim=1) == 1)
    source = matches.float().argmax(dim=1)  # [n] item i received the row of item source[i]
    assert torch.all(source != torch.arange(300))  # no item keeps its own row
    assert torch.equal(torch.sort(source).values, torch.arange(300))  # a permutation: the multiset is kept
    assert torch.equal(out.masks["text"], mask[source])  # the mask travels with the rows


def test_shuffle_of_two_items_swaps_them() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = Knockout("text:shuffle").apply(ItemFeatures({"text": real}), seed=0)
    assert torch.equal(out.tensors["text"], real.flip(0))


def test_shuffle_needs_two_items() -> None:
    with pytest.raises(ConfigError, match="at least 2 items"):
        Knockout("text:shuffle").apply(ItemFeatures({"text": torch.ones(1, 3)}), seed=0)


@pytest.mark.parametrize("n", [2, 3, 5, 1000])
def test_cyclic_derangement_has_no_fixed_point(n: int) -> None:
    for seed in range(5):
        perm = cyclic_derangement(n, torch.Generator().manual_seed(seed))
        assert torch.all(perm != torch.arange(n))
        assert torch.equal(torch.sort(perm).values, torch.arange(n))


def test_drop_removes_the_modality() -> None:
    features = make_features()
    out = Knockout("text:drop").apply(features, seed=0)
    assert out.modalities == ["image", "audio"]
    assert "text" not in out.masks and "text" not in out.spec
    assert "text" in features.tensors


# --- seeding, untouched modalities, inputs ----------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["noise", "matched", "shuffle"])
def test_deterministic_per_seed(strategy: str) -> None:
    features = make_features()
    knockout = Knockout(f"text:{strategy}")
    first = knockout.apply(features, seed=7).tensors["text"]
    again = knockout.apply(features, seed=7).tensors["text"]
    other = knockout.apply(features, seed=8).tensors["text"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("strategy", KNOCKED + ("drop",))
def test_untouched_modalities_are_bit_identical(strategy: str) -> None:
    features = make_features()
    out = Knockout(f"text:{strategy}").apply(features, seed=1)
    for modality in ("image", "audio"):
        assert torch.equal(out.tensors[modality], features.tensors[modality])
        assert torch.equal(out.masks[modality], features.masks[modality])
        assert out.spec[modality] == "keep"


@pytest.mark.parametrize("strategy", KNOCKED + ("drop",))
def test_input_is_never_modified(strategy: str) -> None:
    features = make_features()
    before = {m: t.clone() for m, t in features.tensors.items()}
    masks_before = {m: t.clone() for m, t in features.masks.items()}
    out = Knockout(f"all:{strategy},audio:keep").apply(features, seed=1)
    assert out is not features
    assert features.modalities == ["text", "image", "audio"]
    assert features.spec == dict.fromkeys(["text", "image", "audio"], "keep")
    for m in before:
        assert torch.equal(features.tensors[m], before[m]) and torch.equal(features.masks[m], masks_before[m])


@pytest.mark.parametrize("strategy", ["noise", "matched", "shuffle"])
def test_modalities_draw_independently(strategy: str) -> None:
    features = make_features()
    image_only = Knockout(f"image:{strategy}").apply(features, seed=2)
    both = Knockout(f"image:{strategy},text:{strategy}").apply(features, seed=2)
    assert torch.equal(image_only.tensors["image"], both.tensors["image"])
    # the draws do not depend on the order modalities are stored in either
    reordered = features.select(["audio", "image", "text"])
    assert torch.equal(
        Knockout(f"image:{strategy}").apply(reordered, seed=2).tensors["image"], image_only.tensors["image"]
    )
    # two modalities with the same shape get different draws
    if strategy == "noise":
        twin = ItemFeatures({"a": torch.zeros(50, 4), "b": torch.zeros(50, 4)})
        out = Knockout("all:noise").apply(twin, seed=2)
        assert not torch.equal(out.tensors["a"], out.tensors["b"])


@pytest.mark.parametrize("strategy", STRATEGIES[:-1])
def test_float16_input_gives_finite_float32(strategy: str) -> None:
    real = (torch.rand(64, 8) * 60000.0).half()  # near float16's max: sums overflow if done in float16
    features = ItemFeatures({"text": real.float(), "image": torch.randn(64, 3)})
    features.tensors["text"] = real  # as if a caller handed float16 in directly
    out = Knockout(f"text:{strategy}").apply(features, seed=0)
    x = out.tensors["text"]
    assert x.dtype == torch.float32 and x.shape == (64, 8)
    assert torch.isfinite(x).all()
    out.check_finite()


def test_seed_must_be_a_non_negative_integer() -> None:
    with pytest.raises(ConfigError):
        Knockout("text:noise").apply(make_features(), seed=-1)


# --- configuration, names, presets ------------------------------------------------------------------------


def test_phase_validation() -> None:
    with pytest.raises(ConfigError, match="from_run"):
        Knockout("text:noise", phase="test")
    with pytest.raises(ConfigError, match="phase"):
        Knockout("text:noise", phase="eval")
    with pytest.raises(ConfigError, match="phase=test"):
        Knockout("text:noise", from_run="outputs/run1")
    assert Knockout("text:shuffle", phase="test", from_run="outputs/run1").from_run == "outputs/run1"
    with pytest.raises(ConfigError, match="noise_std"):
        Knockout("text:noise", noise_std=-1.0)


def test_name_follows_the_spec() -> None:
    assert Knockout("text:noise", name="text_noise").name == "text_noise"
    assert Knockout("audio:noise,image:keep", name="none").name == "audio:noise,image:keep"
    assert Knockout("image:noise", name="text_noise").name == "image_noise"  # matches another preset
    assert Knockout("text:noise", name="my_study").name == "my_study"  # a user's own name is kept
    assert Knockout("*:noise,text:keep").name == "text_only"
    assert Knockout().name == "none"
    record = Knockout("text:noise", name="none").record()
    assert record["name"] == "text_noise" and record["spec"] == {"text": "noise"}
    assert record["noise_std"] == 0.1


def _preset(name: str) -> DictConfig:
    """``conf/knockout/<name>.yaml`` as Hydra composes it (the preset over ``_base.yaml``)."""
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(overrides=[f"+knockout={name}"]).knockout


def test_presets_inherit_the_base_and_set_only_name_and_spec() -> None:
    for path in (CONF / "knockout").glob("*.yaml"):
        if path.stem.startswith("_"):
            continue
        raw = OmegaConf.load(path)
        assert set(raw) == {"defaults", "name", "spec"}, path.name
        assert list(raw.defaults) == ["_base", "_self_"], path.name


REQUIRED_PRESETS = set(
    """none text_noise image_noise text_constant image_constant text_zero image_zero text_shuffle
    image_shuffle text_drop image_drop all_noise all_constant all_zero all_shuffle text_matched image_matched
    audio_noise text_only image_only""".split()
)


def test_preset_files_match_the_presets() -> None:
    files = {p.stem for p in (CONF / "knockout").glob("*.yaml") if not p.stem.startswith("_")}
    assert files == set(PRESETS)
    assert REQUIRED_PRESETS <= files


@pytest.mark.parametrize("preset", sorted(REQUIRED_PRESETS))
def test_preset_loads_and_instantiates(preset: str) -> None:
    cfg = _preset(preset)
    keys = {"_target_", "name", "spec", "phase", "from_run", "noise_mean", "noise_std", "constant_value"}
    assert set(cfg) == keys
    knockout = hydra.utils.instantiate(cfg)
    assert isinstance(knockout, Knockout)
    assert knockout.name == preset
    assert knockout.spec.per_modality == parse_spec(PRESETS[preset])
    assert (knockout.phase, knockout.noise_mean, knockout.noise_std, knockout.constant_value) == (
        "train",
        1.0,
        0.1,
        1.0,
    )


def test_text_only_keeps_text_and_noises_the_rest() -> None:
    cfg = _preset("text_only")
    features = make_features()
    out = hydra.utils.instantiate(cfg).apply(features, seed=0)
    assert out.spec == {"text": "keep", "image": "noise", "audio": "noise"}
    assert torch.equal(out.tensors["text"], features.tensors["text"])


@pytest.mark.parametrize(
    ("override", "label"),
    [
        ("knockout.spec='audio:noise,image:keep'", "audio:noise,image:keep"),
        ("knockout.spec=audio:noise+image:keep", "audio:noise,image:keep"),
        ("knockout.spec={audio:noise,image:shuffle}", "audio:noise,image:shuffle"),
        ("knockout.spec=[text:zero,image:keep]", "image:keep,text:zero"),
    ],
)
def test_spec_overridable_under_struct_mode(override: str, label: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(overrides=["+knockout=none", override, "knockout.noise_std=0.5"])
    assert OmegaConf.is_struct(cfg)
    knockout = hydra.utils.instantiate(cfg.knockout)
    assert knockout.label == label
    assert knockout.name == label  # the preset name "none" no longer describes the run
    assert knockout.noise_std == 0.5


def test_misspelt_key_fails_under_struct_mode() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        with pytest.raises(ConfigCompositionException):
            compose(overrides=["+knockout=text_noise", "knockout.noise_sd=0.5"])


def test_a_registered_strategy_is_usable_in_a_spec_and_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knockout_module, "REGISTRY", dict(knockout_module.REGISTRY))

    @knockout_module.strategy("negate", "every value negated; mask unchanged.")
    def _negate(x, mask, params, gen):
        return -x.float(), mask

    features = make_features()
    out = Knockout("text:negate").apply(features, seed=0)
    assert torch.equal(out.tensors["text"], -features.tensors["text"])
    assert torch.equal(out.tensors["image"], features.tensors["image"])
    assert out.spec["text"] == "negate"
    assert "- ``negate``: every value negated; mask unchanged." in knockout_module.strategies_doc()
    with pytest.raises(ValueError, match="twice"):
        knockout_module.strategy("negate", "again")(_negate)


def test_module_docs_list_every_registered_strategy() -> None:
    for name in STRATEGIES:
        assert f"- ``{name}``: " in knockout_module.__doc__
