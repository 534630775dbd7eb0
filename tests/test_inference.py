"""Permutation and conformal inference: placebo tests, pooled, conformal, leave-one-out,
in-time placebos, and the runner (parallelism, determinism, checkpoints)."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import joblib
import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthcontrol as sc
from synthcontrol.errors import CheckpointError, SpecError
from synthcontrol.estimators import fit_design
from synthcontrol.inference import _common

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

ADH_PREDICTORS = [
    sc.mean("lnincome", 1980, 1988),
    sc.mean("retprice", 1980, 1988),
    sc.mean("age15to24", 1980, 1988),
    sc.mean("beer", 1984, 1988),
    sc.at("cigsale", 1975),
    sc.at("cigsale", 1980),
    sc.at("cigsale", 1988),
]
SMALL_POOL = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas", "Iowa"]


def california_spec(**changes) -> sc.Spec:
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=ADH_PREDICTORS, fit_window=(1970, 1988))
    return dataclasses.replace(spec, **changes)


@pytest.fixture(scope="module")
def california(smoking):
    return sc.fit(smoking, california_spec())


@pytest.fixture(scope="module")
def california_placebo(california):
    # 38 nested fits: the slowest test of this file (seconds per core).
    return sc.placebo_test(california, n_jobs=2)


@pytest.fixture(scope="module")
def small(smoking):
    """California against eight donors on four predictors: cheap to refit."""
    spec = california_spec(predictors=[sc.mean("retprice", 1980, 1988), sc.at("cigsale", 1975),
                                       sc.at("cigsale", 1980), sc.at("cigsale", 1988)],
                           donors=SMALL_POOL)
    return sc.fit(smoking, spec)


# -- in-space placebos ----------------------------------------------------------------


def test_california_ranks_first_of_39(california_placebo):
    inf = california_placebo
    assert len(inf.table) == 39 and inf.table.index[0] == "California"
    assert inf.rank == 1
    assert inf.p_value == pytest.approx(1 / 39)
    assert inf.gaps.shape == (31, 39)
    assert inf.table["ratio"].idxmax() == "California"


def test_california_most_extreme_under_every_cutoff(california_placebo):
    cutoffs = california_placebo.cutoff_table
    assert {2.0, 5.0, 20.0} <= set(cutoffs.index)
    assert (cutoffs["rank"] == 1).all()
    assert np.allclose(cutoffs["p_value"], 1 / cutoffs["n_units"])
    # The cut-offs drop the badly fitted placebos: fewer units under tighter cut-offs.
    assert cutoffs.loc[2.0, "n_units"] < cutoffs.loc[20.0, "n_units"] < 39


def test_placebo_statistics_follow_their_definitions(california_placebo):
    table = california_placebo.table
    pre = np.sqrt((california_placebo.gaps[california_placebo.pre_mask] ** 2).mean())
    post = np.sqrt((california_placebo.gaps[california_placebo.post_mask] ** 2).mean())
    assert np.allclose(table["pre_rmspe"], pre) and np.allclose(table["post_rmspe"], post)
    assert np.allclose(table["ratio"], post / pre)
    standardised = table["standardised_effect"]
    assert california_placebo.p_negative == (standardised <= standardised.iloc[0]).mean()
    assert california_placebo.p_positive == (standardised >= standardised.iloc[0]).mean()
    periods = california_placebo.period_p_values
    assert list(periods.index) == list(range(1989, 2001)) and (periods["p_value"] > 0).all()


def test_each_placebo_is_the_fit_of_its_relabelled_design(california, california_placebo):
    """A placebo is fit_design on design.relabel(pos) with the result's options: it
    chooses its own predictor weights."""
    position = california.design.units.index("Utah")
    direct = fit_design(california.design.relabel(position), options=california.options)
    assert np.array_equal(california_placebo.weights[position], direct.solution.weights)
    assert np.array_equal(california_placebo.predictor_weights[position], direct.solution.predictor_weights)
    assert not np.allclose(california_placebo.predictor_weights[position],
                           california_placebo.predictor_weights[0])


def test_reused_and_user_predictor_weights_reach_every_placebo(smoking, small):
    reused = sc.placebo_test(small, reuse_predictor_weights=True)
    assert np.allclose(reused.predictor_weights, small.solution.predictor_weights)
    given = sc.fit(smoking, small.spec, predictor_weights=[0.1, 0.2, 0.3, 0.4])
    placebo = sc.placebo_test(given)
    assert placebo.reused_predictor_weights
    assert np.allclose(placebo.predictor_weights, [0.1, 0.2, 0.3, 0.4])


def test_treated_start_can_only_lower_a_placebo_loss(small):
    plain = sc.placebo_test(small)
    started = sc.placebo_test(small, start_from_treated=True)
    assert np.all(started.loss_v <= plain.loss_v * (1 + 1e-9))


def test_ties_are_counted_against_the_treated_unit(small):
    inf = sc.placebo_test(small)
    gaps = np.array(inf.gap_matrix)
    gaps[:, 3] = gaps[:, 0]  # a placebo with exactly the treated unit's gaps
    tied = dataclasses.replace(inf, gap_matrix=gaps)
    assert tied.rank == 2 and tied.p_value == 2 / len(inf.units)


def test_user_cutoff_is_reported_and_validated(small):
    inf = sc.placebo_test(small, mspe_cutoff=3)
    assert list(inf.cutoff_table.index) == [2.0, 3.0, 5.0, 20.0, np.inf]
    with pytest.raises(SpecError, match="mspe_cutoff"):
        sc.placebo_test(small, mspe_cutoff=-1)


# -- execution: determinism, Dask, checkpoints -------------------------------------------


def test_same_results_for_one_two_workers_and_dask(small):
    serial = sc.placebo_test(small, n_jobs=1)
    parallel = sc.placebo_test(small, n_jobs=2)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as stream:
            dask = sc.placebo_test(small, n_jobs=2)
    assert len(stream.data) >= len(small.donors) / 2  # the fits ran on the cluster (joblib may batch them)
    for other in (parallel, dask):
        assert other.p_value == serial.p_value
        assert np.array_equal(other.gap_matrix, serial.gap_matrix)
        assert all(np.array_equal(a, b) for a, b in zip(other.weights, serial.weights))


@pytest.fixture
def count_fits(monkeypatch):
    """Count the refits (n_jobs=1 runs the tasks in this process)."""
    calls = []

    def counting(design, **kwargs):
        calls.append(design.treated)
        return fit_design(design, **kwargs)

    monkeypatch.setattr(_common, "fit_design", counting)
    return calls


def test_interrupted_run_resumes_without_refitting(small, tmp_path, count_fits):
    def interrupt(done, total):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sc.placebo_test(small, checkpoint_dir=tmp_path, progress=interrupt)
    finished = len(list(tmp_path.glob("task-*.json")))
    assert finished == len(count_fits) == 4
    resumed = sc.placebo_test(small, checkpoint_dir=tmp_path)
    assert len(count_fits) == len(small.donors)  # only the missing placebos were fitted
    assert (resumed.run.n_resumed, resumed.run.n_computed) == (4, len(small.donors) - 4)
    fresh = sc.placebo_test(small)
    assert np.array_equal(resumed.gap_matrix, fresh.gap_matrix)
    assert not list(tmp_path.glob("*.tmp"))


def test_deleted_checkpoint_files_are_refitted(small, tmp_path, count_fits):
    sc.placebo_test(small, checkpoint_dir=tmp_path)
    for path in sorted(tmp_path.glob("task-*.json"))[:3]:
        path.unlink()
    count_fits.clear()
    again = sc.placebo_test(small, checkpoint_dir=tmp_path)
    assert len(count_fits) == 3 and again.run.n_computed == 3


def test_corrupted_or_foreign_checkpoints_are_refused(small, tmp_path):
    sc.placebo_test(small, checkpoint_dir=tmp_path)
    task = sorted(tmp_path.glob("task-*.json"))[0]
    content = json.loads(task.read_text())
    content["result"]["loss_v"] += 1.0
    task.write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match="altered"):
        sc.placebo_test(small, checkpoint_dir=tmp_path)
    task.write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted"):
        sc.placebo_test(small, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="another job"):
        sc.placebo_test(small, reuse_predictor_weights=True, checkpoint_dir=tmp_path)
    stranger = tmp_path / "elsewhere"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a synthcontrol checkpoint"):
        sc.placebo_test(small, checkpoint_dir=stranger)


def test_progress_callback_sees_every_batch(small):
    seen = []
    sc.placebo_test(small, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_only_the_runner_imports_joblib():
    package = Path(sc.__file__).parent
    importers = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import|from)\s+joblib", path.read_text(), re.MULTILINE)
    }
    assert importers == {"inference/runner.py"}


# -- pooled ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pooled_fits(smoking):
    """Three treated units sharing a pool of seven donors."""
    pool = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas"]
    spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia", "Iowa"], treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1980), sc.at("cigsale", 1988)],
                   donors=pool)
    return sc.fit(smoking, spec)


@pytest.fixture(scope="module")
def pooled_placebos(pooled_fits):
    return [sc.placebo_test(r) for r in pooled_fits.values()]


def test_pooled_fits_each_shared_placebo_once(pooled_fits, pooled_placebos, count_fits):
    pooled = sc.pooled_test(pooled_fits, n_jobs=1)
    assert len(count_fits) == 7  # the same seven placebos serve all three treated units
    for shared, alone in zip(pooled.placebos, pooled_placebos):
        assert np.array_equal(shared.gap_matrix, alone.gap_matrix)
    assert pooled.p_value == sc.pooled_test(pooled_placebos).p_value


def test_pooled_exact_and_monte_carlo_agree(pooled_placebos):
    exact = sc.pooled_test(pooled_placebos)
    sampled = sc.pooled_test(pooled_placebos, max_combinations=0, n_draws=20_000, seed=3)
    assert (exact.method, exact.n_draws, exact.n_combinations) == ("exact", 7**3, 7**3)
    assert (sampled.method, sampled.n_draws) == ("monte carlo", 20_000)
    assert np.allclose(sampled.table["p_value"], exact.table["p_value"], atol=0.02)
    assert 0 < exact.p_value <= 1 and 0 < sampled.p_value <= 1
    again = sc.pooled_test(pooled_placebos, max_combinations=0, n_draws=20_000, seed=3)
    assert again.p_value == sampled.p_value


def test_pooled_statistic_is_the_average_standardised_gap(pooled_placebos):
    pooled = sc.pooled_test(pooled_placebos)
    by_unit = [p.gaps.iloc[:, 0][p.post_mask] / p.table["pre_rmspe"].iloc[0] for p in pooled_placebos]
    assert np.allclose(pooled.table["statistic"].iloc[:-1], np.mean(by_unit, axis=0))
    # The exact null holds every placebo combination: its mean is the mean of the placebos.
    placebo_mean = np.mean([(p.gaps.iloc[:, 1:][p.post_mask] / p.table["pre_rmspe"].iloc[1:]).mean(axis=1)
                            for p in pooled_placebos], axis=0)
    assert np.allclose(pooled.null.mean(axis=0), placebo_mean)


def test_pooled_refuses_different_post_periods(smoking, pooled_placebos):
    spec = sc.Spec(outcome="cigsale", treated="Georgia", treatment_start=1990,
                   predictors=[sc.at("cigsale", 1975)], donors=SMALL_POOL[:4])
    other = sc.placebo_test(sc.fit(smoking, spec))
    with pytest.raises(SpecError, match="different post-periods"):
        sc.pooled_test([pooled_placebos[0], other])
    with pytest.raises(SpecError, match="at least two"):
        sc.pooled_test(pooled_placebos[:1])


# -- conformal --------------------------------------------------------------------------


def test_conformal_intervals_contain_the_estimate_and_reject_zero(smoking, california):
    # Predictor weights given: the null refits keep them (fast inner solves only).
    fixed_v = sc.fit(smoking, california_spec(), predictor_weights=california.predictor_weights)
    cf = sc.conformal(fixed_v, n_grid=21)
    table = cf.table
    assert ((table["lower"] <= table["estimate"]) & (table["estimate"] <= table["upper"])).all()
    assert not (table["lower_open"] | table["upper_open"]).any()
    assert (table["upper"] < 0).sum() >= 10  # California's effect is negative
    assert cf.p_value <= 0.1


def _no_effect_result(seed):
    """A unit that is a noisy mix of donors with no effect: the null holds."""
    rng = np.random.default_rng(seed)
    T, J = 30, 8
    donors = np.cumsum(rng.normal(size=(T, J)), axis=0) + 20
    treated = donors[:, :3].mean(axis=1) + 0.5 * rng.normal(size=T)
    units = ["treated", *(f"d{j}" for j in range(J))]
    frame = {"unit": np.repeat(units, T), "time": np.tile(np.arange(T), J + 1),
             "y": np.concatenate([treated, *donors.T])}
    # Outcome lags (the default spec): the refit treats every period alike, as the
    # exactness of conformal p-values requires (summary predictors get a warning).
    spec = sc.Spec(outcome="y", treated="treated", treatment_start=22)
    return sc.fit(pd.DataFrame(frame), spec)


def test_conformal_p_values_are_not_small_under_the_null():
    # alpha below 1/(T0 + 1): no interval search, only the p-values (and a warning).
    with pytest.warns(sc.InferenceWarning, match="smallest p-value attainable"):
        p = [sc.conformal(_no_effect_result(seed), alpha=0.01, grid=[-1.0, 1.0]).p_value for seed in range(8)]
    assert np.mean(p) > 0.25 and min(p) > 1 / 30


# -- leave-one-out and in-time placebos -------------------------------------------------------


def test_leave_one_out_drops_each_positive_weight_donor(small):
    loo = sc.leave_one_out(small)
    positive = small.weights[small.weights > 1e-6]
    assert set(loo.table.index[1:]) == set(positive.index) and len(loo.table) == len(positive) + 1
    assert loo.paths.shape == (31, len(positive) + 1)
    for donor in positive.index:
        direct = fit_design(small.design.without_donors([donor]), options=small.options)
        assert np.allclose(loo.gaps[donor], direct.path["gap"])
    effects = loo.effect_range
    assert (effects["min"] <= effects["max"]).all()


def test_in_time_placebo_finds_a_small_fake_effect(smoking, california):
    placebo = sc.in_time_placebo(california, fake_start=1985, data=smoking)
    row = placebo.table.loc[1985]
    assert abs(row["fake_effect"]) < abs(california.average_effect) / 2
    assert row["ratio"] < california.post_rmspe / california.pre_rmspe
    assert "lnincome(1980-1984)" in row["predictors"] and "cigsale(1988)" not in row["predictors"]
    assert row["n_fit_periods"] == 15


def test_in_time_placebo_needs_no_data(smoking, california, small):
    clipped = sc.in_time_placebo(california, fake_start=1985)  # predictor windows clipped
    with_data = sc.in_time_placebo(california, fake_start=1985, data=smoking)
    np.testing.assert_array_equal(clipped.gap_matrix, with_data.gap_matrix)
    assert "lnincome(1980-1984)" in clipped.table.loc[1985, "predictors"]
    early = sc.in_time_placebo(small, fake_start=1981, data=smoking)
    lags = sc.fit(smoking, dataclasses.replace(small.spec, predictors=()))
    moved = sc.in_time_placebo(lags, fake_start=1985)
    rebuilt = sc.in_time_placebo(lags, fake_start=1985, data=smoking)
    assert np.allclose(moved.gap_matrix, rebuilt.gap_matrix)
    assert early.table.loc[1981, "n_fit_periods"] == 11
    with pytest.raises(SpecError, match="before the treatment start"):
        sc.in_time_placebo(small, fake_start=1990, data=smoking)


def test_design_shift_follows_the_rules_of_prepare():
    rng = np.random.default_rng(0)
    units, years = [f"u{i}" for i in range(6)], list(range(2000, 2012))
    growth = rng.normal(0.03, 0.02, size=(len(years), len(units)))
    growth[0] = 0.0  # an index: the same value (100) for every unit in the base year
    frame = pd.DataFrame([(u, y, 100 * np.exp(growth[: i + 1, j].sum()))
                          for j, u in enumerate(units) for i, y in enumerate(years)], columns=["unit", "time", "y"])
    spec = sc.Spec(outcome="y", treated="u0", treatment_start=2009)  # default predictors: outcome lags
    design = sc.fit(frame, spec).design
    shifted = design.shift(2006)
    assert shifted.predictor_labels == ("y(2001)", "y(2002)", "y(2003)", "y(2004)", "y(2005)")  # not y(2000)
    assert shifted.donors == design.donors and shifted.spec.fit_window == (2000, 2005)
    rebuilt = sc.estimators.prepare_designs(frame, sc.spec.shift_spec(spec, 2006, years, design.donors))["u0"]
    np.testing.assert_array_equal(shifted.predictors, rebuilt.predictors)
    with pytest.raises(SpecError, match="keeps no panel"):
        dataclasses.replace(design, panel=None).shift(2006)


# -- results ------------------------------------------------------------------------------


def test_results_are_frozen_with_summary_repr_and_plots(small, smoking, pooled_placebos):
    results = [
        sc.placebo_test(small),
        sc.leave_one_out(small),
        sc.in_time_placebo(small, fake_start=[1981, 1984], data=smoking),
        sc.conformal(small, n_grid=11),
        sc.pooled_test(pooled_placebos),
    ]
    for result in results:
        assert "\n" not in repr(result) and repr(result).startswith("<")
        summary = result.summary()
        assert isinstance(summary, sc.Summary) and summary.as_text()
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.treated = "x"
    placebo, loo, in_time, cf, _ = results
    with pytest.raises(ValueError):
        placebo.gap_matrix[0, 0] = 1.0
    for axes in (placebo.plot_gaps(cutoff=5), placebo.plot_ratios(), loo.plot(), in_time.plot(), cf.plot()):
        assert isinstance(axes, plt.Axes)
    plt.close("all")


def test_inputs_are_checked(smoking, small, pooled_placebos):
    two = sc.fit(smoking, dataclasses.replace(small.spec, donors=["Utah", "Nevada"]))
    with pytest.raises(sc.DonorPoolError, match="at least 3 donors"):
        sc.placebo_test(two)
    both = sc.fit(smoking, dataclasses.replace(small.spec, treated=["California", "Georgia"]))
    with pytest.raises(SpecError, match="use pooled_test"):
        sc.leave_one_out(both)
    with pytest.raises(SpecError, match="every predictor"):
        sc.in_time_placebo(small, fake_start=1975, data=smoking)
    with pytest.raises(SpecError, match="alpha"):
        sc.conformal(small, alpha=1.5)


def _warn_on_odd(value: int) -> int:
    if value % 2:
        warnings.warn("odd input", sc.ConvergenceWarning)
    return value


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_task_warnings_come_back_once_with_a_count(n_jobs):
    from synthcontrol.inference.runner import run_tasks

    with pytest.warns(sc.ConvergenceWarning, match=r"in 2 of 4 tasks: odd input") as caught:
        results, _ = run_tasks(_warn_on_odd, [0, 1, 2, 3], n_jobs=n_jobs, description="toy")
    assert results == [0, 1, 2, 3]
    assert len([w for w in caught if "odd input" in str(w.message)]) == 1


# -- degenerate panels: exact fits, identical donors (the round-off floor) -----------------


def long_panel(Y: np.ndarray, first_period: int = 2000) -> pd.DataFrame:
    """Long frame of a (T, N) outcome matrix; column 0 is unit 'u0'."""
    T, N = Y.shape
    return pd.DataFrame(
        [{"unit": f"u{j}", "time": first_period + t, "y": float(Y[t, j])} for j in range(N) for t in range(T)]
    )


def exact_fit_panel(effect: float, n_pre: int = 4, n_post: int = 2, twin: bool = False, seed: int = 0) -> pd.DataFrame:
    """u0 is the average of two donors before treatment (an exact fit), plus ``effect``
    after; with ``twin`` the last donor is a copy of the first."""
    rng = np.random.default_rng(seed)
    donors = rng.normal(size=(n_pre + n_post, 5)).cumsum(axis=0) + 10.0
    if twin:
        donors = np.column_stack([donors, donors[:, 0]])
    treated = donors[:, :2].mean(axis=1)
    treated[n_pre:] += effect
    return long_panel(np.column_stack([treated, donors]))


def exact_spec(n_pre: int = 4) -> sc.Spec:
    return sc.Spec(outcome="y", treated="u0", treatment_start=2000 + n_pre)


def test_exact_pre_fit_with_an_effect_is_most_extreme_not_nan():
    res = sc.fit(exact_fit_panel(effect=1.0), exact_spec(), n_random_starts=3)
    placebo = sc.placebo_test(res)
    table = placebo.table
    assert table.iloc[0]["pre_rmspe"] <= placebo.round_off
    assert np.all(np.isfinite(table[["ratio", "standardised_effect", "pre_mspe_ratio"]].to_numpy()))
    assert placebo.rank == 1 and placebo.p_value == 1 / len(placebo.units)
    assert placebo.round_off == pytest.approx(1e-8 * np.abs(res.design.outcome).max())
    assert np.all(placebo.period_p_values["p_value"] >= 1 / len(placebo.units))


def test_exact_fit_throughout_is_not_significant():
    """0/0 once gave rank 0 and p = 0; an exact fit with no effect is the least extreme."""
    res = sc.fit(exact_fit_panel(effect=0.0), exact_spec(), n_random_starts=3)
    placebo = sc.placebo_test(res)
    assert placebo.table["ratio"].iloc[0] == 0.0 and placebo.table["standardised_effect"].iloc[0] == 0.0
    assert placebo.p_value == 1.0 and placebo.p_negative + placebo.p_positive >= 1.0
    assert np.all(placebo.period_p_values["p_value"] == 1.0)


def test_identical_donors_tie_instead_of_nan():
    res = sc.fit(exact_fit_panel(effect=1.0, twin=True), exact_spec(), n_random_starts=3)
    placebo = sc.placebo_test(res)
    twins = placebo.table.loc[["u1", "u6"]]
    assert np.all(twins["ratio"] == 0.0) and np.all(twins["rank"] == len(placebo.units))
    assert not placebo.table.isna().any().any()
    assert placebo.p_value == 1 / len(placebo.units)


def test_round_off_floor_scales_with_the_outcome():
    frame = exact_fit_panel(effect=1.0, twin=True)
    p_values = []
    for factor in (1e-6, 1.0, 1e6):
        res = sc.fit(frame.assign(y=frame["y"] * factor), exact_spec(), n_random_starts=3)
        placebo = sc.placebo_test(res)
        assert placebo.round_off == pytest.approx(1e-8 * factor * np.abs(frame["y"]).max())
        p_values.append((placebo.p_value, placebo.p_negative, placebo.p_positive))
    assert p_values[0] == p_values[1] == p_values[2]


def test_pooled_and_in_time_use_the_floor():
    exact = sc.fit(exact_fit_panel(effect=1.0, n_pre=5), exact_spec(5), n_random_starts=3)
    assert np.isfinite(sc.in_time_placebo(exact, fake_start=2003).real_ratio)
    frame = exact_fit_panel(effect=1.0, n_pre=5)
    both = sc.fit(frame, dataclasses.replace(exact_spec(5), treated=["u0", "u1"]), n_random_starts=3)
    pooled = sc.pooled_test(both)
    assert np.all(np.isfinite(pooled.null)) and np.all(np.isfinite(pooled.observed))
    assert 1 / (pooled.n_draws + 1) <= pooled.p_value <= 1


@st.composite
def degenerate_panels(draw):
    """Small panels with ties: exact fits, duplicate donors, K = 1, two or three
    pre-periods, outcomes in any unit."""
    n_donors, n_pre, n_post = draw(st.integers(3, 4)), draw(st.integers(2, 3)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    donors = rng.normal(size=(n_pre + n_post, n_donors)).round(draw(st.sampled_from([0, 1, 6])))
    case = draw(st.sampled_from(["noisy", "exact", "exact without effect", "duplicate donor"]))
    treated = donors @ rng.dirichlet(np.ones(n_donors))
    if case == "noisy":
        treated = treated + rng.normal(size=treated.size)
    if case == "exact":
        treated[n_pre:] += 1.0
    if case == "duplicate donor":
        donors[:, -1] = donors[:, 0]
    frame = long_panel(np.column_stack([treated, donors]) * 10.0 ** draw(st.integers(-9, 9)))
    one_predictor = draw(st.booleans())
    predictors = [sc.mean("y", 2000, 2000 + n_pre - 1)] if one_predictor else []
    spec = sc.Spec(outcome="y", treated="u0", treatment_start=2000 + n_pre, predictors=predictors)
    return frame, spec, draw(st.permutations(range(len(frame))))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(degenerate_panels())
def test_placebo_p_values_are_at_least_one_over_n_and_ignore_row_order(case):
    frame, spec, order = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sc.SynthControlWarning)
        placebo = sc.placebo_test(sc.fit(frame, spec, n_random_starts=2))
        shuffled = sc.placebo_test(sc.fit(frame.iloc[list(order)], spec, n_random_starts=2))
    n = len(placebo.units)
    assert not placebo.table.isna().any().any()
    for p in (placebo.p_value, placebo.p_negative, placebo.p_positive, *placebo.period_p_values["p_value"]):
        assert 1 / n <= p <= 1
    assert (placebo.p_value, placebo.p_negative, placebo.p_positive) == (
        shuffled.p_value, shuffled.p_negative, shuffled.p_positive)
    pd.testing.assert_frame_equal(placebo.table, shuffled.table)


# -- checkpoints: concurrent starts, versions, consistent API --------------------------------


def test_second_process_joins_the_manifest_created_first(small, tmp_path, monkeypatch):
    """Simulate losing the race: the manifest appears between the check and the creation."""
    from synthcontrol.inference import runner

    winner = {}
    create = runner._create_exclusive

    def lose_the_race(path, content):
        winner["created"] = create(path, content)  # the other process, just before us
        return create(path, content)

    monkeypatch.setattr(runner, "_create_exclusive", lose_the_race)
    first = sc.placebo_test(small, checkpoint_dir=tmp_path)
    assert winner["created"] and first.run.n_computed == len(small.donors)
    monkeypatch.setattr(runner, "_create_exclusive", create)
    assert sc.placebo_test(small, checkpoint_dir=tmp_path).run.n_resumed == len(small.donors)


def test_simultaneous_starts_create_one_manifest(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from synthcontrol.inference.runner import Checkpoint

    barrier = Barrier(8)

    def start(job: int):
        barrier.wait()
        try:
            Checkpoint(tmp_path, fingerprint="same job" if job < 6 else f"other job {job}", keys=["a", "b"])
            return "joined"
        except CheckpointError as error:
            return str(error)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(start, range(8)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    joined = [o for o in outcomes if o == "joined"]
    refused = [o for o in outcomes if o != "joined"]
    assert len(joined) in (1, 6) and all("another job" in o for o in refused)
    assert not any("no manifest.json" in o for o in refused)


def test_checkpoint_of_another_version_is_refused(small, tmp_path, monkeypatch):
    from synthcontrol.inference import runner

    sc.placebo_test(small, checkpoint_dir=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["version"] == runner._package_version() and manifest["format"].endswith("/2")
    monkeypatch.setattr(runner, "_package_version", lambda: "99.0")
    with pytest.raises(CheckpointError, match=rf"(?s)synthcontrol {re.escape(manifest['version'])}.*synthcontrol 99\.0"):
        sc.placebo_test(small, checkpoint_dir=tmp_path)


def test_checkpoint_directory_that_is_a_file_or_unwritable(small, tmp_path):
    afile = tmp_path / "results.csv"
    afile.write_text("x")
    for routine in (sc.placebo_test, sc.leave_one_out):
        with pytest.raises(sc.SynthControlError, match="checkpoint_dir.*results.csv.*is a file"):
            routine(small, checkpoint_dir=afile)
    with pytest.raises(CheckpointError, match="cannot create checkpoint directory"):
        sc.placebo_test(small, checkpoint_dir=afile / "inside")


def test_in_time_placebo_resumes_from_a_checkpoint(smoking, small, tmp_path, count_fits):
    first = sc.in_time_placebo(small, fake_start=[1984, 1986], data=smoking, checkpoint_dir=tmp_path)
    count_fits.clear()
    again = sc.in_time_placebo(small, fake_start=[1984, 1986], data=smoking, checkpoint_dir=tmp_path)
    assert not count_fits and again.run.n_resumed == 2
    assert np.array_equal(first.gap_matrix, again.gap_matrix, equal_nan=True)


def test_warnings_point_at_the_callers_line(smoking):
    # A warning raised deep in the package (a search inside a placebo refit, re-issued
    # once by the runner) names the user's line, not the package's.
    spec = california_spec(donors=SMALL_POOL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sc.fit(smoking, spec, max_iterations=1)
        sc.placebo_test(result, n_jobs=1)
    convergence = [w for w in caught if issubclass(w.category, sc.ConvergenceWarning)]
    assert convergence, "max_iterations=1 should stop some local search early"
    assert {Path(w.filename).resolve() for w in convergence} == {Path(__file__).resolve()}
