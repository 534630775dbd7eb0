"""Behaviour of fit() and its results: purity, immutability, pickling, determinism, several
treated units, fixed predictor weights, and the fit_design entry point."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol.estimators import ESTIMATORS, fit_design, prepare_designs
from synthcontrol.weights import outcome_loss


@pytest.fixture
def result(panel, spec):
    return sc.fit(panel, spec)


def test_fit_does_not_modify_its_inputs(panel, spec):
    before = panel.copy(deep=True)
    spec_before = dataclasses.replace(spec)
    weights = pd.Series({"x(2000-2007)": 2.0, "y(2002)": 1.0, "y(2007)": 1.0})
    weights_before = weights.copy()
    sc.fit(panel, spec)
    sc.fit(panel, spec, predictor_weights=weights)
    pd.testing.assert_frame_equal(panel, before)
    pd.testing.assert_series_equal(weights, weights_before)
    assert spec == spec_before


def test_result_arrays_are_read_only(result):
    for array in (result.solution.weights, result.solution.predictor_weights, result.scale):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0


def test_editing_returned_frames_does_not_change_the_result(result):
    weights, path = result.weights.copy(), result.path.copy()
    returned = result.weights
    returned.iloc[:] = 0.0
    frame = result.path
    frame["gap"] = 99.0
    pd.testing.assert_series_equal(result.weights, weights)
    pd.testing.assert_frame_equal(result.path, path)


def test_result_attributes_cannot_be_reassigned(result):
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.solution = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.design = None


def test_result_pickles(result):
    copy = pickle.loads(pickle.dumps(result))
    pd.testing.assert_series_equal(copy.weights, result.weights)
    pd.testing.assert_frame_equal(copy.path, result.path)
    assert copy.summary().as_text() == result.summary().as_text()
    assert copy.options == result.options


def test_same_seed_same_result(smoking):
    spec = sc.Spec(
        outcome="cigsale",
        treated="Utah",
        treatment_start=1989,
        predictors=[sc.mean("retprice", 1980, 1988), sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
        fit_window=(1970, 1988),
    )
    first = sc.fit(smoking, spec, seed=7, n_random_starts=2)
    second = sc.fit(smoking, spec, seed=7, n_random_starts=2)
    np.testing.assert_array_equal(first.solution.weights, second.solution.weights)
    np.testing.assert_array_equal(first.solution.predictor_weights, second.solution.predictor_weights)
    assert first.loss_v == second.loss_v
    assert first.options.seed == 7


def test_several_treated_units_each_get_their_own_pool(panel, spec):
    spec = dataclasses.replace(spec, treated=["T", "A"])
    results = sc.fit(panel, spec, predictor_weights=[1, 1, 1])
    assert isinstance(results, Mapping) and isinstance(results, sc.SynthResults)
    assert list(results) == ["T", "A"]
    for treated, res in results.items():
        assert res.treated == treated
        assert not {"T", "A"} & set(res.donors)
        assert set(res.donors) == {"B", "C", "D", "E"}
    assert list(results.table.index) == ["T", "A"]


def test_single_treated_in_a_list_returns_a_mapping(panel, spec):
    results = sc.fit(panel, dataclasses.replace(spec, treated=["T"]), predictor_weights=[1, 1, 1])
    assert isinstance(results, sc.SynthResults) and list(results) == ["T"]


def test_donor_mapping_gives_each_treated_unit_its_pool(panel, spec):
    pools = {"T": ["B", "C", "D"], "A": ["C", "D", "E"]}
    spec = dataclasses.replace(spec, treated=["T", "A"], donors=pools)
    results = sc.fit(panel, spec, predictor_weights=[1, 1, 1])
    for treated, pool in pools.items():
        assert list(results[treated].donors) == pool


def test_shared_donor_list_drops_other_treated_units(panel, spec):
    spec = dataclasses.replace(spec, treated=["T", "A"], donors=["B", "C", "D"])
    results = sc.fit(panel, spec, predictor_weights=[1, 1, 1])
    assert list(results["T"].donors) == ["B", "C", "D"]
    assert list(results["A"].donors) == ["B", "C", "D"]


# Spec's docstring: with a shared donor list "each treated unit is removed from the
# others' pools"; but Spec.for_treated keeps a treated unit in its *own* pool, so prepare
# rejects it and a shared list naming any treated unit always fails (reported to lead).
def test_shared_donor_list_may_name_the_treated_units(panel, spec):
    spec = dataclasses.replace(spec, treated=["T", "A"], donors=["A", "B", "C", "T", "D"])
    results = sc.fit(panel, spec, predictor_weights=[1, 1, 1])
    assert list(results["T"].donors) == ["B", "C", "D"]
    assert list(results["A"].donors) == ["B", "C", "D"]


def test_exclude_removes_donors(panel, spec):
    res = sc.fit(panel, dataclasses.replace(spec, exclude=["C"]), predictor_weights=[1, 1, 1])
    assert "C" not in res.donors and len(res.donors) == 4


def test_result_quantities_are_consistent(result, panel):
    path, design = result.path, result.design
    np.testing.assert_allclose(path["gap"], path["treated"] - path["synthetic"])
    wide = panel.pivot(index="time", columns="unit", values="y")
    np.testing.assert_allclose(path["treated"], wide["T"].loc[list(path.index)])
    donors = wide[list(result.donors)].loc[list(path.index)]
    np.testing.assert_allclose(path["synthetic"], donors @ result.weights)
    assert list(result.effects.index) == [2008, 2009, 2010, 2011]
    pre = path["gap"].loc[2000:2007]
    assert result.pre_rmspe == pytest.approx(np.sqrt(np.mean(pre**2)))
    assert result.loss_v == pytest.approx(np.mean(pre**2))
    assert result.post_rmspe == pytest.approx(np.sqrt(np.mean(result.effects**2)))
    assert result.average_effect == pytest.approx(result.effects.mean())
    Z = design.outcome[design.fit_mask]
    assert result.loss_v == pytest.approx(outcome_loss(Z[:, 0], Z[:, 1:], result.solution.weights))
    assert result.loss_v >= result.lower_bound * (1 - 1e-9)
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-10)
    assert result.predictor_weights.sum() == pytest.approx(1.0, abs=1e-10)
    assert (result.weights >= 0).all() and (result.predictor_weights >= 0).all()
    assert result.average_effect < 0  # the fixture panel has an effect of -2


def test_balance_and_scaling(result):
    balance = result.balance
    assert list(balance.index) == list(result.design.predictor_labels)
    synthetic = result.design.predictors[:, 1:] @ result.solution.weights
    np.testing.assert_allclose(balance["synthetic"], synthetic)
    np.testing.assert_allclose(result.scaling, result.design.predictors.std(axis=1, ddof=1))


def test_fixed_predictor_weights_reproduce_the_nested_fit(result, panel, spec):
    refit = sc.fit(panel, spec, predictor_weights=result.predictor_weights)
    assert refit.fit_record["predictor_weights_given"]
    np.testing.assert_allclose(refit.solution.weights, result.solution.weights, atol=1e-10)
    assert "given by the user" in refit.summary().as_text()


def test_fit_design_equals_fit(result, panel, spec):
    design = prepare_designs(panel, spec)["T"]
    again = fit_design(design, options=result.options)
    np.testing.assert_array_equal(again.solution.weights, result.solution.weights)
    assert again.loss_v == result.loss_v


def test_extra_starts_never_worsen_the_loss(result, panel, spec):
    design = prepare_designs(panel, spec)["T"]
    K = len(design.predictor_labels)
    again = fit_design(design, options=result.options, extra_starts=[np.full(K, 1.0 / K)])
    assert again.loss_v <= result.loss_v * (1 + 1e-9)


def test_options_are_recorded(panel, spec):
    res = sc.fit(panel, spec, seed=3, n_random_starts=1, n_polish=0, max_iterations=50)
    assert res.options == sc.FitOptions(seed=3, n_random_starts=1, n_polish=0, max_iterations=50)
    assert "classic" in ESTIMATORS and res.estimator == "classic"


def test_summary_prints_nothing_and_renders(result, capsys):
    summary = result.summary()
    assert isinstance(summary, sc.Summary)
    assert capsys.readouterr().out == ""
    text, html, markdown = summary.as_text(), summary.as_html(), summary.as_markdown()
    top = result.weights.idxmax()
    for rendering in (text, html, markdown):
        assert str(top) in rendering and "pre_rmspe" in rendering
    assert set(summary.tables) >= {"Donor weights", "Predictor balance", "Fit and effect"}


def test_plots_return_axes(result):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for plot in (result.plot_path, result.plot_gap, result.plot_weights):
        assert plot(ax=ax) is ax
    assert plot(ax=None) is not ax
    plt.close("all")
