"""Study configurations: valid files give the Specs the API uses; every error names
the key at fault and the fix."""

from __future__ import annotations

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
programme = "yrd_twinning"
flag = "boundary_change"

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
programme_pool = "YRD"

[[outcomes]]
column = "log_gdp_index"
predictors = [{ variable = "log_gdp_index", at = 2015 }, { variable = "secondary_share", mean = [2005, 2020] }]
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
        ('"group:helpers"', '"group:helper"', ["donors.exclude", "group:helpers"]),
        ('programme_pool = "YRD"', 'programme_pool = "YDR"', ["pools.YRD.programme_pool", "'YRD'"]),
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


def test_yrd_donor_pools_never_hold_an_assisted_or_helper_city():
    config = load_config(YRD)
    programme = sc.datasets.load_programme()
    forbidden = set(programme.treated_codes) | set(programme.helper_codes)
    cities = sc.datasets.load_china_cities().drop_duplicates("city_code").set_index("city_code")
    for task in config.tasks:
        donors = set(task.spec.donors)
        assert not donors & forbidden, (task.analysis, task.outcome.column, task.pool)
        provinces = set(cities.loc[list(donors), "province"])
        assert provinces <= set(programme.pools[task.pool])
        if task.outcome.exclude_flagged or task.analysis == "no boundary-change donors":
            assert not donors & set(config.flagged_units)


def test_yrd_configuration_covers_the_design():
    config = load_config(YRD)
    main = [t for t in config.tasks if t.is_main and t.estimator == "classic"]
    assert {t.outcome.column for t in main} == {
        "log_gdp_index", "gdp_pc_real", "secondary_share", "tertiary_share", "fiscal_revenue_real"}
    assert {t.pool for t in main} == {"YRD", "YRD + neighbours"}
    assert {t.spec.treated_units for t in main} == {(340400, 341100, 341300)}
    starts = {t.spec.treatment_start for t in config.tasks}
    assert starts == {2021, 2022}
    headline = {t.estimator for t in config.tasks if t.is_headline}
    assert headline == {"classic", "penalized", "augmented", "sdid"}
    tested = {t.estimator for t in config.tasks if t.is_headline and config.inference.applies("placebo", t)}
    assert tested == {"classic", "augmented", "sdid"}


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
