"""Modality knockout: replace or remove one modality's (or every modality's) item features, seeded.

A knockout *spec* maps modality names to strategies::

    "text:noise"                      knock text out with Gaussian noise, keep everything else
    "audio:noise,image:keep"          several modalities (also "audio:noise+image:keep": no quoting in Hydra)
    "all:noise,text:keep"             every modality with noise except text ("*" means the same as "all");
                                      explicit keys override the "all" default
    {"text": "noise"}                 a mapping (Hydra: ``knockout.spec={text:noise,image:shuffle}``)
    ["text:noise", "image:zero"]      a list (Hydra: ``knockout.spec=[text:noise,image:zero]``)
    "none" / ""                       nothing knocked out

On the command line ``knockout.spec='audio:noise,image:keep'`` must keep its quotes *inside* Hydra's grammar
(shell: ``knockout.spec="'audio:noise,image:keep'"``); an unquoted comma is a sweep under ``-m`` and an error
otherwise. ``+`` needs no quoting.

Strategies (what each replaces the modality's ``[n_items, d]`` tensor with, and its mask) are registered with
:func:`strategy` below; the list is generated from the registry (:func:`strategies_doc`), so adding a strategy
is one decorated function and its one line of docs.

Seeding: each knocked-out modality draws from its own generator seeded by
``SeedSequence([seed, stable_int(modality)])``, so knocking out one more modality never changes the draws of
another, and the result does not depend on the order of modalities. Random draws are made on the CPU and moved
to the input's device, so a given seed gives the same features on every device.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError

ALL = "all"  # the "every modality" key of a spec; "*" is read as the same
PHASES = ("train", "test")
_NONE_WORDS = ("", "none", "null", "~")
_SEPARATORS = re.compile(r"[,+;\s]+")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class KnockoutParams:
    """The numbers a strategy may read (the ``knockout.*`` config keys)."""

    noise_mean: float = 1.0
    noise_std: float = 0.1
    constant_value: float = 1.0


Pair = tuple[torch.Tensor, torch.Tensor]  # (features [n, d], mask [n])
Replace = Callable[[torch.Tensor, torch.Tensor, KnockoutParams, torch.Generator], Pair]


@dataclass(frozen=True)
class Strategy:
    name: str
    doc: str
    replace: Replace


REGISTRY: dict[str, Strategy] = {}


def strategy(name: str, doc: str) -> Callable[[Replace], Replace]:
    """Register ``replace(x [n, d], mask [n], params, generator) -> (x', mask')`` as knockout strategy ``name``
    (``doc``: one line, what the tensor and the mask become). ``x'`` is float32 on ``x``'s device."""

    def register(replace: Replace) -> Replace:
        if name in REGISTRY:
            raise ValueError(f"knockout strategy {name!r} is registered twice")
        REGISTRY[name] = Strategy(name, doc, replace)
        return replace

    return register


def strategies_doc() -> str:
    """The registered strategies as a reST list (one line each)."""
    return "\n".join(f"- ``{s.name}``: {s.doc}" for s in REGISTRY.values())


def _all_present(mask: torch.Tensor) -> torch.Tensor:
    return torch.ones(mask.shape[0], dtype=torch.bool, device=mask.device)


@strategy("keep", "the real features, untouched (same tensor object, mask and spec entry).")
def _keep(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    return x, mask


@strategy(
    "noise",
    "iid Gaussian ``N(noise_mean, noise_std)`` per item and dimension (study default: mean 1, std 0.1); mask all True.",
)
def _noise(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    z = torch.randn(*x.shape, generator=gen)  # [n, d] standard normal, drawn on the CPU
    return (z * params.noise_std + params.noise_mean).to(x.device), _all_present(mask)


@strategy(
    "matched",
    "iid Gaussian with the modality's own per-dimension mean and (population) std over present "
    "items: the marginal scale survives, the item <-> content link and correlations between dimensions do "
    "not (a zero-variance dimension gives a constant column); mask all True.",
)
def _matched(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    real = _present_rows(x, mask).double()  # [n_present, d]
    mean, std = real.mean(dim=0), real.std(dim=0, correction=0)  # [d]; population std: finite for one row
    z = torch.randn(*x.shape, generator=gen).to(device=x.device, dtype=torch.float64)  # [n, d]
    return (z * std + mean).float(), _all_present(mask)


@strategy("constant", "every item gets the same vector, all entries ``constant_value``; mask all True.")
def _constant(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    return torch.full(tuple(x.shape), params.constant_value, dtype=torch.float32, device=x.device), _all_present(mask)


@strategy("zero", "all zeros; mask all True.")
def _zero(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    return torch.zeros(*x.shape, dtype=torch.float32, device=x.device), _all_present(mask)


@strategy("mean", "every item gets the mean vector of the present items; mask all True.")
def _mean(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    mean = _present_rows(x, mask).double().mean(dim=0)  # [d]
    return mean.float().expand(*x.shape).clone(), _all_present(mask)


@strategy(
    "shuffle",
    "rows permuted across items by a derangement (:func:`cyclic_derangement`): no item keeps its "
    "own row (by index); the mask is permuted with the rows (an item gets another's row and presence flag).",
)
def _shuffle(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    perm = cyclic_derangement(x.shape[0], gen)  # [n] item i takes row perm[i]
    return x.float()[perm.to(x.device)], mask[perm.to(mask.device)]


@strategy(
    "drop",
    "the modality is removed from the returned :class:`ItemFeatures`; models run on the others "
    "(dropping every modality is an error).",
)
def _drop(x: torch.Tensor, mask: torch.Tensor, params: KnockoutParams, gen: torch.Generator) -> Pair:
    raise AssertionError("'drop' removes the modality; Knockout.apply never calls it")


STRATEGIES = tuple(REGISTRY)  # registration order: keep first, drop last

# The presets shipped in conf/knockout/<name>.yaml (one file per entry; tests check they agree).
PRESETS: dict[str, str] = {
    "none": "none",
    "text_noise": "text:noise",
    "image_noise": "image:noise",
    "audio_noise": "audio:noise",
    "text_matched": "text:matched",
    "image_matched": "image:matched",
    "text_constant": "text:constant",
    "image_constant": "image:constant",
    "text_zero": "text:zero",
    "image_zero": "image:zero",
    "text_shuffle": "text:shuffle",
    "image_shuffle": "image:shuffle",
    "text_drop": "text:drop",
    "image_drop": "image:drop",
    "all_noise": "all:noise",
    "all_constant": "all:constant",
    "all_zero": "all:zero",
    "all_shuffle": "all:shuffle",
    "text_only": "all:noise,text:keep",
    "image_only": "all:noise,image:keep",
    "audio_only": "all:noise,audio:keep",
}


def _strategy(value: Any, where: str) -> str:
    strategy = str(value).strip().lower()
    if strategy not in REGISTRY:
        raise ConfigError(f"knockout spec {where}: unknown strategy {value!r}; choose one of: {', '.join(REGISTRY)}")
    return strategy


def _modality(value: Any, where: str) -> str:
    name = str(value).strip()
    if name == "*" or name.lower() == ALL:
        return ALL
    if not _NAME.match(name):
        raise ConfigError(
            f"knockout spec {where}: bad modality name {value!r} (letters, digits, '_', '-', '.'; "
            f"or '{ALL}' / '*' for every modality)"
        )
    return name


def parse_spec(spec: str | Mapping[str, Any] | Sequence[str] | None) -> dict[str, str]:
    """Read a spec (string, mapping or list of ``modality:strategy``) into ``{modality: strategy}``.

    ``"*"`` is normalised to ``"all"``; ``"none"``, ``""`` and ``None`` give ``{}``. Raises
    :class:`ConfigError` for an unknown strategy (listing them), a malformed entry or a repeated modality.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        entries = [(k, v, f"{spec!r}") for k, v in spec.items()]
    else:
        if isinstance(spec, str):
            if spec.strip().lower() in _NONE_WORDS:
                return {}
            items = [s for s in _SEPARATORS.split(re.sub(r"\s*:\s*", ":", spec.strip())) if s]
        elif isinstance(spec, Sequence):
            items = [str(s).strip() for s in spec]
        else:
            raise ConfigError(f"knockout spec must be a string, mapping or list, got {type(spec).__name__}")
        entries = []
        for item in items:
            if item.count(":") != 1:
                raise ConfigError(
                    f"knockout spec entry {item!r} in {spec!r}: expected 'modality:strategy', "
                    f"e.g. 'text:noise' or 'audio:noise,image:keep'"
                )
            name, strategy = item.split(":")
            entries.append((name, strategy, repr(item)))
    parsed: dict[str, str] = {}
    for name, strategy, where in entries:
        modality = _modality(name, where)
        if modality in parsed:
            raise ConfigError(f"knockout spec {spec!r} names {modality!r} twice")
        parsed[modality] = _strategy(strategy, where)
    return parsed


def _label(per_modality: Mapping[str, str]) -> str:
    if not per_modality:
        return "none"
    keys = sorted(per_modality, key=lambda m: (m != ALL, m))
    return ",".join(f"{m}:{per_modality[m]}" for m in keys)


def stable_int(text: str) -> int:
    """A 64-bit integer from ``text`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def modality_generator(seed: int, modality: str) -> torch.Generator:
    """A CPU generator for ``modality``'s draws, derived from ``(seed, modality)`` only."""
    state = np.random.SeedSequence([seed, stable_int(modality)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state))


def cyclic_derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """``perm`` (int64 ``[n]``) with ``perm[i] != i`` for all ``i``: a uniformly random n-cycle (Sattolo).

    The distribution of Sattolo's algorithm, built vectorised: draw a random order ``p`` of the items and give item
    ``p[k]`` the row of item ``p[k + 1]`` (wrapping around). A single n-cycle is a derangement for every
    ``n >= 2`` (by index: duplicate rows in the data can still hand an item an equal vector); it is not uniform
    over all derangements, which no use here needs."""
    if n < 2:
        raise ConfigError(f"knockout 'shuffle' needs at least 2 items to permute, the dataset has {n}")
    order = torch.randperm(n, generator=generator)  # [n] random visiting order
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = torch.roll(order, shifts=-1)  # item order[k] takes the row of item order[k+1]
    return perm


@dataclass
class KnockoutSpec:
    """``per_modality``: modality -> strategy; key ``"all"`` (or ``"*"``) is the default of every modality."""

    per_modality: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.per_modality = parse_spec(self.per_modality)

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | Sequence[str] | None) -> KnockoutSpec:
        return cls(parse_spec(spec))

    @property
    def label(self) -> str:
        """Canonical text, entries sorted (``all`` first): ``audio:noise,image:keep``; ``none`` if empty."""
        return _label(self.per_modality)

    def resolve(self, modalities: Sequence[str]) -> dict[str, str]:
        """The strategy of each modality of the dataset, in its order (``keep`` where the spec is silent)."""
        modalities = list(modalities)
        missing = [m for m in self.per_modality if m != ALL and m not in modalities]
        if missing:
            raise ConfigError(
                f"knockout spec {self.label!r} names {', '.join(repr(m) for m in missing)}, which the "
                f"dataset does not have; its modalities are: {', '.join(modalities) or '(none)'}"
            )
        default = self.per_modality.get(ALL, "keep")
        resolved = {m: self.per_modality.get(m, default) for m in modalities}
        if modalities and all(s == "drop" for s in resolved.values()):
            raise ConfigError(
                f"knockout spec {self.label!r} drops every modality ({', '.join(modalities)}); keep at least "
                f"one, or knock them out another way (e.g. 'all:noise')"
            )
        return resolved


class Knockout:
    """A configured knockout: ``resolve`` checks it against a dataset's modalities, ``apply`` makes features.

    ``phase``: ``train`` (knocked-out features for training and evaluation, the study's protocol) or ``test``
    (evaluate the model of ``from_run``, trained on real features, with knocked-out features).
    ``name``: the preset name; when the spec was overridden so it no longer matches that preset, :attr:`name`
    becomes the name of the preset with the same spec, or else :attr:`label`.
    """

    def __init__(
        self,
        spec: str | Mapping[str, Any] | Sequence[str] | None = "none",
        phase: str = "train",
        noise_mean: float = 1.0,
        noise_std: float = 0.1,
        constant_value: float = 1.0,
        from_run: str | None = None,
        name: str | None = None,
    ):
        self.spec = KnockoutSpec.parse(spec)
        self.phase = str(phase).strip().lower()
        if self.phase not in PHASES:
            raise ConfigError(f"knockout.phase={phase!r}; choose one of: {', '.join(PHASES)}")
        if self.phase == "test" and not from_run:
            raise ConfigError(
                "knockout.phase=test evaluates a model trained on real features: set "
                "knockout.from_run=<run dir of that model>"
            )
        if self.phase == "train" and from_run:
            raise ConfigError(
                f"knockout.from_run={from_run!r} is only used with knockout.phase=test; set "
                "knockout.phase=test or knockout.from_run=null"
            )
        numbers = {"noise_mean": noise_mean, "noise_std": noise_std, "constant_value": constant_value}
        for key, value in numbers.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"knockout.{key}={value!r}: expected a finite number")
        if noise_std < 0:
            raise ConfigError(f"knockout.noise_std={noise_std!r}: must be >= 0")
        self.noise_mean = float(noise_mean)
        self.noise_std = float(noise_std)
        self.constant_value = float(constant_value)
        self.params = KnockoutParams(self.noise_mean, self.noise_std, self.constant_value)
        self.from_run = str(from_run) if from_run else None
        self._given_name = None if name is None else str(name)

    @property
    def label(self) -> str:
        """Canonical spec text, e.g. ``audio:noise,image:keep`` (sorted) or ``none``."""
        return self.spec.label

    @property
    def name(self) -> str:
        """The preset name if the spec still matches it, else a matching preset's name, else :attr:`label`."""
        given = self._given_name
        if given and (given not in PRESETS or parse_spec(PRESETS[given]) == self.spec.per_modality):
            return given
        for preset, preset_spec in PRESETS.items():
            if parse_spec(preset_spec) == self.spec.per_modality:
                return preset
        return self.label

    def record(self) -> dict[str, Any]:
        """What summary.json should hold about this knockout (``resolve`` gives the per-modality spec)."""
        return {
            "name": self.name,
            "label": self.label,
            "spec": dict(self.spec.per_modality),
            "phase": self.phase,
            "from_run": self.from_run,
            "noise_mean": self.noise_mean,
            "noise_std": self.noise_std,
            "constant_value": self.constant_value,
        }

    def resolve(self, modalities: Sequence[str]) -> dict[str, str]:
        """The strategy of each of the dataset's modalities; :class:`ConfigError` if the spec names others."""
        return self.spec.resolve(modalities)

    def is_identity(self, modalities: Sequence[str]) -> bool:
        """True when nothing would change for a dataset with these modalities."""
        return all(s == "keep" for s in self.resolve(modalities).values())

    def apply(self, features: ItemFeatures, seed: int) -> ItemFeatures:
        """New :class:`ItemFeatures` with the knockout applied (the input is never modified).

        Kept modalities share their tensors with the input; knocked-out ones are new float32 tensors on the
        input's device; dropped ones are absent. ``spec`` records each remaining modality's strategy.
        """
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"knockout seed must be a non-negative integer, got {seed!r}")
        resolved = self.resolve(features.modalities)
        tensors: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        spec: dict[str, str] = {}
        for modality, strategy in resolved.items():
            if strategy == "drop":
                continue
            x, mask = features.tensors[modality], features.masks[modality]
            if strategy == "keep":
                tensors[modality], masks[modality] = x, mask
                spec[modality] = features.spec.get(modality, "keep")
                continue
            generator = modality_generator(int(seed), modality)
            tensors[modality], masks[modality] = REGISTRY[strategy].replace(x, mask, self.params, generator)
            spec[modality] = strategy
        return ItemFeatures(tensors, masks, spec)

    def __repr__(self) -> str:
        return f"Knockout(name={self.name!r}, spec={self.label!r}, phase={self.phase!r})"


def _present_rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rows of items whose modality is present (all rows when none is marked present)."""
    mask = mask.to(x.device)
    return x[mask] if bool(mask.any()) else x


__doc__ = (__doc__ or "").replace(
    "is one decorated function and its one line of docs.\n",
    "is one decorated function and its one line of docs.\n\n" + strategies_doc() + "\n",
)
