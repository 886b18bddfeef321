"""Tiny randomly initialised LVLM checkpoints, for tests and smoke runs only (their outputs are noise).

``build_tiny_qwen2vl(folder)`` and ``build_tiny_idefics3(folder)`` (the SmolVLM architecture) write complete
checkpoints (config, safetensors weights, tokenizer, slow image processor, chat template) that load through exactly
the path of a hub model (``AutoProcessor`` + ``AutoModelForImageTextToText``): 2 text layers of width 32, a
1-block vision tower, a small byte-level BPE tokenizer with the model family's special tokens; ~50k parameters.
``teach_answers`` fine-tunes one so that greedy decoding gives chosen answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mmrec.features.lvlm.loading import LoadedLVLM

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2-VL's message layout, written for this tiny model (image placeholder, then text, per user turn).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = (
    "Look at the product image and read its description. Look at the movie poster and read the movie's details. "
    "Fill in each blank with a short phrase (one to three words). Answer with exactly these lines and nothing "
    "else: Category Age Group Purpose Material Usage Context Pet Type Color Wear Location Style Genre Era Mood "
    "Audience Setting Describe this product in fluent English. Mention its category, colour, shape and any "
    "distinctive features. Product Movie the a of and in with for drama comedy action thriller romance 1995 1990s "
    "Toy Story infant toddler feeding bottle cotton plastic home travel user assistant system"
)


def _bpe(vocab_size: int, special_tokens: Sequence[str]) -> Any:
    """A byte-level BPE trained on a fixed corpus (deterministic), special tokens first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator([_CORPUS] * 4, trainer)
    return bpe


def _tokenizer(vocab_size: int) -> Any:
    from transformers import Qwen2Tokenizer

    model = json.loads(_bpe(vocab_size, SPECIAL_TOKENS).to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    # merges as pairs: the tokenizer takes them at runtime, its annotation says list[str]
    return Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,  # pyright: ignore[reportArgumentType]
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )


def build_tiny_qwen2vl(folder: str | Path, seed: int = 0, vocab_size: int = 512, max_image_side: int = 32) -> Path:
    """Write the tiny checkpoint into ``folder`` (created) and return it."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from mmrec.features.lvlm.loading import _without_video

    folder = Path(folder)
    tokenizer = _tokenizer(vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    patch, merge = 4, 2
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=(patch * merge) ** 2,
        max_pixels=max_image_side**2,
        patch_size=patch,
        temporal_patch_size=2,
        merge_size=merge,
    )
    processor = _without_video(Qwen2VLProcessor)(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    hidden, heads = 32, 2
    head_dim = hidden // heads
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16],
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 1,
            "embed_dim": 16,
            "hidden_size": hidden,
            "num_heads": 2,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": 2,
            "mlp_ratio": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


IDEFICS3_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<image>",
    "<fake_token_around_image>",
    "<global-img>",
    *(f"<row_{r}_col_{c}>" for r in (1, 2) for c in (1, 2)),
)

# SmolVLM's message layout, written for this tiny model.
IDEFICS3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def build_tiny_idefics3(folder: str | Path, seed: int = 0, vocab_size: int = 512, image_side: int = 32) -> Path:
    """Write a tiny Idefics3 (SmolVLM architecture) checkpoint into ``folder``: one image = 4 image tokens."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    folder = Path(folder)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(vocab_size, IDEFICS3_TOKENS),
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=list(IDEFICS3_TOKENS[1:]),
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in IDEFICS3_TOKENS}
    patch, scale = 8, 2
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": image_side}, max_image_size={"longest_edge": image_side}
    )
    image_seq_len = (image_side // patch) ** 2 // scale**2
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )
    config = Idefics3Config(
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<end_of_utterance>"],
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "patch_size": patch,
            "image_size": image_side,
        },
        scale_factor=scale,
        image_token_id=ids["<image>"],
        # the config takes pad_token_id through **kwargs (PretrainedConfig); its typed signature omits it
        pad_token_id=ids["<|endoftext|>"],  # pyright: ignore[reportCallIssue]
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def teach_answers(
    folder: str | Path,
    prompt: Any,
    texts: Sequence[str | None],
    images: Sequence[Any],
    answers: Sequence[str],
    steps: int = 80,
    lr: float = 1e-2,
    seed: int = 0,
) -> float:
    """Fine-tune the tiny checkpoint in ``folder`` so that greedy decoding answers ``prompt`` for item i (its text
    and image, all with an image or all without) with ``answers[i]``; saves it back. Returns the final loss.

    Lets tests exercise generation -> parsing -> attributes with answers they know, through the real code path.
    """
    from mmrec.features.lvlm.inputs import build_inputs
    from mmrec.features.lvlm.loading import LVLMSpec, load_model, load_processor, release

    release()
    spec = LVLMSpec(str(folder), dtype="float32", device="cpu")
    processor = load_processor(spec)
    model, device, dtype = load_model(spec)
    lvlm = LoadedLVLM(model, processor, device, dtype, spec)
    tokenizer = processor.tokenizer
    enc = build_inputs(lvlm, prompt, texts, images)
    end = model.generation_config.eos_token_id
    end = end[0] if isinstance(end, list) else end
    answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] + [end] for a in answers]
    width = max(len(a) for a in answer_ids)
    pad = tokenizer.pad_token_id
    target = torch.tensor([a + [pad] * (width - len(a)) for a in answer_ids])  # [B, A], right-padded
    target_mask = torch.tensor([[1] * len(a) + [0] * (width - len(a)) for a in answer_ids])  # [B, A]
    prompt_len = enc["input_ids"].shape[1]
    inputs = dict(enc)
    inputs["input_ids"] = torch.cat([enc["input_ids"], target], dim=1)  # [B, T + A]
    inputs["attention_mask"] = torch.cat([enc["attention_mask"], target_mask], dim=1)
    if "mm_token_type_ids" in enc:
        inputs["mm_token_type_ids"] = torch.cat([enc["mm_token_type_ids"], torch.zeros_like(target)], dim=1)
    labels = inputs["input_ids"].clone()
    labels[:, :prompt_len] = -100
    labels[inputs["attention_mask"] == 0] = -100
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss = torch.tensor(float("nan"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            loss = model(**inputs, labels=labels).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    model.save_pretrained(folder)
    release()
    return float(loss.detach())
