"""LVLM item representations: prompts, model loading, pooled embeddings, decoded descriptions, attributes.

The encoders that use this package live in ``mmrec.features.encoders.lvlm``.
"""

from mmrec.features.lvlm.attributes import (
    AttributeVocabulary,
    build_vocabulary,
    cluster_values,
    normalise_value,
)
from mmrec.features.lvlm.embed import POOLINGS, pool_hidden_states
from mmrec.features.lvlm.loading import LVLMSpec, load_lvlm
from mmrec.features.lvlm.parse import ParseReport, description_text, parse_answer, parse_report
from mmrec.features.lvlm.prompts import Prompt, load_prompt

__all__ = [
    "POOLINGS",
    "AttributeVocabulary",
    "LVLMSpec",
    "ParseReport",
    "Prompt",
    "build_vocabulary",
    "cluster_values",
    "description_text",
    "load_lvlm",
    "load_prompt",
    "normalise_value",
    "parse_answer",
    "parse_report",
    "pool_hidden_states",
]
