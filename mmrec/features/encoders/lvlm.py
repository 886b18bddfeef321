"""LVLM encoders: one vision-language model sees an item's image and text together under a structured prompt.

* ``LVLMEmbedding`` -> modality ``lvlm``: pooled hidden states (``last`` token, the study's choice; ``mean`` over
  tokens; ``mean`` over ``image`` tokens), from a chosen ``layer``. Cached per item content like the other encoders.
* ``LVLMDescription`` -> modality ``description``: the model's greedy answer to the prompt, parsed into
  attribute -> value pairs, written as ``"Category: feeding. Age group: infant. ..."`` and embedded by any text
  encoder (default all-MiniLM-L6-v2).
* ``LVLMAttributes`` -> modality ``attributes``: the same answers as one-hot attribute values (lemmatised,
  near-duplicates merged, top-N per attribute + "other"), a dense float ``[n_items, n_values]`` tensor; the sparse
  matrix is also saved as ``.npz`` in the cache. The input of AttributeItemKNN.

Description and attributes share one generation store (``<cache>/lvlm_generations/<key>.jsonl``), so asking for
both generates once. The model loads by hub name or local folder through the same code path (see
``mmrec.features.lvlm.loading``).

Memory per preset (weights = parameters x bytes per parameter; "+ act." = hidden states of every layer kept for
pooling, (L+1) x B x T x d x 2 bytes, plus the generation KV cache, 2 x L x B x T x kv_heads x head_dim x 2
bytes, for batch B = 8 and T ~ 700 tokens = ~400 image tokens + prompt + 96 new tokens):

=====================  =======================================  ======  ==========  ===========  ===========
preset                 model                                    params  bf16 wts.   + act. (B=8) fits
=====================  =======================================  ======  ==========  ===========  ===========
lvlm_qwen2vl_7b        Qwen/Qwen2-VL-7B-Instruct                8.29 B  16.6 GB     ~1.5 GB      24 GB GPU
lvlm_qwen2vl_2b        Qwen/Qwen2-VL-2B-Instruct                2.21 B  4.4 GB      ~0.6 GB      8 GB GPU; CPU
                                                                                                 fp32 ~10 GB
lvlm_smolvlm           HuggingFaceTB/SmolVLM-256M-Instruct      0.26 B  0.5 GB      ~0.4 GB      CPU, 4 GB
lvlm_phi35v            microsoft/Phi-3.5-vision-instruct        4.15 B  8.3 GB      ~4 GB (B=4,  16 GB GPU
                       (trust_remote_code, untested here)                           16 crops)
=====================  =======================================  ======  ==========  ===========  ===========

Parameter counts of the Qwen2-VL presets were checked by building their configs on the meta device (8,291 M and
2,209 M); the others are the model cards'. float32 doubles the weights. Halve ``batch_size`` if memory runs out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmrec.cache import cache_root, hash_parts
from mmrec.data.dataset import Dataset
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError, DataError
from mmrec.features.encoders.base import Encoder, fill_missing
from mmrec.features.encoders.modality import Gathered, ModalityEncoder, model_fingerprint
from mmrec.features.lvlm.attributes import build_vocabulary, save_attribute_matrix
from mmrec.features.lvlm.embed import check_pooling, embed_batch
from mmrec.features.lvlm.generate import GenerationStore, generate_batch, store_key
from mmrec.features.lvlm.inputs import CHAT_FORMATS, ItemContent, item_contents, open_image
from mmrec.features.lvlm.keywords import write_keywords_csv
from mmrec.features.lvlm.loading import LoadedLVLM, LVLMSpec, load_lvlm, resolve_device, resolve_dtype
from mmrec.features.lvlm.parse import description_text, parse_report
from mmrec.features.lvlm.prompts import Prompt

log = logging.getLogger("mmrec.features.lvlm")

TextEncoderLike = Encoder | Callable[[list[str]], Any]


class _LVLMSettings:
    """The settings every LVLM encoder shares: which model, how to load it, what it sees."""

    def _setup(
        self,
        model: str,
        prompt: Prompt | Mapping[str, Any] | str,
        revision: str | None,
        dtype: str,
        device: str,
        device_map: str | None,
        trust_remote_code: bool,
        attn_implementation: str | None,
        model_class: str | None,
        processor_kwargs: Mapping[str, Any] | None,
        text_template: str | None,
        use_text: bool,
        use_image: bool,
        chat_format: str,
        image_placeholder: str,
    ) -> None:
        if chat_format not in CHAT_FORMATS:
            raise ConfigError(f"lvlm chat_format {chat_format!r} unknown; choose one of {list(CHAT_FORMATS)}")
        self.prompt = Prompt.from_config(prompt)
        self.spec = LVLMSpec(
            model=str(model),
            revision=revision,
            dtype=str(dtype),
            device=str(device),
            device_map=device_map,
            trust_remote_code=bool(trust_remote_code),
            attn_implementation=attn_implementation,
            model_class=model_class,
            processor_kwargs=dict(processor_kwargs or {}),
        )
        self.text_template = text_template
        self.use_text = bool(use_text)
        self.use_image = bool(use_image)
        self.chat_format = chat_format
        self.image_placeholder = image_placeholder
        self._lvlm: LoadedLVLM | None = None

    @property
    def lvlm(self) -> LoadedLVLM:
        if self._lvlm is None:
            try:
                self._lvlm = load_lvlm(self.spec)
            except OSError as e:
                raise ConfigError(
                    f"lvlm: cannot load {self.spec.model!r} ({e}); give a local folder in encoder.model or make "
                    "the hub reachable (HF_HOME / HF_HUB_OFFLINE with a filled cache)"
                ) from e
            except ValueError as e:
                if "trust_remote_code" in str(e) and not self.spec.trust_remote_code:
                    raise ConfigError(
                        f"lvlm: {self.spec.model!r} ships its own code; opt in with encoder.trust_remote_code=true "
                        "(runs code from the model repository; untested in mmrec)"
                    ) from e
                raise
        return self._lvlm

    def _dtype_name(self) -> str:
        return str(resolve_dtype(self.spec.dtype, resolve_device(self.spec.device))).replace("torch.", "")

    def _model_parts(self) -> tuple[Any, ...]:
        """What identifies the model and how it sees items (part of every cache key)."""
        s = self.spec
        return (
            model_fingerprint(s.model, s.revision),
            s.model_class,
            self._dtype_name(),
            sorted(s.processor_kwargs.items()),
            self.prompt.fingerprint(),
            self.use_text,
            self.use_image,
            self.chat_format,
            self.image_placeholder if self.chat_format == "plain" else None,
        )

    def _contents(self, dataset: Dataset) -> list[ItemContent]:
        return item_contents(dataset, self.text_template, self.use_text and self.prompt.uses_text, self.use_image)

    def _images(self, contents: Sequence[ItemContent]) -> tuple[list[Any], list[bool]]:
        """Opened images (None where absent) and whether each item could be read (False: corrupt file)."""
        images = [open_image(c.image_path) for c in contents]
        ok = [c.image_path is None or im is not None for c, im in zip(contents, images)]
        return images, ok


class LVLMEmbedding(_LVLMSettings, ModalityEncoder):
    """Pooled LVLM hidden states per item, modality ``lvlm`` (see the module docstring for the settings)."""

    def __init__(
        self,
        model: str,
        prompt: Prompt | Mapping[str, Any] | str,
        pooling: str = "last",
        layer: int = -1,
        modality: str = "lvlm",
        batch_size: int = 8,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        device_map: str | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        model_class: str | None = None,
        processor_kwargs: Mapping[str, Any] | None = None,
        text_template: str | None = None,
        use_text: bool = True,
        use_image: bool = True,
        chat_format: str = "structured",
        image_placeholder: str = "<image>",
        name: str = "lvlm",
    ):
        ModalityEncoder.__init__(self, name, modality, batch_size, device)
        self._setup(
            model,
            prompt,
            revision,
            dtype,
            device,
            device_map,
            trust_remote_code,
            attn_implementation,
            model_class,
            processor_kwargs,
            text_template,
            use_text,
            use_image,
            chat_format,
            image_placeholder,
        )
        self.pooling = check_pooling(pooling)
        self.layer = int(layer)
        if self.pooling == "image" and not self.use_image:
            raise ConfigError(f"encoder '{name}': pooling 'image' needs use_image=true")

    def _config_parts(self) -> tuple[Any, ...]:
        return (*self._model_parts(), self.pooling, self.layer)

    def _gather(self, dataset: Dataset) -> Gathered:
        contents = self._contents(dataset)
        hashes: list[str | None] = [c.key for c in contents]
        reasons: dict[int, str] = {i: "no text and no image" for i, c in enumerate(contents) if c.key is None}
        if self.pooling == "image":
            for i, c in enumerate(contents):
                if c.image_path is None and c.key is not None:
                    hashes[i] = None
                    reasons[i] = "no image (pooling=image)"
        return Gathered(hashes, contents, reasons)

    def _compute(self, payload: list[ItemContent]) -> tuple[torch.Tensor, torch.Tensor]:
        images, readable = self._images(payload)
        with_image = [i for i, im in enumerate(images) if im is not None]
        without = [i for i, (im, r) in enumerate(zip(images, readable)) if im is None and r]
        vectors: dict[int, torch.Tensor] = {}
        ok = torch.zeros(len(payload), dtype=torch.bool)
        # items with and without an image never share a batch (processors differ on mixed batches)
        for group in (with_image, without):
            if not group:
                continue
            pooled, good = embed_batch(
                self.lvlm,
                self.prompt,
                [payload[i].text for i in group],
                [images[i] for i in group],
                self.pooling,
                self.layer,
                self.chat_format,
                self.image_placeholder,
            )
            for j, i in enumerate(group):
                vectors[i] = pooled[j].float().cpu()
                ok[i] = bool(good[j])
        if not vectors:
            return torch.zeros(len(payload), 1), ok
        dim = next(iter(vectors.values())).shape[0]
        out = torch.zeros(len(payload), dim)  # [k, d]
        for i, v in vectors.items():
            out[i] = v
        return out, ok


class _Generating(_LVLMSettings):
    """Generates (or reads from the store) the structured answer of every item."""

    max_new_tokens: int
    batch_size: int
    name: str
    keywords_csv: str | None = None  # also write the answers as the LVLM study's `Image Name,Keywords` CSV

    def generation_key(self) -> str:
        return store_key(hash_parts(self._model_parts()), self.prompt, self.max_new_tokens, self._dtype_name())

    def store(self) -> GenerationStore:
        return GenerationStore(self.generation_key())

    def _generate(self, contents: list[ItemContent]) -> list[str]:
        """Answers for a batch; an item whose image cannot be read is answered from its text alone."""
        images, readable = self._images(contents)
        if not all(readable):
            bad = [str(c.image_path) for c, r in zip(contents, readable) if not r]
            log.warning("lvlm: unreadable images, answered from the text only: %s", ", ".join(bad[:10]))
        answers: list[str] = [""] * len(contents)
        for group in (
            [i for i, im in enumerate(images) if im is not None],
            [i for i, im in enumerate(images) if im is None],
        ):
            if group:
                out = generate_batch(
                    self.lvlm,
                    self.prompt,
                    [contents[i].text for i in group],
                    [images[i] for i in group],
                    self.max_new_tokens,
                    self.chat_format,
                    self.image_placeholder,
                )
                for j, i in enumerate(group):
                    answers[i] = out[j]
        return answers

    def answers(self, dataset: Dataset) -> tuple[list[ItemContent], list[dict[str, Any] | None]]:
        """Each item's content and its record (raw answer + parsed attributes; None = no content)."""
        t0 = time.perf_counter()
        contents = self._contents(dataset)
        store = self.store()
        records = store.fill(contents, self.prompt, self.spec.model, self._generate, self.batch_size)
        answered = [r for r in records if r is not None]
        info: dict[str, Any] = {
            "store": str(store.path),
            "n_items": len(contents),
            "answered": len(answered),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if self.prompt.structured:
            rep = parse_report([r["attributes"] for r in answered], self.prompt)
            info["parse"] = rep.as_dict()
            log.info("%s [%s, prompt %s]: %s", dataset.name, self.name, self.prompt.id, rep)
        if self.keywords_csv:
            info["keywords_csv"] = str(write_keywords_csv(self.keywords_csv, contents, records, self.prompt))
        self.generation_report = info
        return contents, records


def _encode_texts(encoder: TextEncoderLike, texts: list[str], dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed one text per item with a text encoder: an ``Encoder`` (run on a copy of the dataset whose items
    carry only the texts) or a callable ``list[str] -> [n, d]``. Returns ``(x [n, d], present bool [n])``."""
    present = torch.tensor([bool(t) for t in texts], dtype=torch.bool)
    if isinstance(encoder, Encoder):
        ids = [str(i) for i in range(len(texts))] if dataset.item_ids is None else [str(i) for i in dataset.item_ids]
        view = replace(
            dataset,
            name=f"{dataset.name}:lvlm-text",
            data_dir=None,
            features=None,
            items=pd.DataFrame({"item_id": ids, "text": texts}),
            text_template="{text}",
        )
        feats = encoder.encode(view)
        if len(feats.modalities) != 1:
            raise ConfigError(f"lvlm text_encoder must output one modality, got {feats.modalities}")
        m = feats.modalities[0]
        return feats.tensors[m], feats.masks[m] & present
    if not callable(encoder):
        raise ConfigError(f"lvlm text_encoder must be an Encoder or a callable, got {type(encoder).__name__}")
    rows = [i for i, t in enumerate(texts) if t]
    if not rows:
        raise DataError(dataset.data_dir or dataset.name, "no item got a description to embed")
    vecs = torch.as_tensor(np.asarray(encoder([texts[i] for i in rows]), dtype=np.float32))  # [k, d]
    x = torch.zeros(len(texts), vecs.shape[1])
    x[rows] = vecs
    return x, present


def default_text_encoder() -> Encoder:
    from mmrec.features.encoders.text import MINILM, SentenceTransformerText

    return SentenceTransformerText(MINILM, name="minilm")


class LVLMDescription(_Generating, Encoder):
    """Decoded structured descriptions embedded as text: modality ``description``."""

    def __init__(
        self,
        model: str,
        prompt: Prompt | Mapping[str, Any] | str,
        text_encoder: TextEncoderLike | None = None,
        max_new_tokens: int = 96,
        modality: str = "description",
        batch_size: int = 8,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        device_map: str | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        model_class: str | None = None,
        processor_kwargs: Mapping[str, Any] | None = None,
        text_template: str | None = None,
        use_text: bool = True,
        use_image: bool = True,
        chat_format: str = "structured",
        image_placeholder: str = "<image>",
        name: str = "lvlm_description",
        keywords_csv: str | None = None,
    ):
        self._setup(
            model,
            prompt,
            revision,
            dtype,
            device,
            device_map,
            trust_remote_code,
            attn_implementation,
            model_class,
            processor_kwargs,
            text_template,
            use_text,
            use_image,
            chat_format,
            image_placeholder,
        )
        self.name = name
        self.keywords_csv = keywords_csv
        self.modality = modality
        self.modalities = (modality,)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.text_encoder = text_encoder
        self.report: dict[str, Any] = {}

    def descriptions(self, dataset: Dataset) -> list[str]:
        """The description text of every item ("" where the model gave nothing usable)."""
        _, records = self.answers(dataset)
        return [description_text(r["attributes"], self.prompt, r["raw"]) if r else "" for r in records]

    def encode(self, dataset: Dataset) -> ItemFeatures:
        texts = self.descriptions(dataset)
        if not any(texts):
            raise DataError(
                dataset.data_dir or dataset.name,
                f"[{self.name}] the model gave no usable answer for any of {len(texts)} items",
                f"inspect {self.generation_report['store']}",
            )
        encoder = self.text_encoder if self.text_encoder is not None else default_text_encoder()
        x, present = _encode_texts(encoder, texts, dataset)
        x = fill_missing(x, present, dataset.fill)
        self.report[self.modality] = {**self.generation_report, "present": int(present.sum())}
        return ItemFeatures({self.modality: x}, {self.modality: present})


class LVLMAttributes(_Generating, Encoder):
    """Decoded attributes as one-hot values: modality ``attributes`` (dense float32 [n_items, n_values]).

    ``value_encoder`` embeds attribute values for the near-duplicate clustering (a text Encoder or a callable
    ``list[str] -> [n, d]``; default all-MiniLM-L6-v2). Items without any parsed attribute get a zero row and
    are marked absent.
    """

    def __init__(
        self,
        model: str,
        prompt: Prompt | Mapping[str, Any] | str,
        top_n: int = 20,
        threshold: float = 0.45,
        linkage: str = "average",
        lang: str = "en",
        value_encoder: TextEncoderLike | None = None,
        max_new_tokens: int = 96,
        modality: str = "attributes",
        batch_size: int = 8,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        device_map: str | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        model_class: str | None = None,
        processor_kwargs: Mapping[str, Any] | None = None,
        text_template: str | None = None,
        use_text: bool = True,
        use_image: bool = True,
        chat_format: str = "structured",
        image_placeholder: str = "<image>",
        name: str = "lvlm_attributes",
        keywords_csv: str | None = None,
    ):
        self._setup(
            model,
            prompt,
            revision,
            dtype,
            device,
            device_map,
            trust_remote_code,
            attn_implementation,
            model_class,
            processor_kwargs,
            text_template,
            use_text,
            use_image,
            chat_format,
            image_placeholder,
        )
        if not self.prompt.structured:
            raise ConfigError(f"encoder '{name}': prompt '{self.prompt.id}' lists no attributes to one-hot encode")
        self.name = name
        self.keywords_csv = keywords_csv
        self.modality = modality
        self.modalities = (modality,)
        self.top_n = int(top_n)
        self.threshold = float(threshold)
        self.linkage = linkage
        self.lang = lang
        self.value_encoder = value_encoder
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.report: dict[str, Any] = {}

    def _embed_values(self, values: list[str]) -> np.ndarray:
        encoder = self.value_encoder if self.value_encoder is not None else default_text_encoder()
        if isinstance(encoder, Encoder):
            x = _encode_texts(encoder, values, _values_dataset(len(values)))[0]
            return x.numpy()
        return np.asarray(encoder(values), dtype=np.float64)

    def encode(self, dataset: Dataset) -> ItemFeatures:
        contents, records = self.answers(dataset)
        parsed = [r["attributes"] if r else None for r in records]
        vocab = build_vocabulary(
            parsed, self.prompt.attributes, self._embed_values, self.threshold, self.top_n, self.linkage, self.lang
        )
        if not vocab.columns:
            raise DataError(
                dataset.data_dir or dataset.name,
                f"[{self.name}] no attribute could be parsed from any of {len(parsed)} answers",
                f"inspect {self.generation_report['store']}",
            )
        matrix = vocab.transform(parsed)  # [n_items, n_values] csr
        key = hash_parts(
            self.generation_key(),
            [c.key for c in contents],
            self.top_n,
            self.threshold,
            self.linkage,
            self.lang,
            getattr(self.value_encoder, "cache_key", lambda: None)(),
        )
        path = save_attribute_matrix(
            matrix, vocab, cache_root() / "lvlm_attributes" / key, [c.item_id for c in contents]
        )
        x = torch.from_numpy(matrix.toarray())  # [n_items, n_values]
        present = torch.from_numpy(np.asarray(matrix.getnnz(axis=1) > 0))
        self.report[self.modality] = {
            **self.generation_report,
            "matrix": str(path),
            "n_values": len(vocab.columns),
            "present": int(present.sum()),
            "nnz": int(matrix.nnz),
        }
        log.info(
            "%s [%s]: %d attribute values, %d of %d items with at least one (%s)",
            dataset.name,
            self.name,
            len(vocab.columns),
            int(present.sum()),
            len(parsed),
            path,
        )
        return ItemFeatures({self.modality: x}, {self.modality: present})


def _values_dataset(n: int) -> Dataset:
    """A stand-in dataset of ``n`` items, for running a text Encoder over a list of strings."""
    from mmrec.data.dataset import Interactions

    empty = np.zeros((0, 2), dtype=np.int64)
    return Dataset(name="lvlm-values", interactions=Interactions(0, n, empty, empty, empty), fill="zero")
