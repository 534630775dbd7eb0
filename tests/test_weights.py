"""Property tests of the weighting core (synthcontrol.weights).

The inner problem is checked against two cvxpy formulations: the project's
``solve_weights_cvxpy`` and an independent one written here (``quad_form`` with
``diag(v)`` on the unscaled problem). Our exact NNLS path must be at least as good as
either, up to round-off.
"""

from __future__ import annotations

import os
import warnings

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthcontrol.weights import search as search_module
from synthcontrol.weights.canonical import _Problem
from synthcontrol.weights import (
    choose_predictor_weights,
    is_admissible,
    least_norm_tiebreak,
    nested_fit,
    optimal_face_tiebreak,
    outcome_loss,
    solve_inner,
    solve_weights,
    solve_weights_cvxpy,
)

#: WEIGHTS_EXAMPLES_SCALE=20 runs every property here on twenty times as many examples
#: (a long local check; the suite keeps the counts below).
SCALE = float(os.environ.get("WEIGHTS_EXAMPLES_SCALE", "1"))


def examples(n: int) -> settings:
    return settings(max_examples=int(n * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])


PROPERTY = examples(100)
#: The compiled active set against the cvxpy references: 300 random problems each.
REFERENCE = examples(300)
NESTED = examples(25)

KINDS = ("generic", "duplicates", "collinear", "inside_hull", "treated_is_donor", "zero_v")


# ----------------------------------------------------------------------------- helpers


def objective(x1: np.ndarray, X0: np.ndarray, v: np.ndarray, w: np.ndarray) -> float:
    """Inner objective ``(x1 - X0 w)' diag(v) (x1 - X0 w)``, evaluated the same way for all."""
    r = x1 - X0 @ w
    return float(np.sum(v * r * r))


def to_simplex(w: np.ndarray) -> np.ndarray:
    """Project a solver's nearly feasible answer onto the simplex (clip, renormalise)."""
    w = np.maximum(np.asarray(w, dtype=float), 0.0)
    return w / w.sum()


def independent_cvxpy(x1: np.ndarray, X0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A reference written independently of weights.py: quad_form with diag(v), unscaled."""
    w = cp.Variable(X0.shape[1])
    residual = X0 @ w - x1
    problem = cp.Problem(
        cp.Minimize(cp.quad_form(residual, cp.diag(v), assume_PSD=True)), [w >= 0, cp.sum(w) == 1]
    )
    with warnings.catch_warnings():
        # "Solution may be inaccurate": a loose reference only makes the comparison easier.
        warnings.simplefilter("ignore", UserWarning)
        try:
            problem.solve(solver="CLARABEL")
        except cp.SolverError:
            problem.solve(solver="SCS", eps=1e-10, max_iters=200_000)
    if w.value is None:
        # A reference that fails gives no information; the uniform weights are feasible.
        return np.full(X0.shape[1], 1.0 / X0.shape[1])
    return to_simplex(w.value)


def absolute_floor(x1: np.ndarray, X0: np.ndarray, v: np.ndarray) -> float:
    """Round-off allowance for near-zero objectives: tiny relative to the problem's scale."""
    scale = float(np.max(np.sqrt(v)[:, None] * np.abs(X0 - x1[:, None])))
    return 1e-14 * scale**2


def random_problem(seed: int, kind: str, K: int, J: int, log_scale: float):
    """A random inner problem of the given degenerate ``kind`` at scale ``10**log_scale``.

    Rows are also rescaled individually over six orders of magnitude around that scale,
    so predictors of very different units appear in one problem.
    """
    rng = np.random.default_rng(seed)
    X0 = rng.normal(size=(K, J))
    x1 = rng.normal(size=K) * 1.5
    v = rng.dirichlet(np.ones(K))
    if kind == "duplicates":
        X0[:, J - J // 2 :] = X0[:, : J // 2]
    elif kind == "collinear" and K >= 2:
        X0[-1] = 2.0 * X0[0] - 0.5 * X0[min(1, K - 1)]
        x1[-1] = 2.0 * x1[0] - 0.5 * x1[min(1, K - 1)]
    elif kind == "inside_hull":
        x1 = X0 @ rng.dirichlet(np.ones(J))
    elif kind == "treated_is_donor":
        x1 = X0[:, rng.integers(J)].copy()
    elif kind == "zero_v":
        v[rng.random(K) < 0.5] = 0.0
        if v.sum() == 0:
            v[0] = 1.0
        v = v / v.sum()
    rows = 10.0 ** (log_scale + rng.uniform(-3, 3, size=K))
    return rows * x1, rows[:, None] * X0, v


problems = st.builds(
    random_problem,
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(KINDS),
    K=st.integers(1, 10),
    J=st.integers(2, 12),
    log_scale=st.floats(-3, 3),
)


# ------------------------------------------------------------------------ inner problem


@PROPERTY
@given(problems)
def test_weights_are_feasible(problem):
    x1, X0, v = problem
    w = solve_weights(x1, X0, v)
    assert w.shape == (X0.shape[1],)
    assert np.all(w >= 0)
    assert abs(w.sum() - 1.0) <= 1e-10


@REFERENCE
@given(problems)
def test_objective_at_least_as_good_as_independent_cvxpy(problem):
    x1, X0, v = problem
    ours = objective(x1, X0, v, solve_weights(x1, X0, v))
    reference = objective(x1, X0, v, independent_cvxpy(x1, X0, v))
    assert ours <= reference * (1 + 1e-8) + absolute_floor(x1, X0, v)


@REFERENCE
@given(problems)
def test_objective_at_least_as_good_as_project_cvxpy(problem):
    x1, X0, v = problem
    ours = objective(x1, X0, v, solve_weights(x1, X0, v))
    reference = objective(x1, X0, v, solve_weights_cvxpy(x1, X0, v))
    assert ours <= reference * (1 + 1e-8) + absolute_floor(x1, X0, v)


@PROPERTY
@given(problems)
def test_reported_objective_matches_weights(problem):
    x1, X0, v = problem
    inner = solve_inner(x1, X0, v)
    expected = objective(x1, X0, v, inner.weights)
    assert inner.objective == pytest.approx(expected, rel=1e-9, abs=absolute_floor(x1, X0, v))


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(2, 10), st.floats(-6, 6))
def test_donor_identical_to_treated_gives_zero_objective(seed, K, J, log_scale):
    x1, X0, v = random_problem(seed, "treated_is_donor", K, J, log_scale)
    w = solve_weights(x1, X0, v)
    assert objective(x1, X0, v, w) <= absolute_floor(x1, X0, v)


def unique_exact_problem(seed: int, J: int, extra_rows: int, log_scale: float):
    """``x1 = X0 w*`` with ``X0`` of full column rank (K >= J) and ``v > 0``: ``w*`` unique."""
    rng = np.random.default_rng(seed)
    K = J + extra_rows
    X0 = rng.normal(size=(K, J)) * 10.0**log_scale
    w_star = rng.dirichlet(np.full(J, 0.7))
    w_star[rng.random(J) < 0.3] = 0.0  # some donors off the support
    if w_star.sum() == 0:
        w_star[0] = 1.0
    w_star /= w_star.sum()
    v = rng.dirichlet(np.ones(K)) + 0.05
    return X0 @ w_star, X0, v / v.sum(), w_star


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(0, 4), st.floats(-6, 6))
def test_exact_recovery_of_unique_weights(seed, J, extra_rows, log_scale):
    x1, X0, v, w_star = unique_exact_problem(seed, J, extra_rows, log_scale)
    assert np.linalg.matrix_rank(X0) == J  # generic, so W(v) = w* is the unique minimiser
    w = solve_weights(x1, X0, v)
    np.testing.assert_allclose(w, w_star, atol=1e-8)


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(0, 4), st.floats(-3, 3))
def test_relabelling_donors_permutes_unique_answer(seed, J, extra_rows, log_scale):
    rng = np.random.default_rng(seed)
    K = J + extra_rows
    X0 = rng.normal(size=(K, J)) * 10.0**log_scale
    x1 = rng.normal(size=K) * 2.0 * 10.0**log_scale  # generally outside the hull
    v = rng.dirichlet(np.ones(K)) + 0.05
    perm = rng.permutation(J)
    w = solve_weights(x1, X0, v)
    w_perm = solve_weights(x1, X0[:, perm], v)
    np.testing.assert_allclose(w_perm, w[perm], atol=1e-8)


def test_scale_invariance_of_weights():
    x1, X0, v, _ = unique_exact_problem(3, 5, 2, 0.0)
    x1 = x1 + 0.3  # off the hull, so the objective is positive
    w = solve_weights(x1, X0, v)
    for factor in (1e-6, 1e6):
        np.testing.assert_allclose(solve_weights(factor * x1, factor * X0, v), w, atol=1e-9)
        np.testing.assert_allclose(solve_weights(x1, X0, factor * v), w, atol=1e-9)


# ------------------------------------------------------------------------- nested search


def nested_problem(seed: int, K: int, J: int, T0: int):
    rng = np.random.default_rng(seed)
    X0 = rng.normal(size=(K, J))
    Z0 = rng.normal(size=(T0, J)) + np.linspace(0, 1, T0)[:, None]
    x1 = X0 @ rng.dirichlet(np.ones(J)) + 0.3 * rng.normal(size=K)
    z1 = Z0 @ rng.dirichlet(np.ones(J)) + 0.3 * rng.normal(size=T0)
    return x1, X0, z1, Z0


nested_problems = st.builds(
    nested_problem,
    seed=st.integers(0, 2**32 - 1),
    K=st.integers(1, 5),
    J=st.integers(2, 8),
    T0=st.integers(1, 8),
)


def loss_tolerance(z1: np.ndarray, Z0: np.ndarray, bound: float) -> float:
    return 1e-8 * bound + 1e-12 * float(np.mean((Z0 - z1[:, None]) ** 2))


# About 6% of these random problems end with every BFGS search at its iteration cap; the
# warning is correct there and the properties below must hold all the same.
@pytest.mark.filterwarnings("ignore::synthcontrol.errors.ConvergenceWarning")
@NESTED
@given(nested_problems)
def test_nested_solution_is_consistent(problem):
    x1, X0, z1, Z0 = problem
    sol = choose_predictor_weights(x1, X0, z1, Z0, n_random_starts=2, seed=0)
    v, w = sol.predictor_weights, sol.weights
    assert is_admissible(v, 1e-8)
    assert np.all(w >= 0) and abs(w.sum() - 1.0) <= 1e-10
    assert sol.loss == pytest.approx(outcome_loss(z1, Z0, w), rel=1e-12, abs=1e-15)
    assert sol.loss >= sol.lower_bound - loss_tolerance(z1, Z0, sol.lower_bound)
    # The returned w is optimal for the returned v (the tie-break never worsens it).
    best_inner = objective(x1, X0, v, solve_weights(x1, X0, v))
    assert sol.inner_objective <= best_inner * (1 + 1e-8) + absolute_floor(x1, X0, v)
    if sol.certified:
        assert sol.loss <= sol.lower_bound + loss_tolerance(z1, Z0, sol.lower_bound)


def mixed_treated_problem(seed: int, K: int, J: int, T0: int):
    """Treated predictors and outcomes both equal to the same mix ``w*`` of the donors."""
    rng = np.random.default_rng(seed)
    X0, Z0 = rng.normal(size=(K, J)), rng.normal(size=(T0, J))
    w_star = rng.dirichlet(np.ones(J))
    return X0 @ w_star, X0, Z0 @ w_star, Z0


def assert_certified_zero(x1, X0, z1, Z0):
    sol = choose_predictor_weights(x1, X0, z1, Z0, n_random_starts=1, seed=0)
    assert sol.certified
    assert sol.loss <= 1e-20 + 1e-14 * float(np.mean(Z0**2))
    assert sol.lower_bound <= sol.loss + 1e-15


@NESTED
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.integers(0, 3), st.integers(1, 8))
def test_nested_certified_when_treated_is_a_mix_of_donors(seed, J, extra_rows, T0):
    # K >= J: W(v) = w* for every v > 0, so the optimum is reached whatever the search.
    assert_certified_zero(*mixed_treated_problem(seed, J + extra_rows, J, T0))


# K < J: W(v) is a whole face containing w*; only an exact tie-break reaches loss 0.
# The face QP is solved by Clarabel at default tolerances, about 1e-5 off in w, so
# the loss stays ~1e-10..1e-7 above the bound and the result is not certified.
@pytest.mark.parametrize("seed, K, J, T0", [(0, 1, 3, 2), (0, 1, 4, 2)])
def test_nested_certified_with_fewer_predictors_than_donors(seed, K, J, T0):
    assert_certified_zero(*mixed_treated_problem(seed, K, J, T0))


def _certificate_problem(seed: int):
    """A small problem whose outcome-only fit is sometimes attainable (predictors are
    noisy copies of fit-window outcomes): about one in seven has a certificate."""
    rng = np.random.default_rng(seed)
    K, J, T0 = int(rng.integers(2, 6)), int(rng.integers(3, 10)), int(rng.integers(2, 8))
    Z0 = rng.normal(size=(T0, J))
    X0 = np.vstack([Z0[: min(K, T0)], rng.normal(size=(max(K - T0, 0), J))])[:K] + 0.1 * rng.normal(size=(K, J))
    return _Problem(rng.normal(size=K) * 0.5, X0, rng.normal(size=T0) * 0.5, Z0)


@examples(60)
@given(st.integers(0, 2**32 - 1))
def test_equal_duals_prefilter_never_rules_out_a_certificate(seed):
    problem = _certificate_problem(seed)
    w_star, _ = problem.lower_bound()
    G = (problem.C * (problem.C @ w_star)[:, None]).T
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_module, "_equal_duals_possible", lambda rows: True)
        v = search_module._certify(problem, w_star, 1e-8)  # the LP alone
    if v is not None:
        assert search_module._equal_duals_possible(G[w_star > 0])


def test_equal_duals_prefilter_decides_both_ways():
    # Two donors whose dual values are g = G v: equal for v = (1/2, 1/2) in the first
    # case; in the second the first donor's is below the second's for every v >= 0.
    assert search_module._equal_duals_possible(np.array([[1.0, 3.0], [3.0, 1.0]]))
    assert not search_module._equal_duals_possible(np.array([[1.0, 2.0], [3.0, 5.0]]))


def test_nested_search_is_reproducible_for_a_seed():
    x1, X0, z1, Z0 = nested_problem(11, 4, 7, 6)
    first = choose_predictor_weights(x1, X0, z1, Z0, n_random_starts=3, seed=42)
    second = choose_predictor_weights(x1, X0, z1, Z0, n_random_starts=3, seed=42)
    np.testing.assert_array_equal(first.predictor_weights, second.predictor_weights)
    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.loss == second.loss
    assert first.start_losses == second.start_losses


def test_more_starts_never_worsen_the_loss():
    x1, X0, z1, Z0 = nested_problem(5, 5, 8, 7)
    few = choose_predictor_weights(x1, X0, z1, Z0, n_random_starts=0, n_polish=0, seed=0)
    many = choose_predictor_weights(x1, X0, z1, Z0, n_random_starts=4, n_polish=1, seed=0)
    # The starts with n_random_starts=0 are a subset of the larger search's starts.
    assert many.loss <= few.loss * (1 + 1e-10) + 1e-15


@NESTED
@given(nested_problems, st.integers(0, 2**32 - 1))
def test_nested_fit_with_fixed_v_equals_solve_weights(problem, v_seed):
    x1, X0, z1, Z0 = problem
    v = np.random.default_rng(v_seed).dirichlet(np.ones(x1.size))
    sol = nested_fit(x1, X0, z1, Z0, predictor_weights=3.0 * v)
    w = solve_weights(x1, X0, v)
    np.testing.assert_allclose(sol.predictor_weights, v, rtol=1e-12)
    if sol.tie_broken:
        # Another inner-optimal w with a strictly better outcome fit (weights.py's rule).
        assert sol.inner_objective <= objective(x1, X0, v, w) * (1 + 1e-8) + absolute_floor(x1, X0, v)
        assert outcome_loss(z1, Z0, sol.weights) < outcome_loss(z1, Z0, w)
    else:
        # Same W(v); only the round-off of normalising 3 v differs.
        np.testing.assert_allclose(sol.weights, w, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------- tie breaking


def duplicate_donor_problem():
    """Donors 0 and 1 have identical predictors (equal to the treated unit's); donor 1
    reproduces the treated outcome and donor 0 does not; donor 2 is far away."""
    X0 = np.array([[1.0, 1.0, 5.0], [2.0, 2.0, -3.0]])
    x1 = np.array([1.0, 2.0])
    Z0 = np.array([[3.0, 1.0, 0.0], [4.0, 2.0, 0.5], [5.0, 3.0, 1.0]])
    z1 = Z0[:, 1].copy()
    return x1, X0, z1, Z0


def test_tiebreak_picks_the_duplicate_with_better_outcome_fit():
    x1, X0, z1, Z0 = duplicate_donor_problem()
    v = np.array([0.5, 0.5])
    basic = np.array([1.0, 0.0, 0.0])
    w, changed = optimal_face_tiebreak(x1, X0, v, z1, Z0, basic)
    assert changed
    assert w[1] > 0.999 and w[2] == 0.0
    assert objective(x1, X0, v, w) <= 1e-12  # still inner-optimal
    assert outcome_loss(z1, Z0, w) < 1e-6 * outcome_loss(z1, Z0, basic)


@pytest.mark.parametrize("order", [[0, 1, 2], [1, 0, 2]])
def test_nested_fit_breaks_ties_by_outcome_fit_in_any_donor_order(order):
    x1, X0, z1, Z0 = duplicate_donor_problem()
    sol = nested_fit(x1, X0[:, order], z1, Z0[:, order], predictor_weights=np.array([0.5, 0.5]))
    good, bad = order.index(1), order.index(0)
    assert sol.weights[good] > 0.999 > sol.weights[bad]
    assert sol.loss < 1e-6 * outcome_loss(z1, Z0[:, order], np.eye(3)[bad])


def test_tiebreak_is_exact_to_round_off():
    x1, X0, z1, Z0 = duplicate_donor_problem()
    w, _ = optimal_face_tiebreak(x1, X0, np.array([0.5, 0.5]), z1, Z0, np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(w, [0.0, 1.0, 0.0], atol=1e-10)


def test_tiebreak_leaves_a_unique_optimum_alone():
    x1, X0, v, _ = unique_exact_problem(8, 4, 2, 0.0)
    rng = np.random.default_rng(8)
    Z0 = rng.normal(size=(5, 4))
    z1 = rng.normal(size=5)
    w = solve_weights(x1, X0, v)
    w_new, changed = optimal_face_tiebreak(x1, X0, v, z1, Z0, w)
    assert not changed
    np.testing.assert_array_equal(w_new, w)


def least_norm_cvxpy(C: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The least-norm point of the optimal face ``{w in simplex, C w = C w*}``, by cvxpy."""
    x = cp.Variable(C.shape[1])
    constraints = [x >= 0, cp.sum(x) == 1, C @ x == C @ w]
    cp.Problem(cp.Minimize(cp.sum_squares(x)), constraints).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return x.value


@st.composite
def tied_simplex_problems(draw):
    """Simplex least squares with many minimisers: integer columns (parallel ones,
    copies) and a target inside their hull or not, fewer rows than columns."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(2, 30))
    Z = rng.integers(-3, 4, size=(rows, cols)).astype(float)
    z = Z @ rng.dirichlet(np.ones(cols)) if draw(st.booleans()) else rng.normal(size=rows)
    return Z - z[:, None]


@PROPERTY
@given(tied_simplex_problems())
def test_least_norm_tiebreak_matches_cvxpy_on_the_optimal_face(C):
    w = least_norm_tiebreak(C, solve_weights(np.zeros(C.shape[0]), C, np.ones(C.shape[0])))
    reference = least_norm_cvxpy(C, solve_weights(np.zeros(C.shape[0]), C, np.ones(C.shape[0])))
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(w @ w) <= float(reference @ reference) * (1 + 1e-7) + 1e-12
    np.testing.assert_allclose(w, reference, atol=1e-6)


@PROPERTY
@given(tied_simplex_problems(), st.integers(0, 2**32 - 1), st.floats(-3, 6))
def test_least_norm_tiebreak_does_not_depend_on_column_order_or_units(C, seed, exponent):
    order, scale = np.random.default_rng(seed).permutation(C.shape[1]), 10.0**exponent

    def least_norm(A):
        return least_norm_tiebreak(A, solve_weights(np.zeros(A.shape[0]), A, np.ones(A.shape[0])))

    np.testing.assert_allclose(least_norm(C[:, order] * scale), least_norm(C)[order], rtol=0, atol=1e-12)


def test_least_norm_tiebreak_leaves_a_unique_minimiser_alone():
    C = np.random.default_rng(4).normal(size=(6, 3))
    w = solve_weights(np.zeros(6), C, np.ones(6))
    np.testing.assert_array_equal(least_norm_tiebreak(C, w), w)


def test_inner_solve_falls_back_to_cvxpy_when_the_active_set_breaks_down(monkeypatch):
    from synthcontrol.weights import _nnls, inner

    rng = np.random.default_rng(0)
    X0, x1 = rng.normal(size=(3, 8)), rng.normal(size=3)
    v = np.full(3, 1 / 3)
    expected = solve_weights(x1, X0, v)

    def broken(*args):
        return _nnls.BREAKDOWN

    monkeypatch.setattr(inner._nnls, "solve_simplex", broken)
    fallback = solve_inner(x1, X0, v)
    assert fallback.method == "cvxpy"
    np.testing.assert_allclose(fallback.weights, expected, atol=1e-6)


# --------------------------------------------------------------- the face QP against cvxpy


def face_reference(X0: np.ndarray, Z0: np.ndarray, z1: np.ndarray, x1: np.ndarray) -> float:
    """min |z1 - Z0 w|^2 over the simplex subject to X0 w = x1 (cvxpy, independent)."""
    xs, zs = float(np.max(np.abs(X0))), float(np.max(np.abs(Z0)))
    w = cp.Variable(X0.shape[1], nonneg=True)
    objective = cp.sum_squares((Z0 @ w - z1) / zs)
    problem = cp.Problem(cp.Minimize(objective), [cp.sum(w) == 1, (X0 / xs) @ w == x1 / xs])
    try:
        problem.solve(solver="CLARABEL")
    except cp.SolverError:
        return np.inf  # a reference that fails gives no information
    return float(np.sum((Z0 @ to_simplex(w.value) - z1) ** 2)) if w.value is not None else np.inf


def check_face_optimum(seed: int, K: int, J: int, T0: int, log_scale: float) -> None:
    """Treated predictors inside the donors' hull: the whole face {X0 w = x1} is
    inner-optimal, and the tie-break must reach the cvxpy optimum over it."""
    rng = np.random.default_rng(seed)
    X0 = rng.normal(size=(K, J)) * 10.0**log_scale
    Z0 = rng.normal(size=(T0, J)) * 10.0**log_scale
    x1 = X0 @ rng.dirichlet(np.ones(J))
    z1 = rng.normal(size=T0) * 10.0**log_scale
    v = rng.dirichlet(np.ones(K))
    basic = solve_weights(x1, X0, v)
    w, _ = optimal_face_tiebreak(x1, X0, v, z1, Z0, basic)
    assert np.all(w >= 0) and abs(w.sum() - 1) <= 1e-12
    scale = 10.0 ** (2 * log_scale)
    assert objective(x1, X0, v, w) <= 1e-20 * scale * K + 1e-12 * objective(x1, X0, v, basic)
    ours = float(np.sum((Z0 @ w - z1) ** 2))
    assert ours <= face_reference(X0, Z0, z1, x1) * (1 + 1e-6) + 1e-10 * scale
    assert ours <= float(np.sum((Z0 @ basic - z1) ** 2)) * (1 + 1e-12)


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(3, 12), st.integers(1, 8), st.floats(-6, 6))
def test_tiebreak_reaches_the_best_outcome_fit_on_the_face(seed, K, J, T0, log_scale):
    check_face_optimum(seed, K, J, T0, log_scale)


def test_tiebreak_frees_a_weight_its_support_guess_dropped():
    # The penalty guess of the support kept two donors where the best point of the
    # face needs three: the tie-break used to give up and keep the basic solution
    # (outcome loss 4.4789 instead of 2.9036 over the face).
    check_face_optimum(seed=465, K=2, J=4, T0=4, log_scale=0.0)


def test_kernel_gradient_matches_finite_differences():
    from synthcontrol.weights import _outer_loss, canonical, search

    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(40):
        K, J, T0 = rng.integers(2, 7), rng.integers(4, 25), rng.integers(3, 15)
        X0, Z0 = rng.normal(size=(K, J)), rng.normal(size=(T0, J))
        x1 = X0 @ rng.dirichlet(np.ones(J)) + 0.5 * rng.normal(size=K)
        problem = canonical._Problem(x1, X0, rng.normal(size=T0), Z0)
        x, gradient = rng.random(K) + 0.2, np.zeros(K)
        M, D = problem.workspace.M, problem.D
        _outer_loss._evaluate(x, 1e-3, M, D, problem.workspace.state, _outer_loss.work_arrays(M, D), True, gradient)
        support = problem.workspace.state[4][0]

        def loss(point):  # unrounded, unlike the kernels' own losses
            return problem.loss(problem.weights(search._to_v(point, 1e-3), cold=True))

        step = 1e-6
        numeric = np.array([(loss(x + step * e) - loss(x - step * e)) / (2 * step) for e in np.eye(K)])
        if support == problem.workspace.state[4][0] and np.abs(numeric).max() > 1e-6:
            np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-6 * np.abs(numeric).max())
            checked += 1
    assert checked >= 10


def test_kernel_cache_is_dropped_when_any_kernel_module_changes(tmp_path):
    from synthcontrol.weights._jit import KERNEL_MODULES, _drop_stale_cache

    for name in KERNEL_MODULES:
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    _drop_stale_cache(tmp_path)
    (cache / "_multistart.run_search-1.py311.nbi").write_text("index")
    _drop_stale_cache(tmp_path)  # sources unchanged: the cache stays
    assert (cache / "_multistart.run_search-1.py311.nbi").exists()
    (tmp_path / "_nnls.py").write_text("# edited\n")
    _drop_stale_cache(tmp_path)  # a callee changed: the caller's cache goes too
    assert not list(cache.glob("*.nbi"))
    assert (cache / "kernels.sha256").exists()
