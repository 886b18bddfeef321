"""The report on fake studies: numbers equal the summaries, decisions equal independent re-computations
(statsmodels ANOVA and t-tests, Holm), questions come from the configs; incomplete studies are reported."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from mmrec import summary as summary_io
from mmrec.errors import ConfigError, DataError
from mmrec.report import (
    Question,
    Report,
    ReportSettings,
    build_report,
    knockout_table,
    log_to_wandb,
    metric_name,
    statistics_table,
    write_report,
)
from mmrec.report.__main__ import main
from mmrec.report.simulate import StudyModel, simulate_tables, write_study

from .fake_study import CONDITIONS, MODELS, SEEDS, FakeStudy, build_study
from .test_stats import _anova_variance


def _cell(report: Report, model: str, condition: str, dataset: str = "synth") -> pd.Series:
    cells = report.cells
    sel = cells[(cells["dataset"] == dataset) & (cells["model"] == model) & (cells["condition"] == condition)]
    assert len(sel) == 1, f"expected one cell {model}/{condition}, got {len(sel)}"
    return sel.iloc[0]


def test_table_values_equal_the_summaries(fake_study: FakeStudy) -> None:
    report = build_report(fake_study.root)
    assert sorted(report.cells["model"].unique()) == sorted(MODELS)
    assert report.conditions() == list(CONDITIONS)  # the trials' all-noise condition never appears
    mean_table, std_table = knockout_table(report, "mean"), knockout_table(report, "std")
    for model in MODELS:
        for condition in CONDITIONS:
            seeds = fake_study.seeds(model, condition)
            values = np.array([fake_study.test_values[(model, condition, s)]["recall@20"] for s in seeds])
            cell = _cell(report, model, condition)
            assert cell["seeds"] == seeds
            assert cell["mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert mean_table.loc[("synth", model), condition] == pytest.approx(values.mean(), rel=1e-12)
            if len(values) > 1:
                assert std_table.loc[("synth", model), condition] == pytest.approx(values.std(ddof=1), rel=1e-12)
            else:
                assert np.isnan(std_table.loc[("synth", model), condition])
    text = knockout_table(report)
    full = _cell(report, "vbpr", "full")
    assert text.loc[("synth", "vbpr"), "full"] == f"{full['mean']:.4f} ± {full['std']:.4f}"
    assert not (report.seed_values["value"] == 0.99).any()  # the trial's absurd value is not used


def _tables(study: FakeStudy, model: str, condition: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """[seeds, users] tables straight from the fake study's per-user frames (users sorted by id)."""
    out = []
    for cond in (condition, "full"):
        frames = [study.per_user[(model, cond, s)].set_index("user")["recall@20"].sort_index() for s in seeds]
        out.append(np.stack([f.to_numpy() for f in frames]))
    return out[0], out[1]


def _p_worse(cond: np.ndarray, full: np.ndarray, delta: float) -> float:
    """p of H0: cond >= (1 - δ) full from statsmodels' two-way ANOVA and a Satterthwaite df, re-derived."""
    x = cond - (1 - delta) * full
    n_s, n_u = x.shape
    var = _anova_variance(x)
    seed_var = n_u * x.mean(axis=1).var(ddof=1) / (n_s * n_u)
    user_var = var - seed_var
    df = var**2 / (seed_var**2 / (n_s - 1) + user_var**2 / (n_u - 1))
    return float(st.t.cdf(x.mean() / np.sqrt(var), df))


def test_decisions_equal_an_independent_recomputation(fake_study: FakeStudy) -> None:
    report = build_report(fake_study.root)
    cell = _cell(report, "vbpr", "image-only")
    cond, full = _tables(fake_study, "vbpr", "image-only", list(SEEDS))
    assert cell["design"] == "paired" and cell["unit"] == "seeds × users"
    assert (cell["n_seeds_used"], cell["n_users"]) == (2, cond.shape[1])
    assert cell["delta_pct"] == pytest.approx(100 * (cond.mean() / full.mean() - 1), rel=1e-12)
    assert cell["delta_abs"] == pytest.approx(cond.mean() - full.mean(), rel=1e-12)
    assert cell["p_worse"] == pytest.approx(_p_worse(cond, full, 0.02), rel=1e-6)
    assert cell["claim"] == "worse" and cell["outcome"] == "worse" and cell["mark"] == "↓"
    assert cell["ci_low"] < cell["delta_pct"] < cell["ci_high"] < -2  # the 90 % interval lies below −δ
    # one seed shared (vbpr text-only has seed 1 only, full has 1 and 2): no test, said so
    assert _cell(report, "vbpr", "text-only")["design"] == "none"
    assert _cell(report, "vbpr", "text-only")["note"] == "too few seeds to test"


def test_holm_within_each_declared_question_across_models(tmp_path: Path) -> None:
    study = build_study(tmp_path / "study", defects=False)
    for seed in SEEDS:  # a test-time cell: in the dataset's "other" family, never in the questions'
        study.add_run("vbpr", "text-only", seed, phase="test", suffix="_tt")
    report = build_report(study.root)
    cells = report.cells[~report.cells["is_full"]]
    assert set(cells["family"]) == {"text-only → equivalent", "image-only → worse", "synth: other cells"}
    assert cells.loc[cells["condition"] == "text-only (test-time)", "family"].item() == "synth: other cells"
    for _, fam in cells.groupby("family"):
        expected = multipletests(fam["p_claim"].to_numpy(), method="holm")[1]
        np.testing.assert_allclose(fam["p_holm"], expected, rtol=1e-12)
        assert (fam["family_size"] == len(fam)).all()
    st_table = statistics_table(report)
    assert len(st_table) == len(cells) * 4
    claimed = st_table[st_table["p_holm"].notna()]
    assert len(claimed) == len(cells)  # exactly one claimed test per cell carries the Holm p


def test_a_small_dip_on_many_users_is_equivalent_not_worse(tmp_path: Path) -> None:
    """Issue 14 item 2: the margin enters the test, so a −0.3 % dip is never "worse by more than 2 %"."""
    rng = np.random.default_rng(3)
    model = StudyModel(n_users=3000, seed_sd=0.002, user_sd=0.0, run_noise=0.002)
    cond, full = simulate_tables(model, -0.003, 5, rng)
    write_study(tmp_path / "s", cond, full)
    report = build_report(tmp_path / "s")
    cell = _cell(report, "m", "text-only", dataset="sim")
    assert -1.0 < cell["delta_pct"] < 0.0
    assert cell["outcome"] == "equivalent" and cell["mark"] == "≈"
    assert cell["p_worse"] > 0.5


def test_incomplete_runs_are_reported_and_trials_ignored(fake_study: FakeStudy) -> None:
    report = build_report(fake_study.root)
    inc = report.incomplete
    failed = inc[inc["kind"] == "run failed"]
    assert failed[["model", "condition", "seed"]].values.tolist() == [["freedom", "image-only", 2]]
    assert "out of memory" in failed["detail"].iloc[0]
    missing = inc[inc["kind"] == "missing seed"]
    assert sorted(missing[["model", "condition", "seed"]].values.tolist()) == [
        ["freedom", "image-only", 2],
        ["vbpr", "text-only", 2],
    ]
    assert set(inc["kind"]) == {"run failed", "missing seed", "too few seeds"}
    assert sorted(report.ignored["role"]) == ["trial", "trial"]
    assert not report.runs["role"].eq("trial").any()


def test_missing_condition_and_missing_reference_are_reported(tmp_path: Path) -> None:
    study = build_study(tmp_path / "study", defects=False)
    shutil.rmtree(study.run_dirs[("vbpr", "image-only", 1)].parent.parent)
    shutil.rmtree(study.run_dirs[("freedom", "full", 1)].parent.parent)
    report = build_report(study.root)
    inc = report.incomplete
    assert sorted(inc.loc[inc["kind"] == "missing condition", ["model", "condition"]].values.tolist()) == [
        ["freedom", "full"],
        ["vbpr", "image-only"],
    ]
    no_ref = inc.loc[inc["kind"] == "no reference", ["model", "condition"]].values.tolist()
    assert sorted(no_ref) == [["freedom", "image-only"], ["freedom", "text-only"]]
    assert np.isnan(_cell(report, "freedom", "text-only")["delta_pct"])


def test_complete_study_has_nothing_incomplete(tmp_path: Path) -> None:
    report = build_report(build_study(tmp_path / "study", defects=False).root)
    assert report.incomplete.empty
    assert (report.cells["n_seeds"] == len(SEEDS)).all()


def test_answers_state_the_declared_questions_with_numbers(tmp_path: Path) -> None:
    report = build_report(build_study(tmp_path / "study", defects=False).root)
    text = "\n".join(report.answers["synth"])
    assert report.questions["synth"] == (Question("text-only", "equivalent"), Question("image-only", "worse"))
    assert "knockout_study.yaml" in report.questions_source
    assert "**image alone on synth** (declared: worse by more than 2%): worse by more than 2% for 2 of 2" in text
    vbpr_img = _cell(report, "vbpr", "image-only")
    assert f"Δ% = {vbpr_img['delta_pct']:+.1f}% [{vbpr_img['ci_low']:+.1f}, {vbpr_img['ci_high']:+.1f}]" in text
    assert "Holm p < 0.001 for 'worse' over 2 cells" in text
    assert "2 paired seeds × 60 users" in text
    # a tiny margin makes equivalence impossible to show
    tight = build_report(build_study(tmp_path / "tight", defects=False).root, delta=0.0001)
    assert "equivalent within ±0.01% for 0 of 2 models" in "\n".join(tight.answers["synth"])


def _tiktok(root: Path, questions: dict | None = None, seeds: tuple[int, ...] = (1, 2, 3)) -> FakeStudy:
    study = FakeStudy(root)
    for label, ko in {
        "full": {"image": "keep", "audio": "keep"},
        "image-only": {"image": "keep", "audio": "noise"},
    }.items():
        for seed in seeds:
            run_dir = study.add_run("vbpr", label, seed, knockout=ko, dataset="tiktok", modalities=("image", "audio"))
            if questions is not None:
                s = summary_io.read(run_dir)
                s["config"] = {"report": {"questions": questions}}
                summary_io.write(s, run_dir)
    return study


def test_questions_of_a_dataset_without_text_come_from_the_study_config(tmp_path: Path) -> None:
    report = build_report(_tiktok(tmp_path / "tiktok").root)
    assert report.questions["tiktok"] == (
        Question("image-only", "equivalent"),
        Question("audio-only", "worse"),
    )
    text = "\n".join(report.answers["tiktok"])
    assert "**image alone on tiktok** (declared: equivalent within ±2%)" in text
    assert "**audio alone on tiktok** (declared: worse by more than 2%): not measured" in text
    assert report.conditions() == ["full", "image-only"]


def test_questions_recorded_in_the_runs_win_and_must_agree(tmp_path: Path) -> None:
    recorded = {"default": {"worse": ["image-only"]}}
    report = build_report(_tiktok(tmp_path / "a", recorded).root)
    assert report.questions["tiktok"] == (Question("image-only", "worse"),)
    assert "recorded config" in report.questions_source
    study = _tiktok(tmp_path / "b", recorded)
    run_dir = study.run_dirs[("vbpr", "full", 1)]
    s = summary_io.read(run_dir)
    s["config"] = {"report": {"questions": {"default": {"equivalent": ["image-only"]}}}}
    summary_io.write(s, run_dir)
    with pytest.raises(ConfigError, match="disagree on report.questions"):
        build_report(study.root)
    with pytest.raises(ConfigError, match=r"report.questions.default.loses"):
        build_report(_tiktok(tmp_path / "c", {"default": {"loses": ["image-only"]}}).root)


def test_transfer_and_test_time_conditions_compare_with_full(fake_study: FakeStudy) -> None:
    ko = CONDITIONS["text-only"]
    for seed in SEEDS:
        # a test-time run records its source run in transfer_from (mmrec.run): not a transfer repeat
        source = str(fake_study.run_dirs[("vbpr", "full", seed)])
        fake_study.add_run("vbpr", "text-only", seed, knockout=ko, phase="test", transfer_from=source, suffix="_tt")
        fake_study.add_run("vbpr", "text-only", seed, knockout=ko, transfer_from="outputs/full", suffix="_tr")
    report = build_report(fake_study.root)
    assert report.conditions() == [*CONDITIONS, "text-only (test-time)", "text-only (transfer)"]
    for cond in ("text-only (test-time)", "text-only (transfer)"):
        assert _cell(report, "vbpr", cond)["reference"] == "full"
    inc = report.incomplete
    missing = inc.loc[inc["kind"] == "missing condition", "condition"].tolist()
    assert sorted(missing) == ["text-only (test-time)", "text-only (transfer)"]  # freedom lacks both


def test_not_applicable_test_time_knockout_is_listed_not_missing(fake_study: FakeStudy) -> None:
    ko = CONDITIONS["text-only"]
    for model in MODELS:
        run_dir = fake_study.add_run(model, "text-only", 1, knockout=ko, phase="test", suffix="_tt")
        if model == "freedom":  # what mmrec.run records for a model that uses no features at inference
            s = summary_io.read(run_dir)
            s["metrics"]["test"] = {}
            s["notes"] = {"test_time_knockout": "not applicable: the model uses no features at inference"}
            s["paths"]["per_user_metrics"] = None
            summary_io.write(s, run_dir)
            (run_dir / "per_user_test.csv").unlink()
    report = build_report(fake_study.root)
    inc = report.incomplete
    na = inc[inc["kind"] == "not applicable"]
    assert na[["model", "condition"]].values.tolist() == [["freedom", "text-only (test-time)"]]
    assert "text-only (test-time)" not in set(inc.loc[inc["kind"] == "missing condition", "condition"])
    assert knockout_table(report).loc[("synth", "freedom"), "text-only (test-time)"] == "n/a"
    assert (
        knockout_table(report)
        .loc[("synth", "vbpr"), "text-only (test-time)"]
        .startswith(f"{_cell(report, 'vbpr', 'text-only (test-time)')['mean']:.4f}")
    )


def test_missing_per_user_file_is_reported_and_falls_back(fake_study: FakeStudy) -> None:
    run_dir = fake_study.run_dirs[("vbpr", "image-only", 1)]
    (run_dir / "per_user_test.csv").unlink()
    report = build_report(fake_study.root)
    inc = report.incomplete
    assert inc.loc[inc["kind"] == "missing per-user metrics", "seed"].tolist() == [1]
    cell = _cell(report, "vbpr", "image-only")
    # one run without per-user values: the whole comparison uses the runs' means (same estimand throughout)
    assert cell["unit"] == "seeds" and cell["n_seeds_used"] == 2 and cell["n_users"] == 0
    means = {
        c: np.array([fake_study.test_values[("vbpr", c, s)]["recall@20"] for s in SEEDS])
        for c in ("full", "image-only")
    }
    assert cell["delta_pct"] == pytest.approx(100 * (means["image-only"].mean() / means["full"].mean() - 1))


def test_duplicate_run_keeps_the_newest(fake_study: FakeStudy) -> None:
    src = fake_study.run_dirs[("vbpr", "full", 1)]
    dup = fake_study.root / "again" / "seed=1"
    shutil.copytree(src, dup)
    s = summary_io.read(dup)
    s["created"] = "2027-01-01T00:00:00"
    s["metrics"]["test"]["recall@20"] = 0.5
    s["paths"]["per_user_metrics"] = None
    summary_io.write(s, dup)
    report = build_report(fake_study.root)
    assert _cell(report, "vbpr", "full")["seed_values"][1] == 0.5
    assert report.incomplete["kind"].tolist().count("duplicate run") == 1
    assert "inconsistent per-user metrics" in set(report.incomplete["kind"])  # copied file ≠ 0.5


def test_invalid_summary_is_listed_not_fatal(fake_study: FakeStudy) -> None:
    bad = fake_study.root / "broken" / "summary.json"
    bad.parent.mkdir()
    bad.write_text('{"schema_version": 1, "role": "repeat"}')
    report = build_report(fake_study.root)
    row = report.incomplete[report.incomplete["kind"] == "invalid summary"]
    assert row["path"].tolist() == [str(bad)]


def test_metric_names_and_settings() -> None:
    assert metric_name("ndcg", 10) == "ndcg@10"
    assert metric_name("Recall@20") == "recall@20"
    assert metric_name("recall") == "recall@20"
    with pytest.raises(ConfigError):
        metric_name("recall@20", 10)
    with pytest.raises(ConfigError):
        ReportSettings(delta=2.0)
    with pytest.raises(ConfigError):
        ReportSettings(alpha=0.6)
    assert ReportSettings(alpha=0.05).level == pytest.approx(0.90)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no repeat or single"):
        build_report(tmp_path)
    assert main([str(tmp_path)]) == 2


def test_cli_metric_and_k(fake_study: FakeStudy, capsys: pytest.CaptureFixture) -> None:
    assert main([str(fake_study.root), "--metric", "ndcg", "--k", "10", "--no-plots"]) == 0
    out = fake_study.root / "report"
    table = pd.read_csv(out / "cells_ndcg_at_10.csv")
    row = table[(table["model"] == "vbpr") & (table["condition"] == "full")].iloc[0]
    expected = np.mean([fake_study.test_values[("vbpr", "full", s)]["ndcg@10"] for s in SEEDS])
    assert row["mean"] == pytest.approx(expected) and row["metric"] == "ndcg@10"
    assert (out / "report_ndcg_at_10.html").exists()
    printed = capsys.readouterr().out
    assert "Knockout report: test ndcg@10" in printed
    assert "synth · image alone (declared worse): " in printed
    assert f"HTML report: {out / 'report_ndcg_at_10.html'}" in printed.replace("\n", "")


def test_singles_count_only_where_a_study_has_no_repeats(tmp_path: Path) -> None:
    study = build_study(tmp_path / "study", defects=False)
    extra = study.add_run("vbpr", "full", 9, role="single", study="synth-vbpr-text_keep-image_keep", suffix="_s")
    alone = study.add_run("vbpr", "full", 1, role="single", study="lonely", dataset="other", suffix="_o")
    report = build_report(study.root)
    assert report.ignored.loc[report.ignored["role"] == "single", "summary_path"].tolist() == [
        str(extra / "summary.json")
    ]
    assert _cell(report, "vbpr", "full")["seeds"] == list(SEEDS)
    assert str(alone / "summary.json") in set(report.runs["summary_path"])


def test_log_to_wandb_never_raises(fake_study: FakeStudy, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    report = build_report(fake_study.root)

    def broken_init(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(RuntimeWarning, match="no network"):
        assert log_to_wandb(report, "mmrec-test") is None


def test_log_to_wandb_disabled_mode_runs_quietly(fake_study: FakeStudy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    report = build_report(fake_study.root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        log_to_wandb(report, "mmrec-test", mode="disabled")


def test_without_per_user_files_the_tests_are_t_tests_over_seeds(tmp_path: Path) -> None:
    study = FakeStudy(tmp_path / "study")
    for condition in ("full", "image-only"):
        for seed in (1, 2, 3):
            (study.add_run("vbpr", condition, seed) / "per_user_test.csv").unlink()
    report = build_report(study.root)
    cell = _cell(report, "vbpr", "image-only")
    f = np.array([study.test_values[("vbpr", "full", s)]["recall@20"] for s in (1, 2, 3)])
    c = np.array([study.test_values[("vbpr", "image-only", s)]["recall@20"] for s in (1, 2, 3)])
    assert cell["unit"] == "seeds" and cell["df"] == pytest.approx(2)
    assert cell["p_worse"] == pytest.approx(DescrStatsW(c - 0.98 * f).ttest_mean(0, alternative="smaller")[1])
    lo, hi = DescrStatsW(c - f).tconfint_mean(alpha=0.10)
    assert (cell["delta_abs_low"], cell["delta_abs_high"]) == pytest.approx((lo, hi))
    assert np.isnan(cell["p_wilcoxon_users"])
    assert report.incomplete["kind"].tolist().count("missing per-user metrics") == 6
    assert "3 paired seeds (no per-user files)" in "\n".join(report.answers["synth"])


def test_all_runs_failed_still_writes_a_report(tmp_path: Path) -> None:
    study = FakeStudy(tmp_path / "study")
    study.add_run("vbpr", "full", 1, status="failed")
    study.add_run("vbpr", "text-only", 1, status="failed")
    report = build_report(study.root)
    assert report.cells.empty
    assert sorted(report.incomplete["kind"]) == ["no completed run", "run failed", "run failed"]
    files = write_report(report)
    assert "RuntimeError: out of memory" in files["html"].read_text(encoding="utf-8")


def test_unknown_metric_is_a_config_error(fake_study: FakeStudy) -> None:
    with pytest.raises(ConfigError, match="recall@20"):
        build_report(fake_study.root, metric="hit@5")
