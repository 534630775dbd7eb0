"""Adversarial catalogue: bad and degenerate input at every public entry point.

Each case calls the public API as a careful (or careless) user would and expects
either a :class:`~synthcontrol.SynthControlError` subclass whose message names the
culprit (the argument, the value, the column or the unit) or a correct answer. No
case may end in a raw numpy, pandas, joblib or OS traceback, or a silent NaN.

The cases are grouped by class; each class has several members so that a fix of
the class, not of one example, is what makes them pass.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol import errors

from conftest import make_panel


@dataclass(frozen=True)
class Case:
    """``call(ctx)`` raises ``error`` naming every string of ``names`` (error given), or
    returns a value for which ``check`` is true (error None)."""

    name: str
    call: Callable[[Any], Any]
    error: type | None = None
    names: tuple = ()
    check: Callable[[Any], bool] | None = None


class Context:
    """The objects the cases work on, built once: a small panel, its spec, a fit."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.df = make_panel()
        self.spec = sc.Spec(
            outcome="y", treated="T", treatment_start=2008, fit_window=(2000, 2007),
            predictors=[sc.mean("x", 2000, 2007), sc.at("y", 2002), sc.at("y", 2007)],
        )
        self.res = self.fit()
        self.two = self.fit(spec=dataclasses.replace(self.spec, treated=["T", "A"]))
        self.file = tmp / "a-file.txt"
        self.file.write_text("not a directory")

    def fit(self, df: pd.DataFrame | None = None, spec: sc.Spec | None = None, **options):
        return sc.fit(self.df if df is None else df, self.spec if spec is None else spec,
                      **{"n_random_starts": 3, **options})

    def with_spec(self, **changes):
        return self.fit(spec=dataclasses.replace(self.spec, **changes))


def _replace(ctx, **changes):
    return dataclasses.replace(ctx.spec, **changes)


A, P, U, F, N, C, D = ("arguments", "periods", "units", "frames", "numbers", "checkpoints", "datasets")

# -- arguments: values and types of every public function's parameters ------------------------
ARGUMENTS = [
    Case("fit seed=-1", lambda c: c.fit(seed=-1), errors.ArgumentError, ("seed=-1", ">= 0")),
    Case("fit seed=1.5", lambda c: c.fit(seed=1.5), errors.ArgumentError, ("seed=1.5", "integer")),
    Case("fit seed='0'", lambda c: c.fit(seed="0"), errors.ArgumentError, ("seed='0'",)),
    Case("fit seed=True", lambda c: c.fit(seed=True), errors.ArgumentError, ("seed=True",)),
    Case("fit n_local=0", lambda c: c.fit(n_local=0), errors.ArgumentError, ("n_local=0", ">= 1")),
    Case("fit n_polish=1.5", lambda c: c.fit(n_polish=1.5), errors.ArgumentError, ("n_polish=1.5",)),
    Case("fit max_iterations=0", lambda c: c.fit(max_iterations=0), errors.ArgumentError, ("max_iterations=0",)),
    Case("fit min_predictor_weight=1", lambda c: c.fit(min_predictor_weight=1.0), errors.ArgumentError,
         ("min_predictor_weight=1.0", "[0, 1)")),
    Case("fit min_predictor_weight='a'", lambda c: c.fit(min_predictor_weight="a"), errors.ArgumentError,
         ("min_predictor_weight='a'",)),
    Case("fit global_search='yes'", lambda c: c.fit(global_search="yes"), errors.ArgumentError,
         ("global_search='yes'", "True or False")),
    Case("fit estimator=['classic']", lambda c: c.fit(estimator=["classic"]), errors.ArgumentError,
         ("estimator=['classic']", "choose one of")),
    Case("fit estimator_options list", lambda c: c.fit(estimator_options=[("lambda_", 1)]), errors.ArgumentError,
         ("estimator_options", "mapping")),
    Case("fit estimator_options int key", lambda c: c.fit(estimator="penalized", estimator_options={1: 2}),
         errors.ArgumentError, ("estimator_options", "key 1", "text")),
    Case("classic takes no options", lambda c: c.fit(estimator_options={"lambda_": 0.1}), errors.ArgumentError,
         ("'lambda_'", "'classic'", "takes none")),
    Case("penalized unknown option", lambda c: c.fit(estimator="penalized", estimator_options={"lamda": 1}),
         errors.SpecError, ("'lamda'", "'penalized'", "lambda_")),
    Case("predictor_weights repeated label",
         lambda c: c.fit(predictor_weights=pd.Series([1.0, 1.0, 1.0, 1.0],
                                                     index=["x(2000-2007)", "y(2002)", "y(2007)", "y(2007)"])),
         errors.SpecError, ("predictor_weights", "'y(2007)'", "more than once")),
    Case("predictor_weights text", lambda c: c.fit(predictor_weights=["1", "1", "1"]), errors.SpecError,
         ("predictor_weights", "numbers", "'1'")),
    Case("predictor_weights 2-D", lambda c: c.fit(predictor_weights=np.ones((3, 3))), errors.SpecError,
         ("predictor_weights", "one-dimensional", "(3, 3)")),
    Case("predictor_weights dict by label",
         lambda c: c.fit(predictor_weights={"y(2007)": 2.0, "x(2000-2007)": 1.0, "y(2002)": 1.0}),
         check=lambda r: np.allclose(r.predictor_weights, [0.25, 0.25, 0.5])),
    Case("placebo n_jobs=0", lambda c: sc.placebo_test(c.res, n_jobs=0), errors.ArgumentError,
         ("n_jobs=0", "positive integer")),
    Case("placebo n_jobs=1.5", lambda c: sc.placebo_test(c.res, n_jobs=1.5), errors.ArgumentError, ("n_jobs=1.5",)),
    Case("placebo n_jobs='2'", lambda c: sc.placebo_test(c.res, n_jobs="2"), errors.ArgumentError, ("n_jobs='2'",)),
    Case("placebo mspe_cutoff='abc'", lambda c: sc.placebo_test(c.res, mspe_cutoff="abc"), errors.ArgumentError,
         ("mspe_cutoff", "'abc'")),
    Case("placebo mspe_cutoff=[2,'x']", lambda c: sc.placebo_test(c.res, mspe_cutoff=[2, "x"]),
         errors.ArgumentError, ("mspe_cutoff", "'x'")),
    Case("placebo mspe_cutoff=inf", lambda c: sc.placebo_test(c.res, mspe_cutoff=np.inf), errors.ArgumentError,
         ("mspe_cutoff", "inf")),
    Case("placebo mspe_cutoff=0", lambda c: sc.placebo_test(c.res, mspe_cutoff=0), errors.ArgumentError,
         ("mspe_cutoff", "positive")),
    Case("placebo reuse='no'", lambda c: sc.placebo_test(c.res, reuse_predictor_weights="no"), errors.ArgumentError,
         ("reuse_predictor_weights='no'",)),
    Case("placebo progress=3", lambda c: sc.placebo_test(c.res, progress=3), errors.ArgumentError,
         ("progress=3", "callable")),
    Case("placebo of two fits", lambda c: sc.placebo_test(c.two), errors.SpecError, ("SynthResult", "pooled_test")),
    Case("leave_one_out min_weight=0", lambda c: sc.leave_one_out(c.res, min_weight=0), errors.ArgumentError,
         ("min_weight=0", "(0, 1)")),
    Case("leave_one_out min_weight=1", lambda c: sc.leave_one_out(c.res, min_weight=1), errors.ArgumentError,
         ("min_weight=1", "(0, 1)")),
    Case("leave_one_out min_weight='a'", lambda c: sc.leave_one_out(c.res, min_weight="a"), errors.ArgumentError,
         ("min_weight='a'",)),
    Case("leave_one_out min_weight above every weight", lambda c: sc.leave_one_out(c.res, min_weight=0.9999),
         errors.ArgumentError, ("min_weight=0.9999", "largest")),
    Case("leave_one_out n_jobs=0", lambda c: sc.leave_one_out(c.res, n_jobs=0), errors.ArgumentError, ("n_jobs=0",)),
    Case("robust sv_count above the rank",
         lambda c: c.fit(estimator="robust", estimator_options={"sv_count": 100}), errors.SpecError,
         ("sv_count=100", "singular values", "at most")),
    Case("standard_specs covariates of names",
         lambda c: sc.standard_specs(c.df, c.spec, covariates=["x"]), errors.ArgumentError,
         ("covariates", "sc.at", "['x']")),
    Case("in_time fake_start=None", lambda c: sc.in_time_placebo(c.res, fake_start=None), errors.ArgumentError,
         ("fake_start is None",)),
    Case("in_time fake_start=[]", lambda c: sc.in_time_placebo(c.res, fake_start=[]), errors.ArgumentError,
         ("fake_start is empty",)),
    Case("in_time fake_start twice", lambda c: sc.in_time_placebo(c.res, fake_start=[2005, 2005], data=c.df),
         errors.ArgumentError, ("fake_start", "'2005'", "more than once")),
    Case("in_time n_jobs=0", lambda c: sc.in_time_placebo(c.res, fake_start=2005, data=c.df, n_jobs=0),
         errors.ArgumentError, ("n_jobs=0",)),
    Case("pooled seed=-1", lambda c: sc.pooled_test(c.two, seed=-1), errors.ArgumentError, ("seed=-1",)),
    Case("pooled n_draws=0", lambda c: sc.pooled_test(c.two, n_draws=0), errors.ArgumentError, ("n_draws=0",)),
    Case("pooled n_draws=2.5", lambda c: sc.pooled_test(c.two, n_draws=2.5), errors.ArgumentError, ("n_draws=2.5",)),
    Case("pooled max_combinations=-1", lambda c: sc.pooled_test(c.two, max_combinations=-1), errors.ArgumentError,
         ("max_combinations=-1",)),
    Case("pooled results=3", lambda c: sc.pooled_test(3), errors.ArgumentError, ("results", "int")),
    Case("pooled one SynthResult", lambda c: sc.pooled_test(c.res), errors.ArgumentError, ("results", "SynthResult")),
    Case("pooled n_jobs=0", lambda c: sc.pooled_test(c.two, n_jobs=0), errors.ArgumentError, ("n_jobs=0",)),
    Case("conformal n_grid=2.5", lambda c: sc.conformal(c.res, n_grid=2.5), errors.ArgumentError, ("n_grid=2.5",)),
    Case("conformal n_grid='201'", lambda c: sc.conformal(c.res, n_grid="201"), errors.ArgumentError,
         ("n_grid='201'",)),
    Case("conformal alpha='a'", lambda c: sc.conformal(c.res, alpha="a"), errors.ArgumentError, ("alpha='a'",)),
    Case("conformal n_jobs=0", lambda c: sc.conformal(c.res, n_jobs=0), errors.ArgumentError, ("n_jobs=0",)),
    Case("speccurve n_jobs=0", lambda c: sc.specification_curve(c.df, [c.spec], n_jobs=0), errors.ArgumentError,
         ("n_jobs=0",)),
    Case("speccurve options dict", lambda c: sc.specification_curve(c.df, [c.spec], options={"seed": 1}),
         errors.ArgumentError, ("options", "FitOptions", "dict")),
    Case("speccurve options seed=-1",
         lambda c: sc.specification_curve(c.df, [c.spec], options=sc.FitOptions(seed=-1), placebo=False),
         errors.ArgumentError, ("seed=-1",)),
    Case("speccurve placebo='no'", lambda c: sc.specification_curve(c.df, [c.spec], placebo="no"),
         errors.ArgumentError, ("placebo='no'",)),
    Case("speccurve specs text", lambda c: sc.specification_curve(c.df, "spec"), errors.ArgumentError,
         ("specs", "str")),
    Case("speccurve one Spec", lambda c: sc.specification_curve(c.df, c.spec), errors.ArgumentError,
         ("specs", "Spec")),
    Case("speccurve estimator_options not a mapping",
         lambda c: sc.specification_curve(c.df, [c.spec], estimators=("classic", "sdid"),
                                          estimator_options={"sdid": 3}),
         errors.ArgumentError, ("estimator_options['sdid']", "mapping")),
    Case("speccurve classic options", lambda c: sc.specification_curve(
        c.df, [c.spec], estimator_options={"classic": {"lambda_": 1}}, placebo=False),
        errors.ArgumentError, ("'lambda_'", "'classic'")),
    Case("standard_specs n_lags=0", lambda c: sc.standard_specs(c.df, c.spec, n_lags=0), errors.ArgumentError,
         ("n_lags=0", ">= 1")),
    Case("standard_specs n_lags=2.5", lambda c: sc.standard_specs(c.df, c.spec, n_lags=2.5), errors.ArgumentError,
         ("n_lags=2.5",)),
    Case("standard_specs one window, not a list", lambda c: sc.standard_specs(c.df, c.spec, fit_windows=(2000, 2005)),
         errors.ArgumentError, ("fit_windows", "(2000, 2005)", "list of windows")),
    Case("standard_specs window of one period", lambda c: sc.standard_specs(c.df, c.spec, fit_windows=[(2000,)]),
         errors.ArgumentError, ("fit_windows", "(2000,)")),
    Case("standard_specs data a list", lambda c: sc.standard_specs([1, 2], c.spec), errors.PanelError,
         ("DataFrame", "list")),
    Case("cross-validation window None",
         lambda c: sc.cross_validate_predictor_weights(c.df, c.spec, training_predictors=c.spec.predictors,
                                                       validation_window=None),
         errors.ArgumentError, ("validation_window", "None")),
    Case("cross-validation seed=-1",
         lambda c: sc.cross_validate_predictor_weights(c.df, c.spec, training_predictors=c.spec.predictors,
                                                       validation_window=(2004, 2007), seed=-1),
         errors.ArgumentError, ("seed=-1",)),
    Case("cross-validation predictors text",
         lambda c: sc.cross_validate_predictor_weights(c.df, c.spec, training_predictors="y",
                                                       validation_window=(2004, 2007)),
         errors.ArgumentError, ("training_predictors", "'y'")),
    Case("Panel variables as text",
         lambda c: sc.Panel.from_frame(c.df, unit="unit", time="time", variables="y"), errors.ArgumentError,
         ("variables", "'y'")),
    Case("Panel unit as a list",
         lambda c: sc.Panel.from_frame(c.df, unit=["unit"], time="time", variables=["y"]), errors.ArgumentError,
         ("unit", "single name")),
    Case("Panel variables None",
         lambda c: sc.Panel.from_frame(c.df, unit="unit", time="time", variables=None), errors.ArgumentError,
         ("variables", "None")),
    Case("speccurve estimators=3", lambda c: sc.specification_curve(c.df, [c.spec], estimators=3, placebo=False),
         errors.ArgumentError, ("estimators", "3")),
    Case("standard_specs covariates=3", lambda c: sc.standard_specs(c.df, c.spec, covariates=3),
         errors.ArgumentError, ("covariates", "3")),
    Case("at() with a list of periods", lambda c: sc.at("y", [2000, 2001]), errors.ArgumentError,
         ("at('y'", "single name")),
    Case("mean() of mixed period types", lambda c: sc.mean("y", 2000, None), errors.SpecError,
         ("mean('y'", "different types")),
]

# -- periods: text read as ordered periods; arguments of another type converted or refused ---
MONTHS = {year: f"2020-{year - 1999}" for year in range(2000, 2012)}  # '2020-1' ... '2020-12'


def _monthly(c):
    return c.df.assign(time=c.df["time"].map(MONTHS))


def _monthly_spec(c, **changes):
    base = dict(treatment_start="2020-9", fit_window=("2020-1", "2020-8"),
                predictors=[sc.mean("x", "2020-1", "2020-8"), sc.at("y", "2020-3"), sc.at("y", "2020-8")])
    return dataclasses.replace(c.spec, **{**base, **changes})


def _dated(c):
    return c.df.assign(time=pd.to_datetime(c.df["time"].astype(str) + "-01-01"))


def _same_weights(c, other):
    return np.array_equal(other.weights.to_numpy(), c.res.weights.to_numpy())


PERIODS = [
    Case("text months ordered as months", lambda c: c.fit(_monthly(c), _monthly_spec(c)),
         check=lambda r: r.design.periods[-4:] == tuple(pd.period_range("2020-09", "2020-12", freq="M"))),
    Case("text months give the same fit as years",
         lambda c: _same_weights(c, c.fit(_monthly(c), _monthly_spec(c))), check=bool),
    Case("text months, Timestamp at a month's start",
         lambda c: c.fit(_monthly(c), _monthly_spec(c, treatment_start=pd.Timestamp("2020-09-01"))),
         check=lambda r: r.spec.treatment_start == pd.Period("2020-09", "M")),
    Case("text months, mid-month Timestamp", lambda c: c.fit(_monthly(c), _monthly_spec(
        c, treatment_start=pd.Timestamp("2020-09-15"))), errors.TypeMismatchError,
        ("'time'", "monthly periods", "treatment_start", "2020-09-15")),
    Case("text months, quarterly start", lambda c: c.fit(_monthly(c), _monthly_spec(
        c, treatment_start=pd.Period("2020Q3", "Q"))), errors.TypeMismatchError,
        ("'time'", "monthly periods", "quarterly period 2020Q3")),
    Case("text months, integer start", lambda c: c.fit(_monthly(c), _monthly_spec(c, treatment_start=2020)),
         errors.TypeMismatchError, ("'time'", "monthly", "the integer 2020")),
    Case("text months, year as text", lambda c: c.fit(_monthly(c), _monthly_spec(c, fit_window=("2020", "2020-8"))),
         errors.TypeMismatchError, ("'time'", "monthly", "fit_window[0]", "'2020'")),
    Case("text years become integers", lambda c: c.fit(c.df.assign(time=c.df["time"].astype(str))),
         check=lambda r: r.design.periods[0] == 2000 and isinstance(r.design.periods[0], int)),
    Case("text that is not a period", lambda c: c.fit(c.df.assign(
        time=c.df["time"].astype(str).where(c.df["time"] != 2004, "mid-2004"))),
        errors.PeriodColumnError, ("'time'", "'mid-2004'")),
    Case("text of two frequencies", lambda c: c.fit(c.df.assign(
        time=c.df["time"].map(lambda y: f"{y}Q1" if y < 2005 else f"{y}-01"))),
        errors.PeriodColumnError, ("'time'", "quarterly", "monthly")),
    Case("boolean periods", lambda c: c.fit(c.df.assign(time=c.df["time"] > 2005)), errors.PeriodColumnError,
         ("'time'", "True/False")),
    Case("Timestamp start, integer column", lambda c: c.with_spec(treatment_start=pd.Timestamp("2008-01-01")),
         errors.TypeMismatchError, ("'time'", "integers", "treatment_start", "2008-01-01")),
    Case("date start, integer column", lambda c: c.with_spec(treatment_start=datetime.date(2008, 1, 1)),
         errors.TypeMismatchError, ("'time'", "integers", "the date 2008-01-01")),
    Case("fractional start, integer column", lambda c: c.with_spec(treatment_start=2007.5),
         errors.TypeMismatchError, ("'time'", "integers", "2007.5")),
    Case("text start, integer column", lambda c: c.with_spec(treatment_start="2008"),
         check=lambda r: r.spec.treatment_start == 2008 and _same_weights(c_global(), r)),
    Case("float window, integer column", lambda c: c.with_spec(fit_window=(2000.0, 2007.0)),
         check=lambda r: r.spec.fit_window == (2000, 2007)),
    Case("Period predictor, integer column", lambda c: c.with_spec(predictors=[sc.at("y", pd.Period("2002", "Y"))]),
         errors.TypeMismatchError, ("predictor y(2002)", "annual period")),
    Case("text predictor window, integer column",
         lambda c: c.with_spec(predictors=[sc.mean("x", "2000", "2007"), sc.at("y", "2002"), sc.at("y", 2007)]),
         check=lambda r: _same_weights(c_global(), r)),
    Case("integer start, date column", lambda c: c.fit(_dated(c), _replace(c, fit_window=None, predictors=())),
         errors.TypeMismatchError, ("'time'", "dates", "the integer 2008")),
    Case("date objects for a date column", lambda c: c.fit(_dated(c), _replace(
        c, treatment_start=datetime.date(2008, 1, 1), fit_window=("2000-01-01", datetime.date(2007, 1, 1)),
        predictors=[sc.mean("x", "2000", "2007"), sc.at("y", "2002"), sc.at("y", pd.Timestamp(2007, 1, 1))])),
        check=lambda r: _same_weights(c_global(), r)),
    Case("naive date, time-zone column", lambda c: c.fit(
        c.df.assign(time=pd.to_datetime(c.df["time"].astype(str) + "-01-01").dt.tz_localize("UTC")),
        _replace(c, treatment_start=pd.Timestamp("2008-01-01"), fit_window=None, predictors=())),
        errors.TypeMismatchError, ("'time'", "time zone UTC", "2008-01-01")),
    Case("in-time fake start as text", lambda c: sc.in_time_placebo(c.res, fake_start="2005", data=c.df),
         check=lambda r: r.fake_starts == (2005,)),
    Case("in-time fake start as a date", lambda c: sc.in_time_placebo(c.res, fake_start=pd.Timestamp("2005-01-01")),
         errors.TypeMismatchError, ("'time'", "integers", "fake_start")),
    Case("standard_specs window of text", lambda c: sc.standard_specs(c.df, c.spec, fit_windows=[("2001", "2007")]),
         check=lambda specs: "3 lags, fit 2001-2007" in specs),
    Case("standard_specs window of dates", lambda c: sc.standard_specs(
        c.df, c.spec, fit_windows=[(pd.Timestamp("2001-01-01"), pd.Timestamp("2007-01-01"))]),
        errors.TypeMismatchError, ("'time'", "integers", "fit_windows start")),
    Case("cross-validation window of dates", lambda c: sc.cross_validate_predictor_weights(
        c.df, c.spec, training_predictors=c.spec.predictors,
        validation_window=(pd.Timestamp("2004-01-01"), pd.Timestamp("2007-01-01"))),
        errors.TypeMismatchError, ("'time'", "integers", "fit_window[0]")),
]

# -- units: type mismatches, duplicates, unknown names ----------------------------------------


def _coded(c):
    codes = {unit: 340400 + i for i, unit in enumerate(sorted(c.df["unit"].unique()))}
    return c.df.assign(unit=c.df["unit"].map(codes)), codes


UNITS = [
    Case("tuple unit identifiers",
         lambda c: c.fit(c.df.assign(unit=c.df["unit"].map(lambda u: (u, 1))), _replace(c, treated=("T", 1))),
         errors.NonNumericError, ("column 'unit'", "tuple", "text or numbers")),
    Case("treated as text, integer units",
         lambda c: c.fit(_coded(c)[0], _replace(c, treated=str(_coded(c)[1]["T"]))), errors.TypeMismatchError,
         ("column 'unit' holds integers", "the treated unit was given as the text '340405'", "give it as 340405")),
    Case("donor as text, integer units",
         lambda c: c.fit(_coded(c)[0], _replace(c, treated=340405, donors=[340400, "340401", 340402])),
         errors.TypeMismatchError, ("'unit'", "integers", "donor", "the text '340401'")),
    Case("excluded unit as text, integer units",
         lambda c: c.fit(_coded(c)[0], _replace(c, treated=340405, exclude=["340401"])),
         errors.TypeMismatchError, ("'unit'", "integers", "excluded unit", "'340401'")),
    Case("treated as integer, text units", lambda c: c.with_spec(treated=7), errors.TypeMismatchError,
         ("column 'unit' holds text", "the integer 7")),
    Case("unknown excluded unit", lambda c: c.with_spec(exclude=["Atlantis"]), errors.DonorPoolError,
         ("excluded unit", "'Atlantis'")),
    Case("unknown treated among several", lambda c: c.with_spec(treated=["T", "Atlantis"]), errors.SpecError,
         ("treated unit", "'Atlantis'")),
    Case("treated listed twice", lambda c: _replace(c, treated=["T", "T"]), errors.SpecError,
         ("treated", "'T'", "more than once")),
    Case("treated empty", lambda c: _replace(c, treated=[]), errors.SpecError, ("treated is empty",)),
    Case("treated as a set is ordered", lambda c: c.with_spec(treated={"T", "A"}),
         check=lambda r: list(r) == ["A", "T"]),
    Case("donors as text", lambda c: _replace(c, donors="ABCD"), errors.DonorPoolError, ("donors", "'ABCD'")),
    Case("donor pool for a unit not treated", lambda c: _replace(c, donors={"T": ["A", "B"], "Q": ["C", "D"]}),
         errors.DonorPoolError, ("'Q'", "not treated")),
    Case("unit column of text and numbers",
         lambda c: c.fit(c.df.assign(unit=c.df["unit"].astype(object).where(c.df["unit"] != "A", 3))),
         errors.NonNumericError, ("'unit'", "the text", "the integer 3")),
]

# -- frames: shape and index of the data -------------------------------------------------------
FRAMES = [
    Case("indexed by unit and time", lambda c: c.fit(c.df.set_index(["unit", "time"])),
         check=lambda r: _same_weights(c_global(), r)),
    Case("indexed by time and unit", lambda c: c.fit(c.df.set_index(["time", "unit"])),
         check=lambda r: _same_weights(c_global(), r)),
    Case("rows in any order", lambda c: c.fit(c.df.sample(frac=1.0, random_state=5)),
         check=lambda r: _same_weights(c_global(), r)),
    Case("empty frame", lambda c: c.fit(c.df.iloc[:0]), errors.PanelError, ("no rows",)),
    Case("a column twice", lambda c: c.fit(pd.concat([c.df, c.df[["x"]]], axis=1)), errors.PanelError,
         ("'x'", "more than once")),
    Case("a numpy array", lambda c: c.fit(c.df.to_numpy()), errors.PanelError, ("DataFrame", "ndarray")),
    Case("unit and time the same column", lambda c: c.fit(spec=_replace(c, unit="time")), errors.PanelError,
         ("'time'", "two different columns")),
    Case("outcome column names a list", lambda c: _replace(c, outcome=["y"]), errors.ArgumentError,
         ("outcome", "single name")),
]

# -- numbers: degenerate panels get correct, finite answers -------------------------------------


def _exact_panel(c, effect=1.0, twin=False):
    rng = np.random.default_rng(4)
    donors = rng.normal(size=(6, 4)).cumsum(axis=0) + 5.0
    if twin:
        donors = np.column_stack([donors, donors[:, 1]])
    treated = donors[:, :2].mean(axis=1)
    treated[4:] += effect
    Y = np.column_stack([treated, donors])
    return pd.DataFrame([{"unit": f"u{j}", "time": 2000 + t, "y": Y[t, j]}
                         for j in range(Y.shape[1]) for t in range(Y.shape[0])])


def _exact_fit(c, **kwargs):
    spec = sc.Spec(outcome="y", treated="u0", treatment_start=2004)
    return c.fit(_exact_panel(c, **kwargs), spec)


def _finite(table):
    return bool(np.all(np.isfinite(table.select_dtypes("number").to_numpy())))


NUMBERS = [
    Case("outcome beyond 1e150", lambda c: c.fit(c.df.assign(y=c.df["y"] * 1e300)), errors.NonFiniteError,
         ("column 'y'", "overflow", "rescale")),
    Case("predictor beyond 1e150", lambda c: c.fit(c.df.assign(x=c.df["x"] * -1e200)), errors.NonFiniteError,
         ("column 'x'", "overflow", "rescale")),
    Case("outcome below 1e-150", lambda c: c.fit(c.df.assign(y=c.df["y"] * 1e-200)), errors.NonFiniteError,
         ("column 'y'", "underflow", "rescale")),
    Case("outcome at 1e140 is fitted", lambda c: c.fit(c.df.assign(y=c.df["y"] * 1e140)),
         check=lambda r: np.isfinite(r.loss_v) and np.allclose(r.weights, c_global().res.weights, atol=1e-6)),
    Case("exact pre-fit with an effect", lambda c: sc.placebo_test(_exact_fit(c)),
         check=lambda p: p.p_value == 1 / len(p.units) and _finite(p.table)),
    Case("exact fit throughout", lambda c: sc.placebo_test(_exact_fit(c, effect=0.0)),
         check=lambda p: p.p_value == 1.0 and _finite(p.table)),
    Case("identical donors in a placebo run", lambda c: sc.placebo_test(_exact_fit(c, twin=True)),
         check=lambda p: _finite(p.table) and p.table["ratio"].min() == 0.0 and p.p_value >= 1 / len(p.units)),
    Case("period p-values of an exact fit", lambda c: sc.placebo_test(_exact_fit(c)).period_p_values,
         check=lambda t: _finite(t) and t["p_value"].min() >= 1 / 5),
    Case("cut-off table of an exact fit", lambda c: sc.placebo_test(_exact_fit(c, twin=True)).cutoff_table,
         check=lambda t: _finite(t) and (t["p_value"] > 0).all()),
    Case("predictor constant among the placebo units", lambda c: sc.placebo_test(c.fit(
        c.df.assign(flag=np.where(c.df["unit"] == "T", 1.0, 0.0)),
        _replace(c, predictors=[*c.spec.predictors, sc.at("flag", 2003)]))),
        check=lambda p: _finite(p.table)),
    Case("predictor constant without the dropped donor", lambda c: sc.leave_one_out(c.fit(
        c.df.assign(flag=np.where(c.df["unit"] == c_global().res.weights.idxmax(), 1.0, 0.0)),
        _replace(c, predictors=[*c.spec.predictors, sc.at("flag", 2003)]))),
        check=lambda r: _finite(r.table)),
    Case("in-time ratio of an exact fit", lambda c: sc.in_time_placebo(_exact_fit(c), fake_start=2002),
         check=lambda r: np.isfinite(r.real_ratio) and _finite(r.table.drop(columns="predictors"))),
    Case("pooled test of exact fits", lambda c: sc.pooled_test(c.fit(
        _exact_panel(c), sc.Spec(outcome="y", treated=["u0", "u1"], treatment_start=2004))),
        check=lambda r: np.all(np.isfinite(r.null)) and r.p_value >= 1 / (r.n_draws + 1)),
]

# -- checkpoints ---------------------------------------------------------------------------------
CHECKPOINTS = [
    Case("placebo checkpoint_dir is a file", lambda c: sc.placebo_test(c.res, checkpoint_dir=c.file),
         errors.ArgumentError, ("checkpoint_dir", "a-file.txt", "is a file")),
    Case("leave_one_out checkpoint_dir is a file", lambda c: sc.leave_one_out(c.res, checkpoint_dir=c.file),
         errors.ArgumentError, ("checkpoint_dir", "is a file")),
    Case("in_time checkpoint_dir is a file",
         lambda c: sc.in_time_placebo(c.res, fake_start=2005, data=c.df, checkpoint_dir=c.file),
         errors.ArgumentError, ("checkpoint_dir", "is a file")),
    Case("pooled checkpoint_dir is a file", lambda c: sc.pooled_test(c.two, checkpoint_dir=c.file),
         errors.ArgumentError, ("checkpoint_dir", "is a file")),
    Case("speccurve checkpoint_dir is a file",
         lambda c: sc.specification_curve(c.df, [c.spec], checkpoint_dir=c.file), errors.ArgumentError,
         ("checkpoint_dir", "is a file")),
    Case("checkpoint_dir below a file", lambda c: sc.placebo_test(c.res, checkpoint_dir=c.file / "sub"),
         errors.CheckpointError, ("cannot create checkpoint directory", "sub")),
    Case("checkpoint_dir of the wrong type", lambda c: sc.placebo_test(c.res, checkpoint_dir=3),
         errors.ArgumentError, ("checkpoint_dir=3", "directory path")),
    Case("checkpoint of another job", lambda c: (
        sc.placebo_test(c.res, checkpoint_dir=c.tmp / "job"),
        sc.placebo_test(c.res, reuse_predictor_weights=True, checkpoint_dir=c.tmp / "job")),
        errors.CheckpointError, ("another job",)),
    Case("leave_one_out and in-time resume", lambda c: [
        (sc.leave_one_out(c.res, checkpoint_dir=c.tmp / "loo"),
         sc.leave_one_out(c.res, checkpoint_dir=c.tmp / "loo").run.n_computed)[1],
        (sc.in_time_placebo(c.res, fake_start=2005, data=c.df, checkpoint_dir=c.tmp / "it"),
         sc.in_time_placebo(c.res, fake_start=2005, data=c.df, checkpoint_dir=c.tmp / "it").run.n_computed)[1]],
        check=lambda computed: computed == [0, 0]),
]

# -- dataset readers -----------------------------------------------------------------------------


def _write(c, name, content: bytes):
    path = c.tmp / name
    path.write_bytes(content)
    return path


def _zip_without_workbook(c):
    path = c.tmp / "not-a-workbook.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


DATASETS = [
    Case("reader given None", lambda c: sc.datasets.read_csmar_gdp(None), errors.DataBuildError,
         ("path", "NoneType")),
    Case("reader given a directory", lambda c: sc.datasets.read_citydb(c.tmp), errors.DataBuildError,
         ("is a directory",)),
    Case("reader given a missing file", lambda c: sc.datasets.read_csmar_population(c.tmp / "none.csv"),
         errors.DataBuildError, ("none.csv", "not found")),
    Case("reader given an empty file", lambda c: sc.datasets.read_citydb(_write(c, "empty.csv", b"")),
         errors.DataBuildError, ("empty.csv", "cannot read")),
    Case("reader given binary bytes", lambda c: sc.datasets.read_csmar_cpi(_write(c, "noise.csv", bytes(range(256)))),
         errors.SynthControlError, ("noise.csv",)),
    Case("reader given a zip that is not a workbook", lambda c: sc.datasets.read_csmar_gdp(_zip_without_workbook(c)),
         errors.DataBuildError, ("not-a-workbook.xlsx", "not an Excel workbook")),
]

CATALOGUE = [(group, case) for group, cases in (
    (A, ARGUMENTS), (P, PERIODS), (U, UNITS), (F, FRAMES), (N, NUMBERS), (C, CHECKPOINTS), (D, DATASETS)
) for case in cases]

_CONTEXT: list = []


def c_global() -> Context:
    """The shared context (for checks that compare with the reference fit)."""
    return _CONTEXT[0]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Context:
    context = Context(tmp_path_factory.mktemp("adversarial"))
    _CONTEXT[:] = [context]
    return context


@pytest.mark.parametrize("group, case", CATALOGUE, ids=[f"{g}: {c.name}" for g, c in CATALOGUE])
def test_catalogue(ctx, group, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sc.SynthControlWarning)
        if case.error is None:
            assert case.check(case.call(ctx)), case.name
            return
        assert issubclass(case.error, sc.SynthControlError)
        pattern = "(?s)" + "".join(f"(?=.*{re.escape(name)})" for name in case.names)
        with pytest.raises(case.error, match=pattern):
            case.call(ctx)


def test_every_class_has_several_cases():
    sizes = {group: sum(g == group for g, _ in CATALOGUE) for group in (A, P, U, F, N, C, D)}
    assert min(sizes.values()) >= 6, sizes


def test_a_missing_post_period_of_the_treated_unit_is_named(ctx):
    df = ctx.df.copy()
    df.loc[(df["unit"] == "T") & (df["time"] == 2010), "y"] = np.nan
    with pytest.warns(sc.MissingOutcomeWarning, match=r"(?s)'T'.*\[2010\]"):
        result = ctx.fit(df)
    assert 2010 not in result.path.index and _finite(result.path)


def test_a_one_period_fit_window_is_named(ctx):
    with pytest.warns(sc.ShortPrePeriodWarning, match="single period 2000"):
        ctx.with_spec(treatment_start=2001, fit_window=None, predictors=())


def test_a_period_no_unit_has_is_not_warned_about(ctx):
    last = ctx.df["time"].max()
    df = ctx.df.assign(y=ctx.df["y"].where(ctx.df["time"] != last))  # the series ends a period early
    with warnings.catch_warnings():
        warnings.simplefilter("error", sc.MissingOutcomeWarning)
        result = ctx.fit(df)
    assert last not in result.path.index


def test_looking_up_what_a_result_or_panel_does_not_hold_names_it(smoking):
    spec = sc.Spec(outcome="cigsale", treated=["California", "Utah"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1988)])
    results = sc.fit(smoking, spec, n_random_starts=5)
    with pytest.raises(sc.NotFoundError, match="'Texas' is not a treated unit.*California"):
        results["Texas"]
    with pytest.raises(KeyError):  # still a KeyError for mapping code
        results["Texas"]
    panel = sc.Panel.from_frame(smoking, unit="unit", time="time", variables=["cigsale"])
    with pytest.raises(sc.MissingColumnError, match="no variable 'beer'"):
        panel.matrix("beer", [1970], ["Utah"])
    with pytest.raises(sc.NotFoundError, match="no period \\[1960\\]"):
        panel.matrix("cigsale", [1960, 1970], ["Utah"])
    with pytest.raises(sc.NotFoundError, match="no unit \\['Atlantis'\\]"):
        panel.matrix("cigsale", [1970], ["Utah", "Atlantis"])
