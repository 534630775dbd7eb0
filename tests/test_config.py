"""Study configurations: valid files give the Specs the API uses; every error names
the key at fault and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import synthcontrol as sc
from synthcontrol.config import load_config
from synthcontrol.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
YRD = ROOT / "case_studies" / "yrd_twinning.toml"
CALIFORNIA = ROOT / "case_studies" / "california.toml"

BASE = """
[study]
title = "Tiny"

[data]
dataset = "china_cities"
unit = "city_code"
time = "year"
label = "city_en"
flag = "boundary_change"

[groups.assisted]
units = [340400, 341500, 341600, 341100, 341200, 340600, 341300, 340300]

[groups.helpers]
units = [310000, 320100, 320500, 320300, 330100, 330200]

[design]
treated = [340400]
treatment_start = 2022
fit_window = [2005, 2021]

[donors]
pools = ["YRD"]
exclude = ["group:assisted", "group:helpers"]
drop_incomplete = true

[pools.YRD]
column = "province"
values = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]

[[outcomes]]
column = "log_gdp_index"
predictors = [{ variable = "log_gdp_index", at = 2015 }, { variable = "secondary_share", mean = [2005, 2020] }]
"""


CSV_STUDY = """
[study]
title = "From a file"
[data]
path = "data.csv"
unit = "unit"
time = "time"
[design]
treated = ["California"]
treatment_start = 1989
[[outcomes]]
column = "cigsale"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str, new: str) -> str:
    assert old in BASE, old  # the edit must apply, or the test would test nothing
    return BASE.replace(old, new)


def test_base_configuration_gives_the_api_spec(tmp_path):
    config = load_config(write(tmp_path, BASE))
    (task,) = config.tasks
    spec = task.spec
    assert isinstance(spec, sc.Spec)
    assert spec.treated_units == (340400,)
    assert spec.treatment_start == 2022 and spec.fit_window == (2005, 2021)
    assert [p.label for p in spec.predictors] == ["log_gdp_index(2015)", "secondary_share(2005-2020)"]
    assert spec.drop_incomplete_donors


@pytest.mark.parametrize(
    "old, new, fragments",
    [
        ("treatment_start = 2022\n", "", ["design.treatment_start", "missing"]),
        ("treatment_start = 2022", 'treatment_start = "2022"', ["design.treatment_start", "integer"]),
        ("treatment_start = 2022", "treatment_strat = 2022", ["design.treatment_strat", "'treatment_start'"]),
        ("[[outcomes]]", "[[outcome]]", ["'outcome'", "'outcomes'"]),
        ('column = "log_gdp_index"', 'column = "log_gdp_idx"', ["outcomes[0].column", "'log_gdp_index'"]),
        ('pools = ["YRD"]', 'pools = ["YRD+"]', ["donors.pools", "'YRD'"]),
        ("treated = [340400]", "treated = [999999]", ["design.treated", "999999"]),
        ("treated = [340400]", 'treated = ["Huainan"]', ["design.treated", "340400"]),
        ("treated = [340400]", 'treated = ["340400"]', ["design.treated", "'city_code' holds integers", "given as text", "write 340400"]),
        ('time = "year"', 'time = "city_en"', ["data.time", "'city_en'", "integers"]),
        ('"group:helpers"', '"group:helper"', ["donors.exclude", "group:helpers"]),
        ('values = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]', 'values = ["Shanghia"]', ["pools.YRD", "holds no unit"]),
        ("treatment_start = 2022", "treatment_start = 2030", ["design.treatment_start", "2005-2023"]),
        ("fit_window = [2005, 2021]", "fit_window = [2005, 2022]", ["design.fit_window"]),
        ("fit_window = [2005, 2021]", "fit_window = [2021, 2005]", ["design.fit_window", "swap"]),
        ("at = 2015", "at = 2031", ["log_gdp_index(2031)", "outside the data"]),
        ('mean = [2005, 2020]', 'mean = [2005]', ["predictors[1].mean", "[start, end]"]),
        ('{ variable = "log_gdp_index", at = 2015 }', '{ variable = "log_gdp_index" }',
         ["outcomes[0].predictors[0]", "'at'"]),
        ('dataset = "china_cities"', 'dataset = "china_city"', ["data.dataset", "'china_cities'"]),
        ('dataset = "china_cities"', 'path = "missing.csv"', ["data.path", "missing.csv"]),
        ('unit = "city_code"', 'unit = "city_id"', ["data.unit", "'city_code'"]),
        ("drop_incomplete = true", "drop_incomplete = 1", ["donors.drop_incomplete", "true or false"]),
        ("[[outcomes]]", '[estimators]\nnames = ["classic", "penalised"]\n\n[[outcomes]]',
         ["estimators.names", "'penalized'"]),
        ("[[outcomes]]", '[inference]\nplacebo = "some"\n\n[[outcomes]]', ["inference.placebo", "'headline'"]),
        ("[[outcomes]]", '[inference]\nplacebo_estimators = ["classic", "sdd"]\n\n[[outcomes]]',
         ["inference.placebo_estimators", "'sdid'"]),
        ("[[outcomes]]", '[estimators]\noptions = { sdid = { se = false } }\n\n[[outcomes]]',
         ["estimators.options.sdid", "estimators.names"]),
        ("[[outcomes]]", '[speccurve]\nfit_windows = [2006, 2021]\n\n[[outcomes]]',
         ["speccurve.fit_windows[0]", "[start, end]"]),
        ("[[outcomes]]", '[[sensitivity]]\nname = "early"\noutcomes = ["gdp"]\n\n[[outcomes]]',
         ["sensitivity[0].outcomes", "gdp"]),
        # [fit] is checked as sc.fit checks its search settings
        ("[[outcomes]]", "[fit]\nn_random_starts = -1\n\n[[outcomes]]", ["[fit]", "n_random_starts=-1"]),
        ("[[outcomes]]", "[fit]\nmin_predictor_weight = 1.5\n\n[[outcomes]]", ["[fit]", "min_predictor_weight"]),
        ("[[outcomes]]", "[fit]\nn_randon_starts = 2\n\n[[outcomes]]", ["fit.n_randon_starts", "'n_random_starts'"]),
        ("[[outcomes]]", "[fit]\nglobal_search = 1\n\n[[outcomes]]", ["fit.global_search", "true or false"]),
        # estimator options are tried on the data before any fit
        ("[[outcomes]]", '[estimators]\nnames = ["classic", "sdid"]\noptions = { sdid = { sd = false } }\n\n'
         "[[outcomes]]", ["estimator 'sdid'", "['sd']", "'se'"]),
        ("[[outcomes]]", '[estimators]\nnames = ["classic", "augmented"]\noptions = { augmented = { holdout = 0 } }'
         "\n\n[[outcomes]]", ["estimator 'augmented'", "holdout"]),
        # empty lists and unit sets
        ('pools = ["YRD"]', "pools = []", ["donors.pools", "empty", "pool"]),
        ("treated = [340400]", "treated = []", ["design.treated", "empty"]),
        ('values = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]', "values = []", ["pools.YRD.values", "empty"]),
        ('column = "province"', 'units = [340100]\ncolumn = "province"', ["pools.YRD", "either 'units'"]),
        ("units = [310000, 320100, 320500, 320300, 330100, 330200]", "units = [310000, 999]",
         ["groups.helpers.units", "999"]),
        # inference the data cannot support
        ("[[outcomes]]", "[inference]\nin_time_start = 2023\n\n[[outcomes]]", ["inference.in_time_start", "2022"]),
        ("[[outcomes]]", "[inference]\nn_jobs = 0\n\n[[outcomes]]", ["inference.n_jobs"]),
        ('column = "province"\nvalues = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]', "units = [340100, 340200]",
         ["placebo tests", "at least 3 donors", "340400"]),
        # a treated unit the data cannot fit: Chaohu was abolished in 2011
        ("treated = [340400]", "treated = [341400]", ["treated unit 341400", "missing", "2011"]),
        # the audit, derived logs, outcome windows, claims, blocks, estimators and report options
        ("[groups.assisted]", '[audit]\nflags = "china_city"\n\n[groups.assisted]', ["audit.flags", "'china_cities'"]),
        ("[groups.assisted]", '[audit]\nflags = "china_cities"\ndrop = ["exlude"]\n\n[groups.assisted]',
         ["audit.drop", "'exclude'", "no flag has it"]),
        ("[groups.assisted]", '[audit]\nflags = "china_cities"\npath = "f.csv"\n\n[groups.assisted]',
         ["[audit]", "exactly one of 'flags'"]),
        ('flag = "boundary_change"', 'flag = "boundary_change"\nlogs = ["gdp_growth"]',
         ["data.logs", "'gdp_growth'", "<= 0"]),
        ('flag = "boundary_change"', 'flag = "boundary_change"\nlogs = ["gdp_index"]',
         ["data.logs", "already have a column 'log_gdp_index'"]),
        ('column = "log_gdp_index"', 'column = "log_gdp_index"\nfit_window = [2019, 2023]',
         ["fit_window [2019, 2023]", "'log_gdp_index'", "2021"]),
        ("[[outcomes]]", '[[claims]]\nname = "Growth"\nstatement = "It grew."\noutcomes = ["gdp"]\n\n[[outcomes]]',
         ["claims[0].outcomes", "'gdp'"]),
        ("[[outcomes]]", '[[claims]]\nname = "Growth"\nstatement = "It grew."\ndirection = "up"\n\n[[outcomes]]',
         ["claims[0].direction", "'increase'"]),
        ("[[outcomes]]", '[blocks]\ntreated = { pair = [340400, 341100] }\n\n[[outcomes]]',
         ["blocks.treated.pair", "treated units of the main analysis"]),
        ("[[outcomes]]", '[estimators]\nnames = ["classic", "sdid"]\npools = { sdid = ["YRDD"] }\n\n[[outcomes]]',
         ["estimators.pools.sdid", "'YRD'"]),
        ("[[outcomes]]", '[estimators]\npools = { classic = ["YRD"] }\n\n[[outcomes]]',
         ["estimators.pools.classic", "every pool"]),
        ("[[outcomes]]", '[inference]\npooled_statistic = "median"\n\n[[outcomes]]',
         ["inference.pooled_statistic", "'mean_abs'"]),
        ("[[outcomes]]", '[report]\nunit_words = ["city"]\n\n[[outcomes]]', ["report.unit_words", "[singular, plural]"]),
        ("[[outcomes]]", '[report]\nidentified_ratio = 0.5\n\n[[outcomes]]', ["report.identified_ratio", "exceed 1"]),
        ("[[outcomes]]", '[[sensitivity]]\nname = "other"\nexclude = ["Nanjing"]\n\n[[outcomes]]',
         ["sensitivity[0].exclude", "unit name", "320100"]),
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path, old, new, fragments):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, edited(old, new)))
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_sensitivity_start_before_a_predictor_is_accepted(tmp_path):
    # Accepted as in sc.fit, which warns (PostTreatmentPredictorWarning) when the
    # sensitivity is fitted (test_predictor_after_treatment_start_is_accepted_with_a_warning).
    text = edited("[[outcomes]]", '[[sensitivity]]\nname = "early"\ntreatment_start = 2015\n\n[[outcomes]]')
    config = load_config(write(tmp_path, text))
    (early,) = [t for t in config.tasks if t.analysis == "early"]
    assert early.spec.treatment_start == 2015
    assert "log_gdp_index(2015)" in [p.label for p in early.spec.predictors]


def test_block_estimators_are_those_of_fit_several(tmp_path):
    text = edited("treated = [340400]", "treated = [340400, 341100]") + (
        '[blocks]\ntreated = { pair = [340400, 341100] }\nestimators = ["augsynth"]\n')
    with pytest.raises(ConfigError, match=r"blocks.estimators.*'sdid'"):
        load_config(write(tmp_path, text))


def test_unreadable_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nothing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[study\ntitle = 1"))
    with pytest.raises(ConfigError, match="is not a file"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "content, fragment",
    [(b"", "is empty"), (b"  \n\n", "is empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
     ('[study]\ntitle = "Caf\u00e9"\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 2)")],
)
def test_empty_binary_or_non_utf8_files_are_refused(tmp_path, content, fragment):
    config = tmp_path / "study.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(config)
    data = tmp_path / "data.csv"
    data.write_bytes(content)
    config.write_text(CSV_STUDY, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(fragment)) as error:
        load_config(config)
    assert "data.path" in str(error.value)


def test_csv_with_a_header_only_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("unit,time,cigsale\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no rows"):
        load_config(write(tmp_path, CSV_STUDY))


def test_groups_name_units_for_treated_exclusions_and_pools(tmp_path):
    text = CSV_STUDY.replace('path = "data.csv"', 'dataset = "smoking"').replace(
        '[design]', '[groups.west]\ndescription = "western states"\nunits = ["Utah", "Nevada", "Montana", "Colorado"]\n'
        '[groups.tobacco]\nunits = ["Kentucky", "North Carolina"]\n\n'
        '[pools.west]\nunits = ["group:west", "Idaho"]\n\n[donors]\nexclude = ["group:tobacco", "Idaho"]\n\n'
        '[design]')
    config = load_config(write(tmp_path, text))
    (task,) = config.tasks
    assert task.pool == "west" and task.spec.donors == ("Utah", "Nevada", "Montana", "Colorado")
    assert config.groups[0].description == "western states"
    assert set(config.excluded_units) == {"Kentucky", "North Carolina", "Idaho"}


def test_data_file_path_is_relative_to_the_configuration(tmp_path):
    sc.datasets.load_smoking().to_csv(tmp_path / "smoking.csv", index=False)
    text = """
[study]
title = "From a file"
[data]
path = "smoking.csv"
unit = "unit"
time = "time"
[design]
treated = ["California"]
treatment_start = 1989
[[outcomes]]
column = "cigsale"
"""
    (task,) = load_config(write(tmp_path, text)).tasks
    assert task.pool == "all" and "California" not in task.spec.donors
    assert len(task.spec.donors) == 38


ASSISTED = {340400, 341500, 341600, 341100, 341200, 340600, 341300, 340300}
HELPERS = {310000, 320100, 320500, 320300, 330100, 330200}
PROVINCES = {
    "YRD": {"Shanghai", "Jiangsu", "Zhejiang", "Anhui"},
    "YRD + neighbours": {"Shanghai", "Jiangsu", "Zhejiang", "Anhui", "Henan", "Shandong", "Jiangxi", "Hubei"},
}
NANJING_AREA = {320100, 321100, 321000, 320800, 340200, 340500, 341100, 341800, 320400}


@pytest.fixture(scope="module")
def yrd():
    return load_config(YRD)


@pytest.fixture(scope="module")
def cities():
    return sc.datasets.load_china_cities().drop_duplicates("city_code").set_index("city_code")


def test_yrd_groups_define_the_programme(yrd):
    config = yrd
    groups = {g.name: g.units for g in config.groups}
    assert set(groups["assisted"]) == ASSISTED and len(groups["assisted"]) == 8
    assert set(groups["helpers"]) == HELPERS
    assert set(groups["pairs"]) == {340400, 341100, 341300}
    assert set(groups["Nanjing metropolitan area"]) == NANJING_AREA
    assert {340400, 340600} <= set(groups["resource cities"])  # Huainan and Huaibei, coal cities
    assert set(config.excluded_units) == ASSISTED | HELPERS
    assert any("NDRC" in source and "2021-2030" in source for source in config.sources)
    assert any("国发〔2013〕45号" in source for source in config.sources)  # the resource-city plan is cited
    assert [a.treatment_start for a in config.analyses][:2] == [2022, 2022]
    assert {a.name: a.treatment_start for a in config.analyses}["treatment from 2021"] == 2021
    assert {"YRD", "YRD + neighbours", "resource cities"} == {p.name for p in config.pools}


def test_yrd_donor_pools_never_hold_an_assisted_or_helper_city(yrd, cities):
    config = yrd
    for task in config.tasks:
        donors = set(task.spec.donors)
        assert not donors & (ASSISTED | HELPERS), (task.analysis, task.outcome.column, task.pool)
        if task.pool in PROVINCES:
            assert set(cities.loc[list(donors), "province"]) <= PROVINCES[task.pool]
        if task.outcome.exclude_flagged or task.analysis == "no boundary-change donors":
            assert not donors & set(config.data.flagged_units)
        if task.analysis == "no other 2021 programmes":
            assert not donors & NANJING_AREA and "Zhejiang" not in set(cities.loc[list(donors), "province"])


def test_yrd_main_analysis_fits_all_eight_cities_on_every_outcome(yrd):
    config = yrd
    main = [t for t in config.tasks if t.is_main and t.estimator == "classic"]
    assert {t.spec.treated_units for t in main} == {(340400, 341500, 341600, 341100, 341200, 340600, 341300, 340300)}
    assert {t.outcome.column for t in main} == {
        "log_gdp_index", "secondary_share", "tertiary_share", "log_fiscal_revenue_real",
        "log_fiscal_expenditure_real", "log_loan_balance_real", "log_deposit_balance_real", "log_employment"}
    assert {t.pool for t in main} == {"YRD", "YRD + neighbours"}
    windows = {t.outcome.column: t.spec.fit_window for t in main}
    assert windows["log_gdp_index"] == (2005, 2021) and windows["secondary_share"] == (2019, 2021)
    assert windows["log_employment"] == (2018, 2021)  # employment breaks in 2013 and 2018
    logs = {o.column: o.log for o in config.outcomes}
    assert logs["log_employment"] and logs["log_gdp_index"] and not logs["tertiary_share"]
    headline = {t.estimator for t in config.tasks if t.is_headline}
    assert headline == {"classic", "penalized", "augmented", "sdid"}
    assert {b.block.name for b in config.block_tasks} == {"eight assisted cities", "three pairs"}
    assert [c.name for c in config.claims] == ["Growth", "Industrial structure", "Innovation"]
    assert config.claims[0].direction == "increase" and not config.claims[2].outcomes


def test_yrd_sensitivities_cover_covid_other_programmes_resource_cities_and_the_audit(yrd, cities):
    config = yrd
    by_name = {a.name: a for a in config.analyses}
    assert by_name["fit window ending 2019"].fit_window == (2005, 2019)
    assert set(by_name["resource-city pool"].treated) == {340400, 340600}
    assert by_name["resource-city pool"].pools == ("resource cities",)
    assert not by_name["flagged donors kept"].drop_audited
    kept = {t.pool: set(t.spec.donors) for t in config.tasks if t.analysis == "flagged donors kept"}
    main = {t.pool: set(t.spec.donors) for t in config.tasks if t.is_headline and t.estimator == "classic"}
    binzhou = 371600  # its 2019 write-down is flagged: dropped from the index, kept in the sensitivity
    assert binzhou in kept["YRD + neighbours"] and binzhou not in main["YRD + neighbours"]


def test_inference_plans_are_decided_with_the_configuration(yrd):
    config = yrd
    uses_v = {e.name: e.uses_predictor_weights for e in config.estimators}
    assert uses_v == {"classic": True, "penalized": True, "augmented": True, "sdid": False}
    for task in config.tasks:
        plan = task.plan
        reference_headline = task.is_headline and task.estimator == "classic"
        assert plan.leave_one_out == (plan.in_time_start is not None) == reference_headline
        assert plan.in_time_start in (None, 2018) and plan.conformal_alpha in (None, 0.1)
        # one placebo rule everywhere: every fit is tested, each placebo choosing its own weights
        assert plan.placebo is not None and not plan.placebo.reuse_predictor_weights
        assert plan.placebo.pooled == (task.estimator == "classic" and len(task.spec.treated_units) > 1)
    assert config.inference.pooled_statistic == "mean_abs"


def test_quick_keeps_one_task(tmp_path):
    config = load_config(YRD, quick=True)
    (task,) = config.tasks
    assert (task.analysis, task.outcome.headline, task.pool, task.estimator) == ("main", True, "YRD", "classic")
    assert config.speccurve is None


def test_california_configuration_is_the_adh_specification():
    (task,) = load_config(CALIFORNIA).tasks
    spec = task.spec
    assert spec.treated_units == ("California",) and spec.treatment_start == 1989
    assert spec.fit_window == (1970, 1988)
    assert len(spec.donors) == 38
    assert [p.label for p in spec.predictors] == [
        "lnincome(1980-1988)", "retprice(1980-1988)", "age15to24(1980-1988)", "beer(1984-1988)",
        "cigsale(1975)", "cigsale(1980)", "cigsale(1988)",
    ]


AUDITED = """
[study]
title = "Audited"
[data]
dataset = "smoking"
unit = "unit"
time = "time"
logs = ["cigsale"]
[audit]
path = "flags.csv"
[design]
treated = ["California", "Georgia"]
treatment_start = 1989
fit_window = [1970, 1988]
[pools.west]
units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas", "Nebraska"]
[[outcomes]]
column = "log_cigsale"
predictors = [{ variable = "log_cigsale", at = 1975 }, { variable = "log_cigsale", at = 1985 }]
[[outcomes]]
column = "retprice"
fit_window = [1980, 1988]
predictors = [{ variable = "retprice", at = 1980 }, { variable = "retprice", at = 1985 }]
[[sensitivity]]
name = "flags kept"
drop_audited = false
outcomes = ["log_cigsale"]
[[sensitivity]]
name = "start 1986"
treatment_start = 1986
exclude = ["Kansas"]
"""

#: Flags of the audited study: (unit, period, column, kind, action).
FLAGS = [
    ("Utah", 1998, "cigsale", "jump", "exclude"),           # post-period: dropped from log_cigsale
    ("Nevada", 1980, "cigsale", "common_break", "exclude"),  # fit window: dropped
    ("Montana", 1980, "retprice", "common_break", "exclude"),  # a break at retprice's first year: kept
    ("Colorado", 1985, "retprice", "jump", "keep"),          # not an action that drops
    ("Idaho", 1984, "retprice", "jump", "exclude"),          # retprice window 1980-88: dropped
    ("California", 1985, "cigsale", "jump", "exclude"),      # a treated unit is never dropped
]


def audited(tmp_path: Path, text: str = AUDITED) -> Path:
    import pandas as pd

    pd.DataFrame(FLAGS, columns=["unit", "period", "column", "kind", "action"]).to_csv(tmp_path / "flags.csv",
                                                                                      index=False)
    return write(tmp_path, text)


def test_the_audit_drops_donors_with_flagged_outcome_data(tmp_path):
    config = load_config(audited(tmp_path))
    donors = {(t.analysis, t.outcome.column): set(t.spec.donors) for t in config.tasks}
    west = {"Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas", "Nebraska"}
    assert donors[("main", "log_cigsale")] == west - {"Utah", "Nevada"}  # flags of cigsale reach its log
    assert donors[("main", "retprice")] == west - {"Idaho"}
    assert donors[("flags kept", "log_cigsale")] == west
    assert donors[("start 1986", "log_cigsale")] == west - {"Utah", "Nevada", "Kansas"}
    task = next(t for t in config.tasks if t.is_main and t.outcome.column == "log_cigsale")
    assert task.audit_dropped == (("Utah", "log_cigsale 1998 jump"), ("Nevada", "log_cigsale 1980 common_break"))
    assert config.outcome("log_cigsale").log and not config.outcome("retprice").log
    frame = config.data.frame
    assert np.allclose(frame["log_cigsale"], np.log(frame["cigsale"]))


def test_outcome_windows_are_clipped_by_each_analysis(tmp_path):
    config = load_config(audited(tmp_path))
    windows = {(t.analysis, t.outcome.column): t.spec.fit_window for t in config.tasks}
    assert windows[("main", "retprice")] == (1980, 1988)
    assert windows[("start 1986", "retprice")] == (1980, 1985)  # ends before the analysis' treatment start
    assert windows[("start 1986", "log_cigsale")] == (1970, 1985)


def test_a_block_needs_the_same_periods_for_all_its_units(tmp_path):
    frame = sc.datasets.load_smoking()
    frame[~((frame.unit == "Georgia") & (frame.time == 2000))].to_csv(tmp_path / "data.csv", index=False)
    text = CSV_STUDY.replace('treated = ["California"]', 'treated = ["California", "Georgia"]') + (
        '[inference]\npooled = false\n[blocks]\ntreated = { both = ["California", "Georgia"] }\n')
    with pytest.raises(ConfigError, match=r"block 'both'.*different periods"):
        load_config(write(tmp_path, text))


def test_predictor_after_treatment_start_is_accepted_with_a_warning(tmp_path):
    # ADH 2015 average West Germany's covariates over 1981-1990 with reunification in
    # 1990: a configuration may write such a specification; sc.fit warns, naming it.
    path = tmp_path / "late.toml"
    path.write_text(
        "[study]\ntitle = \"late\"\n[data]\ndataset = \"smoking\"\nunit = \"unit\"\ntime = \"time\"\n"
        "[design]\ntreated = [\"California\"]\ntreatment_start = 1989\n"
        "[pools.west]\nunits = [\"Utah\", \"Nevada\", \"Montana\", \"Colorado\", \"Idaho\"]\n"
        "[[outcomes]]\ncolumn = \"cigsale\"\n"
        "predictors = [{variable = \"cigsale\", at = 1975}, {variable = \"retprice\", mean = [1985, 1990]}]\n"
        "[inference]\nplacebo = \"none\"\nleave_one_out = \"none\"\nconformal = \"none\"\n"
    )
    config = sc.load_config(path)
    with pytest.warns(sc.PostTreatmentPredictorWarning, match=r"retprice\(1985-1990\)"):
        study = sc.run_study(config, n_jobs=1)
    assert len(study.results) == 1


def test_predictor_outside_the_data_is_refused(tmp_path):
    path = tmp_path / "early.toml"
    path.write_text(
        "[study]\ntitle = \"early\"\n[data]\ndataset = \"smoking\"\nunit = \"unit\"\ntime = \"time\"\n"
        "[design]\ntreated = [\"California\"]\ntreatment_start = 1989\n"
        "[[outcomes]]\ncolumn = \"cigsale\"\npredictors = [{variable = \"cigsale\", at = 1960}]\n"
    )
    with pytest.raises(sc.ConfigError, match=r"cigsale\(1960\).*outside the data"):
        sc.load_config(path)


def test_fit_certify_reaches_the_fits_and_results(tmp_path):
    pytest.importorskip("pyscipopt")
    path = tmp_path / "certified.toml"
    path.write_text(
        "[study]\ntitle = \"certified\"\n[data]\ndataset = \"smoking\"\nunit = \"unit\"\ntime = \"time\"\n"
        "[design]\ntreated = [\"California\"]\ntreatment_start = 1989\n"
        "[pools.west]\nunits = [\"Utah\", \"Nevada\", \"Montana\", \"Colorado\", \"Idaho\", \"Wyoming\"]\n"
        "[[outcomes]]\ncolumn = \"cigsale\"\n"
        "predictors = [{variable = \"cigsale\", at = 1975}, {variable = \"cigsale\", at = 1988}]\n"
        "[estimators]\nnames = [\"classic\", \"augmented\"]\n"
        "[fit]\ncertify = true\ncertify_time_limit = 30.0\n"
        "[inference]\nleave_one_out = \"none\"\nconformal = \"none\"\n"
    )
    config = sc.load_config(path)
    assert config.fit_options.certify and config.fit_options.certify_time_limit == 30.0
    results = sc.run_study(config, n_jobs=1).results.set_index("estimator")
    assert results.loc["classic", "certificate"] in ("certified", "improved and certified", "ill-posed")
    assert results.loc["classic", "placebos_certified"] >= 0
    assert results.loc["augmented", "certificate"] == ""  # not certifiable: no certificate
