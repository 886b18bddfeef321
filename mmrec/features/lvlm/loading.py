"""Load an image-text-to-text model and its processor by hub name or local folder (one code path for both).

``AutoProcessor`` + ``AutoModelForImageTextToText`` (or a named class), with slow (PIL) image processors: the
fast ones need torchvision, which mmrec does not install. Without torchvision, transformers 5 cannot build the
video sub-processor that processors such as Qwen2-VL's and SmolVLM's declare; ``load_processor`` then loads the
same processor class without its video part (mmrec never sends videos).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from mmrec.errors import ConfigError

log = logging.getLogger("mmrec.features.lvlm")

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class LVLMSpec:
    """Which model to load and how.

    ``model``: hub name (``Qwen/Qwen2-VL-7B-Instruct``) or local folder. ``dtype``: ``auto`` (bfloat16 on a GPU
    that supports it, else float16 on GPU, float32 on CPU) or a name. ``device``: ``auto`` | ``cpu`` | ``cuda[:i]``;
    ignored when ``device_map`` is set (``auto`` etc.; needs the ``accelerate`` package). ``model_class``: a
    transformers class name (default ``AutoModelForImageTextToText``). ``processor_kwargs``: passed to the
    processor (e.g. Qwen2-VL's ``min_pixels``/``max_pixels``).
    """

    model: str
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    device_map: str | Mapping[str, Any] | None = None
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    model_class: str | None = None
    processor_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """A hashable identity of these settings (kwargs may hold lists or mappings)."""
        return json.dumps(
            [
                self.model,
                self.revision,
                self.dtype,
                self.device,
                self.device_map,
                self.trust_remote_code,
                self.attn_implementation,
                self.model_class,
                dict(self.processor_kwargs),
            ],
            sort_keys=True,
            default=str,
        )


@dataclass
class LoadedLVLM:
    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    spec: LVLMSpec

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def image_token_id(self) -> int | None:
        """Id of the placeholder token whose hidden states belong to the image (None if unknown)."""
        cfg = self.model.config
        for name in ("image_token_id", "image_token_index"):
            value = getattr(cfg, name, None)
            if isinstance(value, int):
                return value
        value = getattr(self.processor, "image_token_id", None)
        if isinstance(value, int):
            return value
        token = getattr(self.processor, "image_token", None)
        if isinstance(token, str):
            tid = self.tokenizer.convert_tokens_to_ids(token)
            return tid if isinstance(tid, int) and tid != self.tokenizer.unk_token_id else None
        return None


def resolve_device(device: str | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"lvlm dtype {dtype!r} unknown; choose auto or one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def _image_backend_kwargs() -> dict[str, Any]:
    """Ask for slow (PIL) image processors: ``backend="pil"`` in transformers 5, ``use_fast=False`` before."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"backend": "pil"} if major >= 5 else {"use_fast": False}


def _without_video(cls: type[Any]) -> type[Any]:
    """The processor class ``cls`` minus its video sub-processor (same name, so it saves and loads alike)."""
    if "video_processor" not in inspect.signature(cls.__init__).parameters:
        return cls

    def __init__(
        self: Any, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any
    ) -> None:
        init: Any = cls.__init__  # the processor's own __init__ (its signature varies by class)
        init(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__})


def _processor_class(name: str, revision: str | None) -> type:
    """The processor class a checkpoint declares (processor_config.json), else the one for its model type."""
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING, processor_class_from_name

    class_name = None
    with contextlib.suppress(Exception):
        from transformers.processing_utils import ProcessorMixin

        class_name = ProcessorMixin.get_processor_dict(name, revision=revision)[0].get("processor_class")
    if class_name:
        cls = getattr(transformers, class_name, None) or processor_class_from_name(class_name)
        if cls is not None:
            return cls
    config = AutoConfig.from_pretrained(name, revision=revision)
    return cast(type, PROCESSOR_MAPPING[type(config)])  # the lazy mapping's values are classes


def load_processor(spec: LVLMSpec) -> Any:
    """The model's processor with a slow image processor, left padding and a pad token."""
    from transformers import AutoProcessor

    kwargs = {**_image_backend_kwargs(), **dict(spec.processor_kwargs)}
    try:
        processor = AutoProcessor.from_pretrained(
            spec.model, revision=spec.revision, trust_remote_code=spec.trust_remote_code, **kwargs
        )
    except Exception as first:  # e.g. a video sub-processor that needs torchvision
        if spec.trust_remote_code:
            raise
        try:
            cls = _without_video(_processor_class(spec.model, spec.revision))
            processor = cls.from_pretrained(spec.model, revision=spec.revision, **kwargs)
        except Exception as second:
            raise ConfigError(
                f"lvlm: cannot load the processor of {spec.model!r}: {first}; without its video part: {second}"
            ) from second
        log.info("loaded %s without its video sub-processor (%s)", type(processor).__name__, first)
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor


def load_model(spec: LVLMSpec) -> tuple[Any, torch.device, torch.dtype]:
    """The model in eval mode on its device; returns (model, input device, dtype)."""
    import transformers

    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    class_name = spec.model_class or "AutoModelForImageTextToText"
    model_cls = getattr(transformers, class_name, None)
    if model_cls is None:
        raise ConfigError(f"lvlm: transformers has no model class {class_name!r} (encoder.model_class)")
    kwargs: dict[str, Any] = {"revision": spec.revision, "dtype": dtype, "trust_remote_code": spec.trust_remote_code}
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    if spec.device_map is not None:
        kwargs["device_map"] = spec.device_map
    model = model_cls.from_pretrained(spec.model, **kwargs)
    if spec.device_map is None:
        model = model.to(device)
    else:
        device = next(p.device for p in model.parameters())
    model.eval()
    return model, device, dtype


_LOADED: dict[str, LoadedLVLM] = {}


def check_source(name: str) -> None:
    """A name that looks like a local path (absolute, ``./``, ``~``, or more than one ``/``) must exist."""
    path = Path(name).expanduser()
    looks_local = name.startswith(("/", "./", "../", "~")) or name.count("/") > 1
    if looks_local and not path.exists():
        raise ConfigError(
            f"lvlm: model folder {path} does not exist (encoder.model); give an existing folder "
            "or a hub name such as Qwen/Qwen2-VL-2B-Instruct"
        )


def load_lvlm(spec: LVLMSpec) -> LoadedLVLM:
    """Model + processor, kept in memory for reuse by the next encoder of the same run (one model at a time)."""
    check_source(spec.model)
    key = spec.key()
    if key not in _LOADED:
        _LOADED.clear()  # never hold two large models
        processor = load_processor(spec)
        model, device, dtype = load_model(spec)
        _LOADED[key] = LoadedLVLM(model, processor, device, dtype, spec)
    return _LOADED[key]


def release() -> None:
    """Drop the kept model (frees its memory once nothing else refers to it)."""
    _LOADED.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
