"""Encoders turn a Dataset into ItemFeatures (one named modality or more).

Heavy libraries (transformers, sentence-transformers) are imported only when an encoder runs.
"""

from mmrec.features.encoders.base import Encoder, fill_missing
from mmrec.features.encoders.clip import CLIP
from mmrec.features.encoders.combined import Combined
from mmrec.features.encoders.image import EfficientNetLite0, HFImage
from mmrec.features.encoders.precomputed import Precomputed
from mmrec.features.encoders.text import HFText, SentenceTransformerText

__all__ = [
    "CLIP",
    "Combined",
    "EfficientNetLite0",
    "Encoder",
    "HFImage",
    "HFText",
    "Precomputed",
    "SentenceTransformerText",
    "fill_missing",
]
