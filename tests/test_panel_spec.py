"""Bad input: every problem is a SynthControlError subclass whose message names the culprit."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol import errors


def raises(error: type, *names: str):
    """``pytest.raises`` for ``error`` (a SynthControlError) with every name in the message."""
    assert issubclass(error, sc.SynthControlError) and issubclass(error, ValueError)
    return pytest.raises(error, match="(?s)" + "".join(f"(?=.*{re.escape(n)})" for n in names))


def set_value(df: pd.DataFrame, unit: str, time: int, column: str, value) -> pd.DataFrame:
    df = df.copy()
    if not isinstance(value, float):
        df[column] = df[column].astype(object)
    df.loc[(df["unit"] == unit) & (df["time"] == time), column] = value
    return df


# ----------------------------------------------------------------------------- the panel


@pytest.mark.parametrize("field", ["outcome", "unit", "time"])
def test_missing_column(panel, spec, field):
    spec = dataclasses.replace(spec, **{field: "nope"})
    with raises(errors.MissingColumnError, "nope"):
        sc.fit(panel, spec)


def test_missing_predictor_column(panel, spec):
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.mean("income", 2000, 2007)])
    with raises(errors.MissingColumnError, "income"):
        sc.fit(panel, spec)


def test_missing_column_is_also_a_key_error(panel, spec):
    with pytest.raises(KeyError):
        sc.fit(panel, dataclasses.replace(spec, outcome="nope"))


def test_duplicate_unit_period_rows(panel, spec):
    row = panel[(panel.unit == "B") & (panel.time == 2003)]
    with raises(errors.DuplicateRowError, "'B'", "2003"):
        sc.fit(pd.concat([panel, row], ignore_index=True), spec)


def test_non_numeric_value(panel, spec):
    with raises(errors.NonNumericError, "'x'", "'C'", "2002", "n/a"):
        sc.fit(set_value(panel, "C", 2002, "x", "n/a"), spec)


def test_boolean_column_is_not_numeric(panel, spec):
    panel["x"] = panel["x"] > 10
    with raises(errors.NonNumericError, "'x'"):
        sc.fit(panel, spec)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_value(panel, spec, value):
    with raises(errors.NonFiniteError, "'y'", "'D'", "2005"):
        sc.fit(set_value(panel, "D", 2005, "y", value), spec)


def test_missing_unit_key(panel, spec):
    panel["unit"] = panel["unit"].astype(object)
    panel.loc[3, "unit"] = None
    with raises(errors.PanelError, "'unit'", "row 3"):
        sc.fit(panel, spec)


def test_data_must_be_a_frame(panel, spec):
    with raises(sc.SynthControlError, "DataFrame"):
        sc.fit(panel.to_numpy(), spec)


# ----------------------------------------------------------------------- missing values


def test_predictor_missing_for_treated(panel, spec):
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.at("x", 2004)])
    with raises(errors.MissingDataError, "'T'", "x(2004)"):
        sc.fit(set_value(panel, "T", 2004, "x", np.nan), spec)


def test_mean_predictor_skips_missing_periods_like_synth(panel, spec):
    # One missing year inside a mean window is skipped, not an error (R Synth's rule).
    res = sc.fit(set_value(panel, "T", 2004, "x", np.nan), spec, predictor_weights=[1, 1, 1])
    expected = panel[(panel.unit == "T") & panel.time.between(2000, 2007) & (panel.time != 2004)].x.mean()
    assert res.balance.loc["x(2000-2007)", "treated"] == pytest.approx(expected)


def test_outcome_missing_for_treated_in_fit_window(panel, spec):
    with raises(errors.MissingDataError, "'T'", "2005", "fit_window"):
        sc.fit(set_value(panel, "T", 2005, "y", np.nan), spec)


def test_predictor_missing_for_donor(panel, spec):
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.at("x", 2004)])
    with raises(errors.MissingDataError, "'B'", "x(2004)", "drop_incomplete_donors"):
        sc.fit(set_value(panel, "B", 2004, "x", np.nan), spec)


def test_outcome_missing_for_donor_in_a_needed_period(panel, spec):
    with raises(errors.MissingDataError, "'C'", "2009", "'y'"):
        sc.fit(set_value(panel, "C", 2009, "y", np.nan), spec)


def test_drop_incomplete_donors_reports_them(panel, spec):
    data = set_value(set_value(panel, "C", 2009, "y", np.nan), "B", 2002, "y", np.nan)
    spec = dataclasses.replace(spec, drop_incomplete_donors=True)
    with pytest.warns(errors.DroppedDonorsWarning, match="(?s)(?=.*'B')(?=.*'C')"):
        res = sc.fit(data, spec, predictor_weights=[1, 1, 1])
    assert set(res.dropped_donors.index) == {"B", "C"}
    assert "2009" in res.dropped_donors["C"] and "y(2002)" in res.dropped_donors["B"]
    assert set(res.donors) == {"A", "D", "E"}
    assert "Dropped donors" in res.summary().as_text()


def test_dropping_too_many_donors_is_an_error(panel, spec):
    data = panel
    for unit in ("A", "B", "C", "D"):
        data = set_value(data, unit, 2009, "y", np.nan)
    spec = dataclasses.replace(spec, drop_incomplete_donors=True)
    with pytest.warns(errors.DroppedDonorsWarning), raises(errors.DonorPoolError, "'T'", "two"):
        sc.fit(data, spec)


# ------------------------------------------------------------------------- units, dates


def test_treated_unit_absent(panel, spec):
    with raises(errors.SpecError, "'Atlantis'"):
        sc.fit(panel, dataclasses.replace(spec, treated="Atlantis"))


def test_treated_unit_in_donor_pool(panel, spec):
    with raises(errors.DonorPoolError, "'T'", "donor"):
        sc.fit(panel, dataclasses.replace(spec, donors=["A", "T", "B"]))


def test_unknown_donor(panel, spec):
    with raises(errors.DonorPoolError, "'Z'"):
        sc.fit(panel, dataclasses.replace(spec, donors=["A", "B", "Z"]))


def test_donor_listed_twice(panel, spec):
    with raises(errors.DonorPoolError, "'A'", "twice"):
        sc.fit(panel, dataclasses.replace(spec, donors=["A", "B", "A"]))


@pytest.mark.parametrize(
    "donors, exclude", [(["A"], ()), (None, ("A", "B", "C", "D")), (["A", "B"], ("B",))]
)
def test_fewer_than_two_donors(panel, spec, donors, exclude):
    with raises(errors.DonorPoolError, "'T'", "two"):
        sc.fit(panel, dataclasses.replace(spec, donors=donors, exclude=exclude))


@pytest.mark.parametrize("start", [1990, 2000, 2012, 2030])
def test_treatment_start_outside_data(panel, spec, start):
    spec = dataclasses.replace(spec, treatment_start=start, fit_window=None, predictors=())
    with raises(errors.SpecError, f"treatment_start={start}"):
        sc.fit(panel, spec)


def test_treatment_start_inside_fit_window(panel, spec):
    with raises(errors.SpecError, "fit_window=(2000, 2009)", "2008"):
        sc.fit(panel, dataclasses.replace(spec, fit_window=(2000, 2009)))


@pytest.mark.parametrize("window", [(2005, 2003), (1980, 1985)])
def test_bad_fit_window(panel, spec, window):
    with raises(errors.SpecError, f"fit_window={window}"):
        sc.fit(panel, dataclasses.replace(spec, fit_window=window))


def test_predictor_measured_after_treatment(panel, spec):
    # Accepted with a warning naming it (issue 10: published specs such as ADH 2015).
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.mean("x", 2005, 2009)])
    with pytest.warns(errors.PostTreatmentPredictorWarning, match=r"x\(2005-2009\).*treatment_start"):
        sc.fit(panel, spec)


def test_predictor_window_without_data(panel, spec):
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.mean("x", 1980, 1985)])
    with raises(errors.SpecError, "x(1980-1985)"):
        sc.fit(panel, spec)


def test_predictor_with_zero_variance(panel, spec):
    panel["c"] = 3.0
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.mean("c", 2000, 2007)])
    with raises(errors.PredictorError, "c(2000-2007)"):
        sc.fit(panel, spec)


def test_spec_construction_errors():
    with raises(errors.SpecError, "x", "twice"):
        sc.Spec(outcome="y", treated="T", treatment_start=1, predictors=[sc.at("x", 0), sc.at("x", 0)])
    with raises(errors.SpecError, "predictors"):
        sc.Spec(outcome="y", treated="T", treatment_start=1, predictors=["x"])
    with raises(errors.SpecError, "fit_window"):
        sc.Spec(outcome="y", treated="T", treatment_start=1, fit_window=(0, 1, 2))
    with raises(errors.SpecError, "'x'", "ends before"):
        sc.mean("x", 2005, 2001)


def test_spec_must_be_a_spec(panel):
    with raises(errors.SpecError, "Spec", "dict"):
        sc.fit(panel, {"outcome": "y"})


def test_donor_mapping_without_pool_for_a_treated_unit(panel, spec):
    spec = dataclasses.replace(spec, treated=["T", "A"], donors={"T": ["B", "C", "D"]})
    with raises(errors.DonorPoolError, "'A'"):
        sc.fit(panel, spec)


# -------------------------------------------------------------------- predictor weights


@pytest.mark.parametrize(
    "weights, names",
    [
        ([1.0, 1.0], ["2 entries", "3 predictors"]),
        ([1.0, -1.0, 1.0], ["non-negative", "-1.0"]),
        ([0.0, 0.0, 0.0], ["not all zero"]),
        ([1.0, np.nan, 1.0], ["finite"]),
        (pd.Series({"x(2000-2007)": 1.0, "y(2002)": 1.0, "gdp(2007)": 1.0}), ["gdp(2007)", "y(2007)"]),
    ],
)
def test_bad_predictor_weights(panel, spec, weights, names):
    with raises(errors.SpecError, "predictor_weights", *names):
        sc.fit(panel, spec, predictor_weights=weights)


def test_predictor_weights_by_label_in_any_order(panel, spec):
    by_position = sc.fit(panel, spec, predictor_weights=[0.2, 0.3, 0.5])
    by_label = sc.fit(
        panel, spec, predictor_weights=pd.Series({"y(2007)": 5.0, "x(2000-2007)": 2.0, "y(2002)": 3.0})
    )
    np.testing.assert_allclose(by_label.predictor_weights, [0.2, 0.3, 0.5])
    np.testing.assert_array_equal(by_label.weights, by_position.weights)


# ------------------------------------------------------------------------ fit options


@pytest.mark.parametrize(
    "option, value",
    [
        ("seed", "zero"),
        ("seed", True),
        ("n_random_starts", -1),
        ("n_polish", 1.5),
        ("max_iterations", 0),
        ("min_predictor_weight", 1.5),
        ("min_predictor_weight", -0.1),
        ("estimator", "no-such-estimator"),
    ],
)
def test_bad_fit_options(panel, spec, option, value):
    with raises(sc.SynthControlError, option):
        sc.fit(panel, spec, **{option: value})


def test_default_outcome_lags_skip_a_period_constant_across_units():
    index = sc.datasets.load_smoking()
    index["cigsale"] = index["cigsale"] / index.groupby("unit")["cigsale"].transform("first") * 100
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    res = sc.fit(index, spec, n_random_starts=2)
    assert "cigsale(1970)" not in res.predictor_weights.index
    assert "cigsale(1971)" in res.predictor_weights.index
