"""Loading Hugging Face models, tokenizers and (slow, PIL-based) image processors, lazily and once.

A hub name and a local folder (``save_pretrained`` output) go through the same ``from_pretrained`` calls.
torchvision is not a dependency, so image processors are always the slow PIL ones: ``backend="pil"`` on
transformers >= 5, ``use_fast=False`` before.
"""

from __future__ import annotations

from typing import Any

import torch

from mmrec.errors import ConfigError


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def load_image_processor(model_name: str, revision: str | None = None) -> Any:
    """The slow (PIL/numpy) image processor of ``model_name``; never the torchvision-backed fast one."""
    from transformers import AutoImageProcessor

    kwargs: dict[str, Any] = {"backend": "pil"} if _transformers_major() >= 5 else {"use_fast": False}
    return AutoImageProcessor.from_pretrained(model_name, revision=revision, **kwargs)


def pooled(output: Any) -> torch.Tensor:
    """``get_text_features``/``get_image_features`` return a tensor (transformers 4) or an output whose
    ``pooler_output`` holds the projected features (transformers 5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HFBundle:
    """A model with its tokenizer and image processor, loaded on first use (so cached runs never load it).

    Several encoders may share one bundle (CLIP's text and image towers).
    """

    def __init__(self, model_name: str, revision: str | None = None, device: str | torch.device = "cpu"):
        if not model_name:
            raise ConfigError("a Hugging Face encoder needs model_name (a hub name or a local folder)")
        self.model_name = model_name
        self.revision = revision
        self.device = torch.device(device)
        self._model: Any = None
        self._tokenizer: Any = None
        self._image_processor: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from transformers import AutoModel

            self._model = AutoModel.from_pretrained(self.model_name, revision=self.revision)
            self._model.to(self.device).eval()
        return self._model

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name, revision=self.revision)
            self._tokenizer.padding_side = "right"  # pooling below assumes real tokens first
            if self._tokenizer.pad_token is None:  # decoder-style tokenizers: pad with end-of-text (masked out)
                self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token
        return self._tokenizer

    @property
    def image_processor(self) -> Any:
        if self._image_processor is None:
            self._image_processor = load_image_processor(self.model_name, self.revision)
        return self._image_processor

    @property
    def model_type(self) -> str:
        """``config.model_type`` (``clip``, ``vit``, ``resnet``, ``bert`` ...), read without the weights."""
        if self._model is not None:
            return str(self._model.config.model_type)
        from transformers import AutoConfig

        return str(AutoConfig.from_pretrained(self.model_name, revision=self.revision).model_type)

    def method(self, name: str) -> Any:
        """The model's bound method ``name`` (e.g. ``get_text_features`` for ``pooling: clip``), checked."""
        model = self.model
        if not hasattr(model, name):
            raise ConfigError(
                f"{self.model_name} ({type(model).__name__}) has no {name}(); pooling 'clip' needs a CLIP-like model"
            )
        return getattr(model, name)

    def release(self) -> None:
        """Drop the loaded objects (frees GPU memory once nothing else refers to them)."""
        self._model = self._tokenizer = self._image_processor = None
