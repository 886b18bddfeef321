"""Pure helpers of the MMRec parity harness (``benchmarks/parity.py``): reading MMRec's log, one record per
run and side, Welch's test, the per-model summary and its table. No torch, no mmrec, no MMRec imports.

A *record* is one run of one side: ``{"side", "model", "dataset", "seed", "test": {metric: value},
"valid": {...}, "best_epoch", "epochs_run", "train_s": [per epoch], "eval_s": [per epoch]}``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

RE_RUN = re.compile(r"=+(\d+)/(\d+): Parameters:(.*?)=+\s*$")
RE_TRAIN = re.compile(r"epoch (\d+) training \[time: ([0-9.]+)s")
RE_EVAL = re.compile(r"epoch (\d+) evaluating \[time: ([0-9.]+)s, valid_score: ([0-9.eE+-]+|nan)\]")
RE_METRIC = re.compile(r"([a-z0-9_]+@\d+): ([0-9.eE+-]+)")

SIDES = ("MMRec", "mmrec")
DEFAULT_METRICS = ("recall@20", "ndcg@20")


@dataclass
class LogRun:
    """One hyper-parameter combination of an MMRec log."""

    params: str
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    best_epoch: int | None = None
    nan_loss: bool = False


# run_fixed.py's own options. argparse accepts any unambiguous prefix of a long option, so a config key that is
# a prefix of one of these (PGL's ``mode`` of ``model``) would be read as that option instead of as an override.
RUNNER_OPTIONS = ("model", "dataset", "threads", "grid")


def runner_overrides(setting: dict[str, Any]) -> list[str]:
    """``--key=value`` arguments for run_fixed.py; refuses keys argparse would read as its own options."""
    clash = sorted(k for k in setting if any(opt.startswith(k) for opt in RUNNER_OPTIONS))
    if clash:
        raise ValueError(
            f"MMRec setting key(s) {clash} abbreviate run_fixed.py's own options {RUNNER_OPTIONS}: argparse would "
            "take them as those options. Leave the key at MMRec's yaml value (run_fixed.py keeps a grid key's first "
            "value) or edit the model's yaml in the checkout."
        )
    return [f"--{k}={yaml_value(v)}" for k, v in setting.items()]


def yaml_value(v: Any) -> str:
    """A value as a YAML/Hydra literal: JSON for strings and containers, repr for numbers and booleans."""
    return json.dumps(v) if isinstance(v, (list, dict, str)) else repr(v)


def parse_mmrec_log(text: str) -> list[LogRun]:
    """Every run of an MMRec log (``src/log/<MODEL>-<dataset>-*.log`` or its captured output).

    Per epoch: MMRec's training and validation-evaluation seconds, the valid and test metrics it prints; the
    best epoch is the last one followed by "Best validation results updated" (MMRec's own rule: strictly
    better validation score)."""
    runs: list[LogRun] = []
    cur: LogRun | None = None
    pending: str | None = None
    epoch: int | None = None
    for line in text.splitlines():
        m = RE_RUN.search(line)
        if m:
            cur = LogRun(params=m.group(3).strip())
            runs.append(cur)
            pending, epoch = None, None
            continue
        if cur is None:
            continue
        m = RE_TRAIN.search(line)
        if m:
            epoch = int(m.group(1))
            cur.epochs.setdefault(epoch, {})["train_s"] = float(m.group(2))
            continue
        m = RE_EVAL.search(line)
        if m:
            epoch = int(m.group(1))
            cur.epochs.setdefault(epoch, {})["eval_s"] = float(m.group(2))
            continue
        if "Loss is nan" in line:
            cur.nan_loss = True
        stripped = line.rstrip()
        if stripped.endswith("valid result:"):
            pending = "valid"
            continue
        if stripped.endswith("test result:"):
            pending = "test"
            continue
        if pending and epoch is not None:
            found = RE_METRIC.findall(line)
            if found:
                cur.epochs.setdefault(epoch, {})[pending] = {k: float(v) for k, v in found}
                pending = None
                continue
        pending = None
        if "Best validation results updated" in line and epoch is not None:
            cur.best_epoch = epoch
    return runs


def mmrec_log_record(run: LogRun, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, Any]:
    """The record of one MMRec run: test metrics at its best-validation epoch (MMRec's "test result upon
    best valid"), epochs run, per-epoch seconds."""
    if run.best_epoch is None:
        raise ValueError(f"MMRec run {run.params!r}: no 'Best validation results updated' line (crashed or NaN?)")
    ordered = [run.epochs[e] for e in sorted(run.epochs)]
    best = run.epochs[run.best_epoch]
    missing = [m for m in metrics if m not in best.get("test", {})]
    if missing:
        raise ValueError(f"MMRec run {run.params!r}: epoch {run.best_epoch} has no test value of {missing}")
    return {
        "side": "MMRec",
        "params": run.params,
        "test": {m: best["test"][m] for m in metrics},
        "valid": {m: best.get("valid", {}).get(m) for m in metrics},
        "best_epoch": run.best_epoch,
        "epochs_run": sum(1 for e in ordered if "train_s" in e),
        "nan_loss": run.nan_loss,
        "train_s": [e["train_s"] for e in ordered if "train_s" in e],
        "eval_s": [e["eval_s"] for e in ordered if "eval_s" in e],
        "curve": {
            str(k): {"valid": v.get("valid", {}).get(metrics[0]), "test": v.get("test", {}).get(metrics[0])}
            for k, v in sorted(run.epochs.items())
        },
    }


def ours_record(
    summary: dict[str, Any], epoch_times: Sequence[dict[str, float]], metrics: Sequence[str] = DEFAULT_METRICS
) -> dict[str, Any]:
    """The record of one mmrec run from its ``summary.json`` and the per-epoch timestamps the harness's
    callback wrote (``train_start``, ``val_start``, ``val_end`` per epoch)."""
    if summary.get("status") != "completed":
        raise ValueError(f"mmrec run status {summary.get('status')!r}: {summary.get('error')}")
    test = summary.get("metrics", {}).get("test", {})
    missing = [m for m in metrics if m not in test]
    if missing:
        raise ValueError(f"mmrec summary has no test value of {missing}")
    train_s, eval_s = [], []
    for t in epoch_times:
        if "val_start" in t:
            train_s.append(t["val_start"] - t["train_start"])
            eval_s.append(t["val_end"] - t["val_start"])
        elif "train_end" in t:
            train_s.append(t["train_end"] - t["train_start"])
    return {
        "side": "mmrec",
        "git_sha": summary.get("git_sha"),
        "test": {m: float(test[m]) for m in metrics},
        "valid": {m: summary.get("metrics", {}).get("val", {}).get(m) for m in metrics},
        "best_epoch": summary.get("best_epoch"),
        "epochs_run": summary.get("epochs_run"),
        "nan_loss": False,
        "train_s": train_s,
        "eval_s": eval_s,
    }


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's two-sided t-test of mean(a) ≠ mean(b): (t, degrees of freedom, p). NaN when either side has
    fewer than two values or both have zero variance."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan, math.nan, math.nan
    va, vb = statistics.variance(a) / na, statistics.variance(b) / nb
    if va + vb == 0:
        return math.nan, math.nan, math.nan
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    p = 2.0 * float(stats.t.sf(abs(t), df))
    return t, df, p


def _mean_sd(xs: Sequence[float]) -> tuple[float, float]:
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else math.nan)


def summarise(records: Iterable[dict[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS) -> list[dict[str, Any]]:
    """One row per (dataset, model): per side n, mean and sd of each metric, mean best epoch, median seconds
    per epoch; the relative gap of means (mmrec / MMRec − 1) and Welch's p per metric."""
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["model"]), {s: [] for s in SIDES})[r["side"]].append(r)
    rows = []
    for (dataset, model), sides in sorted(groups.items()):
        row: dict[str, Any] = {"dataset": dataset, "model": model}
        for side, rs in sides.items():
            row[f"{side}.n"] = len(rs)
            row[f"{side}.seeds"] = sorted(r["seed"] for r in rs)
            for m in metrics:
                row[f"{side}.{m}"] = _mean_sd([r["test"][m] for r in rs])
                row[f"{side}.{m}.values"] = [r["test"][m] for r in sorted(rs, key=lambda r: r["seed"])]
            row[f"{side}.best_epoch"] = _mean_sd([r["best_epoch"] for r in rs if r["best_epoch"] is not None])
            row[f"{side}.train_s"] = _median([x for r in rs for x in r["train_s"]])
            row[f"{side}.eval_s"] = _median([x for r in rs for x in r["eval_s"]])
        for m in metrics:
            ref, ours = row[f"MMRec.{m}"][0], row[f"mmrec.{m}"][0]
            row[f"gap.{m}"] = ours / ref - 1.0 if ref and not math.isnan(ref) and not math.isnan(ours) else math.nan
            row[f"p.{m}"] = welch(row[f"mmrec.{m}.values"], row[f"MMRec.{m}.values"])[2]
        rows.append(row)
    return rows


def _median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def _fmt(x: float, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS) -> str:
    """A Markdown table: per model, both sides' mean ± sd of each metric, gap and Welch p, best epochs and
    seconds per epoch (training / validation evaluation)."""
    head = ["dataset", "model", "seeds MMRec/mmrec"]
    for m in metrics:
        head += [f"{m} MMRec", f"{m} mmrec", f"gap {m}", f"p {m}"]
    head += [
        "best epoch MMRec",
        "best epoch mmrec",
        "train s/ep MMRec",
        "train s/ep mmrec",
        "eval s/ep MMRec",
        "eval s/ep mmrec",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["dataset"], r["model"], f"{r['MMRec.n']}/{r['mmrec.n']}"]
        for m in metrics:
            for side in SIDES:
                mean, sd = r[f"{side}.{m}"]
                cells.append(f"{_fmt(mean, '.4f')} ± {_fmt(sd, '.4f')}")
            cells += [
                _fmt(r[f"gap.{m}"] * 100, "+.1f") + "%" if not math.isnan(r[f"gap.{m}"]) else "—",
                _fmt(r[f"p.{m}"], ".2f"),
            ]
        for side in SIDES:
            mean, sd = r[f"{side}.best_epoch"]
            cells.append(f"{_fmt(mean, '.0f')} ± {_fmt(sd, '.0f')}")
        for key in ("train_s", "eval_s"):
            for side in SIDES:
                cells.append(_fmt(r[f"{side}.{key}"], ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(
    rows: Sequence[dict[str, Any]], metric: str = "recall@20", margin: float = 0.03, alpha: float = 0.05
) -> dict[str, Any]:
    """The issue's target: models whose gap of means is beyond ``±margin`` *and* significant, and the sign
    balance of the gaps across models (a one-sided bias shows as all gaps of one sign)."""
    failing = [
        r["model"]
        for r in rows
        if not math.isnan(r[f"gap.{metric}"])
        and abs(r[f"gap.{metric}"]) > margin
        and not math.isnan(r[f"p.{metric}"])
        and r[f"p.{metric}"] < alpha
    ]
    gaps = [r[f"gap.{metric}"] for r in rows if not math.isnan(r[f"gap.{metric}"])]
    below = sum(g < 0 for g in gaps)
    sign_p = float(stats.binomtest(below, len(gaps)).pvalue) if gaps else math.nan
    return {"failing": failing, "n_below": below, "n_models": len(gaps), "sign_test_p": sign_p}
