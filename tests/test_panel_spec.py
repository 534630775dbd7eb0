"""Bad input: every problem is a SynthControlError subclass whose message names the culprit."""

from __future__ import annotations

import dataclasses
import datetime
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


# ------------------------------------------------------------------ period and unit types


def test_text_periods_are_parsed_not_compared_as_text(panel, spec):
    """'2020-10' sorts before '2020-7' as text; parsed as months it comes after."""
    months = {year: f"2020-{year - 1999}" for year in range(2000, 2012)}  # 2020-1 ... 2020-12
    text = panel.assign(time=panel["time"].map(months))
    moved = dataclasses.replace(
        spec, treatment_start="2020-9", fit_window=("2020-1", "2020-8"),
        predictors=[sc.mean("x", "2020-1", "2020-8"), sc.at("y", "2020-3"), sc.at("y", "2020-8")],
    )
    by_text = sc.fit(text, moved, n_random_starts=3)
    by_year = sc.fit(panel, spec, n_random_starts=3)
    assert by_text.design.periods == tuple(pd.period_range("2020-01", "2020-12", freq="M"))
    assert by_text.spec.treatment_start == pd.Period("2020-09", "M")
    np.testing.assert_array_equal(by_text.weights.to_numpy(), by_year.weights.to_numpy())


def test_text_years_become_integers(panel, spec):
    res = sc.fit(panel.assign(time=panel["time"].astype(str)), spec, n_random_starts=3)
    assert res.design.periods[0] == 2000 and isinstance(res.design.periods[0], int)


@pytest.mark.parametrize(
    "column, names",
    [
        (lambda t: t.astype(str).where(t != 2003, "pre-war"), ["'time'", "'pre-war'"]),
        (lambda t: t.map(lambda y: f"{y}Q1" if y < 2005 else f"{y}-01"), ["'time'", "quarterly", "monthly"]),
        (lambda t: t > 2005, ["'time'", "True/False"]),
    ],
)
def test_period_column_that_is_not_ordered_periods(panel, spec, column, names):
    with raises(errors.PeriodColumnError, *names):
        sc.fit(panel.assign(time=column(panel["time"])), spec)


@pytest.mark.parametrize(
    "changes, names",
    [
        ({"treatment_start": pd.Timestamp("2008-01-01")}, ["'time'", "integers", "treatment_start", "2008-01-01"]),
        ({"treatment_start": 2007.5}, ["'time'", "integers", "treatment_start", "2007.5"]),
        ({"treatment_start": "2008a"}, ["'time'", "integers", "'2008a'"]),
        ({"fit_window": (2000, "2007.5")}, ["fit_window[1]", "'2007.5'"]),
        ({"predictors": [sc.at("y", pd.Period("2002", "Y"))]}, ["predictor y(2002)", "annual period"]),
    ],
)
def test_period_argument_of_another_type(panel, spec, changes, names):
    with raises(errors.TypeMismatchError, *names):
        sc.fit(panel, dataclasses.replace(spec, **changes))


def test_exact_period_conversions(panel, spec):
    """Text or integral floats for years, dates for a date column: converted exactly."""
    reference = sc.fit(panel, spec, n_random_starts=3)
    text = sc.fit(panel, dataclasses.replace(spec, treatment_start="2008", fit_window=(2000.0, "2007")),
                  n_random_starts=3)
    assert text.spec.treatment_start == 2008 and text.spec.fit_window == (2000, 2007)
    dated = panel.assign(time=pd.to_datetime(panel["time"].astype(str) + "-01-01").astype("datetime64[ns]"))
    dates = dataclasses.replace(
        spec, treatment_start=datetime.date(2008, 1, 1), fit_window=("2000-01-01", pd.Timestamp("2007-01-01")),
        predictors=[sc.mean("x", "2000", "2007"), sc.at("y", "2002-01-01"), sc.at("y", "2007-01-01")],
    )
    by_date = sc.fit(dated, dates, n_random_starts=3)
    assert by_date.design.periods[0] == pd.Timestamp("2000-01-01")
    np.testing.assert_array_equal(by_date.weights.to_numpy(), reference.weights.to_numpy())
    quarterly = panel.assign(time=[pd.Period(f"{y}Q1", "Q") for y in panel["time"]])
    with raises(errors.TypeMismatchError, "quarterly periods", "monthly period 2008-01"):
        sc.fit(quarterly, dataclasses.replace(spec, treatment_start=pd.Period("2008-01", "M"), fit_window=None,
                                              predictors=()))


def test_unit_given_with_another_type_says_so(panel, spec):
    codes = {unit: 340400 + i for i, unit in enumerate(sorted(panel["unit"].unique()))}
    coded = panel.assign(unit=panel["unit"].map(codes))
    treated = codes["T"]
    with raises(errors.TypeMismatchError, "column 'unit' holds integers", f"the text '{treated}'", f"give it as {treated}"):
        sc.fit(coded, dataclasses.replace(spec, treated=str(treated)))
    with raises(errors.TypeMismatchError, "'unit'", "integers", "donor", "the text"):
        sc.fit(coded, dataclasses.replace(spec, treated=treated, donors=[codes["A"], str(codes["B"])]))


def test_unknown_excluded_unit_is_an_error(panel, spec):
    with raises(errors.DonorPoolError, "excluded", "'Atlantis'"):
        sc.fit(panel, dataclasses.replace(spec, exclude=["A", "Atlantis"]))


def test_frame_indexed_by_unit_and_time_is_accepted(panel, spec):
    reference = sc.fit(panel, spec, n_random_starts=3)
    for keys in (["unit", "time"], ["time", "unit"], ["unit"]):
        indexed = sc.fit(panel.set_index(keys), spec, n_random_starts=3)
        np.testing.assert_array_equal(indexed.weights.to_numpy(), reference.weights.to_numpy())


def test_row_order_does_not_change_the_design(panel, spec):
    shuffled = panel.sample(frac=1.0, random_state=3)
    assert sc.fit(shuffled, spec, n_random_starts=3).design.units == sc.fit(panel, spec, n_random_starts=3).design.units


@pytest.mark.parametrize(
    "frame, error, names",
    [
        (lambda df: df.iloc[:0], errors.PanelError, ["no rows"]),
        (lambda df: pd.concat([df, df[["y"]]], axis=1), errors.PanelError, ["'y'", "more than once"]),
        (lambda df: df.assign(unit=df["unit"].astype(object).where(df["unit"] != "A", 7)), errors.NonNumericError,
         ["'unit'", "the text", "the integer 7"]),
    ],
)
def test_malformed_frames(panel, spec, frame, error, names):
    with raises(error, *names):
        sc.fit(frame(panel), spec)


@pytest.mark.parametrize(
    "changes, error, names",
    [
        ({"treated": ["T", "A", "T"]}, errors.SpecError, ["treated", "'T'", "more than once"]),
        ({"treated": []}, errors.SpecError, ["treated is empty"]),
        ({"treated": None}, errors.SpecError, ["treated is None"]),
        ({"donors": "ABC"}, errors.DonorPoolError, ["donors", "'ABC'"]),
        ({"donors": {"T": ["A", "B"], "Z": ["C", "D"]}}, errors.DonorPoolError, ["'Z'", "not treated"]),
        ({"exclude": "A"}, errors.SpecError, ["exclude", "'A'"]),
        ({"fit_window": 2000}, errors.SpecError, ["fit_window", "(start, end)"]),
        ({"fit_window": (2000, None)}, errors.SpecError, ["fit_window", "different types"]),
        ({"outcome": ["y"]}, errors.ArgumentError, ["outcome", "single name"]),
        ({"drop_incomplete_donors": "no"}, errors.ArgumentError, ["drop_incomplete_donors", "'no'"]),
        ({"predictors": 3}, errors.SpecError, ["predictors", "list"]),
    ],
)
def test_spec_fields_are_checked_when_built(spec, changes, error, names):
    with raises(error, *names):
        dataclasses.replace(spec, **changes)


def test_predictor_constant_among_a_refits_units_carries_no_information(panel, spec):
    """A predictor that varies only because of the treated unit is constant in every
    placebo: its scaled row is zero instead of a division by zero."""
    panel["c"] = np.where(panel["unit"] == "T", 2.0, 1.0)
    spec = dataclasses.replace(spec, predictors=[*spec.predictors, sc.at("c", 2003)])
    res = sc.fit(panel, spec, n_random_starts=3)
    placebo_design = res.design.relabel(1)
    scaled, sd = placebo_design.scaled_predictors()
    assert sd[-1] == 0.0 and np.all(scaled[-1] == 0.0) and np.all(np.isfinite(scaled))
    placebo = sc.placebo_test(res)
    assert np.all(np.isfinite(placebo.table["ratio"]))
