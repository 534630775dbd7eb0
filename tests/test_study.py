"""Running a study: shared placebo fits, fit-quality labels, tidy outputs and the
report text generated from the numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol.config import load_config
from synthcontrol.report import write_report
from synthcontrol.inference import placebo_tests
from synthcontrol.study import fit_quality, run_study

DONORS = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming"]

STUDY = """
[study]
title = "Small smoking study"

[data]
dataset = "smoking"
unit = "unit"
time = "time"

[design]
treated = ["California", "Kentucky"]
treatment_start = 1989
fit_window = [1970, 1988]

[pools.west]
units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming"]

[[outcomes]]
column = "cigsale"
predictors = [{ variable = "cigsale", at = 1975 }, { variable = "cigsale", at = 1987 }]

[estimators]
names = ["classic", "sdid"]

[inference]
leave_one_out = "headline"
in_time = "headline"
in_time_start = 1985
conformal = "headline"
n_jobs = 1

[speccurve]
estimators = ["classic"]
n_lags = 2

[[sensitivity]]
name = "start 1988"
treatment_start = 1988
treated = ["California"]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "study.toml"
    path.write_text(STUDY, encoding="utf-8")
    return run_study(load_config(path))


def test_shared_placebos_equal_separate_placebo_tests():
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=DONORS)
    fits = sc.fit(sc.datasets.load_smoking(), spec)
    shared = placebo_tests(fits)
    for treated, result in fits.items():
        alone = sc.placebo_test(result)
        assert shared[treated].units == alone.units
        np.testing.assert_array_equal(shared[treated].gap_matrix, alone.gap_matrix)
        np.testing.assert_array_equal(shared[treated].loss_v, alone.loss_v)
        assert shared[treated].p_value == alone.p_value
        pd.testing.assert_frame_equal(shared[treated].table, alone.table)


def test_reused_predictor_weights_are_not_shared():
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.mean("retprice", 1980, 1988)], donors=DONORS)
    fits = sc.fit(sc.datasets.load_smoking(), spec)
    shared = placebo_tests(fits, reuse_predictor_weights=True)
    for treated, result in fits.items():
        alone = sc.placebo_test(result, reuse_predictor_weights=True)
        np.testing.assert_array_equal(shared[treated].gap_matrix, alone.gap_matrix)
        assert shared[treated].reused_predictor_weights


def test_placebo_tests_warn_about_flagged_placebos_ranking_above():
    smoking = sc.datasets.load_smoking()
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=DONORS)
    tests = placebo_tests(sc.fit(smoking, spec))
    table = tests["Georgia"].table
    above = table.index[1:][table["ratio"].iloc[1:] >= table["ratio"].iloc[0]]
    assert len(above), "some placebo ranks at or above Georgia"
    flags = pd.DataFrame({"unit": [above[0]], "period": [1995], "column": ["cigsale"], "kind": ["jump"]})
    with pytest.warns(sc.AuditWarning, match=repr(above[0])):
        placebo_tests(sc.fit(smoking, spec), audit=flags)


def test_fit_quality_is_pre_rmspe_over_the_smaller_spread():
    spec = sc.Spec(outcome="cigsale", treated="Kentucky", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975)], donors=DONORS)
    result = sc.fit(sc.datasets.load_smoking(), spec)
    outcome = result.design.outcome[result.design.pre_mask]
    across = np.sqrt(np.mean(outcome.std(axis=1, ddof=1) ** 2))
    over_time = outcome[:, 0].std(ddof=1)
    ratio, label = fit_quality(result, (0.25, 0.5))
    assert ratio == pytest.approx(result.pre_rmspe / min(across, over_time))
    assert label == "poor" and ratio > 0.5  # Kentucky smokes far more than any western state
    assert fit_quality(result, (ratio * 2, ratio * 4))[1] == "good"
    assert fit_quality(result, (ratio / 2, ratio * 2))[1] == "fair"


def test_results_cover_every_fit(study):
    results = study.results
    main = results[results.analysis == "main"]
    assert set(zip(main.treated_code, main.estimator)) == {
        ("California", "classic"), ("Kentucky", "classic"), ("California", "sdid"), ("Kentucky", "sdid")}
    sensitivity = results[results.analysis == "start 1988"]
    assert sensitivity.treated_code.tolist() == ["California"] and (sensitivity.treatment_start == 1988).all()
    assert results.p_value.notna().all()  # placebo = "all" covers estimators and sensitivities
    classic = main[main.estimator == "classic"]
    assert classic[["loo_min", "in_time_effect", "conformal_p", "pooled_p"]].notna().all().all()
    assert main[main.estimator == "sdid"].loo_min.isna().all()


def test_weights_and_paths_are_tidy(study):
    weights = study.weights
    sums = weights.groupby(["analysis", "treated_code", "pool", "estimator"]).weight.sum()
    assert len(sums) == len(study.results)
    assert set(weights.donor_code) == set(DONORS)
    paths = study.paths
    assert set(paths.columns) >= {"period", "observed", "synthetic", "gap"}
    np.testing.assert_allclose(paths.observed - paths.synthetic, paths.gap, atol=1e-9)


def test_report_text_follows_the_numbers(study, tmp_path):
    written = write_report(study, tmp_path)
    report = written["markdown"].read_text(encoding="utf-8")
    results = study.results.set_index(["analysis", "treated_code", "estimator"])
    kentucky = results.loc[("main", "Kentucky", "classic")]
    california = results.loc[("main", "California", "classic")]
    assert kentucky.fit_quality == "poor" and "The fit is poor" in report
    assert california.fit_quality != "poor"
    assert f"placebo p = {california.p_value:.2f}" in report
    assert "## Other estimators" in report and "## Specification curves" in report
    assert "start 1988" in report
    assert all(path.is_file() for path in written.values())
    html = written["html"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<table" in html and "<img" in html


def test_placebo_fits_are_shared_by_one_mechanism():
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=DONORS)
    fits = sc.fit(sc.datasets.load_smoking(), spec)
    shared = placebo_tests(fits)
    assert {test.run.n_computed for test in shared.values()} == {len(DONORS)}  # not 2 x 6
    pooled = sc.pooled_test(fits)
    for test, alone in zip(pooled.placebos, shared.values()):
        np.testing.assert_array_equal(test.gap_matrix, alone.gap_matrix)
    with pytest.raises(sc.SpecError, match="twice"):
        placebo_tests([fits["California"], fits["California"]])


def test_a_report_for_one_fit(tmp_path):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=DONORS)
    result = sc.fit(sc.datasets.load_smoking(), spec)
    placebo, in_time = sc.placebo_test(result), sc.in_time_placebo(result, fake_start=1985)
    written = sc.write_report(result, tmp_path / "fit", inference=[placebo, in_time])
    row = pd.read_csv(written["results"]).iloc[0]
    assert row.treated_code == "California" and row.n_donors == len(DONORS)
    assert row.effect == pytest.approx(result.average_effect, rel=1e-12)
    assert row.p_value == pytest.approx(placebo.p_value) and row.in_time_effect == pytest.approx(in_time.fake_effect)
    assert np.isnan(row.loo_min)  # not given, not run
    report = written["markdown"].read_text(encoding="utf-8")
    assert f"placebo p = {placebo.p_value:.2f}" in report and "fake start in 1985" in report
    assert "sc.write_report" in report and (tmp_path / "fit" / "headline_california.png").is_file()
    bare = sc.write_report(result, tmp_path / "bare")
    assert "no placebo test was run" in bare["markdown"].read_text(encoding="utf-8")
    sdid = sc.write_report(sc.fit(sc.datasets.load_smoking(), spec, estimator="sdid"), tmp_path / "sdid")
    assert "| California | cigsale | donors |" in sdid["markdown"].read_text(encoding="utf-8")
    with pytest.raises(sc.SpecError, match="belongs to no fit"):
        sc.write_report(result, tmp_path / "other", inference=[sc.placebo_test(sc.fit(
            sc.datasets.load_smoking(), dataclasses.replace(spec, treated="Georgia")))])


def test_a_report_for_several_treated_units_with_their_pooled_test(tmp_path):
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=DONORS)
    fits = sc.fit(sc.datasets.load_smoking(), spec)
    pooled = sc.pooled_test(fits)
    written = sc.write_report(fits, tmp_path, inference=[*pooled.placebos, pooled], title="Two states")
    results = pd.read_csv(written["results"])
    assert results.treated_code.tolist() == ["California", "Georgia"]
    assert results.pooled_p.tolist() == pytest.approx([pooled.p_value] * 2)
    html = written["html"].read_text(encoding="utf-8")
    assert "<title>Two states</title>" in html and 'href="#reading_the_results"' in html


def test_the_report_escapes_html_in_names(tmp_path):
    frame = sc.datasets.load_smoking()
    frame["unit"] = frame["unit"].replace({"California": "<b>California</b>"})
    spec = sc.Spec(outcome="cigsale", treated="<b>California</b>", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975)], donors=DONORS)
    html = sc.write_report(sc.fit(frame, spec), tmp_path)["html"].read_text(encoding="utf-8")
    assert "<b>California</b>" not in html and "&lt;b&gt;California&lt;/b&gt;" in html
