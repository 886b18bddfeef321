"""The base of every model that reads item content.

A :class:`MultimodalRecommender` owns what all multimodal models share, so a model file keeps only its math:

- ``modality_names``: the run's modalities, in the model's order (:meth:`order_modalities`);
- ``faithful_to``: checked against ``faithful_choices`` (``reference`` reproduces the published numbers);
- ``features``: one :class:`~mmrec.nn.features.FeatureTable` per modality when the model takes
  ``freeze_features`` (fine-tuned parameters or frozen buffers), filled from :meth:`feature_input`;
- re-attachment: :meth:`load_content` refills the tables from new (e.g. knocked-out) data before ``prepare``;
- ``projections``: :meth:`build_projections`, one ``nn.Linear`` per modality, built where the model's
  initialisation order needs it;
- scoring: ``score(users)`` from :meth:`~mmrec.models.base.Recommender.final_embeddings`.

Models whose content never becomes a table (DA-MRS's item graphs) pass ``freeze_features=None``. The memory
options of the tables, ``feature_dtype`` (half-precision storage of frozen tables) and ``feature_updates`` (sparse
row updates of fine-tuned ones), belong to :func:`~mmrec.nn.features.feature_tables` and are checked here, so
every model gets them at once; ``reads_feature_rows`` marks the models whose training reads the tables by rows
only (FREEDOM, BM3), the only ones where ``feature_updates=sparse`` is accepted.

Shared options: a model's constructor lists only its own hyper-parameters and takes the shared ones (learning
rate and its decay, ``faithful_to``, the table options) as ``**options: Unpack[SharedOptions]``, passing them on
with ``super().__init__(data, **self.with_defaults(options))``. Its ``option_defaults`` says which shared options
it takes and their defaults; the config check accepts exactly those keys, and a key outside them is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, TypedDict, cast

import torch
from torch import nn

from mmrec.data.datamodule import GraphData
from mmrec.models.base import Recommender, check_choice
from mmrec.nn.features import FeatureTable, check_table_options, feature_tables


class SharedOptions(TypedDict, total=False):
    """Constructor options shared by the multimodal models (each takes those in its ``option_defaults``)."""

    lr: float
    weight_decay: float  # Adam's coupled L2
    lr_decay: float  # lr × lr_decay^(epoch / lr_decay_epochs) (MMRec's learning_rate_scheduler)
    lr_decay_epochs: float
    faithful_to: str  # reference | paper (the model's faithful_choices)
    freeze_features: bool  # the content tables are frozen buffers (true) or fine-tuned parameters (false)
    feature_dtype: str  # storage of frozen tables: float32 | bfloat16 | float16
    feature_updates: str  # fine-tuned tables: dense | sparse (lazy Adam on the touched rows)


TABLE_OPTIONS: SharedOptions = {
    "lr": 1e-3,
    "faithful_to": "reference",
    "freeze_features": False,
    "feature_dtype": "float32",
    "feature_updates": "dense",
}
"""The defaults of a model with fine-tuned content tables; a model's ``option_defaults`` starts from them."""


class MultimodalRecommender(Recommender):
    """Base class of models that read item content (see the module docstring)."""

    option_defaults: ClassVar[SharedOptions] = TABLE_OPTIONS

    min_modalities = 1
    uses_features_at_inference = True
    faithful_choices: ClassVar[tuple[str, ...]] = ("reference", "paper")
    reads_feature_rows: ClassVar[bool] = False  # training reads the tables by rows only (sparse updates help)
    features: nn.ModuleDict  # modality -> FeatureTable (when the model takes freeze_features)
    projections: nn.ModuleDict  # modality -> nn.Linear (build_projections)

    def __init__(
        self,
        data: GraphData,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_decay: float = 1.0,
        lr_decay_epochs: float = 50,
        faithful_to: str = "reference",
        freeze_features: bool | None = None,
        feature_dtype: str = "float32",
        feature_updates: str = "dense",
    ):
        super().__init__(data, lr=lr, weight_decay=weight_decay, lr_decay=lr_decay, lr_decay_epochs=lr_decay_epochs)
        check_choice(f"{type(self).__name__.lower()}.faithful_to", faithful_to, self.faithful_choices)
        self.faithful_to = faithful_to
        self.modality_names = self.order_modalities(list(data.modalities))
        self.freeze_features = freeze_features
        self.feature_dtype, self.feature_updates = feature_dtype, feature_updates
        if freeze_features is not None:
            name = type(self).__name__.lower()
            trainable = not freeze_features
            check_table_options(name, feature_dtype, feature_updates, trainable, self.reads_feature_rows)
            inputs = {m: self.feature_input(data, m) for m in self.modality_names}
            self.features = feature_tables(inputs, trainable, dtype=feature_dtype, updates=feature_updates)

    @classmethod
    def with_defaults(cls, options: SharedOptions) -> SharedOptions:
        """``options`` over the class's ``option_defaults``; a shared option the model does not take is refused."""
        unknown = sorted(set(options) - set(cls.option_defaults))
        if unknown:
            raise TypeError(
                f"{cls.__name__} takes no option(s) {unknown}; its shared options: {sorted(cls.option_defaults)}"
            )
        merged = SharedOptions(**cls.option_defaults)
        merged.update(options)
        return merged

    def order_modalities(self, names: list[str]) -> list[str]:
        """The order the model processes modalities in (override; default the data's)."""
        return names

    def feature_input(self, data: GraphData, modality: str) -> torch.Tensor:
        """The values a feature table holds (override to transform, e.g. normalise, the raw features)."""
        return data.feature(modality)

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: int(self.table(m).weight.shape[1]) for m in self.modality_names}

    def table(self, modality: str) -> FeatureTable:
        return cast(FeatureTable, self.features[modality])

    def build_projections(
        self,
        dim: int,
        init: Callable[[torch.Tensor], torch.Tensor] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> None:
        """``projections[m]``: ``nn.Linear(d_m, dim)`` per modality (``init`` applied to each weight)."""
        names = self.modality_names if modalities is None else modalities
        self.projections = nn.ModuleDict({m: nn.Linear(self.feature_dims[m], dim) for m in names})
        if init is not None:
            for layer in self.projections.values():
                init(cast(nn.Linear, layer).weight)

    def load_content(self, data: GraphData) -> None:
        """Test-time knockout: the tables take the new data's inputs (parameter identity kept)."""
        if self.freeze_features is not None:
            for m in self.modality_names:
                self.table(m).load(self.feature_input(data, m))


def item_graph_weights(names: list[str], image_weight: float, given: Mapping[str, float] | None) -> dict[str, float]:
    """Item-graph weights summing to 1: ``given``, else image ``image_weight`` / text the rest for exactly
    text + image (MMRec's ``mm_image_weight``), else equal shares."""
    if given:
        w = {m: float(given.get(m, 0.0)) for m in names}
    elif set(names) == {"text", "image"}:
        w = {"image": image_weight, "text": 1.0 - image_weight}
    else:
        w = {m: 1.0 for m in names}
    total = sum(w.values())
    return {m: v / total for m, v in w.items()} if total > 0 else {m: 1.0 / len(names) for m in names}
