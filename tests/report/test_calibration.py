"""A small version of benchmarks/report_calibration.py: false claims of the decision rule on simulated
studies stay within α plus the simulation's own Monte-Carlo error."""

from __future__ import annotations

import math

import numpy as np

from mmrec.report import Question, ReportSettings
from mmrec.report.model import Comparison
from mmrec.report.simulate import StudyModel, simulate_tables
from mmrec.report.statistics import compare_tables, outcome_of

N_SIMS = 300
ALPHA = 0.05
# a true rate of α observed over N_SIMS draws exceeds α + 3 standard errors with probability ≈ 0.1 %
BOUND = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / N_SIMS)


def _outcomes(effect: float, n_seeds: int, seed: int, n_users: int = 200, n_sims: int = N_SIMS) -> list[str]:
    settings = ReportSettings(alpha=ALPHA, questions={"default": (Question("text-only", "equivalent"),)})
    model = StudyModel(n_users=n_users)
    rng = np.random.default_rng(seed)
    seeds = tuple(range(n_seeds))
    out = []
    for _ in range(n_sims):
        cond, full = simulate_tables(model, effect, n_seeds, rng)
        row = compare_tables(Comparison(cond, full, True, seeds, seeds, "seeds × users"), settings, descriptive=False)
        p = row.get("p_claim", math.nan)
        out.append(outcome_of(row.get("claim", ""), p, p, row["n_seeds_used"], row["seeds_needed"], ALPHA)[0])
    return out


def test_false_claims_stay_within_alpha_and_its_monte_carlo_error() -> None:
    no_effect = _outcomes(0.0, 5, seed=1)
    assert np.mean([o in ("worse", "better") for o in no_effect]) <= BOUND
    # on the margin (true Δ = −δ): neither "worse by more than δ" nor "equivalent" is true
    at_margin = _outcomes(-0.02, 3, seed=2)
    assert np.mean([o == "worse" for o in at_margin]) <= BOUND
    assert np.mean([o == "equivalent" for o in at_margin]) <= BOUND
    # the rule is not blind: a true −3δ effect on 1000 users is found most of the time with 5 seeds
    assert np.mean([o == "worse" for o in _outcomes(-0.06, 5, seed=3, n_users=1000, n_sims=100)]) > 0.6
