"""Condition labels: a short column name for each run, derived from its recorded condition.

A run's condition is ``summary["condition"]`` (``knockout``: modality → ``keep`` or a strategy,
``knockout_phase``, ``modalities``, ``encoder``, ``freeze_features``, ``protocol``) plus
``summary["transfer_from"]``. With M the dataset's modalities and K the knocked-out ones
(strategy ≠ ``keep``/``none``; a modality missing from ``knockout`` counts as kept):

==========================================  =========================  ====================================
recorded condition                          label                      example (M = {text, image, audio})
==========================================  =========================  ====================================
K empty                                     ``full``                   all keep
K = M, one strategy s                       ``all-<s>``                ``all-noise``
K = M, several strategies                   ``all-mixed``              text:noise, image:zero, audio:noise
exactly one modality m kept (|M| ≥ 2)       ``<m>-only``               ``text-only`` (image, audio knocked)
exactly one modality m knocked (|M| ≥ 3)    ``no-<m>``                 ``no-image`` (text, audio kept)
otherwise                                   ``no-<a>+<b>``             (|M| ≥ 4, two knocked, two kept)
==========================================  =========================  ====================================

Then, in this order:

- ``[<strategy>]`` is appended when the same label occurs with different strategies anywhere in the
  collection, e.g. ``text-only[noise]`` and ``text-only[drop]`` (mixed: ``[image:noise,audio:zero]``);
- ``[encoder=…]``, ``[freeze=…]``, ``[protocol=…]`` are appended when that field differs between runs of one
  (dataset, model) that would otherwise share a label;
- `` (test-time)`` when ``knockout_phase == "test"`` (trained on real features, evaluated knocked out);
- `` (transfer)`` when ``transfer_from`` is set on a train-phase run (the full condition's hyper-parameters,
  not re-tuned); a test-time run records its source run in ``transfer_from``, which is not a transfer.

With two modalities a single knocked-out modality makes the other the only one kept, so the label is
``<m>-only`` (``text-only`` = image knocked out), never ``no-<m>``.

The *reference* of a cell (what Δ% compares against) is the ``full`` cell of the same (dataset, model),
phase train, not a transfer, preferring the one with the same encoder, protocol and freeze setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import pandas as pd

KEEP = frozenset({"keep", "none"})
TEST_SUFFIX = " (test-time)"
TRANSFER_SUFFIX = " (transfer)"
_EXTRA_FIELDS = (("encoder", "encoder"), ("freeze_features", "freeze"), ("protocol", "protocol"))


def knocked(knockout: Mapping[str, str], modalities: Sequence[str]) -> dict[str, str]:
    """The knocked-out modalities of ``knockout`` (in ``modalities`` order, then any extra keys)."""
    order = list(modalities) + [m for m in knockout if m not in modalities]
    return {m: str(knockout[m]) for m in order if m in knockout and str(knockout[m]).lower() not in KEEP}


def base_label(knockout: Mapping[str, str], modalities: Sequence[str] | None = None) -> tuple[str, str]:
    """``(label, strategy signature)`` of one knockout spec, before any disambiguation or suffix.

    The signature is ``""`` for ``full``, the strategy when all knocked modalities share one, else
    ``"m1:s1,m2:s2"``.
    """
    mods = list(modalities) if modalities else list(knockout)
    mods += [m for m in knockout if m not in mods]
    out = knocked(knockout, mods)
    if not out:
        return "full", ""
    strategies = list(dict.fromkeys(out.values()))
    signature = strategies[0] if len(strategies) == 1 else ",".join(f"{m}:{s}" for m, s in out.items())
    kept = [m for m in mods if m not in out]
    if not kept:
        return (f"all-{strategies[0]}" if len(strategies) == 1 else "all-mixed"), signature
    if len(kept) == 1:
        return f"{kept[0]}-only", signature
    return "no-" + "+".join(out), signature


def condition_label(
    condition: Mapping[str, object], transfer_from: str | None = None, strategy_suffix: bool = False
) -> str:
    """Label of one run's condition on its own (collection-level disambiguation: :func:`label_runs`)."""
    label, signature = base_label(
        dict(cast("Mapping[str, str]", condition.get("knockout") or {})),
        cast("Sequence[str] | None", condition.get("modalities")),
    )
    if (strategy_suffix and signature and not label.startswith("all-")) or label == "all-mixed":
        label += f"[{signature}]"
    return label + _suffixes(condition.get("knockout_phase"), transfer_from)


def is_transfer(phase: object, transfer_from: object) -> bool:
    """A transfer repeat: ``transfer_from`` set on a train-phase run (test-time runs record their source)."""
    if phase == "test" or transfer_from is None:
        return False
    return not pd.isna(cast(Any, transfer_from)) and bool(transfer_from)


def _suffixes(phase: object, transfer_from: object) -> str:
    test = TEST_SUFFIX if phase == "test" else ""
    return test + (TRANSFER_SUFFIX if is_transfer(phase, transfer_from) else "")


def label_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Add ``base_label``, ``signature``, ``condition``, ``transfer`` and ``is_full`` columns to a runs frame.

    ``runs`` needs the columns ``dataset, model, knockout (dict), modalities (list), knockout_phase,
    transfer_from, encoder, freeze_features, protocol``.
    """
    runs = runs.copy()
    runs["transfer_from"] = runs["transfer_from"].astype(object).where(runs["transfer_from"].notna(), None)
    if runs.empty:
        for col in ("base_label", "signature", "condition"):
            runs[col] = pd.Series(dtype=object)
        runs["is_full"] = pd.Series(dtype=bool)
        runs["transfer"] = pd.Series(dtype=bool)
        return runs
    pairs = [base_label(k or {}, m) for k, m in zip(runs["knockout"], runs["modalities"])]
    runs["base_label"] = [p[0] for p in pairs]
    runs["signature"] = [p[1] for p in pairs]
    # strategy: appended when one base label carries several strategies anywhere in the collection
    n_sigs = runs.groupby("base_label")["signature"].transform("nunique")
    needs = (n_sigs > 1) | (runs["base_label"] == "all-mixed")
    needs &= ~runs["base_label"].str.startswith("all-") | (runs["base_label"] == "all-mixed")
    label = runs["base_label"].where(~needs, runs["base_label"] + "[" + runs["signature"] + "]")
    # encoder / freeze / protocol: appended when they vary inside one (dataset, model, label)
    transfer = pd.Series(
        [is_transfer(p, t) for p, t in zip(runs["knockout_phase"], runs["transfer_from"])], index=runs.index
    )
    phase_key = runs["knockout_phase"].astype(str) + "|" + transfer.astype(str)
    for field, short in _EXTRA_FIELDS:
        values = runs[field].astype(str)
        group = [runs["dataset"], runs["model"], label, phase_key]
        varies = values.groupby(group).transform("nunique") > 1
        varying_labels = set(label[varies])
        add = label.isin(varying_labels)
        label = label.where(~add, label + f" [{short}=" + values + "]")
    suffix = [_suffixes(p, t) for p, t in zip(runs["knockout_phase"], runs["transfer_from"])]
    runs["condition"] = label + pd.Series(suffix, index=runs.index)
    runs["transfer"] = transfer
    runs["is_full"] = (runs["base_label"] == "full") & (runs["knockout_phase"] != "test") & ~transfer
    return runs


_KIND_ORDER = ("full", "only", "no", "all", "other")


def _sort_key(label: str, modality_order: Sequence[str]) -> tuple:
    transfer = label.endswith(TRANSFER_SUFFIX)
    core = label.removesuffix(TRANSFER_SUFFIX)
    test = core.endswith(TEST_SUFFIX)
    core = core.removesuffix(TEST_SUFFIX)
    head = core.split("[", 1)[0].split(" ", 1)[0]
    if head == "full":
        kind, mod = "full", ""
    elif head.endswith("-only"):
        kind, mod = "only", head.removesuffix("-only")
    elif head.startswith("no-"):
        kind, mod = "no", head.removeprefix("no-")
    elif head.startswith("all-"):
        kind, mod = "all", head.removeprefix("all-")
    else:
        kind, mod = "other", head
    mod_rank = modality_order.index(mod) if mod in modality_order else len(modality_order)
    return (transfer, test, _KIND_ORDER.index(kind), mod_rank, core)


def order_conditions(labels: Iterable[str], modality_order: Sequence[str] = ("text", "image", "audio")) -> list[str]:
    """Column order: full, ``<m>-only``, ``no-<m>``, ``all-<s>``, others; then test-time, then transfer."""
    return sorted(dict.fromkeys(labels), key=lambda lab: _sort_key(lab, list(modality_order)))
