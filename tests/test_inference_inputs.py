"""Bad and reordered input at the inference and specification-curve entry points.

Each test pins one defect an adversarial probe of ``placebo_tests``, ``pooled_test``,
``in_time_placebo``, ``conformal``, ``prediction_intervals``, ``standard_specs``,
``cross_validate_predictor_weights`` and the result objects found: a raw Python or
pandas error, a silently accepted bad value, or an answer that depended on the
order of the results or of the donors. Cases already in ``test_adversarial.py``
are not repeated.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol import errors

from conftest import make_panel


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="module")
def spec() -> sc.Spec:
    return sc.Spec(outcome="y", treated="T", treatment_start=2008, fit_window=(2000, 2007),
                   predictors=[sc.mean("x", 2000, 2007), sc.at("y", 2002), sc.at("y", 2007)])


def _fit(df, spec, **changes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sc.SynthControlWarning)
        return sc.fit(df, dataclasses.replace(spec, **changes), n_random_starts=3)


@pytest.fixture(scope="module")
def res(df, spec):
    return _fit(df, spec)


@pytest.fixture(scope="module")
def two(df, spec):
    return _fit(df, spec, treated=["T", "A"])


@pytest.fixture(scope="module")
def curve(df, spec):
    return sc.specification_curve(df, [spec], placebo=False)


# -- placebo_tests: what `results` may be ------------------------------------------------------

@pytest.mark.parametrize("results, shown", [(None, "NoneType"), (3, "int"), ("T", "str")])
def test_placebo_tests_refuses_results_that_are_not_a_list(results, shown):
    with pytest.raises(errors.ArgumentError, match=f"(?s)results must be a list of SynthResult.*got {shown}"):
        sc.placebo_tests(results)


def test_placebo_tests_refuses_one_result_and_no_result(res):
    with pytest.raises(errors.ArgumentError, match="(?s)results must be a list.*got SynthResult"):
        sc.placebo_tests(res)
    with pytest.raises(errors.ArgumentError, match="results is empty"):
        sc.placebo_tests([])


# -- arguments of result methods ----------------------------------------------------------------

@pytest.mark.parametrize("alpha", ["a", None, 2, 0])
def test_spec_curve_summary_and_plot_check_alpha(curve, alpha):
    with pytest.raises(errors.ArgumentError, match=r"alpha=.* is not valid: expected a finite number in \(0, 1\)"):
        curve.summary(alpha=alpha)
    with pytest.raises(errors.ArgumentError, match="alpha="):
        curve.plot(alpha=alpha)


@pytest.mark.parametrize("cutoff", ["a", -1, 0])
def test_placebo_plot_gaps_checks_cutoff(res, cutoff):
    placebo = sc.placebo_test(res)
    with pytest.raises(errors.ArgumentError, match="cutoff=.* is not valid"):
        placebo.plot_gaps(cutoff=cutoff)


# -- standard_specs: fit windows ------------------------------------------------------------------

def test_standard_specs_refuses_a_window_into_the_post_period(df, spec):
    with pytest.raises(errors.SpecError, match=r"(?s)\(2000, 2010\).*post-period.*treatment_start=2008"):
        sc.standard_specs(df, spec, fit_windows=[(2000, 2010)])


@pytest.mark.parametrize("windows", [[None, None], [None, (2000, 2007)], [(2001, 2007), ("2001", "2007")]])
def test_standard_specs_refuses_a_window_given_twice(df, spec, windows):
    # Before: the second window's specs silently replaced the first's under the same labels.
    with pytest.raises(errors.ArgumentError, match="(?s)fit_windows lists the window.*more than once"):
        sc.standard_specs(df, spec, fit_windows=windows)


# -- in_time_placebo: a Series of fake starts ----------------------------------------------------

def test_in_time_placebo_takes_a_series_of_fake_starts(res):
    from_series = sc.in_time_placebo(res, fake_start=pd.Series([2005, 2004]))
    assert from_series.fake_starts == (2005, 2004)
    np.testing.assert_array_equal(from_series.gap_matrix, sc.in_time_placebo(res, fake_start=[2005, 2004]).gap_matrix)


# -- conformal: grid and n_grid ---------------------------------------------------------------------

@pytest.mark.parametrize("grid, named", [([True, False], "grid[0]=True"), (["1", "2"], "grid[0]='1'"),
                                          ([1.0, np.nan], "grid[1]=nan"), ("ab", "grid[0]='ab'")])
def test_conformal_grid_entries_must_be_numbers(res, grid, named):
    with pytest.raises(errors.ArgumentError, match=re.escape(named)):
        sc.conformal(res, grid=grid)


def test_conformal_checks_n_grid_even_with_a_grid(res):
    with pytest.raises(errors.ArgumentError, match="n_grid='x'"):
        sc.conformal(res, grid=[-1.0, 1.0], n_grid="x")


# -- prediction_intervals ------------------------------------------------------------------------

def test_prediction_intervals_refuses_levels_that_leave_no_coverage(res):
    with pytest.raises(errors.ArgumentError, match="(?s)u_alpha=0.6 and e_alpha=0.5 add up to 1.1"):
        sc.prediction_intervals(res, u_alpha=0.6, e_alpha=0.5)


def test_prediction_intervals_names_a_donor_constant_before_treatment(df, spec):
    flat = df.assign(y=df["y"].where((df["unit"] != "C") | (df["time"] >= 2008), 7.0))
    fitted = _fit(flat, spec, predictors=(), fit_window=None)
    with pytest.raises(errors.SpecError, match=r"(?s)donor\(s\) \['C'\] of 'T'.*give rho"):
        sc.prediction_intervals(fitted, sims=5)
    assert np.isfinite(sc.prediction_intervals(fitted, sims=5, rho=0.1, e_method="gaussian").table.to_numpy()).all()


def test_prediction_intervals_do_not_depend_on_the_donor_order(df, spec):
    # Before: the seeded normal draws went to the donors in the order the spec listed them.
    tables = [
        sc.prediction_intervals(_fit(df, spec, predictors=(), fit_window=None, donors=donors),
                                sims=20, e_method="gaussian", seed=0)
        for donors in (["A", "B", "C", "D", "E"], ["E", "C", "A", "D", "B"])
    ]
    assert tables[0].failed_sims == tables[1].failed_sims == 0
    pd.testing.assert_frame_equal(tables[0].table, tables[1].table, rtol=1e-7)


# -- pooled_test -----------------------------------------------------------------------------------

@pytest.mark.parametrize("statistic", ["fisher", "mean_abs"])
def test_pooled_monte_carlo_does_not_depend_on_the_order_of_results_or_donors(df, spec, two, statistic):
    options = {"statistic": statistic, "max_combinations": 0, "n_draws": 37, "seed": 0}
    base = sc.pooled_test([two["T"], two["A"]], **options)
    swapped = sc.pooled_test([two["A"], two["T"]], **options)
    reversed_donors = sc.pooled_test(_fit(df, spec, treated=["T", "A"], donors=["E", "D", "C", "B"]), **options)
    for other in (swapped, reversed_donors):
        np.testing.assert_allclose(np.sort(other.null_overall), np.sort(base.null_overall), rtol=1e-12)
        assert other.p_value == base.p_value


def test_pooled_names_the_post_period_one_unit_lacks(df, spec):
    gap = df.assign(y=df["y"].where((df["unit"] != "A") | (df["time"] != 2009)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sc.SynthControlWarning)
        fits = sc.fit(gap, dataclasses.replace(spec, treated=["T", "A"], donors=["B", "C", "D", "E"]),
                      n_random_starts=3)
    with pytest.raises(errors.SpecError, match=r"(?s)only 'T' has \[2009\], only 'A' has \[\]"):
        sc.pooled_test(fits)


# -- cross_validate_predictor_weights ----------------------------------------------------------------

def test_cross_validation_refuses_a_spec_without_predictors(df, spec):
    with pytest.raises(errors.SpecError, match="spec has no predictors"):
        sc.cross_validate_predictor_weights(df, dataclasses.replace(spec, predictors=()), training_predictors=[],
                                            validation_window=(2004, 2007))
