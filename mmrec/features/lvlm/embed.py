"""Item embeddings from an LVLM's hidden states: one forward pass, one pooled vector per item.

Pooling (``pooling``):

* ``last``: the hidden state of the last input token (the end of the prompt, where the model is about to answer;
  the LVLM study's choice). Inputs are left-padded, and the position is taken from the attention mask, so the
  pooled token is the same whatever the batch.
* ``mean``: the mean over the item's real tokens (attention mask), prompt and image tokens alike.
* ``image``: the mean over the image placeholder tokens only (items without an image have none).

``layer`` indexes ``hidden_states`` as transformers returns it: 0 = the input embeddings, -1 = the last layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from mmrec.errors import ConfigError
from mmrec.features.lvlm.inputs import build_inputs
from mmrec.features.lvlm.loading import LoadedLVLM
from mmrec.features.lvlm.prompts import Prompt

POOLINGS = ("last", "mean", "image")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"lvlm pooling {pooling!r} unknown; choose one of {list(POOLINGS)}")
    return pooling


def pool_hidden_states(
    hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str, token_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Pool ``hidden`` [B, T, d] into [B, d] (float32).

    ``attention_mask`` [B, T] marks real tokens (either padding side); ``token_mask`` [B, T] bool marks the image
    tokens (needed for ``image``). Rows with no token to average give zeros (callers mark them absent).
    """
    check_pooling(pooling)
    hidden = hidden.float()
    real = attention_mask.bool()  # [B, T]
    if pooling == "last":
        positions = torch.arange(real.shape[1], device=real.device).expand_as(real)  # [B, T]
        last = torch.where(real, positions, torch.full_like(positions, -1)).amax(dim=1).clamp_min(0)  # [B]
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [B, d]
    weights = real if pooling == "mean" else real & _require(token_mask)  # [B, T]
    weights = weights.to(hidden.dtype).unsqueeze(-1)  # [B, T, 1]
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # [B, d]


def _require(token_mask: torch.Tensor | None) -> torch.Tensor:
    if token_mask is None:
        raise ConfigError(
            "lvlm pooling 'image' needs the image-token positions; this model does not name its "
            "image token (config.image_token_id)"
        )
    return token_mask.bool()


def _forward_kwargs(model: Any) -> dict[str, Any]:
    """Skip the full-vocabulary logits where the model allows (they are not needed and cost memory)."""
    params = inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


@torch.inference_mode()
def embed_batch(
    lvlm: LoadedLVLM,
    prompt: Prompt,
    texts: Sequence[str | None],
    images: Sequence[Any],
    pooling: str = "last",
    layer: int = -1,
    chat_format: str = "structured",
    image_placeholder: str = "<image>",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled hidden states ``[B, d]`` float32 (on the model's device) and ``ok`` bool [B] (False: nothing to pool,
    e.g. ``image`` pooling on an item without image tokens)."""
    enc = build_inputs(lvlm, prompt, texts, images, chat_format, image_placeholder)
    out = lvlm.model(**enc, output_hidden_states=True, use_cache=False, return_dict=True, **_forward_kwargs(lvlm.model))
    states = out.hidden_states
    if not -len(states) <= layer < len(states):
        raise ConfigError(
            f"lvlm layer {layer} out of range: the model returns {len(states)} hidden states "
            f"(0 = embeddings .. {len(states) - 1} = last layer, or negative from the end)"
        )
    hidden = states[layer]  # [B, T, d]
    attention_mask = enc.get("attention_mask", torch.ones(hidden.shape[:2], device=hidden.device))
    token_mask = None
    image_token = lvlm.image_token_id()
    if image_token is not None:
        token_mask = enc["input_ids"] == image_token  # [B, T]
    elif pooling == "image":
        _require(None)
    pooled = pool_hidden_states(hidden, attention_mask, pooling, token_mask)
    if pooling == "image":
        ok = (_require(token_mask) & attention_mask.bool()).any(dim=1)
    else:
        ok = torch.ones(hidden.shape[0], dtype=torch.bool, device=hidden.device)
    return pooled, ok
