"""Study configurations: valid files give the Specs the API uses; every error names
the key at fault and the fix."""

from __future__ import annotations

import re
from pathlib import Path

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
        ("at = 2015", "at = 2022", ["log_gdp_index(2022)", "2005-2021"]),
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
        ("[[outcomes]]", '[[sensitivity]]\nname = "early"\ntreatment_start = 2015\n\n[[outcomes]]',
         ["log_gdp_index(2015)", "'early'", "sensitivity[0].treatment_start"]),
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
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path, old, new, fragments):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, edited(old, new)))
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


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


@pytest.fixture(scope="module")
def yrd():
    return load_config(YRD)


def test_yrd_groups_define_the_programme(yrd):
    config = yrd
    groups = {g.name: g.units for g in config.groups}
    assert set(groups["assisted"]) == ASSISTED and len(groups["assisted"]) == 8
    assert set(groups["helpers"]) == HELPERS
    assert set(config.excluded_units) == ASSISTED | HELPERS
    assert any("NDRC" in source and "2021-2030" in source for source in config.sources)
    assert [a.treatment_start for a in config.analyses][:2] == [2022, 2021]  # plan of December 2021
    assert {p.name: p.description for p in config.pools}.keys() == PROVINCES.keys()


def test_yrd_donor_pools_never_hold_an_assisted_or_helper_city(yrd):
    config = yrd
    cities = sc.datasets.load_china_cities().drop_duplicates("city_code").set_index("city_code")
    for task in config.tasks:
        donors = set(task.spec.donors)
        assert not donors & (ASSISTED | HELPERS), (task.analysis, task.outcome.column, task.pool)
        provinces = set(cities.loc[list(donors), "province"])
        assert provinces <= PROVINCES[task.pool]
        if task.outcome.exclude_flagged or task.analysis == "no boundary-change donors":
            assert not donors & set(config.data.flagged_units)


def test_yrd_configuration_covers_the_design(yrd):
    config = yrd
    main = [t for t in config.tasks if t.is_main and t.estimator == "classic"]
    assert {t.outcome.column for t in main} == {
        "log_gdp_index", "gdp_pc_real", "secondary_share", "tertiary_share", "fiscal_revenue_real"}
    assert {t.pool for t in main} == {"YRD", "YRD + neighbours"}
    assert {t.spec.treated_units for t in main} == {(340400, 341100, 341300)}
    starts = {t.spec.treatment_start for t in config.tasks}
    assert starts == {2021, 2022}
    headline = {t.estimator for t in config.tasks if t.is_headline}
    assert headline == {"classic", "penalized", "augmented", "sdid"}
    tested = {t.estimator for t in config.tasks if t.is_headline and t.plan.placebo is not None}
    assert tested == {"classic", "augmented", "sdid"}


def test_inference_plans_are_decided_with_the_configuration(yrd):
    config = yrd
    uses_v = {e.name: e.uses_predictor_weights for e in config.estimators}
    assert uses_v == {"classic": True, "penalized": True, "augmented": True, "sdid": False}
    for task in config.tasks:
        plan = task.plan
        reference_headline = task.is_headline and task.estimator == "classic"
        assert plan.leave_one_out == (plan.in_time_start is not None) == reference_headline
        assert plan.in_time_start in (None, 2018) and plan.conformal_alpha in (None, 0.1)
        if plan.placebo is None:
            assert task.estimator == "penalized"
            continue
        # refit_placebo_weights = "headline"; sdid has no predictor weights to reuse
        assert plan.placebo.reuse_predictor_weights == (not reference_headline and task.estimator != "sdid")
        assert plan.placebo.pooled == (task.estimator == "classic" and len(task.spec.treated_units) > 1)


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
