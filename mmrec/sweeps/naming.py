"""Study names: one per condition, built from every key of it, so two conditions never share trials.

A condition is (dataset, model, encoder, knockout, knockout phase, freeze setting, protocol). The default
name spells every key, separated by ``__``::

    synthetic__freedom__precomputed__ko=text_noise@train__freeze=false__protocol=ours

- ``ko=``: the knockout preset name while the spec matches it (``text_noise``), else the canonical spec
  (``audio:noise,image:keep`` written ``audio-noise+image-keep``); non-default knockout parameters are appended
  (``ko=text_noise(noise_std=0.5)@train``).
- ``freeze=``: ``model.freeze_features`` (``true``/``false``; ``default`` when the model has no such switch or
  it is null).
- ``protocol=``: ``protocol_name`` (``ours``; ``mmrec`` with ``protocol=mmrec``), else ``default``.
- ``tables=``: only when ``model.feature_dtype`` / ``model.feature_updates`` differ from float32 / dense
  (``tables=bfloat16+sparse``), so a half-precision run never shares a study with a float32 one.

Only ``[A-Za-z0-9_.=@+()-]`` survive in a name (anything else becomes ``-``), so names are safe as folder
names and Hydra override values. ``hydra.sweeper.study_name`` may instead be a template resolved against each
grid point's config, e.g. ``${dataset.name}-${model.name}-v2``.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mmrec.confdict import to_dict
from mmrec.errors import ConfigError

# Feature-table options (model.feature_dtype / feature_updates): named only when they differ from these.
TABLE_DEFAULTS = {"feature_dtype": "float32", "feature_updates": "dense"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=@+()\-]")
# The knockout parameters that are part of the condition when they differ from these defaults.
_KNOCKOUT_DEFAULTS = {"noise_mean": 1.0, "noise_std": 0.1, "constant_value": 1.0}


def _select(cfg: DictConfig, *paths: str, default: Any = None) -> Any:
    for path in paths:
        value = OmegaConf.select(cfg, path, default=None, throw_on_missing=False)
        if value is not None:
            return value
    return default


def _choice(cfg: DictConfig, group: str) -> Any:
    """The option chosen for a config group (``hydra.runtime.choices``), when the hydra node is present."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None)
    if choices is None:
        try:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.initialized():
                choices = HydraConfig.get().runtime.choices
        except Exception:  # pragma: no cover - no Hydra context
            choices = None
    return None if choices is None else choices.get(group)


def knockout_label(knockout: Any) -> tuple[str, str]:
    """(name, phase) of a knockout config node; the name as :class:`mmrec.features.knockout.Knockout` gives it."""
    if knockout is None:
        return "none", "train"
    node = to_dict(knockout, resolve=True) if isinstance(knockout, DictConfig) else dict(knockout)
    phase = str(node.get("phase") or "train").lower()
    raw = node.get("spec", "none")
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null", "~")):
        return "none", phase  # nothing knocked out (skips importing the knockout module, i.e. torch)
    from mmrec.features.knockout import PRESETS, parse_spec

    spec = parse_spec(raw)
    given = node.get("name")
    if given and (given not in PRESETS or parse_spec(PRESETS[given]) == spec):
        name = str(given)
    else:
        matches = [p for p, s in PRESETS.items() if parse_spec(s) == spec]
        if matches:
            name = matches[0]
        else:
            keys = sorted(spec, key=lambda m: (m != "all", m))
            name = "+".join(f"{m}-{spec[m]}" for m in keys) or "none"
    if spec:  # parameters only matter when something is knocked out
        extra = [
            f"{k}={node[k]:g}"
            for k, default in _KNOCKOUT_DEFAULTS.items()
            if k in node and node[k] is not None and float(node[k]) != default
        ]
        if extra:
            name += "(" + ",".join(extra) + ")"
    return name, phase


def condition(cfg: DictConfig) -> dict[str, Any]:
    """The condition of a job config: what makes two runs comparable (or not)."""
    name, phase = knockout_label(OmegaConf.select(cfg, "knockout", default=None))
    freeze = _select(cfg, "model.freeze_features", "freeze_features")
    tables = {  # feature-table options, part of the condition only when not the default (names stay as before)
        key: str(value)
        for key, default in TABLE_DEFAULTS.items()
        if (value := _select(cfg, f"model.{key}", key)) is not None and str(value) != default
    }
    return {
        "dataset": str(_select(cfg, "dataset.name", default=_choice(cfg, "dataset") or "unknown")),
        "model": str(_select(cfg, "model.name", default=_choice(cfg, "model") or "unknown")),
        "encoder": str(_select(cfg, "encoder.name", default=_choice(cfg, "encoder") or "none")),
        "knockout": name,
        "knockout_phase": phase,
        "freeze_features": None if freeze is None else bool(freeze),
        "protocol": str(_select(cfg, "protocol_name", "protocol.name", default=_choice(cfg, "protocol") or "default")),
        **tables,
    }


def name_from_condition(cond: dict[str, Any]) -> str:
    freeze = cond.get("freeze_features")
    freeze_text = "default" if freeze is None else str(bool(freeze)).lower()
    parts = [
        cond["dataset"],
        cond["model"],
        cond["encoder"],
        f"ko={cond['knockout']}@{cond['knockout_phase']}",
        f"freeze={freeze_text}",
        f"protocol={cond['protocol']}",
    ]
    tables = [str(cond[key]) for key in TABLE_DEFAULTS if key in cond]
    if tables:
        parts.append("tables=" + "+".join(tables))
    return "__".join(sanitize(str(p)) for p in parts)


def study_name(cfg: DictConfig) -> str:
    """The default study name of a job config (see the module docstring)."""
    return name_from_condition(condition(cfg))


def sanitize(text: str) -> str:
    text = text.replace(":", "-").replace(",", "+")
    return _UNSAFE.sub("-", text)


def check_name(name: str) -> str:
    """A study name usable as a folder name; ConfigError otherwise."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or _UNSAFE.search(name):
        raise ConfigError(
            f"study name {name!r} is not usable as a folder name: use letters, digits and _ . = @ + ( ) - only"
        )
    return name
