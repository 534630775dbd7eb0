"""Malformed study configurations, arguments of load_config and relations of the
data audit: each is a project error naming the key, argument or relation at fault
(or, for a relation undefined in some cells, a flag on those cells), never a raw
Python error, a silent no-op or a wrong answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol.cli import main
from synthcontrol.errors import ArgumentError, ConfigError, SynthControlError
from synthcontrol.study import load_config

BASE = """
[study]
title = "Tiny"
[data]
path = "data.csv"
unit = "unit"
time = "time"
[design]
treated = ["California"]
treatment_start = 1989
[pools.west]
units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho"]
[[outcomes]]
column = "cigsale"
predictors = [{variable = "cigsale", at = 1975}, {variable = "cigsale", at = 1988}]
[inference]
leave_one_out = "none"
conformal = "none"
"""


def study(tmp_path: Path, old: str = "", new: str = "", frame: pd.DataFrame | None = None) -> Path:
    assert old in BASE, old  # the edit must apply, or the test would test nothing
    (frame if frame is not None else sc.datasets.load_smoking()).to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "study.toml"
    path.write_text(BASE.replace(old, new, 1) if old else BASE, encoding="utf-8")
    return path


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.mark.parametrize("value", ['[["California"]]', '[{unit = "California"}]'])
def test_a_unit_list_holding_lists_or_tables_names_the_key(tmp_path, value):
    refused(study(tmp_path, 'treated = ["California"]', f"treated = {value}"), "design.treated", "one value each")


def test_load_config_checks_its_arguments(tmp_path):
    with pytest.raises(ArgumentError, match="path must be the path of a TOML file"):
        load_config(3)
    with pytest.raises(ArgumentError, match="quick"):
        load_config(study(tmp_path), quick="yes")


def test_a_predictor_window_ending_after_the_data_is_refused(tmp_path):
    # a mean over 1980-2050 would silently average the years the data hold
    refused(study(tmp_path, "at = 1975}", "mean = [1980, 2050]}"), "cigsale(1980-2050)", "outside the data's years")


@pytest.mark.parametrize("old, new, key", [
    ('column = "cigsale"', 'column = "cigsale"\nexclude_flagged = true', "outcomes[0].exclude_flagged"),
    ("[inference]", '[[sensitivity]]\nname = "clean"\nexclude_flagged = true\n[inference]',
     "sensitivity[0].exclude_flagged"),
])
def test_excluding_flagged_units_needs_a_flag_column(tmp_path, old, new, key):
    refused(study(tmp_path, old, new), key, "names no flag column")


@pytest.mark.parametrize("values", [
    lambda units: np.where(units == "Utah", "yes", "no"),  # every text is true to astype(bool)
    lambda units: np.where(units == "Utah", 1.0, np.nan),  # so is a missing value
    lambda units: np.where(units == "Utah", 3.5, 0.0),
])
def test_a_flag_column_must_hold_true_or_false(tmp_path, values):
    frame = sc.datasets.load_smoking()
    frame["suspect"] = values(frame["unit"].to_numpy())
    refused(study(tmp_path, 'time = "time"', 'time = "time"\nflag = "suspect"', frame), "data.flag", "'suspect'")


def test_a_flag_column_of_ones_and_zeros_flags_its_units(tmp_path):
    frame = sc.datasets.load_smoking()
    frame["suspect"] = (frame["unit"] == "Utah").astype(int)
    config = load_config(study(tmp_path, 'time = "time"', 'time = "time"\nflag = "suspect"', frame))
    assert config.data.flagged_units == ("Utah",)


@pytest.mark.parametrize("value, fragment", [('["sdid"]', "'sdid' is not an estimator of the study"),
                                             ("[]", "empty list")])
def test_placebo_estimators_choose_among_the_studys_estimators(tmp_path, value, fragment):
    refused(study(tmp_path, "[inference]", f"[inference]\nplacebo_estimators = {value}"),
            "inference.placebo_estimators", fragment)


@pytest.mark.parametrize("setting, key", [("fit_fair = inf", "report.fit_fair"),
                                          ("identified_ratio = inf", "report.identified_ratio")])
def test_report_thresholds_are_finite(tmp_path, setting, key):
    refused(study(tmp_path, "[inference]", f"[report]\n{setting}\n[inference]"), key, "finite")


def test_the_command_line_gives_one_line_and_status_2(tmp_path, capsys):
    frame = sc.datasets.load_smoking().assign(suspect="no")
    path = study(tmp_path, 'time = "time"', 'time = "time"\nflag = "suspect"', frame)
    assert main(["check", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthcontrol: error: key 'data.flag'") and err.count("\n") == 1


# -- relations of the data audit ----------------------------------------------------------


def panel(**columns) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([(f"u{i}", t) for i in range(12) for t in range(2000, 2016)], columns=["unit", "time"])
    frame["a"] = rng.lognormal(3, 0.1, len(frame))
    frame["b"] = rng.lognormal(2, 0.1, len(frame))
    return frame.assign(**columns)


@pytest.mark.parametrize("make, fragment", [
    (lambda: sc.Relation(3, ("a",), lambda a: a), "name must be text"),
    (lambda: sc.Relation("r", "ab", lambda a, b: a), "columns must be a sequence"),
    (lambda: sc.Relation("r", ("a", "b"), lambda a, b: a, flag="a"), "flag must be a sequence"),
    (lambda: sc.Relation("r", ("a",), 3), "implied must be a function"),
    (lambda: sc.Relation("r", ("a",), lambda a: a, target="0", tolerance=1), "target"),
    (lambda: sc.Relation("r", ("a",), lambda a: a, target=0, tolerance="1"), "tolerance"),
    (lambda: sc.Relation("r", ("a",), lambda a: a, target=float("nan"), tolerance=1), "target"),
    (lambda: sc.implied_deflator("a", "b", growth_per="x"), "growth_per"),
    (lambda: sc.implied_deflator("a", "b", growth_per=0), "growth_per"),
    (lambda: sc.accounting_identity("abc", total=1, tolerance=1), "parts must be a sequence"),
    (lambda: sc.accounting_identity(["a", "b"], total=None, tolerance=1), "total"),
    (lambda: sc.accounting_identity(["a", "b"], total=float("nan"), tolerance=1), "total"),
])
def test_relation_arguments_are_checked(make, fragment):
    with pytest.raises(ArgumentError, match=fragment):
        make()


def test_a_failing_implied_function_names_its_relation():
    relation = sc.Relation("needs two", ("a",), lambda a, b: a / b)
    with pytest.raises(SynthControlError, match="relation 'needs two': its implied function failed"):
        sc.audit(panel(), columns=["b"], relations=[relation])


def test_cells_a_zero_denominator_leaves_undefined_are_flagged():
    frame = panel()
    zero = (frame["unit"] == "u3") & (frame["time"] == 2007)
    frame.loc[zero, "b"] = 0.0
    found = sc.audit(frame, columns=[], relations=[sc.ratio("a", "b")])
    found = found[found["kind"] == "relation"]
    assert set(zip(found["unit"], found["period"])) == {("u3", 2007)}
    assert found["note"].str.contains("undefined").all()
    everywhere = sc.audit(panel(b=0.0), columns=["a"], relations=[sc.ratio("a", "b")])
    assert (everywhere["kind"] == "relation").sum() == 2 * 12 * 16  # both columns of every cell


# -- run_study: arguments, and resuming an interrupted run ------------------------------


def test_run_study_checks_its_arguments(tmp_path):
    config = load_config(study(tmp_path))
    with pytest.raises(ArgumentError, match="config must be a StudyConfig"):
        sc.run_study(None)
    with pytest.raises(ArgumentError, match="n_jobs=0"):
        sc.run_study(config, n_jobs=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match="checkpoint_dir"):
        sc.run_study(config, checkpoint_dir=tmp_path / "file")


def placebo_runs(result) -> list:
    return [unit.placebo.run for task in result.task_results for unit in task.units]


def test_an_interrupted_study_resumes_from_its_checkpoint(tmp_path):
    config = load_config(study(tmp_path, 'leave_one_out = "none"', 'leave_one_out = "all"'))
    saved = tmp_path / "checkpoint"
    first = sc.run_study(config, n_jobs=1, checkpoint_dir=saved)
    (run,) = placebo_runs(first)
    assert run.n_computed == run.n_tasks == 5 and run.n_resumed == 0
    # an interruption after some refits: two of the placebo checkpoint files are lost
    placebo_files = sorted(p for p in saved.rglob("*.json") if p.parent.name == "placebo" and p.name != "manifest.json")
    assert len(placebo_files) == 5
    for file in placebo_files[:2]:
        file.unlink()
    again = sc.run_study(config, n_jobs=1, checkpoint_dir=saved)
    (run,) = placebo_runs(again)
    assert (run.n_computed, run.n_resumed) == (2, 3)
    assert again.task_results[0].units[0].leave_one_out.run.n_computed == 0
    pd.testing.assert_frame_equal(again.results, first.results)


def test_a_changed_configuration_does_not_reuse_the_checkpoint(tmp_path):
    saved = tmp_path / "checkpoint"
    sc.run_study(load_config(study(tmp_path)), n_jobs=1, checkpoint_dir=saved)
    changed = load_config(study(tmp_path, '"Idaho"]', '"Idaho", "Iowa"]'))
    (run,) = placebo_runs(sc.run_study(changed, n_jobs=1, checkpoint_dir=saved))
    assert (run.n_computed, run.n_resumed) == (6, 0)


def test_the_command_line_resumes_an_unfinished_run_and_clears_its_checkpoint(tmp_path, capsys):
    path, out = study(tmp_path), tmp_path / "out"
    sc.run_study(load_config(path), n_jobs=1, checkpoint_dir=out / ".checkpoint")  # as an interrupted run leaves it
    assert main(["check", str(path), "--out", str(out), "--quiet"]) == 0
    assert "unfinished run will be resumed" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    assert (out / "results.csv").exists() and not (out / ".checkpoint").exists()


def test_the_unit_or_time_column_is_no_outcome(tmp_path):
    refused(study(tmp_path, 'column = "cigsale"', 'column = "time"'), "outcomes[0].column", "time column")


def test_a_data_file_with_two_columns_of_one_name_is_refused(tmp_path):
    frame = sc.datasets.load_smoking().rename(columns={"beer": "cigsale"})  # pandas would read it as 'cigsale.1'
    refused(study(tmp_path, frame=frame), "data.path", "two columns named 'cigsale'")
