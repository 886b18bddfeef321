"""Numerical statistics of the report (pure functions on arrays; no pandas, no report objects).

The unit of replication is the **training run** (one seed). A comparison holds two tables of per-user test
values, ``cond`` and ``full``, shaped ``[seeds, users]`` over the same users (the split seed is shared, so
the test users are the same); without per-user files each table has one column (the run's mean).

**Model** (crossed random effects, method of moments). For a ratio ρ the difference table is
``x = cond − ρ · full``. Paired by seed (seed *s* of cond against seed *s* of full, same seeds):

    x[s, u] = μ + a_s + b_u + e_su      (a: seed effect, b: user effect, e: seed × user residual)

with the balanced two-way ANOVA mean squares MS_seed, MS_user, MS_res of ``x``,
μ̂ = mean(x) and

    Var(μ̂) = σ²_a / S + σ²_b / U + σ²_e / (S·U)  estimated by  (MS_seed + max(0, MS_user − MS_res)) / (S·U),

i.e. the paired t-test over seeds (MS_seed / (S·U) = var(seed means) / S) plus the users' share, which the
seed-level test alone would miss when generalising to new users. Unpaired (cond and full with different
seeds): Welch's variance of the two seed-mean samples plus the same user term from the per-user means.
Degrees of freedom: Welch–Satterthwaite over the terms (seed terms S − 1, user term U − 1), so with few
seeds the t quantile has about S − 1 degrees of freedom. Without per-user files the user term is 0 (a plain
t-test over seeds).

**Tests at the margin δ** (relative to full, inside the test): t(ρ) = μ̂(ρ) / √Var(μ̂(ρ)),

- worse by more than δ: H₀ μ_c ≥ (1 − δ) μ_f, p = F_t(t(1 − δ));
- better by more than δ: H₀ μ_c ≤ (1 + δ) μ_f, p = 1 − F_t(t(1 + δ));
- equivalent (TOST): H₀ μ_c ≤ (1 − δ) μ_f or μ_c ≥ (1 + δ) μ_f, p = max(1 − F_t(t(1 − δ)), F_t(t(1 + δ))).

At most one of the three p-values is below 0.5 (their alternatives are disjoint and each is below 0.5
only when the estimate lies in its alternative), so a cell makes at most one claim.

**Interval of Δ%** (Fieller by test inversion): the ρ with |t(ρ)| ≤ t-quantile, i.e. exactly the margins the
tests above would not reject; Δ% bounds = 100 · (ρ − 1). The decision interval has level 1 − 2α (90 % at
α = 0.05): "equivalent" ⇔ it lies inside ±δ, "worse" ⇔ it lies below −δ, before any multiplicity
adjustment. Unbounded when full's mean is not clearly above zero.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

# Metric values are ratios of small integers (hits / |R|, DCG sums); two distinct true per-user differences
# lie ≥ 1 / |R|² apart, floating-point noise of sums and seed means is ~1e-16. Differences are rounded to
# this many decimals before any rank test so that true ties and true zeros stay ties and zeros.
RESOLUTION_DECIMALS = 10


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN entries stay NaN.

    With m non-NaN p-values sorted ascending p₍₁₎ ≤ … ≤ p₍ₘ₎: p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) · p₍ⱼ₎).
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * vals[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    out[ok] = adjusted
    return out


def delta_pct(full_mean: float, cond_mean: float) -> float:
    """100 · (cond − full) / full; NaN when full is 0 or missing."""
    if full_mean is None or cond_mean is None or not np.isfinite(full_mean) or full_mean == 0:
        return math.nan
    return 100.0 * (cond_mean - full_mean) / full_mean


def round_to_resolution(values: ArrayLike) -> np.ndarray:
    """Values rounded to :data:`RESOLUTION_DECIMALS` decimals (``-0.0`` becomes ``0.0``)."""
    return np.round(np.asarray(values, dtype=float), RESOLUTION_DECIMALS) + 0.0


# ---------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Estimate:
    """μ̂ of ``cond − ρ · full`` with its variance split into seed and user terms, and Satterthwaite df."""

    estimate: float
    seed_var: float  # the seed term(s) of Var(μ̂)
    user_var: float  # the user term of Var(μ̂) (0 without per-user files)
    df: float
    seed_var_one: float  # the seed term for one seed (per condition pair): seed_var · S

    @property
    def se(self) -> float:
        return math.sqrt(self.seed_var + self.user_var)

    @property
    def t(self) -> float:
        if self.se > 0:
            return self.estimate / self.se
        return 0.0 if self.estimate == 0 else math.copysign(math.inf, self.estimate)


def _centered(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row effects, column effects and residuals of a two-way table ``x[seeds, users]``."""
    grand = x.mean()
    rows, cols = x.mean(axis=1) - grand, x.mean(axis=0) - grand
    return rows, cols, x - rows[:, None] - cols[None, :] - grand


def _quadratic(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Σa², Σab, Σb²: the sum of squares of ``a − ρ·b`` is q0 − 2ρ·q1 + ρ²·q2."""
    return float((a * a).sum()), float((a * b).sum()), float((b * b).sum())


def _at(q: tuple[float, float, float], rho: float) -> float:
    return max(0.0, q[0] - 2.0 * rho * q[1] + rho * rho * q[2])


def _satterthwaite(terms: list[tuple[float, float]]) -> float:
    """Welch–Satterthwaite df of a sum of variance terms ``(value, df)``."""
    total = sum(v for v, _ in terms)
    denom = sum(v * v / d for v, d in terms if v > 0 and d > 0)
    return total * total / denom if denom > 0 else min(d for _, d in terms)


class Crossed:
    """The tables of one comparison, with the sums of squares of ``cond − ρ·full`` precomputed (they are
    quadratic in ρ), so that :meth:`estimate` costs O(1) for any ρ."""

    def __init__(self, cond: ArrayLike, full: ArrayLike, paired: bool) -> None:
        c, f = np.asarray(cond, dtype=float), np.asarray(full, dtype=float)
        if c.ndim != 2 or f.ndim != 2 or c.shape[1] != f.shape[1]:
            raise ValueError(f"cond and full must be [seeds, users] over the same users: {c.shape}, {f.shape}")
        if paired and c.shape != f.shape:
            raise ValueError(f"paired tables must have the same shape: {c.shape}, {f.shape}")
        self.paired = paired
        self.n_cond, self.n_full, self.n_users = c.shape[0], f.shape[0], c.shape[1]
        self.mean_cond, self.mean_full = float(c.mean()), float(f.mean())
        if self.n_cond < 2 or self.n_full < 2:
            self.ok = False
            return
        self.ok = True
        rc, cc, ec = _centered(c)
        rf, cf, ef = _centered(f)
        if paired:
            self.rows = _quadratic(rc, rf)
            self.cols = _quadratic(cc, cf)
            self.res = _quadratic(ec, ef)
        else:
            self.rows_c, self.rows_f = float((rc**2).sum()), float((rf**2).sum())
            self.cols = _quadratic(cc, cf)
            self.res_c, self.res_f = float((ec**2).sum()), float((ef**2).sum())

    def estimate(self, rho: float) -> Estimate:
        """μ̂ and Var(μ̂) of ``cond − ρ·full`` (module doc)."""
        if not self.ok:
            return Estimate(math.nan, math.nan, math.nan, math.nan, math.nan)
        n_u = self.n_users
        est = self.mean_cond - rho * self.mean_full
        if self.paired:
            n_s = self.n_cond
            ms_seed = n_u * _at(self.rows, rho) / (n_s - 1)
            seed_var = ms_seed / (n_s * n_u)
            user_var = 0.0
            if n_u > 1:
                ms_user = n_s * _at(self.cols, rho) / (n_u - 1)
                ms_res = _at(self.res, rho) / ((n_s - 1) * (n_u - 1))
                user_var = max(0.0, ms_user - ms_res) / (n_s * n_u)
            df = _satterthwaite([(seed_var, n_s - 1), (user_var, n_u - 1)])
            return Estimate(est, seed_var, user_var, df, seed_var * n_s)
        s_c, s_f = self.n_cond, self.n_full
        var_c = self.rows_c / (s_c - 1) / s_c
        var_f = rho * rho * self.rows_f / (s_f - 1) / s_f
        user_var = 0.0
        if n_u > 1:
            per_user_var = _at(self.cols, rho) / (n_u - 1)
            res_c = self.res_c / ((s_c - 1) * (n_u - 1))
            res_f = rho * rho * self.res_f / ((s_f - 1) * (n_u - 1))
            user_var = max(0.0, per_user_var - res_c / s_c - res_f / s_f) / n_u
        df = _satterthwaite([(var_c, s_c - 1), (var_f, s_f - 1), (user_var, n_u - 1)])
        return Estimate(est, var_c + var_f, user_var, df, var_c * s_c + var_f * s_f)


def crossed_estimate(cond: ArrayLike, full: ArrayLike, rho: float, paired: bool) -> Estimate:
    """μ̂ and Var(μ̂) of ``cond − ρ·full`` (tables ``[seeds, users]``, same users; see the module doc)."""
    return Crossed(cond, full, paired).estimate(rho)


@dataclass(frozen=True)
class MarginTests:
    """The three one-sided decisions of one comparison at margin δ (see the module doc)."""

    p_worse: float
    p_better: float
    p_equivalent: float
    df: float


def _cdf(t: float, df: float) -> float:
    return float(special.stdtr(df, t)) if math.isfinite(df) else float(special.ndtr(t))


def margin_tests(tables: Crossed, delta: float) -> MarginTests:
    """p-values of "worse by more than δ", "better by more than δ" and "equivalent within ±δ"."""
    lo, hi = tables.estimate(1.0 - delta), tables.estimate(1.0 + delta)
    if not (math.isfinite(lo.estimate) and math.isfinite(hi.estimate)):
        return MarginTests(math.nan, math.nan, math.nan, math.nan)
    p_worse = _cdf(lo.t, lo.df)
    p_better = 1.0 - _cdf(hi.t, hi.df)
    p_equiv = max(1.0 - _cdf(lo.t, lo.df), _cdf(hi.t, hi.df))
    return MarginTests(p_worse, p_better, p_equiv, min(lo.df, hi.df))


def _quantile(level: float, df: float) -> float:
    return float(special.stdtrit(df, level)) if math.isfinite(df) else float(special.ndtri(level))


def ratio_interval(tables: Crossed, level: float) -> tuple[float, float]:
    """Two-sided ``level`` interval of ρ = μ_c / μ_f by inverting t(ρ) (Fieller); ±inf when unbounded."""
    tail = (1.0 + level) / 2.0

    def h(rho: float, sign: float) -> float:
        e = tables.estimate(rho)
        return e.t - sign * _quantile(tail, e.df)

    f_mean = tables.mean_full
    if not tables.ok:
        return math.nan, math.nan
    if not math.isfinite(f_mean) or f_mean <= 0:
        return -math.inf, math.inf
    center = tables.mean_cond / f_mean
    if not math.isfinite(h(center, 1.0)):
        return math.nan, math.nan
    bounds = []
    for sign, direction in ((1.0, -1.0), (-1.0, 1.0)):  # lower: t(ρ) = +q below the centre; upper: −q
        step, inner = 1e-4, center
        found = None
        while step < 1e3:
            outer = center + direction * step
            value = h(outer, sign)
            if (value > 0) if sign > 0 else (value < 0):  # h changed sign between inner and outer
                found = outer
                break
            inner, step = outer, step * 2
        if found is None:
            bounds.append(direction * math.inf)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bounds.append(float(optimize.brentq(h, min(inner, found), max(inner, found), args=(sign,), xtol=1e-12)))
    return bounds[0], bounds[1]


def difference_interval(tables: Crossed, level: float) -> tuple[float, float]:
    """Two-sided ``level`` t-interval of μ_c − μ_f (absolute, metric units)."""
    e = tables.estimate(1.0)
    if not math.isfinite(e.estimate):
        return math.nan, math.nan
    half = _quantile((1.0 + level) / 2.0, e.df) * e.se
    return e.estimate - half, e.estimate + half


def seeds_needed(
    seed_var_one: float,
    user_var: float,
    margin: float,
    alpha: float,
    power: float = 0.8,
    max_seeds: int = 1000,
) -> float:
    """Seeds (per condition) the rule needs to show equivalence within ±``margin`` with ``power``.

    Assumes a true difference of 0 and the observed spread: Var(μ̂) with n seeds = ``seed_var_one`` / n +
    ``user_var``; TOST then has about that power when margin / SE ≥ t(1 − α, n − 1) + t(1 − (1 − power)/2,
    n − 1). Returns ``inf`` when no number of seeds up to ``max_seeds`` is enough (the users' term alone is
    too wide), NaN when the spread is unknown.
    """
    if not all(math.isfinite(v) for v in (seed_var_one, user_var, margin)) or margin <= 0:
        return math.nan

    def enough(n: int) -> bool:  # monotone in n: the quantiles and the SE both shrink as n grows
        se = math.sqrt(seed_var_one / n + user_var)
        return margin >= (_quantile(1 - alpha, n - 1) + _quantile(1 - (1 - power) / 2, n - 1)) * se

    if not enough(max_seeds):
        return math.inf
    lo, hi = 1, max_seeds  # enough(hi) holds; find the smallest such n ≥ 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid
    return float(max(hi, 2))


# ---------------------------------------------------------------------------------------------- rank test
def rank_biserial(diff: ArrayLike) -> float:
    """Matched-pairs rank-biserial correlation, Pratt's zeros (ranked, then dropped); input pre-rounded."""
    d = np.asarray(diff, dtype=float)
    if d.size == 0:
        return math.nan
    ranks = stats.rankdata(np.abs(d))
    r_plus, r_minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    total = r_plus + r_minus
    return float((r_plus - r_minus) / total) if total > 0 else 0.0


def wilcoxon_users(diff: ArrayLike) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank (Pratt) on differences rounded to the metric's resolution.

    (0, 1) when every rounded difference is zero; NaN with fewer than 2 differences.
    """
    d = round_to_resolution(diff)
    if d.size < 2:
        return math.nan, math.nan
    if not d.any():
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(d, zero_method="pratt")
    return float(res.statistic), float(res.pvalue)
