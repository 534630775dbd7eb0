"""Tests of the specification curve (synthcontrol.speccurve)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol.errors import SpecError

POOL = ["Utah", "Nevada", "Montana", "Colorado", "Connecticut"]


@pytest.fixture(scope="module")
def smoking():
    return sc.datasets.load_smoking()


@pytest.fixture(scope="module")
def base():
    return sc.Spec(outcome="cigsale", treated="California", treatment_start=1989, donors=POOL,
                   predictors=[sc.mean("retprice", 1980, 1988), sc.at("cigsale", 1980)])


@pytest.fixture(scope="module")
def curve(smoking, base):
    specs = sc.standard_specs(smoking, base, covariates=[sc.mean("retprice", 1980, 1988)])
    return sc.specification_curve(smoking, specs, estimators=("classic", "demeaned"))


def test_standard_specs_cover_lags_covariates_and_windows(smoking, base):
    specs = sc.standard_specs(smoking, base, n_lags=4, fit_windows=(None, (1980, 1988)))
    assert set(specs) == {
        f"{name}{cov}{window}"
        for name in ("all lags", "mean", "4 lags")
        for cov in ("", " + covariates")
        for window in ("", ", fit 1980-1988")
    }
    assert specs["all lags"].predictors == ()
    assert [p.label for p in specs["4 lags"].predictors] == [f"cigsale({y})" for y in (1970, 1976, 1982, 1988)]
    assert [p.label for p in specs["mean + covariates"].predictors] == ["cigsale(1970-1988)", "retprice(1980-1988)"]
    windowed = specs["all lags + covariates, fit 1980-1988"]
    assert windowed.fit_window == (1980, 1988)
    assert [p.label for p in windowed.predictors][:2] == ["cigsale(1980)", "cigsale(1981)"]
    assert all(s.treated == "California" and list(s.donors) == POOL for s in specs.values())


def test_curve_table_is_sorted_and_matches_direct_fits(smoking, curve):
    table = curve.table
    assert list(table.columns[:5]) == ["spec", "estimator", "effect", "p_value", "pre_rmspe"]
    assert len(table) == 12 and table["effect"].is_monotonic_increasing
    row = table[(table["spec"] == "3 lags + covariates") & (table["estimator"] == "classic")].iloc[0]
    spec = sc.standard_specs(smoking, curve.results[0].spec, covariates=[sc.mean("retprice", 1980, 1988)])[
        "3 lags + covariates"
    ]
    direct = sc.fit(smoking, spec)
    assert row["effect"] == pytest.approx(direct.average_effect, abs=1e-10)
    assert row["p_value"] == pytest.approx(sc.placebo_test(direct).p_value)
    assert row["pre_rmspe"] == pytest.approx(direct.pre_rmspe, abs=1e-10)


def test_curve_does_not_depend_on_n_jobs(smoking, base):
    specs = {"3 lags": sc.standard_specs(smoking, base)["3 lags"]}
    one = sc.specification_curve(smoking, specs, estimators=("classic", "sdid"), n_jobs=1)
    two = sc.specification_curve(smoking, specs, estimators=("classic", "sdid"), n_jobs=2)
    pd.testing.assert_frame_equal(one.table, two.table)


def test_curve_summary_and_plot(curve):
    import matplotlib

    matplotlib.use("Agg")
    summary = curve.summary()
    assert set(summary.tables) == {"Overview", "Fits"}
    assert summary.tables["Overview"].loc["n_fits", "value"] == 12
    ax = curve.plot()
    assert len(ax.child_axes) == 1  # the pre-RMSPE panel
    assert sum(len(c.get_offsets()) for c in ax.collections) == 12
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_without_placebos_p_values_are_missing(smoking, base):
    specs = [sc.standard_specs(smoking, base)["mean"]]
    curve = sc.specification_curve(smoking, specs, placebo=False)
    assert curve.table["spec"].tolist() == ["spec 1"] and np.isnan(curve.table["p_value"].iloc[0])
    assert curve.placebos == (None,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimators": ("nope",)}, "nope"),
        ({"estimators": ("classic",), "estimator_options": {"sdid": {"se": False}}}, "sdid"),
        ({"specs": {}}, "empty"),
    ],
)
def test_curve_errors(smoking, base, kwargs, match):
    kwargs = {"specs": {"base": base}} | kwargs
    with pytest.raises(SpecError, match=match):
        sc.specification_curve(smoking, **kwargs)


def test_curve_refuses_several_treated_units(smoking, base):
    from dataclasses import replace

    with pytest.raises(SpecError, match="one treated unit"):
        sc.specification_curve(smoking, {"two": replace(base, treated=["California", "Utah"], donors=None)})


def test_interrupted_sweep_resumes_its_placebos(tmp_path):
    df = sc.datasets.load_smoking()
    base = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   donors=["Utah", "Nevada", "Montana", "Colorado", "Connecticut", "Idaho"])
    specs = dict(list(sc.standard_specs(df, base).items())[:2])
    first = sc.specification_curve(df, specs, checkpoint_dir=tmp_path)
    again = sc.specification_curve(df, specs, checkpoint_dir=tmp_path)
    assert all(p.run.n_computed == 0 for p in again.placebos)
    assert all(p.run.n_resumed == len(p.units) - 1 for p in again.placebos)
    pd.testing.assert_frame_equal(first.table, again.table)


def test_an_empty_estimator_list_says_so(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    with pytest.raises(sc.ArgumentError, match="estimators is empty; give at least one of"):
        sc.specification_curve(smoking, [spec], estimators=[])
