"""Running a study: shared placebo fits, fit-quality labels, tidy outputs and the
report text generated from the numbers."""

from __future__ import annotations

import dataclasses
import math
import re

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


def prose(report: str) -> list[str]:
    """The sentences of a Markdown report outside tables, figures, headings and lists."""
    lines = [line for line in report.splitlines() if line.strip() and not line.startswith(("|", "!", "*", "#", "- "))]
    return [s for line in lines for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]


def table_row(report: str, *cells: str) -> str:
    """The one Markdown table row that starts with ``cells``."""
    (row,) = [line for line in report.splitlines() if line.startswith("| " + " | ".join(cells) + " |")]
    return row


def test_report_text_follows_the_numbers(study, tmp_path):
    written = write_report(study, tmp_path)
    report = written["markdown"].read_text(encoding="utf-8")
    results = study.results.set_index(["analysis", "treated_code", "estimator"])
    kentucky = results.loc[("main", "Kentucky", "classic")]
    california = results.loc[("main", "California", "classic")]
    assert re.findall(r"^## (.+)$", report, flags=re.M)[:2] == ["The answer", "Figures"]  # the answer first
    assert kentucky.fit_quality == "poor" and "| poor |" in table_row(report, "Kentucky", "cigsale", "west")
    assert california.fit_quality != "poor"
    assert f"| {california.p_value:.2f} |" in table_row(report, "California", "cigsale", "west", "-19.9")
    assert "## Other estimators" in report and "## Specification curves" in report
    assert "start 1988" in report
    sentences = prose(report)
    assert len(sentences) == len(set(sentences)), "a sentence is repeated"
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
    assert f"| {placebo.p_value:.2f} | 6 |" in table_row(report, "California", "cigsale") and "moved back to 1985" in report
    assert "sc.write_report" in report and (tmp_path / "fit" / "paths_donors.png").is_file()
    bare = sc.write_report(result, tmp_path / "bare")
    assert "No in-space placebo test was run" in bare["markdown"].read_text(encoding="utf-8")
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


CLAIMS = """
[study]
title = "Claims, blocks and an audit"
[data]
dataset = "smoking"
unit = "unit"
time = "time"
logs = ["cigsale"]
[audit]
path = "flags.csv"
[design]
treated = ["California", "Georgia", "Iowa"]
treatment_start = 1989
fit_window = [1970, 1988]
[pools.west]
units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas", "Nebraska"]
[[outcomes]]
column = "log_cigsale"
predictors = [{ variable = "log_cigsale", at = 1975 }, { variable = "log_cigsale", at = 1985 }]
[[outcomes]]
column = "retprice"
units = "cents"
fit_window = [1980, 1988]
predictors = [{ variable = "retprice", at = 1980 }, { variable = "retprice", at = 1988 }]
[[claims]]
name = "Sales"
statement = "The tax cut cigarette sales."
outcomes = ["log_cigsale"]
direction = "decrease"
[[claims]]
name = "Smuggling"
statement = "The tax moved sales across state lines."
note = "No series of cross-border sales exists in these data."
[blocks]
treated = { "all three" = ["California", "Georgia", "Iowa"] }
estimators = ["sdid", "sc"]
n_replications = 40
[fit]
n_random_starts = 2
[inference]
pooled_statistic = "fisher"
leave_one_out = "none"
conformal = "none"
n_jobs = 1
[report]
unit_words = ["state", "states"]
[[sensitivity]]
name = "flags kept"
description = "flagged donors kept"
drop_audited = false
outcomes = ["log_cigsale"]
"""

AUDIT_FLAGS = pd.DataFrame(
    [("Utah", 1998, "cigsale", "jump", "exclude"), ("Georgia", 1980, "cigsale", "jump", "exclude"),
     ("Montana", 1984, "retprice", "jump", "exclude")],
    columns=["unit", "period", "column", "kind", "action"])


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    folder = tmp_path_factory.mktemp("claims")
    AUDIT_FLAGS.to_csv(folder / "flags.csv", index=False)
    (folder / "study.toml").write_text(CLAIMS, encoding="utf-8")
    with pytest.warns(sc.AuditWarning, match="audit warning"):  # one per task, summarising its fits'
        study = run_study(load_config(folder / "study.toml"))
    assert any("'Georgia'" in w for tr in study.task_results for w in tr.audit_warnings)  # a flagged treated unit
    return study, write_report(study, folder / "out")


def test_every_row_has_a_p_value_and_blocks_have_their_own(claims):
    study, _ = claims
    results = study.results
    assert results.p_value.between(0, 1, inclusive="right").all()
    blocks = results[results.scope == "block"]
    assert set(blocks.estimator) == {"sdid", "sc"} and set(blocks.treated_code) == {"all three"}
    donors = blocks.n_donors.iloc[0]
    draws = min(40, math.comb(donors, 3))  # fewer distinct placebo blocks than draws: each once
    assert (blocks.n_placebos == draws).all() and (blocks.p_value >= 1 / (draws + 1)).all()
    assert (blocks.ci_lower < blocks.effect).all() and (blocks.effect < blocks.ci_upper).all()
    block = study.blocks[0]
    below = (block.result.placebo_estimates <= block.result.average_effect).sum()
    assert blocks.p_negative.iloc[0] == pytest.approx((1 + below) / (draws + 1))


def test_effects_in_per_cent_and_the_change_since_the_last_pre_period(claims):
    study, _ = claims
    results = study.results
    units = results[results.scope == "unit"]
    logged = units.outcome == "log_cigsale"
    np.testing.assert_allclose(units.effect_pct[logged], np.expm1(units.effect[logged]) * 100)
    assert units.effect_pct[~logged].isna().all()
    np.testing.assert_allclose(units.change, units.effect - units.gap_last_pre)
    california = study.task_results[0].units[0].fit
    assert units.gap_last_pre.iloc[0] == pytest.approx(california.path["gap"].loc[1988])


def test_pooled_tests_and_identification_are_in_results(claims):
    study, _ = claims
    main = study.results.query("analysis == 'main' and scope == 'unit'")
    assert (main.pooled_statistic == "fisher").all()
    assert main[["pooled_p", "pooled_p_negative", "pooled_p_positive"]].notna().all().all()
    for e in study.estimates:
        table = e.result.placebo.table
        ratio = (table.pre_rmspe.iloc[0] / table.pre_rmspe.iloc[1:].median()) ** 2
        assert e.pre_mspe_ratio == pytest.approx(ratio, rel=1e-9)
        assert e.identified == ("yes" if ratio <= 10 or e.fit_quality == "good" else "no")


def test_the_audit_is_applied_and_reported(claims):
    study, written = claims
    report = written["markdown"].read_text(encoding="utf-8")
    main = next(t for t in study.config.tasks if t.is_main and t.outcome.column == "log_cigsale")
    assert "Utah" not in main.spec.donors and "## Data audit" in report
    assert "Utah" in table_row(report, "log_cigsale", "west", "1970-1988")  # listed among the dropped donors
    assert "- Georgia: log_cigsale 1980 jump" in report  # the treated unit's own flag
    assert sum(tr.audit_warnings != () for tr in study.task_results) >= 1


def test_the_report_opens_with_the_claims(claims):
    _, written = claims
    report = written["markdown"].read_text(encoding="utf-8")
    answer = report.split("## Figures")[0]
    assert "### Sales" in answer and "Claim: The tax cut cigarette sales." in answer
    assert "one-sided test of the claimed decrease" in answer and "Estimated together (sdid): all three" in answer
    assert "Not measured: No series of cross-border sales exists in these data." in answer
    assert "between a state and its synthetic control" in answer and "city" not in report
    assert re.search(r"Verdict: (no detectable effect on sales yet|the joint tests detect an effect)", answer)
    sentences = prose(report)
    assert len(sentences) == len(set(sentences)), "a sentence is repeated"


MINIMAL = """
[study]
title = "Repeats and blanks"
[data]
dataset = "smoking"
unit = "unit"
time = "time"
[design]
treated = ["California", "Georgia"]
treatment_start = 1989
fit_window = [1970, 1988]
[pools.west]
units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming"]
[[outcomes]]
column = "cigsale"
predictors = [{ variable = "cigsale", at = 1975 }, { variable = "cigsale", at = 1988 }]
"""
SENSITIVITY = '[[sensitivity]]\nname = "{}"\ntreatment_start = {}\n'
CLAIM = '[[claims]]\nname = "{}"\nstatement = "{}"\n'


@pytest.mark.parametrize("old, new, fragment", [
    # a name given twice would give results.csv rows or report sections nothing to tell them apart by
    ("", SENSITIVITY.format("early", 1988) + SENSITIVITY.format("early", 1987),
     "key 'sensitivity[1].name' = 'early' names another sensitivity analysis too ('sensitivity[0].name')"),
    ("", CLAIM.format("Sales", "fell") + CLAIM.format("Sales", "rose"),
     "key 'claims[1].name' = 'Sales' names another claim too"),
    ("", '[[outcomes]]\ncolumn = "retprice"\nlabel = "cigsale"\npredictors = [{ variable = "retprice", at = 1980 }]\n',
     "key 'outcomes[1].label' = 'cigsale' names another outcome too ('outcomes[0].label')"),
    # a unit, pool, estimator or window listed twice (sc.Spec refuses a repeated treated unit)
    ("", '[blocks]\ntreated = { b = ["California", "Georgia", "Georgia"] }\n',
     "key 'blocks.treated.b' lists unit 'Georgia' twice; list each unit once"),
    ('["California", "Georgia"]', '["California", "California"]', "key 'design.treated' lists unit 'California'"),
    ('"Utah", "Nevada"', '"Utah", "Utah"', "key 'pools.west.units' lists unit 'Utah' twice"),
    ("", '[donors]\nexclude = ["Utah", "Utah"]\n', "key 'donors.exclude' lists unit 'Utah' twice"),
    ("", '[donors]\npools = ["west", "west"]\n', "key 'donors.pools' lists pool 'west' twice"),
    ("", '[estimators]\nnames = ["classic", "sdid", "sdid"]\n', "key 'estimators.names' lists estimator 'sdid'"),
    ("", '[speccurve]\nfit_windows = [[1975, 1988], [1975, 1988]]\n',
     "key 'speccurve.fit_windows' lists window [1975, 1988] twice"),
    ('at = 1988 }', 'at = 1975 }', "key 'outcomes[0].predictors' lists predictor 'cigsale(1975)' twice"),
    ("", CLAIM.format("Sales", "fell") + 'outcomes = ["cigsale", "cigsale"]\n',
     "key 'claims[0].outcomes' lists outcome 'cigsale' twice"),
    # blank names and texts the report prints
    ('title = "Repeats and blanks"', 'title = ""', "key 'study.title' = '' is blank; give it a title"),
    ('title = "Repeats and blanks"', 'title = "  "', "key 'study.title' = '  ' is blank"),
    ("", SENSITIVITY.format(" ", 1988), "key 'sensitivity[0].name' = ' ' is blank"),
    ("", CLAIM.format("", "fell"), "key 'claims[0].name' = '' is blank"),
    ("", CLAIM.format("Sales", ""), "key 'claims[0].statement' = '' is blank; give it a statement"),
    ("[pools.west]", '[pools.""]', """key 'pools.""' = '' is blank"""),
    ("", '[groups.""]\nunits = ["Utah"]\n', """key 'groups.""' = '' is blank"""),
    ("", '[blocks]\ntreated = { "" = ["California", "Georgia"] }\n', """key 'blocks.treated.""' = '' is blank"""),
    ('column = "cigsale"', 'column = "cigsale"\nlabel = ""', "key 'outcomes[0].label' = '' is blank"),
])
def test_repeated_and_blank_names_are_config_errors(tmp_path, old, new, fragment):
    text = MINIMAL + new if not old else MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(sc.ConfigError) as error:
        load_config(path)
    assert fragment in str(error.value)


def test_groups_may_overlap_in_a_unit_list(tmp_path):
    text = MINIMAL.replace('[design]', '[groups.south]\nunits = ["Georgia", "Alabama"]\n[design]').replace(
        '["California", "Georgia"]', '["California", "Georgia", "group:south"]')
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path).main.treated == ("California", "Georgia", "Alabama")


def test_missing_data_in_a_study_names_the_configuration_key(tmp_path):
    frame = sc.datasets.load_smoking()
    frame.loc[(frame.unit == "Utah") & (frame.time == 1980), "cigsale"] = np.nan
    frame.to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "study.toml"
    path.write_text(MINIMAL.replace('dataset = "smoking"', 'path = "data.csv"'), encoding="utf-8")
    with pytest.raises(sc.ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "donor 'Utah' has outcome 'cigsale' missing in period(s) [1980]" in message
    assert "set drop_incomplete = true in [donors]" in message and "drop_incomplete_donors" not in message
    path.write_text(MINIMAL.replace('dataset = "smoking"', 'path = "data.csv"') + "[donors]\ndrop_incomplete = true\n",
                    encoding="utf-8")
    assert "Utah" in load_config(path).tasks[0].spec.donors  # dropped when fitted, with a DroppedDonorsWarning
