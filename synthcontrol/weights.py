"""The weighting core: donor weights for given predictor weights, and the nested choice.

Pure numerical code on numpy arrays; it knows nothing of pandas, units or periods, and
trusts its inputs (validation happens at the boundary, in :mod:`synthcontrol.spec`).

Notation (Abadie, Diamond and Hainmueller 2010), mapped to the public names:

==========  ======================  ==========================================
symbol      shape                   meaning
==========  ======================  ==========================================
``x1``      (K,)                    treated unit's (scaled) predictors
``X0``      (K, J)                  donors' (scaled) predictors, one column each
``z1``      (T0,)                   treated unit's outcome over the fit window
``Z0``      (T0, J)                 donors' outcomes over the fit window
``v``       (K,)                    predictor weights, ``v >= 0``, ``sum(v) = 1``
``w``       (J,)                    donor weights, ``w >= 0``, ``sum(w) = 1``
==========  ======================  ==========================================

Inner problem: ``W(v) = argmin_w (x1 - X0 w)' diag(v) (x1 - X0 w)`` over the simplex.
Outer problem: ``v* = argmin_v L(v)`` with ``L(v) = |z1 - Z0 W(v)|^2 / T0``.

The inner problem is solved exactly by a reduction to non-negative least squares:
because ``sum(w) = 1``, ``X0 w - x1 = C w`` with ``C = X0 - x1 1'``, and the
minimiser ``u`` of ``|C u|^2 + (1'u - 1)^2`` over ``u >= 0`` is ``s w*`` with
``s = 1 / (1 + d*)`` where ``w*`` is the simplex solution and ``d*`` its objective.
So ``w* = u / sum(u)`` with no penalty constant to tune. An independent cvxpy
formulation, :func:`solve_weights_cvxpy`, is the reference and the fallback.

The outer problem is searched from several starts (equal weights, the regression-based
start of R's Synth, seeded random starts) by BFGS on ``v = u^2 / |u|^2``. On a fixed
support the inner KKT system is linear, so ``dL/dv`` follows by implicit
differentiation at the cost of one small extra solve. The unrestricted outcome fit
``min_w |z1 - Z0 w|^2 / T0`` bounds ``L`` from below; when its solution is ``W(v)``
for some ``v`` (a linear feasibility problem on the inner KKT conditions) that ``v``
is a certified global optimum.

Admissible predictor weights: for a floor ``delta`` in ``[0, 1)`` (the search option
``min_predictor_weight``, default ``1e-8``), ``v`` is admissible when ``v >= 0``,
``sum(v) = 1`` and ``min(v) >= delta * max(v)``. The floor is a ratio, so it does not
depend on how many predictors there are and survives rescaling of ``v`` (the inner
problem only sees ``v`` up to scale). The search and the certificate of global
optimality work in this one class (:func:`is_admissible`). A weight of exactly zero is
excluded because it makes ``W(v)`` non-unique in general: the nested optimum would
then hinge on the tie-breaking rule rather than on the predictors.

Ties: when several ``w`` reach the inner minimum (the treated unit inside the hull of
the donors' predictors, duplicate donors), every optimal ``w`` gives the same fitted
predictors ``X0 w``. synthcontrol then picks, among these, the ``w`` with the smallest
outcome loss over the fit window -- the choice most consistent with the outer
criterion -- and reports that it did so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import linalg, optimize

from .errors import ConvergenceWarning, SolverError

__all__ = [
    "InnerSolution",
    "NestedSolution",
    "solve_weights",
    "solve_inner",
    "solve_weights_cvxpy",
    "simplex_least_squares",
    "outcome_loss",
    "regression_start",
    "optimal_face_tiebreak",
    "choose_predictor_weights",
    "nested_fit",
    "is_admissible",
]

#: Weights below this are set to zero before renormalising (round-off from NNLS).
WEIGHT_FLOOR = 1e-12

FloatArray = np.ndarray


@dataclass(frozen=True)
class InnerSolution:
    """Donor weights for fixed predictor weights, with how they were obtained.

    Attributes
    ----------
    weights : ndarray, shape (J,)
        Donor weights on the simplex.
    objective : float
        ``(x1 - X0 w)' diag(v) (x1 - X0 w)`` at ``weights``.
    method : str
        ``"nnls"`` (the exact fast path) or ``"cvxpy"`` (the fallback).
    """

    weights: FloatArray
    objective: float
    method: str


@dataclass(frozen=True)
class NestedSolution:
    """The outcome of the nested choice of predictor and donor weights.

    Attributes
    ----------
    predictor_weights : ndarray, shape (K,)
        ``v``, non-negative, summing to one.
    weights : ndarray, shape (J,)
        ``W(v)``, after the tie-breaking rule.
    loss : float
        Outcome MSPE over the fit window, ``|z1 - Z0 w|^2 / T0``.
    inner_objective : float
        Predictor discrepancy ``(x1 - X0 w)' diag(v) (x1 - X0 w)``.
    lower_bound : float
        Best outcome MSPE any simplex weights can reach (whatever ``v``).
    certified : bool
        True when ``loss`` equals ``lower_bound`` up to round-off: a global optimum.
    n_starts : int
        Number of local searches run.
    n_evaluations : int
        Number of inner solves spent by the search.
    start_losses : tuple of float
        Loss reached from each start, in start order.
    converged : bool
        False when every local search stopped on an iteration limit.
    tie_broken : bool
        True when the final ``W(v)`` was chosen among several optimal weight vectors.
    inner_method : str
        How the final ``W(v)`` was solved: ``"nnls"`` or the ``"cvxpy"`` fallback.
    """

    predictor_weights: FloatArray
    weights: FloatArray
    loss: float
    inner_objective: float
    lower_bound: float
    certified: bool
    n_starts: int
    n_evaluations: int
    start_losses: tuple[float, ...] = field(default_factory=tuple)
    converged: bool = True
    tie_broken: bool = False
    inner_method: str = "nnls"

    @property
    def gap(self) -> float:
        """``loss - lower_bound``: how far the result can still be from the optimum."""
        return max(self.loss - self.lower_bound, 0.0)


def is_admissible(v: FloatArray, min_ratio: float, rtol: float = 1e-9) -> bool:
    """Whether ``v`` is admissible predictor weights for the floor ``min_ratio``.

    Admissible: non-negative, summing to one, and ``min(v) >= min_ratio * max(v)``,
    each up to a relative round-off of ``rtol`` (see the module docstring).

    Examples
    --------
    >>> is_admissible(np.array([0.5, 0.5]), 1e-8), is_admissible(np.array([1.0, 0.0]), 1e-8)
    (True, False)
    """
    v = np.asarray(v, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < 0):
        return False
    top = float(v.max())
    return abs(float(v.sum()) - 1.0) <= rtol and float(v.min()) >= min_ratio * top * (1 - rtol)


# --------------------------------------------------------------------------- inner


def simplex_least_squares(C: FloatArray) -> tuple[FloatArray, float]:
    """Minimise ``|C w|^2`` over the probability simplex, exactly.

    Parameters
    ----------
    C : ndarray, shape (M, J)
        Column ``j`` is donor ``j``'s discrepancy from the target.

    Returns
    -------
    w : ndarray, shape (J,)
        Minimiser on the simplex (a basic solution when there are several).
    objective : float
        ``|C w|^2``.

    Notes
    -----
    Solves the NNLS problem ``min_{u >= 0} |C u|^2 + (sum(u) - 1)^2`` and returns
    ``u / sum(u)``; see the module docstring for why this is exact. ``C`` is scaled
    to unit maximum entry first so that ``sum(u)`` stays near one for any data scale.

    Examples
    --------
    >>> import numpy as np
    >>> w, obj = simplex_least_squares(np.array([[1.0, -1.0]]))
    >>> np.round(w, 12), round(obj, 12)
    (array([0.5, 0.5]), 0.0)
    """
    scale = float(np.max(np.abs(C))) if C.size else 0.0
    if scale == 0.0 or not np.isfinite(scale):
        w = np.full(C.shape[1], 1.0 / C.shape[1])
        return w, float(np.sum((C @ w) ** 2))
    A = np.vstack([C / scale, np.ones((1, C.shape[1]))])
    b = np.zeros(A.shape[0])
    b[-1] = 1.0
    u, _ = optimize.nnls(A, b, maxiter=50 * A.shape[1])
    w = _clean_simplex(u)
    return w, float(np.sum((C @ w) ** 2))


def _clean_simplex(u: FloatArray) -> FloatArray:
    """Renormalise a non-negative vector onto the simplex, zeroing round-off."""
    u = np.where(u > WEIGHT_FLOOR * max(float(np.max(u)), 1.0), u, 0.0)
    total = u.sum()
    if not np.isfinite(total) or total <= 0.0:
        raise SolverError("NNLS returned no usable solution (all weights zero or NaN)")
    return u / total


def _discrepancy(x1: FloatArray, X0: FloatArray, v: FloatArray) -> FloatArray:
    """``sqrt(v) * (X0 - x1)``: the weighted predictor gap of every donor."""
    return np.sqrt(v)[:, None] * (X0 - x1[:, None])


def solve_weights_cvxpy(
    x1: FloatArray, X0: FloatArray, v: FloatArray, solver: str | None = None
) -> FloatArray:
    """Donor weights by an independent cvxpy formulation (reference and fallback).

    Parameters
    ----------
    x1 : ndarray, shape (K,)
    X0 : ndarray, shape (K, J)
    v : ndarray, shape (K,)
        Non-negative predictor weights.
    solver : str, optional
        A cvxpy solver name; default Clarabel, then OSQP if Clarabel is missing.

    Returns
    -------
    ndarray, shape (J,)
        Donor weights, clipped at zero and renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> w = solve_weights_cvxpy(np.array([0.0]), np.array([[-1.0, 1.0]]), np.array([1.0]))
    >>> np.round(w, 6)
    array([0.5, 0.5])
    """
    import cvxpy as cp

    C = _discrepancy(np.asarray(x1, float), np.asarray(X0, float), np.asarray(v, float))
    scale = float(np.max(np.abs(C))) or 1.0
    w = cp.Variable(C.shape[1], nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares((C / scale) @ w)), [cp.sum(w) == 1])
    chosen = solver or ("CLARABEL" if "CLARABEL" in cp.installed_solvers() else "OSQP")
    problem.solve(solver=chosen)
    if w.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise SolverError(f"cvxpy solver {chosen} failed on the weighting problem: {problem.status}")
    return _clean_simplex(np.maximum(np.asarray(w.value, float), 0.0))


def solve_inner(x1: FloatArray, X0: FloatArray, v: FloatArray) -> InnerSolution:
    """Donor weights for fixed predictor weights, with the fallback path.

    The exact NNLS path is tried first; if it fails (iteration limit, non-finite
    output) the cvxpy formulation is used and the returned ``method`` says so.
    """
    C = _discrepancy(x1, X0, v)
    try:
        w, objective = simplex_least_squares(C)
        method = "nnls"
    except (RuntimeError, SolverError, ValueError):
        w = solve_weights_cvxpy(x1, X0, v)
        objective = float(np.sum((C @ w) ** 2))
        method = "cvxpy"
    return InnerSolution(weights=w, objective=objective, method=method)


def solve_weights(x1: FloatArray, X0: FloatArray, v: FloatArray) -> FloatArray:
    """Donor weights ``W(v)`` on the simplex for given predictor weights.

    Minimises ``(x1 - X0 w)' diag(v) (x1 - X0 w)`` subject to ``w >= 0`` and
    ``sum(w) = 1``. Exact (active-set NNLS), with a cvxpy fallback.

    Parameters
    ----------
    x1 : array_like, shape (K,)
        The treated unit's predictors.
    X0 : array_like, shape (K, J)
        The donors' predictors, one column per donor.
    v : array_like, shape (K,)
        Non-negative predictor weights (need not sum to one).

    Returns
    -------
    ndarray, shape (J,)
        Donor weights. Where several weight vectors are optimal this is a basic
        solution (at most K + 1 donors with positive weight); the estimator breaks
        such ties by the outcome fit, see :func:`optimal_face_tiebreak`.

    Examples
    --------
    >>> import numpy as np
    >>> X0 = np.array([[0.0, 2.0, 10.0], [0.0, 2.0, -10.0]])
    >>> np.round(solve_weights([1.0, 1.0], X0, [0.5, 0.5]), 10)
    array([0.5, 0.5, 0. ])
    """
    x1 = np.asarray(x1, dtype=float)
    X0 = np.asarray(X0, dtype=float)
    v = np.asarray(v, dtype=float)
    return solve_inner(x1, X0, v).weights


def outcome_loss(z1: FloatArray, Z0: FloatArray, w: FloatArray) -> float:
    """Outcome MSPE over the fit window: ``|z1 - Z0 w|^2 / T0``."""
    r = z1 - Z0 @ w
    return float(r @ r) / len(z1)


# ------------------------------------------------------------------ tie breaking


def optimal_face_tiebreak(
    x1: FloatArray,
    X0: FloatArray,
    v: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    w: FloatArray,
) -> tuple[FloatArray, bool]:
    """Among all inner-optimal donor weights, the one with the best outcome fit.

    Every minimiser of the inner problem has the same weighted fitted predictors
    ``sqrt(v) * X0 w``, and (by the KKT conditions) puts weight only on donors whose
    gradient component is minimal. Restricted to those donors, the optimal face is
    ``{w >= 0, sum(w) = 1, sqrt(v) X0 w = sqrt(v) X0 w_basic}``; when it is a single
    point, ``w`` is returned unchanged. Otherwise the outcome MSPE is minimised over
    the face (a small QP, solved with cvxpy) and the answer is kept only if it is
    inner-optimal to round-off and improves the outcome fit.

    Returns
    -------
    weights : ndarray, shape (J,)
    changed : bool
        True when a different optimal weight vector was chosen.
    """
    C = _discrepancy(x1, X0, v)
    residual = C @ w
    gradient = C.T @ residual
    tol = 1e-9 * max(float(np.max(np.abs(gradient))), float(np.max(np.abs(C))) ** 2, 1e-300)
    candidates = np.flatnonzero(gradient <= gradient[w > 0].max() + tol)
    face = np.vstack([C[:, candidates], np.ones((1, candidates.size))])
    if np.linalg.matrix_rank(face) == candidates.size:
        return w, False
    improved = _best_outcome_on_face(C[:, candidates], residual, z1, Z0[:, candidates])
    if improved is None:
        return w, False
    w_new = np.zeros_like(w)
    w_new[candidates] = improved
    inner_old = float(residual @ residual)
    inner_new = float(np.sum((C @ w_new) ** 2))
    scale = float(np.max(np.abs(C))) ** 2
    inner_ok = inner_new <= inner_old + 1e-9 * max(inner_old, 1e-12 * scale)
    if inner_ok and outcome_loss(z1, Z0, w_new) < outcome_loss(z1, Z0, w) * (1 - 1e-9):
        return w_new, True
    return w, False


def _best_outcome_on_face(
    C: FloatArray, residual: FloatArray, z1: FloatArray, Z0: FloatArray
) -> FloatArray | None:
    import cvxpy as cp

    scale = float(np.max(np.abs(C))) or 1.0
    zscale = float(np.max(np.abs(Z0 - z1[:, None]))) or 1.0
    u = cp.Variable(C.shape[1], nonneg=True)
    objective = cp.sum_squares((Z0 - z1[:, None]) / zscale @ u)
    constraints = [cp.sum(u) == 1, (C / scale) @ u == residual / scale]
    problem = cp.Problem(cp.Minimize(objective), constraints)
    try:
        problem.solve(solver="CLARABEL" if "CLARABEL" in cp.installed_solvers() else None)
    except cp.SolverError:
        return None
    if u.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return None
    approximate = np.maximum(np.asarray(u.value, float), 0.0)
    return _polish_on_support(C / scale, residual / scale, Z0 - z1[:, None], approximate)


def _polish_on_support(
    A: FloatArray, target: FloatArray, D: FloatArray, u: FloatArray
) -> FloatArray:
    """Exact minimiser of ``|D u|^2`` subject to ``A u = target``, ``sum(u) = 1`` on the
    support of the interior-point answer ``u``, when it stays non-negative.

    Interior-point solvers stop about 1e-6 short of the face; solving the equality-
    constrained KKT system on the identified support recovers the exact vertex.
    """
    support = np.flatnonzero(u > 1e-6 * u.max())
    constraints = np.vstack([A[:, support], np.ones((1, support.size))])
    rhs = np.append(target, 1.0)
    n, m = support.size, constraints.shape[0]
    kkt = np.zeros((n + m, n + m))
    kkt[:n, :n] = D[:, support].T @ D[:, support]
    kkt[:n, n:] = constraints.T
    kkt[n:, :n] = constraints
    exact = _solve_kkt(kkt, np.append(np.zeros(n), rhs))[:n]
    feasible = np.max(np.abs(constraints @ exact - rhs)) <= 1e-12 * max(1.0, float(np.max(np.abs(rhs))))
    # Round-off can leave an exact zero at -1e-17; only a clearly negative weight
    # means the support was misidentified.
    negative = exact.min() < -1e-12 * float(np.max(np.abs(exact)))
    if not feasible or negative or np.sum((D[:, support] @ exact) ** 2) > np.sum((D @ u) ** 2):
        return _clean_simplex(u)
    polished = np.zeros_like(u)
    polished[support] = np.maximum(exact, 0.0)
    return _clean_simplex(polished)


# ------------------------------------------------------------------ outer search


def regression_start(X: FloatArray, Z: FloatArray) -> FloatArray:
    """R Synth's regression-based starting predictor weights.

    Regress every fit-window outcome on the predictors (with an intercept) across all
    units; the start is ``diag(B B')`` normalised, ``B`` the slope matrix.

    Parameters
    ----------
    X : ndarray, shape (K, N)
        Scaled predictors of all units (treated first or not; order is irrelevant).
    Z : ndarray, shape (T0, N)
        Fit-window outcomes of the same units.

    Returns
    -------
    ndarray, shape (K,)
        Starting weights, or equal weights when the regression is degenerate.
    """
    design = np.column_stack([np.ones(X.shape[1]), X.T])
    beta, *_ = np.linalg.lstsq(design, Z.T, rcond=None)
    start = np.sum(beta[1:] ** 2, axis=1)
    total = start.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(X.shape[0], 1.0 / X.shape[0])
    return start / total


#: From this many donors on, the inner solve is warm-started from the last solution.
#: Below it NNLS from scratch is as fast (measured: 140 against 156 microseconds
#: at J = 38, K = 7), above it far slower (4.9 ms against 0.45 ms at J = 1000, K = 20).
WARM_START_MIN_DONORS = 100


class _NestedProblem:
    """``L(v)`` and ``dL/dv`` for one nested problem, counting inner solves.

    Holds what does not change with ``v`` (the discrepancy matrices, the NNLS
    buffer) and the last inner solution. Successive ``v`` of a search are close, so
    with many donors an active-set method warm-started from the last solution
    (usually one or two small KKT solves) replaces NNLS from scratch, which remains
    the fallback. Both return exact optima: the warm start changes the cost, not
    the answer.
    """

    def __init__(self, x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray):
        self.C = X0 - x1[:, None]
        self.D = Z0 - z1[:, None]
        self.T0 = len(z1)
        self.n_evaluations = 0
        # Scaled once so that the NNLS rows stay O(1) for every v (sqrt(v) <= 1).
        self._C_unit = self.C / max(float(np.max(np.abs(self.C))), 1e-300)
        self._system = np.ones((self.C.shape[0] + 1, self.C.shape[1]))
        self._rhs = np.zeros(self.C.shape[0] + 1)
        self._rhs[-1] = 1.0
        self._last: FloatArray | None = None

    def weights(self, v: FloatArray) -> FloatArray:
        """``W(v)``: warm-started active set, else the NNLS reduction."""
        self.n_evaluations += 1
        warm = self._last is not None and self.C.shape[1] >= WARM_START_MIN_DONORS
        w = _active_set_from(self.C, v, self._last) if warm else None
        if w is None:
            w = self._nnls(v)
        self._last = w
        return w

    def _nnls(self, v: FloatArray) -> FloatArray:
        root = np.sqrt(v)
        np.multiply((root / root.max())[:, None], self._C_unit, out=self._system[:-1])
        try:
            u, _ = optimize.nnls(self._system, self._rhs, maxiter=50 * self._system.shape[1])
            return _clean_simplex(u)
        except (RuntimeError, SolverError):
            # C w = X0 w - x1 on the simplex, so (x1, X0) = (0, C) is the same problem.
            return solve_weights_cvxpy(np.zeros(self.C.shape[0]), self.C, v)

    def loss(self, w: FloatArray) -> float:
        r = self.D @ w
        return float(r @ r) / self.T0

    def value_and_grad(self, v: FloatArray) -> tuple[float, FloatArray]:
        """Loss and its gradient in ``v``, by implicit differentiation on the support."""
        w = self.weights(v)
        support = np.flatnonzero(w)
        w_S = w[support]
        C_S = self.C[:, support]
        D_S = self.D[:, support]
        residual = C_S @ w_S
        outcome_residual = D_S @ w_S
        n = support.size
        rhs = np.zeros(n + 1)
        rhs[:n] = (2.0 / self.T0) * (D_S.T @ outcome_residual)
        adjoint = _solve_kkt(_kkt_matrix(C_S, v), rhs)[:n]
        # d w_S / d v_k solves KKT [dw; dmu] = [-C_S[k]' r_k; 0]; contract with the adjoint.
        grad_v = -(C_S @ adjoint) * residual
        return float(outcome_residual @ outcome_residual) / self.T0, grad_v


def _active_set_from(C: FloatArray, v: FloatArray, w: FloatArray) -> FloatArray | None:
    """Primal active-set method for ``min sum_k v_k (C w)_k^2`` on the simplex, started
    at the feasible point ``w``; ``None`` if it does not certify an optimum quickly.

    Each step solves the equality-constrained problem on the current support: a
    non-negative solution is accepted, and the donor with the most negative KKT
    multiplier joins the support; otherwise the step stops where the first weight
    reaches zero and that donor leaves. The answer is returned only once the full
    KKT conditions hold (``g_j = -mu`` on the support, ``g_j >= -mu`` off it).
    """
    w = w.copy()
    support = np.flatnonzero(w)
    tolerance = 1e-10 * float(np.max(v[:, None] * C * C)) + 1e-300
    for _ in range(2 * C.shape[0] + 4):
        target, mu = _equality_solution(C[:, support], v)
        if target is None:
            return None
        if target.min() > 0:
            w[support] = target
            multipliers = C.T @ (v * (C[:, support] @ target)) + mu
            if np.abs(multipliers[support]).max() > tolerance:
                return None
            entering = int(np.argmin(multipliers))
            if multipliers[entering] >= -tolerance:
                return w / w.sum()
            support = np.append(support, entering)
            continue
        step = target - w[support]
        shrinking = step < 0
        ratios = w[support][shrinking] / -step[shrinking]
        moved = w[support] + ratios.min() * step
        moved[np.flatnonzero(shrinking)[np.argmin(ratios)]] = 0.0
        w[support] = np.maximum(moved, 0.0)
        support = support[w[support] > 0]
    return None


def _equality_solution(C_S: FloatArray, v: FloatArray) -> tuple[FloatArray | None, float]:
    """Minimiser of ``sum_k v_k (C_S u)_k^2`` subject to ``sum(u) = 1``, and its multiplier."""
    rhs = np.zeros(C_S.shape[1] + 1)
    rhs[-1] = 1.0
    try:
        solution = np.linalg.solve(_kkt_matrix(C_S, v), rhs)
    except np.linalg.LinAlgError:
        return None, 0.0
    return solution[:-1], float(solution[-1])


def _kkt_matrix(C_S: FloatArray, v: FloatArray) -> FloatArray:
    n = C_S.shape[1]
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = C_S.T @ (v[:, None] * C_S)
    kkt[:n, n] = 1.0
    kkt[n, :n] = 1.0
    return kkt


def _solve_kkt(matrix: FloatArray, rhs: FloatArray) -> FloatArray:
    # Singular when a predictor weight is zero on a direction the support spans;
    # the least-squares solution is then a valid (generalised) derivative.
    try:
        return np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


class _SimplexMap:
    """``v = floor + (1 - K floor) u^2 / |u|^2``: R^K onto ``{v >= floor, sum(v) = 1}``."""

    def __init__(self, K: int, floor: float):
        self.floor = floor
        self.mass = 1.0 - K * floor

    def to_v(self, u: FloatArray) -> FloatArray:
        total = float(u @ u)
        if total <= 0.0 or not np.isfinite(total):
            return np.full(u.size, 1.0 / u.size)
        return self.floor + self.mass * (u * u) / total

    def to_u(self, v: FloatArray) -> FloatArray:
        return np.sqrt(np.maximum(v - self.floor, 0.0) / self.mass)

    def pullback(self, u: FloatArray, grad_v: FloatArray) -> FloatArray:
        """Gradient in ``u`` from the gradient in ``v``."""
        total = float(u @ u)
        shares = u * u / total
        return 2.0 * self.mass * u / total * (grad_v - grad_v @ shares)


#: A local search has stalled when the loss improved by less than this (relative)
#: over :data:`STALL_WINDOW` iterations: BFGS zigzags at the kinks of ``L``.
STALL_TOLERANCE = 1e-9
STALL_WINDOW = 5


def _gradient_search(
    problem: _NestedProblem, simplex: _SimplexMap, v0: FloatArray, max_iterations: int
) -> tuple[FloatArray, float, bool]:
    """BFGS with the analytic gradient from ``v0``; returns ``(v, loss, converged)``.

    Converged means a stationary point, a line search that cannot improve (a kink),
    or a stall; not converged means the iteration cap stopped a search in progress.
    """
    history: list[float] = []

    def objective(u: FloatArray) -> tuple[float, FloatArray]:
        loss, grad_v = problem.value_and_grad(simplex.to_v(u))
        return loss, simplex.pullback(u, grad_v)

    def stop_when_stalled(intermediate_result: optimize.OptimizeResult) -> None:
        history.append(float(intermediate_result.fun))
        if len(history) > STALL_WINDOW:
            old, new = history[-STALL_WINDOW - 1], history[-1]
            if old - new <= STALL_TOLERANCE * max(abs(old), 1e-300):
                raise StopIteration

    with warnings.catch_warnings():
        # Line searches fail at the kinks of L; the status below records it.
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        warnings.filterwarnings("ignore", message=".*line search.*")
        result = optimize.minimize(
            objective,
            simplex.to_u(v0),
            jac=True,
            method="BFGS",
            callback=stop_when_stalled,
            options={"maxiter": max_iterations, "gtol": 1e-10},
        )
    v = simplex.to_v(result.x)
    return v, problem.loss(problem.weights(v)), result.status != 1


def _simplex_polish(
    problem: _NestedProblem, simplex: _SimplexMap, v0: FloatArray, max_evaluations: int
) -> FloatArray:
    """Nelder-Mead from ``v0``: it crosses the kinks and flat stretches of ``L``
    (a single donor on the support has zero gradient) where BFGS stops."""

    def objective(u: FloatArray) -> float:
        return problem.loss(problem.weights(simplex.to_v(u)))

    result = optimize.minimize(
        objective,
        simplex.to_u(v0),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-13, "maxfev": max_evaluations, "adaptive": True},
    )
    return simplex.to_v(result.x)


#: Above this many predictors, edge midpoints are no longer screened (K(K-1)/2 points).
MAX_PREDICTORS_FOR_EDGES = 20


def _candidates(
    X: FloatArray,
    Z: FloatArray,
    n_random: int,
    rng: np.random.Generator,
    simplex: _SimplexMap,
    extra: Sequence[FloatArray],
) -> list[FloatArray]:
    """Predictor weights to screen as starts.

    Equal weights and R Synth's regression-based start; every vertex and (for up to
    :data:`MAX_PREDICTORS_FOR_EDGES` predictors) every edge midpoint of the simplex,
    because the optimum often puts nearly all weight on one or two predictors;
    seeded sparse Dirichlet draws; and the caller's extra starts.
    """
    K = X.shape[0]
    points = [np.full(K, 1.0 / K), regression_start(X, Z), *np.eye(K)]
    if K <= MAX_PREDICTORS_FOR_EDGES:
        rows, cols = np.triu_indices(K, 1)
        edges = np.zeros((rows.size, K))
        edges[np.arange(rows.size), rows] = edges[np.arange(rows.size), cols] = 0.5
        points += list(edges)
    points += list(rng.dirichlet(np.full(K, 0.3), size=n_random))
    points += [np.asarray(p, dtype=float) for p in extra]
    return [simplex.floor + simplex.mass * p / p.sum() for p in points]


def _certify(
    x1: FloatArray, X0: FloatArray, w_star: FloatArray, floor: float
) -> FloatArray | None:
    """Predictor weights making ``w_star`` inner-optimal, if any exist (an LP).

    Inner KKT at ``w_star`` for weights ``v``: with ``r = X0 w* - x1`` and
    ``g_j(v) = sum_k v_k (X0[k, j] - x1[k]) r_k``, ``g_j = -mu`` on the support of
    ``w*`` and ``g_j >= -mu`` elsewhere; linear in ``(v, mu)``.
    """
    C = X0 - x1[:, None]
    G = (C * (C @ w_star)[:, None]).T  # g = G v
    K = C.shape[0]
    support = w_star > 0
    ones = np.ones((G.shape[0], 1))
    A_eq = np.vstack([np.hstack([G[support], ones[support]]), np.append(np.ones(K), 0.0)])
    b_eq = np.append(np.zeros(support.sum()), 1.0)
    outside = ~support
    result = optimize.linprog(
        np.zeros(K + 1),
        A_ub=-np.hstack([G[outside], ones[outside]]) if outside.any() else None,
        b_ub=np.zeros(outside.sum()) if outside.any() else None,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=[(floor, None)] * K + [(None, None)],
        method="highs",
    )
    if result.status != 0:
        return None
    v = np.maximum(result.x[:K], floor)
    return v / v.sum()


def choose_predictor_weights(
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    *,
    n_random_starts: int = 200,
    seed: int | np.random.Generator | None = 0,
    max_iterations: int = 200,
    n_local: int = 6,
    n_polish: int = 2,
    min_predictor_weight: float = 1e-8,
    extra_starts: Sequence[FloatArray] = (),
    global_search: bool = False,
) -> NestedSolution:
    """Choose predictor weights ``v`` minimising the outcome MSPE of ``W(v)``.

    First the lower bound ``min_w |z1 - Z0 w|^2 / T0`` is computed and, when its
    minimiser is ``W(v)`` for an admissible ``v`` (an LP), that ``v`` is returned as
    a certified global optimum. Otherwise a few hundred candidate ``v`` are screened
    (one inner solve each, see :func:`_candidates`); BFGS with the analytic gradient
    runs from the ``n_local`` best; the ``n_polish`` best end points are refined by
    Nelder-Mead (which crosses the kinks and flat stretches where BFGS stops) and by
    BFGS again; the best point wins. On the 39 fits of the California placebo test
    (ADH specification) this came within 3% on average of the loss reached by a far
    longer search with differential evolution; ``global_search=True`` adds such a
    search.

    Parameters
    ----------
    x1, X0 : ndarray
        Treated and donor predictors, shapes (K,) and (K, J), already scaled.
    z1, Z0 : ndarray
        Treated and donor outcomes over the fit window, shapes (T0,) and (T0, J).
    n_random_starts : int, default 200
        Seeded sparse Dirichlet candidates screened besides the deterministic ones.
    seed : int, Generator or None, default 0
        Seed of the random starts; the result is reproducible for a given seed.
    max_iterations : int, default 200
        Iteration cap of each BFGS search.
    n_local : int, default 6
        How many of the best screened candidates start a BFGS search.
    n_polish : int, default 2
        How many of the best local optima are refined by Nelder-Mead.
    min_predictor_weight : float, default 1e-8
        Lower bound on every ``v_k`` (as in MSCMT). A predictor weight of exactly
        zero makes ``W(v)`` non-unique in general, and the nested optimum would then
        hinge on the tie-breaking rule rather than on the predictors.
    extra_starts : sequence of ndarray, optional
        Further starting ``v`` (e.g. the treated unit's weights for a placebo).
    global_search : bool, default False
        Also run differential evolution on ``v`` (slow; for hard problems).

    Returns
    -------
    NestedSolution
        The best ``v`` found, its ``W(v)``, the loss, the lower bound and whether
        the optimum is certified.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> X0, Z0 = rng.normal(size=(3, 6)), rng.normal(size=(8, 6))
    >>> w_true = np.array([0.7, 0.3, 0, 0, 0, 0])
    >>> sol = choose_predictor_weights(X0 @ w_true, X0, Z0 @ w_true, Z0)
    >>> bool(sol.certified), round(sol.loss, 10)
    (True, 0.0)
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    problem = _NestedProblem(x1, X0, z1, Z0)
    simplex = _SimplexMap(x1.size, min(min_predictor_weight, 0.5 / x1.size))
    w_bound, bound_sq = simplex_least_squares(Z0 - z1[:, None])
    lower_bound = bound_sq / len(z1)

    v_cert = _certify(x1, X0, w_bound, simplex.floor)
    if v_cert is not None:
        loss = problem.loss(problem.weights(v_cert))
        if loss <= lower_bound + _loss_tolerance(z1, Z0, lower_bound):
            return _finish(problem, x1, X0, z1, Z0, v_cert, lower_bound, [loss], True)

    equal = np.full(x1.size, 1.0 / x1.size)
    if _matches_exactly(problem, equal):
        # x1 = X0 w is attainable, so for every v > 0 the inner optimum is the same
        # face {w : X0 w = x1}: v is irrelevant and the tie-breaking rule decides.
        loss = problem.loss(problem.weights(equal))
        return _finish(problem, x1, X0, z1, Z0, equal, lower_bound, [loss], True)

    candidates = _candidates(
        np.column_stack([x1, X0]), np.column_stack([z1, Z0]), n_random_starts, rng, simplex, extra_starts
    )
    screened = sorted(
        ((v, problem.loss(problem.weights(v)), True) for v in candidates), key=lambda r: r[1]
    )
    results = screened[:1] + [
        _gradient_search(problem, simplex, v0, max_iterations) for v0, _, _ in screened[:n_local]
    ]
    for v0, _, _ in sorted(results, key=lambda r: r[1])[:n_polish]:
        v1 = _simplex_polish(problem, simplex, v0, 60 * x1.size)
        results.append(_gradient_search(problem, simplex, v1, max_iterations))
    if global_search:
        results.append(_differential_evolution(problem, simplex, rng, max_iterations))
    best = min(results, key=lambda r: r[1])
    return _finish(
        problem, x1, X0, z1, Z0, best[0], lower_bound, [r[1] for r in results], best[2]
    )


def _matches_exactly(problem: _NestedProblem, v: FloatArray) -> bool:
    """Whether some donor weights reproduce the treated predictors (to round-off)."""
    residual = problem.C @ problem.weights(v)
    return float(residual @ residual) <= 1e-24 * max(float(np.max(problem.C**2)), 1e-300)


def _loss_tolerance(z1: FloatArray, Z0: FloatArray, lower_bound: float) -> float:
    """Round-off allowance when comparing an outcome MSPE with the lower bound."""
    return 1e-9 * lower_bound + 1e-12 * float(np.mean((Z0 - z1[:, None]) ** 2))


def _differential_evolution(
    problem: _NestedProblem, simplex: _SimplexMap, rng: np.random.Generator, max_iterations: int
) -> tuple[FloatArray, float, bool]:
    def objective(u: FloatArray) -> float:
        return problem.loss(problem.weights(simplex.to_v(u)))

    result = optimize.differential_evolution(
        objective, [(0.0, 1.0)] * problem.C.shape[0], seed=rng, tol=1e-10, polish=False, maxiter=200
    )
    polished = _gradient_search(problem, simplex, simplex.to_v(result.x), max_iterations)
    return polished if polished[1] <= result.fun else (simplex.to_v(result.x), float(result.fun), True)


def _finish(
    problem: _NestedProblem,
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    v: FloatArray,
    lower_bound: float,
    start_losses: Sequence[float],
    converged: bool,
) -> NestedSolution:
    """Final ``W(v)`` with the tie-breaking rule, and the bookkeeping."""
    inner = solve_inner(x1, X0, v)
    w, tie_broken = optimal_face_tiebreak(x1, X0, v, z1, Z0, inner.weights)
    loss = outcome_loss(z1, Z0, w)
    if not converged:
        warnings.warn(
            "the best local search of the predictor weights stopped at its iteration "
            "limit before converging; the loss reached is reported but may not be a local "
            "optimum: raise max_iterations or set global_search=True",
            ConvergenceWarning,
            stacklevel=3,
        )
    return NestedSolution(
        predictor_weights=v,
        weights=w,
        loss=loss,
        inner_objective=float(np.sum((_discrepancy(x1, X0, v) @ w) ** 2)),
        lower_bound=lower_bound,
        certified=loss <= lower_bound + _loss_tolerance(z1, Z0, lower_bound),
        n_starts=len(start_losses),
        n_evaluations=problem.n_evaluations,
        start_losses=tuple(float(s) for s in start_losses),
        converged=converged,
        tie_broken=tie_broken,
        inner_method=inner.method,
    )


def nested_fit(
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    *,
    predictor_weights: FloatArray | None = None,
    **search_options: object,
) -> NestedSolution:
    """Fit donor weights: with given predictor weights, or choosing them.

    With ``predictor_weights`` (normalised here) ``W(v)`` is solved once and the
    tie-breaking rule applied; otherwise :func:`choose_predictor_weights` runs with
    ``search_options``.
    """
    if predictor_weights is None:
        return choose_predictor_weights(x1, X0, z1, Z0, **search_options)  # type: ignore[arg-type]
    v = np.asarray(predictor_weights, dtype=float)
    v = v / v.sum()
    problem = _NestedProblem(x1, X0, z1, Z0)
    _, lower_sq = simplex_least_squares(Z0 - z1[:, None])
    return _finish(problem, x1, X0, z1, Z0, v, lower_sq / len(z1), [], True)
