"""Config validation before any data is loaded: misspelt keys and impossible combinations fail early,
with a message that lists what is available."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from hydra.utils import get_class
from omegaconf import DictConfig

from mmrec.confdict import to_dict
from mmrec.errors import ConfigError

if TYPE_CHECKING:
    from mmrec.features.knockout import Knockout

META_KEYS = {"_target_", "name", "_partial_", "_recursive_", "_convert_"}
TOP_LEVEL = {
    "dataset",
    "encoder",
    "knockout",
    "model",
    "optimizer",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "seed",
    "seeds",
    "role",
    "study",
    "protocol_name",
    "monitor",
    "resume",
    "transfer_from",
    "evaluation",
    "knn",
    "datamodule",
    "sweep",
    "hydra",
    "experiment",
    "hparams_search",
    "protocol",
    "optimized_metric",
    "task_name",
    "tags",
    "knockout_study",
    "verbose",
}
TOP_LEVEL.add("report")  # report.questions: the study's declared research questions (read by mmrec.report)
ROLES = ("single", "trial", "repeat")


def target_class(node: DictConfig, group: str) -> type:
    if "_target_" not in node:
        raise ConfigError(f"config group '{group}' has no _target_")
    try:
        return get_class(node._target_)
    except Exception as e:  # noqa: BLE001 - hydra raises several kinds
        raise ConfigError(f"{group}._target_={node._target_!r} cannot be imported: {e}") from None


def check_keys(
    node: DictConfig, fn: Any, group: str, skip: Iterable[str] = (), options: Iterable[str] | None = None
) -> None:
    """Every key of ``node`` (but meta keys) must be a parameter of ``fn``; else list the accepted ones.

    ``fn``'s ``**kwargs`` accept any key unless ``options`` names the keys they take (a multimodal model's
    ``option_defaults``)."""
    params = inspect.signature(fn).parameters
    named = [p for p, v in params.items() if v.kind is not inspect.Parameter.VAR_KEYWORD]
    if len(named) < len(params):
        if options is None:
            return
        named += [o for o in options if o not in named]
    accepted = [p for p in named if p not in ("self", "data", *skip)]
    unknown = [k for k in node if k not in META_KEYS and k not in named]
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in '{group}' ({node.get('_target_')}); accepted: {accepted}")


def derive_seeds(cfg: DictConfig) -> dict[str, int]:
    """Split seed as given (fixed across repeats); run and knockout seeds from ``SeedSequence([seed, k])``."""
    seed = int(cfg.seed)

    def derived(k: int) -> int:
        return int(np.random.SeedSequence([seed, k]).generate_state(1)[0] % (2**31 - 1))

    seeds = cfg.get("seeds") or {}
    return {
        "seed": seed,
        "split": int(split) if (split := seeds.get("split")) is not None else 0,
        "run": int(seeds["run"]) if seeds.get("run") is not None else derived(1),
        "knockout": int(seeds["knockout"]) if seeds.get("knockout") is not None else derived(2),
    }


def available_modalities(cfg: DictConfig) -> list[str]:
    """Modalities the encoder will output (precomputed: the dataset's declared ones)."""
    enc = cfg.encoder
    mods = enc.get("modalities") if "modalities" in enc else None
    if enc.get("name") == "precomputed" or not mods:
        mods = enc.get("modalities") or cfg.dataset.get("modalities") or []
    if enc.get("modality"):
        mods = [enc.modality]
    return list(mods)


@dataclass(frozen=True)
class ValidConfig:
    """What validation learnt and the runner needs: the model class, the encoder's modalities, the knockout
    and its spec resolved per modality (``{"text": "noise", "audio": "keep"}``)."""

    model_cls: type
    modalities: list[str]
    knockout: Knockout
    knockout_spec: dict[str, str]


def validate(cfg: DictConfig) -> ValidConfig:
    """Validate the composed config before any data is loaded."""
    unknown = [k for k in cfg if k not in TOP_LEVEL]
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}; accepted: {sorted(TOP_LEVEL)}")
    if cfg.role not in ROLES:
        raise ConfigError(f"role={cfg.role!r}; choose one of {list(ROLES)}")
    from mmrec.data import load_dataset
    from mmrec.features.knockout import Knockout

    check_keys(cfg.dataset, load_dataset, "dataset")
    model_cls = target_class(cfg.model, "model")
    check_keys(cfg.model, model_cls.__init__, "model", options=getattr(model_cls, "option_defaults", None))
    encoder_cls = target_class(cfg.encoder, "encoder")
    check_keys(cfg.encoder, encoder_cls.__init__, "encoder")
    check_keys(cfg.knockout, Knockout.__init__, "knockout")
    knockout = Knockout(**{k: v for k, v in to_dict(cfg.knockout).items() if k != "_target_"})
    modalities = available_modalities(cfg)
    if model_cls.min_modalities > 0 or modalities:
        resolved = knockout.resolve(modalities) if modalities else {}
    else:
        resolved = {}
    after = [m for m in modalities if resolved.get(m) != "drop"]
    if model_cls.min_modalities > 0 or model_cls.modalities_required:
        model_cls.check_modalities(after)
    ev = cfg.evaluation
    if cfg.monitor.split("/", 1)[0] != "val":
        raise ConfigError(f"monitor={cfg.monitor!r} must be a validation metric such as val/recall@20")
    metric = cfg.monitor.split("/", 1)[1]
    name, _, k = metric.partition("@")
    if name not in ev.metrics or not k.isdigit() or int(k) not in ev.ks:
        raise ConfigError(f"monitor={cfg.monitor!r} is not computed; metrics {list(ev.metrics)} at K {list(ev.ks)}")
    if knockout.phase == "test" and not knockout.from_run:
        raise ConfigError("knockout.phase=test needs knockout.from_run=<run dir of a model trained on real features>")
    return ValidConfig(model_cls=model_cls, modalities=modalities, knockout=knockout, knockout_spec=resolved)
