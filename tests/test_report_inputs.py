"""The arguments of sc.write_report and sc.study.study_of: what they accept, and the
errors that name the argument at fault; and a report of fits with one pre-treatment
period, which has no fit-quality yardstick."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol.study import fit_quality, study_of
from conftest import TREATMENT_START, make_panel

SPEC = sc.Spec(outcome="y", treated="T", treatment_start=TREATMENT_START, fit_window=(2000, 2007),
               predictors=[sc.mean("x", 2000, 2007), sc.at("y", 2002), sc.at("y", 2007)])


@pytest.fixture(scope="module")
def fitted():
    result = sc.fit(make_panel(), SPEC)
    return result, sc.placebo_test(result)


def test_one_inference_result_alone_or_none(fitted, tmp_path):
    result, placebo = fitted
    alone = pd.read_csv(sc.write_report(result, tmp_path / "alone", inference=placebo)["results"])
    listed = pd.read_csv(sc.write_report(result, tmp_path / "listed", inference=(p for p in [placebo]))["results"])
    assert alone.p_value.tolist() == listed.p_value.tolist() == [placebo.p_value]
    none = pd.read_csv(sc.write_report(result, tmp_path / "none", inference=None)["results"])
    assert np.isnan(none.p_value[0])
    assert study_of(result, inference=placebo).estimates[0].p_value == placebo.p_value


@pytest.mark.parametrize("inference, fragment", [
    ([None], r"inference\[0\] is None, not an inference result"),
    (["placebo"], r"inference\[0\] is the text 'placebo'"),
    ("placebo", r"inference must be None, an inference result .* got the text 'placebo'"),
    ({"placebo": 1}, r"inference must be .* got a dict"),
    (3, r"inference must be .* got the integer 3"),
])
def test_inference_that_is_no_result_is_refused(fitted, tmp_path, inference, fragment):
    result, placebo = fitted
    bad = [placebo, *inference] if isinstance(inference, list) else inference
    fragment = fragment.replace(r"\[0\]", r"\[1\]") if isinstance(inference, list) else fragment
    with pytest.raises(sc.ArgumentError, match=fragment):
        sc.write_report(result, tmp_path, inference=bad)
    assert not tmp_path.joinpath("results.csv").exists()


@pytest.mark.parametrize("out, fragment", [
    (None, "out must be the path of the output folder .* got None"),
    (3, "out must be the path .* got the integer 3"),
    (["a"], "out must be the path .* got a list"),
])
def test_an_output_that_is_no_path_is_refused(fitted, out, fragment):
    with pytest.raises(sc.ArgumentError, match=fragment):
        sc.write_report(fitted[0], out)


@pytest.mark.parametrize("title", [3, "", "  ", ["a"]])
def test_a_title_that_is_no_text_is_refused(fitted, tmp_path, title):
    with pytest.raises(sc.ArgumentError, match="title must be None .* or a non-blank text"):
        sc.write_report(fitted[0], tmp_path, title=title)


def test_other_arguments_are_checked(fitted, tmp_path):
    with pytest.raises(sc.ArgumentError, match="overwrite="):
        sc.write_report(fitted[0], tmp_path, overwrite="yes")
    with pytest.raises(sc.ArgumentError, match="result must be a StudyResult .* got a DataFrame"):
        sc.write_report(make_panel(), tmp_path)


def test_inference_and_title_are_for_fits_only(fitted, tmp_path):
    result, placebo = fitted
    study = study_of(result, inference=[placebo])
    with pytest.raises(sc.ArgumentError, match="inference given with a StudyResult"):
        sc.write_report(study, tmp_path, inference=placebo)
    with pytest.raises(sc.ArgumentError, match="title given with a StudyResult"):
        sc.write_report(study, tmp_path, title="Another")
    assert sc.write_report(study, tmp_path, inference=None)["results"].is_file()


def test_one_pre_treatment_period_is_not_judged_and_warns_nothing(tmp_path):
    one = dataclasses.replace(SPEC, treatment_start=2001, fit_window=None, predictors=())
    result = sc.fit(make_panel(), one)
    assert fit_quality(result)[1] == "" and np.isnan(fit_quality(result)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Degrees of freedom <= 0" among them
        written = sc.write_report(result, tmp_path, inference=[sc.placebo_test(result)])
    row = pd.read_csv(written["results"], keep_default_na=False).iloc[0]
    assert row.fit_ratio == "" and row.fit_quality == "" and row.identified in ("yes", "no")
    assert "('-': a single pre-treatment period" in written["markdown"].read_text(encoding="utf-8")
