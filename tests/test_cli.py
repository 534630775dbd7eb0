"""The command line end to end: a tiny YRD study run through ``python -m synthcontrol``
and the ``synthcontrol`` console script, and its error messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import synthcontrol as sc

TINY = """
[study]
title = "Tiny YRD run"

[data]
dataset = "china_cities"
unit = "city_code"
time = "year"
label = "city_en"
programme = "yrd_twinning"
flag = "boundary_change"

[design]
treated = [340400, 341100]
treatment_start = 2022
fit_window = [2005, 2021]

[donors]
pools = ["YRD", "YRD + neighbours"]
exclude = ["group:assisted", "group:helpers"]
drop_incomplete = true

[pools.YRD]
column = "province"
programme_pool = "YRD"

[pools."YRD + neighbours"]
column = "province"
programme_pool = "YRD + neighbours"

[[outcomes]]
column = "log_gdp_index"
predictors = [{ variable = "log_gdp_index", at = 2010 }, { variable = "log_gdp_index", at = 2020 }]

[inference]
refit_placebo_weights = "none"   # placebos reuse the treated unit's predictor weights: fast
leave_one_out = "none"
conformal = "headline"
n_jobs = 1
"""

RESULT_COLUMNS = {"treated_code", "outcome", "pool", "estimator", "pre_rmspe", "effect", "p_value",
                  "treated", "post_rmspe", "n_donors", "fit_quality"}
WEIGHT_COLUMNS = {"treated_code", "outcome", "pool", "donor_code", "donor", "weight", "estimator"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "tiny.toml").write_text(TINY, encoding="utf-8")
    done = run(sys.executable, "-m", "synthcontrol", "run", "tiny.toml", "--out", "out", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "[1/2]" in done.stderr  # progress on stderr
    return folder / "out"


def test_run_writes_report_tables_and_figures(tiny_run):
    for name in ("report.md", "report.html", "results.csv", "weights.csv", "paths.csv"):
        assert (tiny_run / name).is_file(), name
    report = (tiny_run / "report.md").read_text(encoding="utf-8")
    for image in [line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]:
        assert (tiny_run / image).is_file(), image
    assert "Huainan" in report and "placebo p =" in report


def test_results_have_one_row_per_city_outcome_pool_and_estimator(tiny_run):
    results = pd.read_csv(tiny_run / "results.csv", dtype={"treated_code": str})
    assert RESULT_COLUMNS <= set(results.columns)
    assert sorted(results.treated_code.unique()) == ["340400", "341100"]
    assert len(results) == 4
    assert not results.duplicated(["treated_code", "outcome", "pool", "estimator"]).any()
    assert results.p_value.between(0, 1).all() and (results.p_value > 0).all()
    assert results.fit_quality.isin(["good", "fair", "poor"]).all()


def test_no_assisted_or_helper_city_receives_weight(tiny_run):
    weights = pd.read_csv(tiny_run / "weights.csv")
    assert WEIGHT_COLUMNS <= set(weights.columns)
    programme = sc.datasets.load_programme()
    forbidden = set(programme.treated_codes) | set(programme.helper_codes)
    assert weights.donor_code.between(100000, 999999).all()  # 6-digit city codes
    touched = weights[weights.donor_code.isin(forbidden)]
    assert (touched.weight <= 1e-9).all()
    assert touched.empty  # they are not even in the pools
    sums = weights.groupby(["treated_code", "pool"]).weight.sum()
    assert ((sums - 1).abs() < 1e-6).all()


def test_results_agree_with_the_api(tiny_run):
    results = pd.read_csv(tiny_run / "results.csv")
    row = results[(results.treated_code == 340400) & (results.pool == "YRD")].iloc[0]
    programme = sc.datasets.load_programme()
    cities = sc.datasets.load_china_cities()
    pool = cities[cities.province.isin(programme.pools["YRD"])].city_code.unique().tolist()
    spec = sc.Spec(outcome="log_gdp_index", unit="city_code", time="year", treated=340400, treatment_start=2022,
                   predictors=[sc.at("log_gdp_index", 2010), sc.at("log_gdp_index", 2020)],
                   fit_window=(2005, 2021), donors=[c for c in pool if c != 340400],
                   exclude=[*programme.treated_codes, *programme.helper_codes], drop_incomplete_donors=True)
    with pytest.warns(sc.DroppedDonorsWarning):
        res = sc.fit(cities, spec)
    assert row.effect == pytest.approx(res.average_effect, rel=1e-9, abs=1e-12)
    assert row.pre_rmspe == pytest.approx(res.pre_rmspe, rel=1e-9)
    assert row.n_donors == len(res.donors)


def test_console_script_checks_a_configuration(tmp_path):
    script = shutil.which("synthcontrol", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("console script not installed (pip install -e .)")
    (tmp_path / "tiny.toml").write_text(TINY, encoding="utf-8")
    done = run(script, "check", "tiny.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "configuration is valid; 2 fits" in done.stdout


def test_configuration_error_is_one_line_naming_the_key(tmp_path):
    (tmp_path / "bad.toml").write_text(TINY.replace("treatment_start = 2022", "treatment_strat = 2022"),
                                       encoding="utf-8")
    done = run(sys.executable, "-m", "synthcontrol", "run", "bad.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert "design.treatment_strat" in done.stderr and "'treatment_start'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
