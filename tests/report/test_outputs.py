"""Files of a written report: tables (CSV/Markdown/LaTeX), PNG plots, the self-contained HTML page."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from mmrec.report import Report

from .fake_study import CONDITIONS, MODELS, FakeStudy

# pixel sizes documented in mmrec.report.plots, for 2 models × 3 conditions (2 compared with full)
EXPECTED_PX = {
    "heatmap": (max(600, 200 + 110 * 2), max(300, 140 + 60 * 2)),
    "bars": (max(500, 160 + 90 * 3), 400),
    "valcurve": (640, 420),
}


def test_pngs_decode_with_the_documented_size_and_are_not_blank(
    written_report: tuple[FakeStudy, Report],
) -> None:
    _, report = written_report
    pngs = {k.removeprefix("png:"): p for k, p in report.files.items() if k.startswith("png:")}
    assert sorted(pngs) == sorted(
        ["heatmap_synth"] + [f"{kind}_synth_{m}" for m in MODELS for kind in ("bars", "valcurve")]
    )
    for stem, path in pngs.items():
        pixels = mpimg.imread(path)
        width, height = EXPECTED_PX[stem.split("_")[0]]
        assert pixels.shape[:2] == (height, width), stem
        assert pixels[..., :3].var() > 1e-4, f"{stem} is blank"
        assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20, f"{stem} has almost no content"


def test_html_is_self_contained_with_table_and_images(written_report: tuple[FakeStudy, Report]) -> None:
    _, report = written_report
    page = report.files["html"].read_text(encoding="utf-8")
    assert "<table class='knockout'>" in page
    for _, cell in report.cells.iterrows():
        assert f"{cell['mean']:.4f}" in page
    assert "Incomplete" in page and "out of memory" in page
    uris = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    pngs = [p for k, p in report.files.items() if k.startswith("png:")]
    assert len(uris) == len(pngs)
    assert base64.b64decode(uris[0]) == pngs[0].read_bytes()
    assert "src='http" not in page and 'src="http' not in page and "<link" not in page


def test_tables_in_csv_markdown_and_latex(written_report: tuple[FakeStudy, Report]) -> None:
    study, report = written_report
    files = report.files
    wide = pd.read_csv(files["table_csv"], index_col=[0, 1])
    assert list(wide.columns) == list(CONDITIONS)
    vbpr_full = np.mean([study.test_values[("vbpr", "full", s)]["recall@20"] for s in (1, 2)])
    assert wide.loc[("synth", "vbpr"), "full"].startswith(f"{vbpr_full:.4f} ± ")
    cells = pd.read_csv(files["cells_csv"])
    assert cells.loc[(cells["model"] == "vbpr") & (cells["condition"] == "full"), "mean"].item() == pytest.approx(
        vbpr_full
    )
    md = files["table_md"].read_text()
    assert "| dataset | model | full | text-only | image-only |" in md
    img = report.cells[(report.cells["model"] == "vbpr") & (report.cells["condition"] == "image-only")].iloc[0]
    cell_text = (
        f"{img['delta_pct']:+.1f}% [{img['ci_low']:+.1f}, {img['ci_high']:+.1f}]↓<br>Δ {img['delta_abs']:+.4f} ["
    )
    assert cell_text in md
    tex = files["table_tex"].read_text()
    assert r"\begin{tabular}{llccc}" in tex and r"$\pm$" in tex and r"\%" in tex
    assert "±" not in tex.replace(r"$\pm$", "")
    stats = pd.read_csv(files["statistics_csv"])
    assert {"test", "unit", "family", "p", "p_holm", "family_size", "outcome"} <= set(stats.columns)
    assert set(stats["test"]) == {"worse", "better", "equivalent", "wilcoxon_users"}
    incomplete = pd.read_csv(files["incomplete_csv"])
    assert set(incomplete["kind"]) == {"run failed", "missing seed", "too few seeds"}
    assert "**image alone on synth** (declared: worse by more than 2%)" in files["answers_md"].read_text()
    delta = pd.read_csv(files["delta_csv"])
    vbpr_img = delta[(delta["model"] == "vbpr") & (delta["condition"] == "image-only")].iloc[0]
    assert vbpr_img["outcome"] == "worse" and vbpr_img["delta_pct"].startswith("-")
    assert "↓" in tex.replace(r"$\downarrow$", "↓") and "↓" not in tex


def test_markdown_and_latex_escape() -> None:
    from mmrec.report.tables import latex_escape, to_markdown

    assert latex_escape("a_b 5% & x<y") == r"a\_b 5\% \& x$<$y"
    frame = pd.DataFrame({"a": ["x|y"], "b": [0.123456]})
    assert to_markdown(frame).splitlines()[2] == r"| x\|y | 0.1235 |"


def test_print_summary_shows_table_answers_and_incomplete(written_report: tuple[FakeStudy, Report]) -> None:
    import io

    from rich.console import Console

    from mmrec.report import print_summary

    _, report = written_report
    buf = io.StringIO()
    print_summary(report, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    cell = report.cells[(report.cells["model"] == "vbpr") & (report.cells["condition"] == "image-only")].iloc[0]
    assert f"{cell['delta_pct']:+.1f}% [{cell['ci_low']:+.1f}, {cell['ci_high']:+.1f}]" in out
    assert (
        "synth · image alone (declared worse): freedom inconclusive (too few seeds to test): n/a; "
        f"vbpr worse by more than 2%: {cell['delta_pct']:+.1f}%" in out
    )
    assert "run failed" in out and "missing seed" in out
    assert str(report.files["html"]) in out
