"""The inner problem: donor weights on the simplex for fixed predictor weights.

:func:`simplex_least_squares` is the exact solver (the compiled active set of
:mod:`synthcontrol.weights._kernels` on the NNLS reduction); :func:`solve_weights_cvxpy`
is an independent cvxpy formulation, the reference of the tests and the fallback
when the active set breaks down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SolverError
from . import _kernels

__all__ = [
    "InnerSolution",
    "simplex_least_squares",
    "solve_weights_cvxpy",
    "solve_inner",
    "solve_weights",
    "outcome_loss",
]

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
        ``"nnls"`` (the exact compiled active set) or ``"cvxpy"`` (the fallback).
    """

    weights: FloatArray
    objective: float
    method: str


class Workspace:
    """The work arrays of the compiled active set for one system ``M`` (last row ones).

    A search solves thousands of inner problems on the same ``M``; the arrays are
    allocated once and the last solution stays in ``u``/``passive``, so the next
    solve starts from it (usually one or two Givens updates).
    """

    def __init__(self, M: FloatArray):
        m, n = M.shape
        self.M = np.ascontiguousarray(M, dtype=float)
        b = np.zeros(m)
        b[-1] = 1.0
        self.state = (
            np.empty(m - 1),  # v
            np.ones(m),  # row scales
            np.zeros(n),  # u
            np.zeros(m, dtype=np.int64),  # passive
            np.zeros(1, dtype=np.int64),  # support size
            np.zeros(n, dtype=np.int8),  # flags
            np.empty((m, m)),  # Q
            np.empty((m, m)),  # R
            np.empty(m),  # Q'b
            np.empty(m),  # z
            np.empty(n),  # dual
            np.empty(m),  # residual
            b,
            np.zeros(n),  # w
            np.zeros(2, dtype=np.int64),  # inner solves, breakdowns
        )

    @property
    def row_scales(self) -> FloatArray:
        return self.state[1]

    def solve(self, cold: bool = False, start: FloatArray | None = None) -> tuple[FloatArray, int]:
        """Simplex weights for the current row scales; ``(w, status)`` (a fresh copy).
        Warm-started from the last solution, or from nothing (``cold``), or from the
        columns ``start``."""
        (_, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w, _) = self.state
        if cold or start is not None:
            u[:] = 0.0
            n_passive[0] = 0
        if start is not None and 0 < len(start) <= passive.size:
            passive[: len(start)] = start
            n_passive[0] = len(start)
            u[start] = 1.0 / len(start)
        status = _kernels.solve_simplex(self.M, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w)
        return w.copy(), int(status)


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

    Raises
    ------
    SolverError
        When the active set breaks down (callers fall back to cvxpy).

    Notes
    -----
    Solves the NNLS problem ``min_{u >= 0} |C u|^2 + (sum(u) - 1)^2`` with ``C``
    scaled to unit maximum entry, and returns ``u / sum(u)``; see
    :mod:`synthcontrol.weights` for why this is exact.

    Examples
    --------
    >>> import numpy as np
    >>> w, obj = simplex_least_squares(np.array([[1.0, -1.0]]))
    >>> np.round(w, 12), round(obj, 12)
    (array([0.5, 0.5]), 0.0)
    """
    C = np.asarray(C, dtype=float)
    scale = float(np.max(np.abs(C))) if C.size else 0.0
    if scale == 0.0 or not np.isfinite(scale):
        w = np.full(C.shape[1], 1.0 / C.shape[1])
        return w, float(np.sum((C @ w) ** 2))
    workspace = Workspace(np.vstack([C / _power_of_two(scale), np.ones((1, C.shape[1]))]))
    w, status = workspace.solve(cold=True)
    if status != _kernels.OK:
        raise SolverError("the active set of the simplex least-squares problem broke down")
    return w, float(np.sum((C @ w) ** 2))


def _power_of_two(scale: float) -> float:
    """The power of two at or above ``scale``: dividing by it is exact in floating point,
    so data given in other units (times ``2^k``) give bitwise the same problem."""
    return float(np.ldexp(1.0, int(np.frexp(scale)[1])))


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
    return clean_simplex(np.maximum(np.asarray(w.value, float), 0.0))


#: Weights below this share of the largest are round-off of a solver and set to zero.
WEIGHT_FLOOR = 1e-12


def clean_simplex(u: FloatArray) -> FloatArray:
    """Renormalise a non-negative vector onto the simplex, zeroing round-off."""
    u = np.where(u > WEIGHT_FLOOR * float(np.max(u)), u, 0.0)
    total = u.sum()
    if not np.isfinite(total) or total <= 0.0:
        raise SolverError("the solver returned no usable weights (all zero or NaN)")
    return u / total


def solve_inner(x1: FloatArray, X0: FloatArray, v: FloatArray) -> InnerSolution:
    """Donor weights for fixed predictor weights, with the fallback path.

    The exact active set is tried first; if it breaks down the cvxpy formulation is
    used and the returned ``method`` says so.
    """
    C = _discrepancy(x1, X0, v)
    try:
        w, objective = simplex_least_squares(C)
        method = "nnls"
    except SolverError:
        w = solve_weights_cvxpy(x1, X0, v)
        objective = float(np.sum((C @ w) ** 2))
        method = "cvxpy"
    return InnerSolution(weights=w, objective=objective, method=method)


def solve_weights(x1: FloatArray, X0: FloatArray, v: FloatArray) -> FloatArray:
    """Donor weights ``W(v)`` on the simplex for given predictor weights.

    Minimises ``(x1 - X0 w)' diag(v) (x1 - X0 w)`` subject to ``w >= 0`` and
    ``sum(w) = 1``. Exact (compiled active set), with a cvxpy fallback.

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
        such ties by the outcome fit, see
        :func:`~synthcontrol.weights.optimal_face_tiebreak`.

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
