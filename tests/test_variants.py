"""Tests of the estimators beyond the classic one (synthcontrol.variants)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import synthcontrol as sc
from synthcontrol.errors import SpecError
from synthcontrol.estimators import fit_design, prepare_designs
from synthcontrol.variants.augmented import ridge_correction
from synthcontrol.variants.demeaned import demeaned_weights
from synthcontrol.variants.penalized import penalized_weights, penalized_weights_cvxpy
from synthcontrol.variants.sdid import placebo_standard_error
from synthcontrol.weights import simplex_least_squares

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Published California estimates (Arkhangelsky et al. 2021, Table 1; synthdid README):
# synthetic DiD -15.6, synthetic control on outcomes -19.6, difference in differences -27.3.
SDID_CALIFORNIA, SC_CALIFORNIA, DID_CALIFORNIA = -15.6, -19.6, -27.3
SMALL_POOL = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Connecticut", "Kansas"]


@pytest.fixture(scope="module")
def smoking():
    return sc.datasets.load_smoking()


@pytest.fixture(scope="module")
def outcome_spec():
    return sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)


def _problem(seed: int, K: int, J: int, outside: bool = False):
    rng = np.random.default_rng(seed)
    X0 = rng.normal(size=(K, J))
    x1 = X0.max(axis=1) + 1.0 if outside else rng.normal(size=K)
    v = rng.dirichlet(np.ones(K))
    return x1, X0, v


def _objective(x1, X0, v, lam, w):
    C = np.sqrt(v)[:, None] * (X0 - x1[:, None])
    return float(np.sum((C @ w) ** 2) + lam * np.sum(C**2, axis=0) @ w)


# ----------------------------------------------------------------- penalized


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    K=st.integers(1, 6),
    J=st.integers(2, 25),
    lam=st.sampled_from([1e-3, 0.05, 0.5, 5.0]),
)
def test_penalized_matches_cvxpy(seed, K, J, lam):
    x1, X0, v = _problem(seed, K, J)
    w = penalized_weights(x1, X0, v, lam)
    w_ref = penalized_weights_cvxpy(x1, X0, v, lam)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    scale = _objective(x1, X0, v, lam, w_ref)
    assert _objective(x1, X0, v, lam, w) <= scale * (1 + 1e-7) + 1e-12
    np.testing.assert_allclose(w, w_ref, atol=2e-4)


@PROPERTY
@given(seed=st.integers(0, 10_000), K=st.integers(1, 5), J=st.integers(3, 20), lam=st.sampled_from([0.01, 0.3, 3.0]))
def test_penalized_weights_do_not_depend_on_donor_order(seed, K, J, lam):
    x1, X0, v = _problem(seed, K, J)
    order = np.random.default_rng(seed + 1).permutation(J)
    w = penalized_weights(x1, X0, v, lam)
    np.testing.assert_allclose(penalized_weights(x1, X0[:, order], v, lam), w[order], atol=1e-8)


@PROPERTY
@given(seed=st.integers(0, 10_000), K=st.integers(1, 5), J=st.integers(2, 20))
def test_penalized_tends_to_nearest_neighbour(seed, K, J):
    x1, X0, v = _problem(seed, K, J)
    distance = (v[:, None] * (X0 - x1[:, None]) ** 2).sum(axis=0)
    first, second = np.sort(distance)[:2]
    assume(second - first > 1e-3 * second)
    w = penalized_weights(x1, X0, v, 1e6)
    np.testing.assert_allclose(w, np.eye(J)[np.argmin(distance)], atol=1e-9)


@PROPERTY
@given(seed=st.integers(0, 10_000), K=st.integers(2, 6), J=st.integers(2, 20))
def test_penalized_tends_to_classic(seed, K, J):
    x1, X0, v = _problem(seed, K, J, outside=True)
    C = np.sqrt(v)[:, None] * (X0 - x1[:, None])
    w_classic, objective = simplex_least_squares(C)
    w = penalized_weights(x1, X0, v, 1e-9)
    # The fitted predictors of the classic problem are unique even where w is not.
    np.testing.assert_allclose(C @ w, C @ w_classic, atol=1e-6)
    assert np.sum((C @ w) ** 2) == pytest.approx(objective, rel=1e-6)


def test_penalized_fit_on_california_runs_inference(smoking):
    spec = sc.Spec(
        outcome="cigsale", treated="California", treatment_start=1989, donors=SMALL_POOL,
        predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1980), sc.at("cigsale", 1988)],
    )
    res = sc.fit(smoking, spec, estimator="penalized")
    extras = res.extras
    assert extras["lambda_chosen_by"] == "leave-one-out"
    grid, errors = zip(*extras["cv_errors"])
    assert extras["lambda_"] == grid[int(np.argmin(errors))]
    classic = sc.fit(smoking, spec)
    np.testing.assert_allclose(extras["classic_weights"], classic.weights.to_numpy(), atol=1e-10)
    placebo = sc.placebo_test(res)
    assert len(placebo.table) == len(SMALL_POOL) + 1
    assert 0 < placebo.p_value <= 1


def test_penalized_given_lambda_and_bad_options(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989, donors=SMALL_POOL,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
    res = sc.fit(smoking, spec, estimator="penalized", estimator_options={"lambda_": 1e6})
    assert res.extras["lambda_chosen_by"] == "given"
    assert res.weights.max() == pytest.approx(1.0)  # nearest neighbour
    with pytest.raises(SpecError, match="lambda_"):
        sc.fit(smoking, spec, estimator="penalized", estimator_options={"lambda_": -1})
    with pytest.raises(SpecError, match="lamda"):
        sc.fit(smoking, spec, estimator="penalized", estimator_options={"lamda": 0.1})


# ----------------------------------------------------------------- California


def test_california_published_estimates(smoking, outcome_spec):
    sdid = sc.fit(smoking, outcome_spec, estimator="sdid")
    did = sc.fit(smoking, outcome_spec, estimator="did")
    classic = sc.fit(smoking, outcome_spec)
    assert sdid.average_effect == pytest.approx(SDID_CALIFORNIA, abs=0.2)
    assert did.average_effect == pytest.approx(DID_CALIFORNIA, abs=0.2)
    assert classic.average_effect == pytest.approx(SC_CALIFORNIA, abs=0.2)


def test_sdid_result_is_consistent(smoking, outcome_spec):
    res = sc.fit(smoking, outcome_spec, estimator="sdid")
    extras = res.extras
    assert res.average_effect == pytest.approx(extras["tau"], abs=1e-10)
    periods, lam = map(np.asarray, zip(*extras["time_weights"]))
    pre_gap = res.path["gap"].loc[periods].to_numpy()
    assert lam @ pre_gap == pytest.approx(0.0, abs=1e-9)  # aligned where the time weights are
    assert lam.sum() == pytest.approx(1.0) and res.weights.sum() == pytest.approx(1.0)
    # The paper's time weights sit on the last pre-treatment years (1986-1988).
    assert set(periods[lam > 1e-6]) <= {1986, 1987, 1988}
    assert extras["se"] > 0 and extras["zeta_omega"] == pytest.approx(12**0.25 * extras["noise_level"])


def test_sdid_placebo_se_is_the_spread_of_the_placebo_estimates(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989, donors=SMALL_POOL)
    res = sc.fit(smoking, spec, estimator="sdid")
    zeta = res.extras["zeta_omega"]
    options = sc.FitOptions(estimator="sdid", estimator_options=(("se", False), ("zeta_omega", zeta)))
    placebos = [fit_design(res.design.relabel(i), options=options).average_effect for i in range(1, len(SMALL_POOL) + 1)]
    # Refits recompute zeta_lambda (1e-6 * noise level) from their own controls: a negligible difference.
    assert res.extras["se"] == pytest.approx(np.std(placebos), rel=1e-4)
    design = res.design
    se, estimates = placebo_standard_error(
        design.outcome[:, 1:], design.pre_mask, design.post_mask,
        zeta_omega=zeta, zeta_lambda=res.extras["zeta_lambda"],
    )
    assert se == res.extras["se"] and len(estimates) == len(SMALL_POOL)


def test_augmented_on_california(smoking, outcome_spec):
    res = sc.fit(smoking, outcome_spec, estimator="augmented")
    extras = res.extras
    assert res.weights.sum() == pytest.approx(1.0, abs=1e-10)
    assert extras["negative_weights"] == bool((res.weights < 0).any())
    assert res.pre_rmspe <= extras["scm_pre_rmspe"] + 1e-12
    small = sc.fit(smoking, outcome_spec, estimator="augmented", estimator_options={"lambda_": 1e-6})
    assert small.pre_rmspe < 1e-3 and small.extras["negative_weights"]  # near-interpolation extrapolates
    huge = sc.fit(smoking, outcome_spec, estimator="augmented", estimator_options={"lambda_": 1e12})
    assert huge.average_effect == pytest.approx(extras["scm_average_effect"], abs=1e-4)


def test_ridge_correction_is_a_ridge_fit():
    rng = np.random.default_rng(3)
    Z0, z1 = rng.normal(size=(6, 9)), rng.normal(size=6)
    w = np.full(9, 1 / 9)
    w_aug = ridge_correction(z1, Z0, w, 0.7)
    # The same correction in its dual form: X0 (X0'X0 + lambda I)^-1 = (X0 X0' + lambda I)^-1 X0.
    means = Z0.mean(axis=1)
    X0 = (Z0 - means[:, None]).T
    eta = np.linalg.solve(X0 @ X0.T + 0.7 * np.eye(9), X0)  # (J, T0)
    np.testing.assert_allclose(w_aug, w + eta @ ((z1 - means) - X0.T @ w), atol=1e-10)


def test_demeaned_matches_free_intercept_least_squares(smoking, outcome_spec):
    import cvxpy as cp

    design = prepare_designs(smoking, outcome_spec)["California"]
    Z = design.outcome[design.pre_mask]
    w, intercept = demeaned_weights(Z[:, 0], Z[:, 1:])
    u, c = cp.Variable(Z.shape[1] - 1, nonneg=True), cp.Variable()
    cp.Problem(cp.Minimize(cp.sum_squares(Z[:, 0] - Z[:, 1:] @ u - c) / 100), [cp.sum(u) == 1]).solve()
    assert np.sum((Z[:, 0] - Z[:, 1:] @ w - intercept) ** 2) <= np.sum((Z[:, 0] - Z[:, 1:] @ u.value - c.value) ** 2) + 1e-6
    res = sc.fit(smoking, outcome_spec, estimator="demeaned")
    assert res.intercept == pytest.approx(intercept) and res.extras["intercept"] == res.intercept
    shifted = smoking.assign(cigsale=smoking["cigsale"] + 50.0 * (smoking["unit"] == "California"))
    moved = sc.fit(shifted, outcome_spec, estimator="demeaned")
    np.testing.assert_allclose(moved.weights, res.weights, atol=1e-10)
    assert moved.intercept == pytest.approx(res.intercept + 50.0)
    assert moved.average_effect == pytest.approx(res.average_effect)


@pytest.mark.parametrize("estimator", ["augmented", "demeaned", "sdid", "did"])
def test_placebo_inference_works_on_each_estimator(smoking, estimator):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989, donors=SMALL_POOL)
    res = sc.fit(smoking, spec, estimator=estimator)
    placebo = sc.placebo_test(res)
    direct = fit_design(res.design.relabel(1), options=res.options)
    np.testing.assert_allclose(placebo.gap_matrix[:, 1], direct.path["gap"].to_numpy(), atol=1e-9)
    assert placebo.gap_matrix[:, 0].tolist() == res.path["gap"].tolist()
    assert sc.leave_one_out(res).table.shape[0] >= 1


@pytest.mark.parametrize(
    ("estimator", "options", "key"),
    [
        ("sdid", {"se": "yes"}, "se"),
        ("sdid", {"zeta": 1.0}, "zeta"),
        ("did", {"zeta_omega": 1.0}, "zeta_omega"),
        ("augmented", {"holdout": 0}, "holdout"),
        ("augmented", {"holdout": 30}, "holdout"),
        ("augmented", {"lambda_": 0}, "lambda_"),
        ("demeaned", {"lambda_": 1.0}, "lambda_"),
    ],
)
def test_bad_estimator_options_name_the_key(smoking, outcome_spec, estimator, options, key):
    with pytest.raises(SpecError, match=key):
        sc.fit(smoking, outcome_spec, estimator=estimator, estimator_options=options)


def test_outcome_estimators_refuse_predictor_weights(smoking):
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
    with pytest.raises(SpecError, match="predictor_weights"):
        sc.fit(smoking, spec, estimator="sdid", predictor_weights=[0.5, 0.5])
    res = sc.fit(smoking, spec, estimator="sdid", estimator_options={"se": False})
    assert res.uses_predictor_weights is False and "se" not in res.extras
    assert res.predictor_weights.isna().all()


def test_sdid_needs_two_pre_periods(smoking, outcome_spec):
    from dataclasses import replace

    with pytest.raises(SpecError, match="two pre-treatment periods"), pytest.warns(sc.ShortPrePeriodWarning):
        sc.fit(smoking, replace(outcome_spec, fit_window=(1988, 1988)), estimator="sdid")
