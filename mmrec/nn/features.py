"""Raw item-feature tables and projections shared by multimodal models.

Memory options of a table (model keys ``feature_dtype`` and ``feature_updates``, passed by every model that
takes ``freeze_features``):

- ``feature_dtype: float32 | bfloat16 | float16``: the storage dtype of a *frozen* table. Half precision halves
  its resident bytes; the math stays float32 (the gathered rows, or the whole table where a model reads all of
  it, are upcast when read; a whole-table read makes a transient float32 copy). Values are rounded once, to the
  storage dtype's unit roundoff (2⁻⁸ for bfloat16, 2⁻¹¹ for float16, relative). A fine-tuned table must stay
  float32 (Adam steps on a half-precision table lose updates below its roundoff): half with
  ``freeze_features=false`` is refused.
- ``feature_updates: dense | sparse``: how a *fine-tuned* table steps. ``sparse`` gathers rows with a sparse
  gradient (``embedding(..., sparse=True)``) and the table is stepped by lazy Adam (``torch.optim.SparseAdam``,
  see :class:`mmrec.nn.optim.SplitOptimizer`): only the rows a batch touched move. It helps only models that read
  their tables by rows in training (FREEDOM, BM3); a model that projects the whole table every step touches every
  row, and ``sparse`` is refused there.
"""

from __future__ import annotations

import torch
from torch import nn

from mmrec.errors import ConfigError

FEATURE_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
FEATURE_UPDATES = ("dense", "sparse")


def check_table_options(owner: str, dtype: str, updates: str, trainable: bool, reads_rows: bool) -> None:
    """ConfigErrors naming ``<owner>.feature_dtype`` / ``<owner>.feature_updates`` for choices that cannot hold."""
    if dtype not in FEATURE_DTYPES:
        raise ConfigError(f"{owner}.feature_dtype={dtype!r}; choose one of {list(FEATURE_DTYPES)}")
    if updates not in FEATURE_UPDATES:
        raise ConfigError(f"{owner}.feature_updates={updates!r}; choose one of {list(FEATURE_UPDATES)}")
    if trainable and dtype != "float32":
        raise ConfigError(
            f"{owner}.feature_dtype={dtype!r} needs frozen tables (freeze_features=true): a fine-tuned table is "
            "stepped in float32 (half-precision storage would drop Adam updates below its roundoff)"
        )
    if updates == "sparse" and not trainable:
        raise ConfigError(
            f"{owner}.feature_updates='sparse' needs fine-tuned tables (freeze_features=false): frozen tables "
            "have no updates"
        )
    if updates == "sparse" and not reads_rows:
        raise ConfigError(
            f"{owner}.feature_updates='sparse': this model reads its whole feature tables every training step, "
            "so every row is touched and sparse updates buy nothing; use feature_updates=dense"
        )


class FeatureTable(nn.Module):
    """An item × d raw-feature table: a fine-tuned ``nn.Parameter`` (what the reference code of FREEDOM, BM3,
    LATTICE, ... does via ``nn.Embedding.from_pretrained(freeze=False)``) or a frozen, non-persistent buffer
    (``freeze_features=True``: a knocked-out constant can then never turn into a trainable item embedding).

    ``dtype``: the storage dtype (half precision only for frozen tables); reads return float32.
    ``sparse``: (fine-tuned tables) row reads give the table a sparse gradient (see the module docstring)."""

    def __init__(self, x: torch.Tensor, trainable: bool, dtype: str = "float32", sparse: bool = False):
        super().__init__()
        check_table_options("model", dtype, "sparse" if sparse else "dense", trainable, reads_rows=True)
        self.trainable = trainable
        self.sparse = sparse
        self.storage_dtype = FEATURE_DTYPES[dtype]
        values = x.detach().float()
        limit = torch.finfo(self.storage_dtype).max
        if self.storage_dtype != torch.float32 and values.numel() and float(values.abs().max()) > limit:
            raise ConfigError(
                f"model.feature_dtype={dtype!r}: feature values reach {float(values.abs().max()):.3g}, past its "
                f"largest value {limit:.3g}; use bfloat16 or float32"
            )
        values = values.clone() if values.dtype == self.storage_dtype else values.to(self.storage_dtype)
        if trainable:
            self.weight = nn.Parameter(values)
        else:
            self.register_buffer("weight", values, persistent=False)

    def load(self, x: torch.Tensor) -> None:
        """Replace the values (test-time knockout) keeping the parameter/buffer identity (and storage dtype)."""
        if x.shape != self.weight.shape:
            raise ValueError(f"feature table shape {tuple(self.weight.shape)} cannot take {tuple(x.shape)}")
        with torch.no_grad():
            self.weight.copy_(x.to(self.weight.device).float())  # float32 → storage dtype: one rounding

    def forward(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The table, or its rows ``index``, as float32 (``index_select``: its backward scatters with
        ``index_add``, ~1.5x faster on CPU than advanced indexing's ``index_put`` for a fine-tuned [7050, 4096]
        table; ``embedding(sparse=True)`` for sparse updates)."""
        w = self.weight
        upcast = w.dtype == self.storage_dtype and w.dtype != torch.float32  # half storage; a .to(dtype) is kept
        if index is None:
            return w.float() if upcast else w
        if self.sparse and self.trainable:
            return nn.functional.embedding(index, w, sparse=True)
        rows = torch.index_select(w, 0, index)
        return rows.float() if upcast else rows

    def nbytes(self) -> int:
        """Resident bytes of the table's values."""
        return self.weight.numel() * self.weight.element_size()


def feature_tables(
    features: dict[str, torch.Tensor], trainable: bool, dtype: str = "float32", updates: str = "dense"
) -> nn.ModuleDict:
    """One :class:`FeatureTable` per modality, with the storage ``dtype`` and ``updates`` (see the module doc)."""
    return nn.ModuleDict(
        {m: FeatureTable(x, trainable, dtype=dtype, sparse=updates == "sparse") for m, x in features.items()}
    )
