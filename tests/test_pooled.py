"""The pooled test's statistics: the signed mean for a claim with a direction (its
one-sided p-values), and the statistics that do not cancel (mean absolute, mean
squared standardised gap, Fisher's combination)."""

from __future__ import annotations

import numpy as np
import pytest

import synthcontrol as sc
from synthcontrol.inference.placebo import PlaceboResult
from synthcontrol.inference.pooled import POOLED_STATISTICS
from synthcontrol.inference.runner import RunLog

N_PRE, N_POST = 8, 3


def placebo_of(gaps: np.ndarray, name: str) -> PlaceboResult:
    """A placebo test made of given gap paths (column 0: the treated unit), no fitting."""
    n_periods, n_units = gaps.shape
    post = np.arange(n_periods) >= N_PRE
    return PlaceboResult(
        units=(name, *(f"{name}-donor{j}" for j in range(1, n_units))), periods=tuple(range(n_periods)),
        gap_matrix=gaps, pre_mask=~post, post_mask=post, weights=(), predictor_weights=np.zeros((n_units, 1)),
        loss_v=np.zeros(n_units), cutoffs=(), time="period", outcome="y", treatment_start=N_PRE,
        reused_predictor_weights=False, run=RunLog(0, 0, 0, 0.0), round_off=1e-12,
    )


def noise(rng: np.random.Generator, n_units: int) -> np.ndarray:
    """Gap paths with unit-specific scales, the same law before and after treatment."""
    return rng.normal(size=(N_PRE + N_POST, n_units)) * rng.uniform(0.5, 2.0, size=n_units)


def with_effect(gaps: np.ndarray, effect: float) -> np.ndarray:
    shifted = gaps.copy()
    shifted[N_PRE:, 0] += effect * np.sqrt(np.mean(gaps[:N_PRE, 0] ** 2))  # in pre-RMSPE units
    return shifted


@pytest.fixture(scope="module")
def opposite():
    """Two treated units with large effects of opposite signs, nine placebos each."""
    rng = np.random.default_rng(7)
    return [placebo_of(with_effect(noise(rng, 10), +6.0), "up"),
            placebo_of(with_effect(noise(rng, 10), -6.0), "down")]


def test_opposite_effects_cancel_in_the_mean_but_not_in_the_other_statistics(opposite):
    mean = sc.pooled_test(opposite, statistic="mean")
    assert mean.method == "exact" and mean.n_draws == 81
    assert abs(mean.overall) < 1.0 and mean.p_value > 0.3  # +6 and -6 average to about 0
    for statistic in ("mean_abs", "mean_squared", "fisher"):
        pooled = sc.pooled_test(opposite, statistic=statistic)
        assert pooled.statistic == statistic and not pooled.signed
        assert pooled.p_value == pytest.approx(1 / 82), statistic  # no placebo pair comes close
        assert np.isnan(pooled.p_positive) and np.isnan(pooled.p_negative)


def test_the_one_sided_tests_of_the_mean(opposite):
    rng = np.random.default_rng(11)
    raised = [placebo_of(with_effect(noise(rng, 10), +6.0), name) for name in ("a", "b")]
    pooled = sc.pooled_test(raised, statistic="mean")
    assert pooled.p_positive == pytest.approx(1 / 82)   # the claim "raised" is supported
    assert pooled.p_negative == pytest.approx(1.0)      # no placebo pair is higher
    assert pooled.p_value == pytest.approx(1 / 82)
    table = pooled.table
    assert list(table.index)[-1] == "overall" and len(table) == N_POST + 1
    lowered = sc.pooled_test([placebo_of(-p.gap_matrix, p.treated) for p in raised], statistic="mean")
    assert lowered.p_negative == pytest.approx(pooled.p_positive)
    assert lowered.p_positive == pytest.approx(pooled.p_negative)


def test_each_statistic_is_what_it_says(opposite):
    ratio = np.array([p.table["ratio"].iloc[0] for p in opposite])
    standardised = np.column_stack([p.gap_matrix[p.post_mask, 0] / p.table["pre_rmspe"].iloc[0] for p in opposite])
    mean_abs = sc.pooled_test(opposite, statistic="mean_abs")
    np.testing.assert_allclose(mean_abs.observed, np.abs(standardised).mean(axis=1))
    assert mean_abs.overall == pytest.approx(np.abs(standardised).mean())
    squared = sc.pooled_test(opposite, statistic="mean_squared")
    assert squared.overall == pytest.approx(np.mean(ratio**2))  # the squared post/pre RMSPE ratios
    fisher = sc.pooled_test(opposite, statistic="fisher")
    assert fisher.overall == pytest.approx(-2 * np.sum(np.log([p.p_value for p in opposite])))
    # The exact null holds every combination: its mean is the sum of the placebo means.
    placebo_terms = [-2 * np.log(p.table["rank"].iloc[1:] / len(p.units)) for p in opposite]
    assert fisher.null_overall.mean() == pytest.approx(sum(t.mean() for t in placebo_terms))


@pytest.mark.parametrize("statistic", POOLED_STATISTICS)
def test_every_statistic_keeps_its_level_under_no_effect(statistic):
    """Treated units exchangeable with their placebos: p <= 0.1 in about 10 % of draws."""
    rng = np.random.default_rng(2024)
    p_values = [
        sc.pooled_test([placebo_of(noise(rng, 12), name) for name in ("a", "b", "c")], statistic=statistic,
                       max_combinations=0, n_draws=400, seed=1).p_value
        for _ in range(300)
    ]
    rate = np.mean(np.array(p_values) <= 0.1)
    assert 0.05 <= rate <= 0.15, rate  # binomial(300, 0.1): sd 0.017


def test_statistics_agree_on_fitted_units():
    """The statistics run on real fits, with shared placebos, and agree on the ranking
    of a unit with a known large effect (California's Proposition 99)."""
    smoking = sc.datasets.load_smoking()
    pool = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas", "Nebraska"]
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
                   predictors=[sc.at("cigsale", y) for y in (1975, 1980, 1988)], donors=pool)
    fits = sc.fit(smoking, spec)
    tests = sc.placebo_tests(fits)
    values = {s: sc.pooled_test(list(tests.values()), statistic=s) for s in POOLED_STATISTICS}
    assert {r.n_draws for r in values.values()} == {64}
    assert all(0 < r.p_value <= 1 for r in values.values())
    assert values["mean"].p_value == pytest.approx(sc.pooled_test(fits).p_value)


def test_a_bad_statistic_is_named(opposite):
    with pytest.raises(sc.ArgumentError, match="'mean_abs'"):
        sc.pooled_test(opposite, statistic="median")

