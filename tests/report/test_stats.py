"""mmrec.report.stats against independent references: statsmodels (ANOVA, t-tests, Holm), closed-form
Fieller roots, exact rational arithmetic, and simulation of the crossed model's true variance."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW, ttest_ind

from mmrec.report import stats


def test_holm_equals_statsmodels_and_a_hand_example() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone max → 0.06
    np.testing.assert_allclose(stats.holm([0.01, np.nan, 0.04, 0.03, 0.005]), [0.03, np.nan, 0.06, 0.06, 0.02])
    p = np.random.default_rng(1).random(17) ** 3
    np.testing.assert_allclose(stats.holm(p), multipletests(p, method="holm")[1], rtol=1e-12)
    assert np.isnan(stats.holm([np.nan, np.nan])).all()


def _anova_variance(x: np.ndarray) -> float:
    """Var(μ̂) of a two-way table from statsmodels' ANOVA mean squares (seed + user main effects)."""
    n_s, n_u = x.shape
    frame = pd.DataFrame({"y": x.ravel(), "seed": np.repeat(np.arange(n_s), n_u), "user": np.tile(np.arange(n_u), n_s)})
    table = anova_lm(ols("y ~ C(seed) + C(user)", frame).fit())
    ms = table["mean_sq"]
    ms_seed, ms_user, ms_res = ms["C(seed)"], ms["C(user)"], ms["Residual"]
    return (ms_seed + max(0.0, ms_user - ms_res)) / (n_s * n_u)


def test_paired_variance_equals_the_anova_of_statsmodels() -> None:
    rng = np.random.default_rng(0)
    n_s, n_u = 4, 30
    full = rng.random((n_s, n_u)) + rng.normal(0, 0.1, (n_s, 1))
    cond = 0.9 * full + rng.normal(0, 0.05, (n_s, n_u)) + rng.normal(0, 0.05, (1, n_u))
    for rho in (1.0, 0.98, 1.05):
        e = stats.crossed_estimate(cond, full, rho, paired=True)
        x = cond - rho * full
        assert e.estimate == pytest.approx(x.mean(), rel=1e-12)
        assert e.seed_var + e.user_var == pytest.approx(_anova_variance(x), rel=1e-9)


def test_without_users_the_tests_are_the_t_tests_of_statsmodels() -> None:
    rng = np.random.default_rng(2)
    full = 0.2 + rng.normal(0, 0.004, (5, 1))
    cond = full * 0.97 + rng.normal(0, 0.003, (5, 1))
    delta = 0.02
    res = stats.margin_tests(stats.Crossed(cond, full, paired=True), delta)
    lower = DescrStatsW((cond - (1 - delta) * full).ravel())
    upper = DescrStatsW((cond - (1 + delta) * full).ravel())
    assert res.p_worse == pytest.approx(lower.ttest_mean(0, alternative="smaller")[1], rel=1e-9)
    assert res.p_better == pytest.approx(upper.ttest_mean(0, alternative="larger")[1], rel=1e-9)
    p_tost = max(lower.ttest_mean(0, alternative="larger")[1], upper.ttest_mean(0, alternative="smaller")[1])
    assert res.p_equivalent == pytest.approx(p_tost, rel=1e-9)
    assert res.df == pytest.approx(4)
    # unpaired: Welch's test of statsmodels
    full6 = 0.2 + rng.normal(0, 0.004, (6, 1))
    un = stats.margin_tests(stats.Crossed(cond, full6, paired=False), delta)
    welch = ttest_ind(cond.ravel(), (1 - delta) * full6.ravel(), alternative="smaller", usevar="unequal")
    assert un.p_worse == pytest.approx(welch[1], rel=1e-9)


def test_at_most_one_claim_below_one_half() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        full = rng.random((3, 20)) + 0.1
        cond = full * rng.uniform(0.9, 1.1) + rng.normal(0, 0.05, (3, 20))
        m = stats.margin_tests(stats.Crossed(cond, full, True), 0.02)
        assert sum(p < 0.5 for p in (m.p_worse, m.p_better, m.p_equivalent)) <= 1


def test_ratio_interval_equals_the_closed_form_fieller_roots() -> None:
    """Seeds only (df = S − 1 for every ρ): the interval solves a quadratic in ρ, computed here directly."""
    rng = np.random.default_rng(7)
    full = (0.3 + rng.normal(0, 0.01, 6))[:, None]
    cond = full * 0.95 + rng.normal(0, 0.006, (6, 1))
    c, f = cond.ravel(), full.ravel()
    n = len(c)
    q = st.t.ppf(0.95, n - 1)
    cov = np.cov(np.stack([c, f]), ddof=1) / n
    a = f.mean() ** 2 - q * q * cov[1, 1]
    b = -2 * (c.mean() * f.mean() - q * q * cov[0, 1])
    k = c.mean() ** 2 - q * q * cov[0, 0]
    roots = sorted(np.roots([a, b, k]).real)
    lo, hi = stats.ratio_interval(stats.Crossed(cond, full, True), 0.90)
    assert (lo, hi) == pytest.approx(tuple(roots), rel=1e-8)
    # the decision and the interval agree: equivalent ⇔ the 90 % interval lies inside (1 − δ, 1 + δ)
    for delta in (0.01, 0.05, 0.08, 0.12):
        m = stats.margin_tests(stats.Crossed(cond, full, True), delta)
        assert (m.p_equivalent < 0.05) == (1 - delta < lo and hi < 1 + delta)
        assert (m.p_worse < 0.05) == (hi < 1 - delta)


def test_variance_estimate_is_unbiased_for_the_true_crossed_variance() -> None:
    """Simulated from x = a_s + b_u + e: the mean of the estimated Var(μ̂) ≈ σa²/S + σb²/U + σe²/(SU), and the
    seed-only variance misses the users' share."""
    rng = np.random.default_rng(11)
    n_s, n_u, sa, sb, se = 4, 40, 0.02, 0.05, 0.1
    true_var = sa**2 / n_s + sb**2 / n_u + se**2 / (n_s * n_u)
    est, seed_only = [], []
    zeros = np.zeros((n_s, n_u))
    for _ in range(3000):
        b = rng.normal(0, sb, n_u)  # the users of this test split
        x = rng.normal(0, sa, (n_s, 1)) + b[None, :] + rng.normal(0, se, (n_s, n_u))
        e = stats.crossed_estimate(x, zeros, 1.0, paired=True)
        est.append(e.seed_var + e.user_var)
        seed_only.append(e.seed_var)
    assert np.mean(est) == pytest.approx(true_var, rel=0.06)  # MC error of the mean ≈ 2 %
    assert np.mean(seed_only) < 0.8 * true_var


def test_rank_test_rounds_float_noise_back_to_exact_ties() -> None:
    """Grid values averaged over seeds: float differences split ties that exact arithmetic keeps."""
    rng = np.random.default_rng(5)
    n_rel = rng.integers(1, 8, 300)
    hits_f = rng.binomial(n_rel[:, None], 0.3, (300, 3))
    hits_c = np.clip(hits_f + rng.choice([-1, 0, 0, 0, 1], (300, 3)), 0, n_rel[:, None])
    f_float = (hits_f / n_rel[:, None]).mean(axis=1)
    c_float = (hits_c / n_rel[:, None]).mean(axis=1)
    exact = np.array(
        [
            float(sum(Fraction(int(hc), int(r)) for hc in hcs) / 3 - sum(Fraction(int(hf), int(r)) for hf in hfs) / 3)
            for hcs, hfs, r in zip(hits_c, hits_f, n_rel)
        ]
    )
    float_diff = c_float - f_float
    assert len(np.unique(np.abs(float_diff))) > len(np.unique(np.abs(exact)))  # float noise splits ties
    ref = st.wilcoxon(exact, zero_method="pratt")
    assert stats.wilcoxon_users(float_diff) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
    assert stats.rank_biserial(stats.round_to_resolution(float_diff)) == stats.rank_biserial(exact)
    # by hand: |d| = 1, 2, 0, 3 → ranks 2, 3, 1, 4 (the zero ranked, then dropped: Pratt); R+ = 6, R− = 3
    assert stats.rank_biserial([1.0, -2.0, 0.0, 3.0]) == pytest.approx(1 / 3)
    assert stats.wilcoxon_users(np.zeros(5) + 1e-17) == (0.0, 1.0)  # seed-averaged true zeros stay zeros


def test_seeds_needed_gives_the_asked_power_by_simulation() -> None:
    """At the returned n, simulated TOST (true Δ = 0, normal seeds) has ≥ the asked power; at n − 1 less."""
    sd, margin = 0.01, 0.012
    n = int(stats.seeds_needed(sd**2, 0.0, margin, alpha=0.05, power=0.8))
    rng = np.random.default_rng(9)

    def power(k: int) -> float:
        d = rng.normal(0, sd, (4000, k))
        m, s = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(k)
        q = st.t.ppf(0.95, k - 1)
        return float(np.mean((m - q * s > -margin) & (m + q * s < margin)))

    assert power(n) >= 0.8 - 0.02
    assert power(n - 1) < 0.8 + 0.02
    assert math.isinf(stats.seeds_needed(1e-6, margin**2, margin, 0.05))  # the users alone are too wide
