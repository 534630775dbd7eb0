"""The variant estimators and ``sc.Panel`` at their boundary: options at the edge of
their range, degenerate panels and tied optima get a correct answer or a project
error that says what to do, never a raw numpy traceback or an answer that depends
on the donor order."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthcontrol as sc
from synthcontrol.errors import DonorPoolError, MissingColumnError, NonNumericError, SpecError
from synthcontrol.variants.penalized import penalized_weights

POOL = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Connecticut", "Kansas"]


def _long(Y: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Long frame of a (T x units) outcome matrix, periods 1..T."""
    T = Y.shape[0]
    return pd.DataFrame({"unit": np.repeat(names, T), "time": np.tile(np.arange(1, T + 1), len(names)),
                         "y": Y.T.ravel()})


# ---------------------------------------------------------------- penalized: large lambda


@pytest.mark.parametrize("lambda_", [1e100, 1e200, 1e300])
def test_penalized_solves_a_huge_lambda_as_nearest_neighbour(smoking, lambda_):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989, donors=POOL)
    moderate = sc.fit(smoking, spec, estimator="penalized", estimator_options={"lambda_": 1e6}, n_random_starts=3)
    huge = sc.fit(smoking, spec, estimator="penalized", estimator_options={"lambda_": lambda_}, n_random_starts=3)
    assert moderate.weights.max() == 1.0  # nearest-neighbour matching already
    np.testing.assert_array_equal(huge.weights.to_numpy(), moderate.weights.to_numpy())
    assert np.isfinite(huge.average_effect) and huge.extras["lambda_"] == lambda_


def test_penalized_huge_lambda_splits_equally_between_tied_nearest_donors():
    X0 = np.array([[0.0, 2.0, 2.0, 5.0]])  # donors 2 and 3 tie as nearest to 1.5
    np.testing.assert_array_equal(penalized_weights([1.5], X0, [1.0], 1e300), [0.0, 0.5, 0.5, 0.0])


# ----------------------------------------------------------------- augmented: edge cases


def test_augmented_cross_validation_on_a_short_pre_period_says_what_to_do():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(4, 5)).cumsum(axis=0) + 10.0
    df = _long(np.column_stack([Y[:, :2].mean(axis=1) + 0.1, Y]), ["t", *"abcde"])
    spec = sc.Spec(outcome="y", treated="t", treatment_start=3)  # T0 = 2
    with pytest.raises(SpecError) as raised:
        sc.fit(df, spec, estimator="augmented", n_random_starts=3)
    message = str(raised.value)
    assert "2 fit-window periods" in message and "estimator_options['lambda_']" in message
    assert "widen fit_window" in message and "at most 0" not in message
    given = sc.fit(df, spec, estimator="augmented", estimator_options={"lambda_": 1.0}, n_random_starts=3)
    assert given.extras["lambda_chosen_by"] == "given" and np.isfinite(given.average_effect)


def test_augmented_with_identical_donors_is_refused_with_a_way_out():
    rng = np.random.default_rng(1)
    donor = rng.normal(size=6).cumsum() + 10.0
    df = _long(np.column_stack([donor + 0.3, *[donor] * 4]), ["t", *"abcd"])
    spec = sc.Spec(outcome="y", treated="t", treatment_start=5)
    with pytest.raises(DonorPoolError, match=r"(?s)identical outcomes.*estimator_options\['lambda_'\].*'classic'"):
        sc.fit(df, spec, estimator="augmented", n_random_starts=3)
    given = sc.fit(df, spec, estimator="augmented", estimator_options={"lambda_": 1.0}, n_random_starts=3)
    classic = sc.fit(df, spec, n_random_starts=3)
    np.testing.assert_allclose(given.weights, classic.weights, atol=1e-12)


# ------------------------------------------------------------ tied optima and donor order

TIED = [("demeaned", {}), ("penalized", {"lambda_": 0.0}), ("penalized", {}), ("sdid", {"zeta_omega": 0.0})]
#: The estimators whose ties are broken by the least-norm rule (units cannot move it).
LEAST_NORM = [("demeaned", {}), ("sdid", {"zeta_omega": 0.0})]


@st.composite
def _tied_panels(draw):
    """More donors than pre-periods, integer data (exact fits, ties), maybe a copy."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_donors, n_pre = draw(st.integers(4, 8)), draw(st.integers(2, 3))
    Y = rng.integers(0, 3, size=(n_pre + 2, n_donors)).astype(float) + 5.0
    y1 = Y @ rng.dirichlet(np.ones(n_donors))
    if draw(st.booleans()):
        Y = np.column_stack([Y, Y[:, 0]])
    names = [f"d{j}" for j in range(Y.shape[1])]
    return _long(np.column_stack([y1, Y]), ["t", *names]), n_pre + 1, names


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tied_panels(), st.sampled_from(TIED))
def test_tied_optima_do_not_depend_on_donor_order_or_names(panel, estimator):
    df, start, names = panel
    name, options = estimator
    spec = sc.Spec(outcome="y", treated="t", treatment_start=start)

    def fit(data, spec):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sc.SynthControlWarning)
            return sc.fit(data, spec, estimator=name, estimator_options=options, n_random_starts=5)

    try:
        base = fit(df, spec)
    except sc.PredictorError:
        return  # no unit differs in the pre-period: refused, nothing to compare
    reversed_pool = fit(df, dataclasses.replace(spec, donors=names[::-1]))
    renamed = {u: f"z{len(names) - k:02d}" for k, u in enumerate(names)}  # reverses the sort order
    relabelled = fit(df.assign(unit=df.unit.map(lambda u: renamed.get(u, u))), spec)
    back = relabelled.weights.rename(index={v: k for k, v in renamed.items()})
    for other in (reversed_pool.weights, back):
        np.testing.assert_allclose(other.reindex(base.weights.index), base.weights, rtol=0, atol=1e-12)
    for other in (reversed_pool, relabelled):
        assert other.average_effect == pytest.approx(base.average_effect, rel=1e-12, abs=1e-12)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tied_panels(), st.sampled_from(LEAST_NORM), st.sampled_from([1e-3, 1.8, 1e6]), st.sampled_from([0.0, 32.0]))
def test_tied_optima_do_not_depend_on_the_units_of_the_outcome(panel, estimator, scale, shift):
    """Other units (as Celsius to Fahrenheit: times 1.8 plus 32 in the new units):
    where many weightings fit exactly, the same one is chosen."""
    df, start, _ = panel
    name, options = estimator
    spec = sc.Spec(outcome="y", treated="t", treatment_start=start)

    def fit(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sc.SynthControlWarning)
            return sc.fit(data, spec, estimator=name, estimator_options=options, n_random_starts=5)

    try:
        base = fit(df)
    except sc.PredictorError:
        return  # no unit differs in the pre-period: refused, nothing to compare
    other = fit(df.assign(y=(df.y + shift) * scale))
    np.testing.assert_allclose(other.weights.reindex(base.weights.index), base.weights, rtol=0, atol=1e-9)
    assert other.average_effect == pytest.approx(base.average_effect * scale, rel=1e-9, abs=1e-9 * scale)


def test_demeaned_splits_a_duplicate_donor_equally():
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(6, 3)).cumsum(axis=0) + 10.0
    df = _long(np.column_stack([Y[:, 0] + 1.0, Y, Y[:, 0]]), ["t", "a", "b", "c", "copy"])
    res = sc.fit(df, sc.Spec(outcome="y", treated="t", treatment_start=5), estimator="demeaned")
    assert res.weights["a"] == pytest.approx(0.5, abs=1e-12)
    assert res.weights["copy"] == pytest.approx(0.5, abs=1e-12)


# ------------------------------------------------------------------------- sdid


def test_sdid_with_a_huge_zeta_gives_uniform_weights_without_numpy_warnings(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989, donors=POOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sc.fit(smoking, spec, estimator="sdid", estimator_options={"zeta_omega": 1e300})
    np.testing.assert_allclose(res.weights, 1 / len(POOL), rtol=1e-12)
    assert np.isfinite(res.extras["se"])


# ------------------------------------------------------------------------- Panel


@pytest.mark.parametrize("several", [False, True])
def test_a_panel_without_the_outcome_names_it(smoking, several):
    panel = sc.Panel.from_frame(smoking, unit="unit", time="time", variables=["beer"])
    spec = sc.Spec(outcome="cigsale", treated=["California", "Utah"], treatment_start=1989)
    with pytest.raises(MissingColumnError, match=r"(?s)no variable \['cigsale'\].*holds \['beer'\].*variables"):
        if several:
            sc.fit_several(panel, spec)
        else:
            sc.fit(panel, dataclasses.replace(spec, treated="California"))


def test_a_non_numeric_variable_is_reported_with_plain_values(smoking):
    with pytest.raises(NonNumericError) as raised:
        sc.Panel.from_frame(smoking.assign(flag=True), unit="unit", time="time", variables=["flag"])
    message = str(raised.value)
    assert "unit 'Alabama', period 1970 holds True" in message and "np." not in message
