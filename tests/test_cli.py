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
from synthcontrol.cli import main

TINY = """
[study]
title = "Tiny YRD run"

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
treated = [340400, 341100]
treatment_start = 2022
fit_window = [2005, 2021]

[donors]
pools = ["YRD", "YRD + neighbours"]
exclude = ["group:assisted", "group:helpers"]
drop_incomplete = true

[pools.YRD]
column = "province"
values = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]

[pools."YRD + neighbours"]
column = "province"
values = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui", "Henan", "Shandong", "Jiangxi", "Hubei"]

[[outcomes]]
column = "log_gdp_index"
predictors = [{ variable = "log_gdp_index", at = 2010 }, { variable = "log_gdp_index", at = 2020 }]

[inference]
refit_placebo_weights = "none"   # placebos reuse the treated unit's predictor weights: fast
leave_one_out = "none"
conformal = "headline"
n_jobs = 1
"""

ASSISTED = {340400, 341500, 341600, 341100, 341200, 340600, 341300, 340300}
HELPERS = {310000, 320100, 320500, 320300, 330100, 330200}
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
    assert "Huainan" in report and "Placebo p-values at most" in report


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
    forbidden = ASSISTED | HELPERS
    assert weights.donor_code.between(100000, 999999).all()  # 6-digit city codes
    touched = weights[weights.donor_code.isin(forbidden)]
    assert (touched.weight <= 1e-9).all()
    assert touched.empty  # they are not even in the pools
    sums = weights.groupby(["treated_code", "pool"]).weight.sum()
    assert ((sums - 1).abs() < 1e-6).all()


def test_results_agree_with_the_api(tiny_run):
    results = pd.read_csv(tiny_run / "results.csv")
    row = results[(results.treated_code == 340400) & (results.pool == "YRD")].iloc[0]
    cities = sc.datasets.load_china_cities()
    pool = cities[cities.province.isin(["Shanghai", "Jiangsu", "Zhejiang", "Anhui"])].city_code.unique().tolist()
    spec = sc.Spec(outcome="log_gdp_index", unit="city_code", time="year", treated=340400, treatment_start=2022,
                   predictors=[sc.at("log_gdp_index", 2010), sc.at("log_gdp_index", 2020)],
                   fit_window=(2005, 2021), donors=[c for c in pool if c != 340400],
                   exclude=[*ASSISTED, *HELPERS], drop_incomplete_donors=True)
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


# -- one validation path, output folders, one-line errors -----------------------------------

SMALL = """
[study]
title = "Small"
[data]
dataset = "smoking"
unit = "unit"
time = "time"
[design]
treated = ["California", "Georgia"]
treatment_start = 1989
[pools.west]
units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho"]
[[outcomes]]
column = "cigsale"
predictors = [{ variable = "cigsale", at = 1975 }, { variable = "cigsale", at = 1988 }]
[inference]
refit_placebo_weights = "none"
leave_one_out = "none"
conformal = "none"
n_jobs = 1
"""


def cli(tmp_path: Path, capsys, *args: str, text: str = SMALL) -> tuple[int, str, str]:
    """``synthcontrol ARGS`` in this process, on ``text`` written to tmp_path/study.toml."""
    config = tmp_path / "study.toml"
    if not config.exists():
        config.write_text(text, encoding="utf-8")
    status = main([*args[:1], str(config), *args[1:]])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_check_and_run_share_one_validation(tmp_path, capsys):
    bad = SMALL.replace("n_jobs = 1", "n_jobs = 1\n[fit]\nn_polish = -1")
    results = [cli(tmp_path, capsys, command, "--out", str(tmp_path / "out"), text=bad) for command in ("check", "run")]
    assert [status for status, _, _ in results] == [2, 2]
    assert results[0][2] == results[1][2] and "[fit]" in results[0][2] and "n_polish=-1" in results[0][2]
    assert not (tmp_path / "out").exists()


def test_check_lists_the_fits_and_the_output_folder(tmp_path, capsys):
    status, out, err = cli(tmp_path, capsys, "check", "--out", str(tmp_path / "out"))
    assert status == 0, err
    assert "configuration is valid; 1 fits" in out and "main | cigsale | west | classic | 2 treated" in out
    assert f"output folder {tmp_path / 'out'}: will be created" in out


@pytest.mark.parametrize("command", ["check", "run"])
def test_an_output_path_that_is_a_file_is_refused_before_any_fit(tmp_path, capsys, command):
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    status, _, err = cli(tmp_path, capsys, command, "--out", str(tmp_path / "taken" / "out"))
    assert status == 2 and "is a file" in err and err.count("\n") == 1 and "Traceback" not in err
    assert "fits to run" not in err


def test_a_foreign_folder_is_refused_and_overwrite_clears_old_outputs(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "results.csv").write_text("old", encoding="utf-8")
    (out / "placebo_texas.png").write_bytes(b"old figure")
    for command in ("check", "run"):
        status, _, err = cli(tmp_path, capsys, command, "--out", str(out))
        assert status == 2 and "not empty" in err and "--overwrite" in err
    assert (out / "results.csv").read_text(encoding="utf-8") == "old"
    status, _, err = cli(tmp_path, capsys, "run", "--out", str(out), "--overwrite")
    assert status == 0, err
    assert not (out / "placebo_texas.png").exists()  # a stale figure is gone
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"  # not a report's file: kept
    assert (out / "results.csv").read_text(encoding="utf-8").startswith("analysis,")


def test_a_rerun_replaces_its_own_output_and_removes_stale_figures(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(tmp_path, capsys, "run", "--out", str(out))[0] == 0
    assert (out / "paths_west.png").is_file()
    (tmp_path / "study.toml").write_text(SMALL.replace('["California", "Georgia"]', '["California"]')
                                         .replace("pools.west", "pools.mountain"), encoding="utf-8")
    status, out_text, err = cli(tmp_path, capsys, "check", "--out", str(out))
    assert status == 0 and "of an earlier report will be replaced" in out_text
    assert cli(tmp_path, capsys, "run", "--out", str(out))[0] == 0
    assert not (out / "paths_west.png").exists() and (out / "paths_mountain.png").is_file()
    assert pd.read_csv(out / "results.csv").treated_code.tolist() == ["California"]


@pytest.mark.parametrize(
    "content, fragment",
    [(b"", "is empty"), (b"\x00\x01binary", "binary file"), ("title = 'é'".encode("latin-1"), "not UTF-8")],
)
def test_unreadable_configuration_files_are_one_line_errors(tmp_path, capsys, content, fragment):
    (tmp_path / "study.toml").write_bytes(content)
    status, _, err = cli(tmp_path, capsys, "run", "--out", str(tmp_path / "out"))
    assert status == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(sc.ConfigError, match=fragment):
        main(["check", str(tmp_path / "study.toml"), "--debug"])


def test_an_empty_pool_list_is_a_one_line_error(tmp_path, capsys):
    text = SMALL.replace("[pools.west]", "[donors]\npools = []\n[pools.west]")
    status, _, err = cli(tmp_path, capsys, "check", "--out", str(tmp_path / "out"), text=text)
    assert status == 2 and "donors.pools" in err and "empty" in err and "Traceback" not in err
