"""Smoke runs of the scaling benchmarks (``benchmarks/scaling.py`` and
``benchmarks/parallel.py`` with ``--quick``) and checks of the synthetic panels.

Times are never asserted; the structure of the outputs and the recovery of a
known answer at low noise are.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# `benchmarks` is a top-level folder, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks import parallel, scaling, synthetic  # noqa: E402


def test_panel_is_a_convex_combination_of_the_donors() -> None:
    panel = synthetic.make_panel(n_donors=9, n_predictors=4, n_pre=7, n_post=3, noise=0.0, effect=2.0, seed=3)
    wide = panel.frame.pivot(index="time", columns="unit", values="y")
    donors = wide[list(panel.donors)].to_numpy()
    assert np.allclose(donors @ panel.true_weights, panel.counterfactual)
    gap = wide[synthetic.TREATED].to_numpy() - panel.counterfactual
    assert np.allclose(gap, [0.0] * 7 + [2.0] * 3)
    baseline = panel.frame[panel.frame.time == 1].set_index("unit")
    covariates = baseline.loc[list(panel.donors), ["x0", "x1", "x2", "x3"]].to_numpy()
    assert np.allclose(covariates.T @ panel.true_weights, baseline.loc[synthetic.TREATED, ["x0", "x1", "x2", "x3"]])
    assert panel.frame.loc[panel.frame.time > 1, "x0"].isna().all()
    assert panel.true_weights.min() >= 0 and panel.true_weights.sum() == pytest.approx(1.0)


def test_recovery_follows_its_definition() -> None:
    panel = synthetic.make_panel(n_donors=6, n_predictors=3, n_pre=8, n_post=4, noise=0.05, effect=0.5, seed=2)
    result = sc.fit(panel.frame, panel.spec, predictor_weights=[1, 1, 1])
    score = synthetic.recovery(result, panel)
    exact = pd.Series(panel.true_weights, index=list(panel.donors))
    post = result.path["synthetic"].to_numpy()[-4:] - panel.counterfactual[-4:]
    assert score["weight_l1"] == pytest.approx(float(np.abs(result.weights - exact).sum()))
    assert score["counterfactual_rmse"] == pytest.approx(float(np.sqrt(np.mean(post**2))))
    assert score["effect_error"] == pytest.approx(result.average_effect - 0.5)
    assert score["pre_rmspe"] == pytest.approx(result.pre_rmspe)


def test_quick_scaling_recovers_the_weights_at_low_noise(tmp_path) -> None:
    out, md = tmp_path / "scaling.json", tmp_path / "scaling.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sc.ConvergenceWarning)  # placebo searches on tiny pools
        report = scaling.main(["--quick", "--noise", "0.01", "--trace-max-s", "1e9",
                               "--json", str(out), "--markdown", str(md)])
    grid = scaling.QUICK_GRID
    assert len(report["cells"]) == len(grid["n_donors"]) * len(grid["n_predictors"]) * len(grid["n_pre"])
    for cell in report["cells"]:
        assert cell["repeats"] == 1 and cell["fit_s"] > 0 and cell["peak_fit_mib"] > 0
        assert cell["weight_l1"] < 0.1 and cell["counterfactual_rmse"] < 0.1
        if cell["n_donors"] <= 10:  # the default --placebo-max-donors
            assert cell["placebo_method"] == "full" and cell["placebo_units"] == cell["n_donors"]
        elif cell["placebo_method"] == "extrapolated":  # unless the fit took over a second
            assert cell["placebo_units"] == 2 and cell["placebo_s"] > 0
    assert np.isfinite(report["loglog_slope"]["pooled"])
    assert report["national"] is None
    assert json.loads(out.read_text())["cells"][0]["n_donors"] == grid["n_donors"][0]
    table = [line for line in md.read_text().splitlines() if line.startswith("|")]
    assert len(table) == len(report["cells"]) + 2  # header, rule, one row per cell


def test_headline_cells_run_first_and_a_spent_budget_skips_the_rest() -> None:
    order = scaling.cell_order({"n_donors": (10, 1000), "n_predictors": (5, 20), "n_pre": (10,)})
    assert order == [(1000, 20, 10), (10, 5, 10), (10, 20, 10), (1000, 5, 10)]
    args = scaling.parse(["--budget", "0"])
    cells, skipped = scaling.run_grid({"n_donors": (10,), "n_predictors": (5,), "n_pre": (10, 40)}, args)
    assert cells == [] and skipped == [(10, 5, 10), (10, 5, 40)]


def test_loglog_slope_of_a_linear_cost_is_one() -> None:
    cells = pd.DataFrame({"n_donors": [10, 100, 1000] * 2, "n_predictors": [5] * 3 + [20] * 3,
                          "n_pre": 10, "fit_s": [0.01, 0.1, 1.0, 0.5, 5.0, 50.0]})
    slopes = scaling.loglog_slopes(cells)
    assert slopes["pooled"] == pytest.approx(1.0)
    assert slopes["per_group"] == pytest.approx({"K=5, T0=10": 1.0, "K=20, T0=10": 1.0})


def test_national_pool_skips_without_the_raw_panel(tmp_path) -> None:
    args = scaling.parse(["--city-panel", str(tmp_path / "absent.csv")])
    assert "not found" in scaling.national_pool(args.city_panel, args)["skipped"]


@pytest.mark.skipif(not scaling.CITY_PANEL.is_file(), reason="raw China City Database panel not present")
def test_national_panel_chains_complete_growth_records() -> None:
    frame, dropped = scaling.national_panel(scaling.CITY_PANEL)
    assert frame.groupby("city_code").size().eq(scaling.LAST_YEAR - scaling.FIRST_YEAR + 1).all()
    assert frame.log_gdp_index.notna().all() and scaling.HUAINAN not in dropped
    huainan = frame[frame.city_code == scaling.HUAINAN].set_index("year")
    assert huainan.gdp_index[scaling.FIRST_YEAR] == 100
    growth = huainan.gdp_index[2023] / huainan.gdp_index[2022] - 1
    assert growth == pytest.approx(huainan.gdp_growth[2023] / 100)
    spec = scaling.national_spec(frame)
    assert frame.city_code.nunique() - len(spec.exclude) - 1 > 250


def test_quick_parallel_runs_every_backend_identically(tmp_path) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "parallel.json"
    report = parallel.main(["--quick", "--json", str(out)])
    assert [(r["backend"], r["workers"]) for r in report["runs"]] == [
        ("auto", 1), ("auto", 2), ("threads", 2), ("processes", 2), ("dask", 2)]
    assert report["identical"] is True
    serial = report["runs"][0]
    assert serial["speedup"] == 1.0 and serial["efficiency"] == 1.0
    for run in report["runs"]:
        assert run["efficiency"] == pytest.approx(serial["seconds"] / run["seconds"] / run["workers"])
    assert json.loads(out.read_text())["problem"] == parallel.QUICK_PROBLEM
