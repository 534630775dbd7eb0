"""Search options and the estimator registry: checked once, when built, with the
messages every entry point shares; each estimator's declarations match what it does."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import numpy as np
import pytest

import synthcontrol as sc
from synthcontrol.errors import ArgumentError, SpecError
from synthcontrol.options import MAX_RANDOM_STARTS
from synthcontrol.registry import ESTIMATORS

OUTCOME_ONLY = ("demeaned", "sdid", "did", "robust")


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"seed": -1}, ("seed=-1", ">= 0")),
        ({"n_random_starts": 1.5}, ("n_random_starts=1.5", "integer")),
        ({"n_local": 0}, ("n_local=0", ">= 1")),
        ({"max_iterations": True}, ("max_iterations=True",)),
        ({"min_predictor_weight": 1.0}, ("min_predictor_weight=1.0", "[0, 1)")),
        ({"global_search": "no"}, ("global_search='no'", "True or False")),
        ({"certify_time_limit": 0}, ("certify_time_limit=0",)),
    ],
)
def test_search_options_refuse_bad_settings_when_built(changes, fragments):
    for options in (sc.SearchOptions, sc.FitOptions):
        with pytest.raises(ArgumentError) as error:
            options(**changes)
        assert all(f in str(error.value) for f in fragments), str(error.value)
    with pytest.raises(ArgumentError):
        dataclasses.replace(sc.FitOptions(), **changes)  # a changed copy is checked too


def test_settings_are_canonical_and_options_hashable():
    options = sc.FitOptions(seed=np.int64(3), n_local=np.int32(2), global_search=np.bool_(False),
                            estimator="penalized", estimator_options={"lambdas": [0.0, 1.0]})
    assert type(options.seed) is int and type(options.n_local) is int and type(options.global_search) is bool
    assert options.estimator_options == (("lambdas", (0.0, 1.0)),)
    assert options == sc.FitOptions(seed=3, n_local=2, estimator="penalized",
                                    estimator_options=(("lambdas", (0.0, 1.0)),))
    assert hash(options) == hash(pickle.loads(pickle.dumps(options)))


def test_fit_options_extend_search_options():
    options = sc.FitOptions(seed=5, estimator="augmented", estimator_options={"holdout": 2})
    assert isinstance(options, sc.SearchOptions)
    assert options.search_options() == sc.SearchOptions(seed=5).search_options()
    assert options.settings == {"lambda_": None, "holdout": 2, "min_1se": True}
    assert sc.results.FitOptions is sc.FitOptions  # still importable where it lived


def test_fit_keywords_default_to_the_search_options():
    parameters = inspect.signature(sc.fit).parameters
    for field in dataclasses.fields(sc.SearchOptions):
        assert parameters[field.name].default == field.default, field.name


@pytest.mark.parametrize(
    ("estimator", "options", "fragments"),
    [
        ("classic", {"lambda_": 1.0}, ("'lambda_'", "'classic'", "takes none")),
        ("demeaned", {"se": True}, ("'se'", "'demeaned'", "takes none")),
        ("sdid", {"sd": False}, ("['sd']", "'sdid'", "'se'")),
        ("augmented", {"holdout": 0}, ("holdout", "integer >= 1")),
        ("robust", {"sv_count": 2, "threshold": 1.0}, ("sv_count or threshold", "not both")),
        ("nope", {}, ("estimator='nope'", "choose one of")),
    ],
)
def test_estimator_settings_are_checked_before_any_data(estimator, options, fragments):
    with pytest.raises(ArgumentError) as error:
        sc.FitOptions(estimator=estimator, estimator_options=options)
    assert all(f in str(error.value) for f in fragments), str(error.value)


def test_certify_is_refused_where_it_cannot_hold():
    with pytest.raises(SpecError, match="min_predictor_weight > 0"):
        sc.SearchOptions(certify=True, min_predictor_weight=0.0)
    with pytest.raises(SpecError, match="estimator='sdid' has none"):
        sc.FitOptions(certify=True, estimator="sdid")


def test_every_estimator_declares_whether_it_uses_predictor_weights(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
                   donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Iowa"])
    assert set(OUTCOME_ONLY) | {"classic", "penalized", "augmented"} == set(ESTIMATORS)
    for name, entry in ESTIMATORS.items():
        res = sc.fit(smoking, spec, estimator=name, n_random_starts=20)
        assert res.uses_predictor_weights is entry.uses_predictor_weights is (name not in OUTCOME_ONLY)
        assert bool(res.predictor_weights.isna().all()) is (name in OUTCOME_ONLY)
        assert "predictors_used" not in res.extras  # a typed attribute, not a side channel
        if entry.simplex_weights:
            assert res.intercept == 0 and res.weights.min() >= 0 and abs(res.weights.sum() - 1) < 1e-12
        for setting, key in entry.chosen_from_data.items():
            assert setting in entry.settings and (key is None or key in res.extras)


def test_outcome_estimators_have_no_predictor_weights_to_reuse(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   donors=["Utah", "Nevada", "Montana", "Colorado"])
    res = sc.fit(smoking, spec, estimator="sdid", estimator_options={"se": False})
    with pytest.raises(SpecError, match="no predictor weights to reuse"):
        sc.placebo_test(res, reuse_predictor_weights=True)


def test_a_typo_in_the_number_of_random_starts_is_refused_before_any_allocation(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.mean("retprice", 1980, 1988)])
    with pytest.raises(sc.ArgumentError, match="n_random_starts"):
        sc.fit(smoking, spec, n_random_starts=10**17)
    assert sc.SearchOptions(n_random_starts=MAX_RANDOM_STARTS).n_random_starts == MAX_RANDOM_STARTS
