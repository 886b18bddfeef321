"""The parity harness's pure helpers (benchmarks/parity_lib.py) on log snippets written here."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from scipy import stats

_spec = importlib.util.spec_from_file_location(
    "parity_lib", Path(__file__).resolve().parents[2] / "benchmarks" / "parity_lib.py"
)
parity_lib = sys.modules.setdefault("parity_lib", importlib.util.module_from_spec(_spec))
if not hasattr(parity_lib, "parse_mmrec_log"):
    _spec.loader.exec_module(parity_lib)

# MMRec's log format (utils/logger + common/trainer): one fixed-setting run, three epochs, best at epoch 1.
LOG = """\
[run_fixed] grid keys: ['seed', 'dropout', 'reg_weight']
07 Dec 14:10    INFO =========1/1: Parameters:['seed', 'dropout', 'reg_weight']=(1, 0.8, 0.0001)=======
07 Dec 14:10    INFO epoch 0 training [time: 1.82s, train loss: 21.9087]
07 Dec 14:10    INFO epoch 0 evaluating [time: 0.59s, valid_score: 0.029800]
07 Dec 14:10    INFO valid result:
recall@5: 0.0150    recall@10: 0.0210    recall@20: 0.0298    recall@50: 0.0500    ndcg@20: 0.0140
07 Dec 14:10    INFO test result:
recall@5: 0.0120    recall@10: 0.0200    recall@20: 0.0301    recall@50: 0.0550    ndcg@20: 0.0131
07 Dec 14:10    INFO ██ FREEDOM--Best validation results updated!!!
07 Dec 14:10    INFO epoch 1 training [time: 1.96s, train loss: 20.4382]
07 Dec 14:10    INFO epoch 1 evaluating [time: 0.57s, valid_score: 0.037100]
07 Dec 14:10    INFO valid result:
recall@5: 0.0190    recall@10: 0.0266    recall@20: 0.0371    recall@50: 0.0624    ndcg@20: 0.0174
07 Dec 14:10    INFO test result:
recall@5: 0.0147    recall@10: 0.0232    recall@20: 0.0369    recall@50: 0.0669    ndcg@20: 0.0158
07 Dec 14:10    INFO ██ FREEDOM--Best validation results updated!!!
07 Dec 14:10    INFO epoch 2 training [time: 2.10s, train loss: 19.1000]
07 Dec 14:10    INFO epoch 2 evaluating [time: 0.61s, valid_score: 0.037100]
07 Dec 14:10    INFO valid result:
recall@5: 0.0191    recall@10: 0.0260    recall@20: 0.0371    recall@50: 0.0630    ndcg@20: 0.0175
07 Dec 14:10    INFO test result:
recall@5: 0.0150    recall@10: 0.0240    recall@20: 0.0380    recall@50: 0.0670    ndcg@20: 0.0160
07 Dec 14:10    INFO best valid result: recall@5: 0.0190    recall@10: 0.0266    recall@20: 0.0371    ndcg@20: 0.0174
07 Dec 14:10    INFO test result: recall@5: 0.0147    recall@10: 0.0232    recall@20: 0.0369    ndcg@20: 0.0158
"""


def test_parse_mmrec_log_reads_epochs_metrics_and_best_epoch() -> None:
    runs = parity_lib.parse_mmrec_log(LOG)
    assert len(runs) == 1
    run = runs[0]
    assert run.params == "['seed', 'dropout', 'reg_weight']=(1, 0.8, 0.0001)"
    assert sorted(run.epochs) == [0, 1, 2]
    assert run.best_epoch == 1  # epoch 2 only ties the validation score: MMRec needs a strict improvement
    assert run.epochs[2]["test"]["recall@20"] == 0.0380
    assert run.epochs[0]["valid"]["ndcg@20"] == 0.0140
    assert [run.epochs[e]["train_s"] for e in range(3)] == [1.82, 1.96, 2.10]
    assert not run.nan_loss


def test_mmrec_record_takes_the_test_value_at_the_best_validation_epoch() -> None:
    rec = parity_lib.mmrec_log_record(parity_lib.parse_mmrec_log(LOG)[0])
    assert rec["test"] == {"recall@20": 0.0369, "ndcg@20": 0.0158}  # epoch 1, not the final summary lines
    assert rec["valid"]["recall@20"] == 0.0371
    assert (rec["best_epoch"], rec["epochs_run"]) == (1, 3)
    assert rec["eval_s"] == [0.59, 0.57, 0.61]


def test_a_log_without_a_best_epoch_is_an_error() -> None:
    text = LOG.split("07 Dec 14:10    INFO ██")[0] + "07 Dec 14:10    INFO Loss is nan at epoch: 1, batch index: 0.\n"
    run = parity_lib.parse_mmrec_log(text)[0]
    assert run.nan_loss
    with pytest.raises(ValueError, match="Best validation"):
        parity_lib.mmrec_log_record(run)


def test_ours_record_splits_training_and_validation_seconds() -> None:
    summary = {
        "status": "completed",
        "git_sha": "abc",
        "best_epoch": 4,
        "epochs_run": 25,
        "metrics": {"test": {"recall@20": 0.08, "ndcg@20": 0.03}, "val": {"recall@20": 0.09}},
    }
    times = [
        {"epoch": 0, "train_start": 10.0, "val_start": 12.5, "val_end": 13.0, "train_end": 13.1},
        {"epoch": 1, "train_start": 13.2, "val_start": 15.2, "val_end": 16.0, "train_end": 16.1},
    ]
    rec = parity_lib.ours_record(summary, times)
    assert rec["train_s"] == pytest.approx([2.5, 2.0])
    assert rec["eval_s"] == pytest.approx([0.5, 0.8])
    assert rec["test"] == {"recall@20": 0.08, "ndcg@20": 0.03}
    with pytest.raises(ValueError, match="failed"):
        parity_lib.ours_record({**summary, "status": "failed"}, times)


def test_welch_matches_scipys_unequal_variance_t_test() -> None:
    a, b = [0.0880, 0.0883, 0.0934, 0.0860, 0.0851], [0.0826, 0.0774, 0.0839, 0.0931]
    t, df, p = parity_lib.welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(ref.statistic, rel=1e-9)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    assert 3 < df < 7
    assert all(math.isnan(x) for x in parity_lib.welch([0.1], b))


def _rec(side: str, model: str, seed: int, recall: float) -> dict:
    return {
        "side": side,
        "model": model,
        "dataset": "tiktok",
        "seed": seed,
        "best_epoch": 10 + seed,
        "test": {"recall@20": recall, "ndcg@20": recall / 2},
        "train_s": [1.0, 3.0],
        "eval_s": [0.5],
    }


def test_summary_gap_table_and_verdict() -> None:
    recs = [_rec("MMRec", "freedom", s, v) for s, v in zip((1, 2, 3), (0.090, 0.091, 0.089))]
    recs += [_rec("mmrec", "freedom", s, v) for s, v in zip((1, 2, 3), (0.080, 0.081, 0.079))]
    recs += [_rec("MMRec", "vbpr", s, v) for s, v in zip((1, 2), (0.020, 0.022))]
    recs += [_rec("mmrec", "vbpr", 1, 0.0205)]
    rows = {r["model"]: r for r in parity_lib.summarise(recs)}
    f = rows["freedom"]
    assert f["MMRec.recall@20"][0] == pytest.approx(0.090)
    assert f["MMRec.recall@20"][1] == pytest.approx(0.001)
    assert f["gap.recall@20"] == pytest.approx(0.080 / 0.090 - 1)
    assert f["p.recall@20"] < 0.001
    assert f["MMRec.train_s"] == 2.0 and f["mmrec.best_epoch"][0] == 12
    assert math.isnan(rows["vbpr"]["p.recall@20"])  # one mmrec seed: no test
    table = parity_lib.format_table(list(rows.values()))
    assert "| tiktok | freedom | 3/3 | 0.0900 ± 0.0010 | 0.0800 ± 0.0010 | -11.1% |" in table
    v = parity_lib.verdict(list(rows.values()))
    assert v["failing"] == ["freedom"]  # vbpr's gap is small and untested
    assert (v["n_below"], v["n_models"]) == (2, 2)  # vbpr: 0.0205 < mean(0.020, 0.022)


def test_runner_overrides_refuse_keys_argparse_reads_as_the_runners_options() -> None:
    # run_fixed.py parses --model with argparse, whose prefix matching takes --mode=local as --model=local.
    assert parity_lib.runner_overrides({"dropout": 0.2, "mode_x": "a"}) == ["--dropout=0.2", '--mode_x="a"']
    with pytest.raises(ValueError, match="mode"):
        parity_lib.runner_overrides({"reg_weight": 0.0, "mode": "local"})


def test_no_shipped_setting_abbreviates_a_runner_option() -> None:
    spec = importlib.util.spec_from_file_location(
        "parity_harness", Path(__file__).resolve().parents[2] / "benchmarks" / "parity.py"
    )
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    for model, setting in harness.SETTINGS.items():
        parity_lib.runner_overrides(setting["ref"])  # raises on a clash
        assert setting["mmrec"], model
