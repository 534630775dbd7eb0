"""The inner problem: donor weights on the simplex for fixed predictor weights.

:func:`simplex_least_squares` is the exact solver (the compiled active set of
:mod:`synthcontrol.weights._nnls` on the NNLS reduction); :func:`solve_weights_cvxpy`
is an independent cvxpy formulation, the reference of the tests and the fallback
when the active set breaks down. :func:`simplex_qp` adds a linear term to the
objective (the penalised synthetic control's), solved exactly by a primal active set
on the KKT system; every variant estimator solves its simplex problems here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SolverError
from . import _nnls
from .solvers import simplex_qp_cvxpy

__all__ = [
    "InnerSolution",
    "simplex_least_squares",
    "simplex_qp",
    "discrepancy",
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
        status = _nnls.solve_simplex(self.M, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w)
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
    if status != _nnls.OK:
        raise SolverError("the active set of the simplex least-squares problem broke down")
    return w, float(np.sum((C @ w) ** 2))


def _power_of_two(scale: float) -> float:
    """The power of two at or above ``scale``: dividing by it is exact in floating point,
    so data given in other units (times ``2^k``) give bitwise the same problem."""
    return float(np.ldexp(1.0, int(np.frexp(scale)[1])))


def discrepancy(x1: FloatArray, X0: FloatArray, v: FloatArray) -> FloatArray:
    """``sqrt(v) * (X0 - x1)``: the weighted predictor gap of every donor (column ``j``
    is donor ``j``'s), so that the inner objective is ``|C w|^2``."""
    x1, X0, v = (np.asarray(a, dtype=float) for a in (x1, X0, v))
    return np.sqrt(v)[:, None] * (X0 - x1[:, None])


_discrepancy = discrepancy  # the name synthcontrol.weights.search imports


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
        A cvxpy solver name; default :func:`~synthcontrol.weights.solvers.qp_solver`.

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
    return simplex_qp_cvxpy(discrepancy(x1, X0, v), solver=solver)


def simplex_qp(C: FloatArray, c: FloatArray | None = None) -> FloatArray:
    """Minimise ``|C w|^2 + c'w`` over the probability simplex, exactly.

    Without a linear term (or a constant one, which adds the same to every point
    of the simplex) this is :func:`simplex_least_squares`. With one, a primal
    active set starts from the best single donor: on the current support the KKT
    system of the equality-constrained problem is solved; a step that would leave
    the simplex stops where the first weight reaches zero (that donor leaves), and
    a donor whose gradient undercuts the support's enters. The answer is returned
    only if it passes the KKT conditions on every donor, otherwise the cvxpy model
    (:func:`~synthcontrol.weights.solvers.simplex_qp_cvxpy`) solves it.

    Parameters
    ----------
    C : ndarray, shape (M, J)
    c : ndarray, shape (J,), optional

    Returns
    -------
    ndarray, shape (J,)
        Weights on the simplex (a basic solution when there are several).

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[-1.0, 1.0, 0.2]])
    >>> np.round(simplex_qp(C[:, :2]), 3)       # no linear term: simplex least squares
    array([0.5, 0.5])
    >>> np.round(simplex_qp(C, np.array([1.0, 1.0, 0.0])), 3)   # penalised towards the third
    array([0., 0., 1.])
    """
    C = np.asarray(C, dtype=float)
    if c is None or np.ptp(np.asarray(c, dtype=float)) == 0.0:
        return simplex_least_squares(C)[0]
    c = np.asarray(c, dtype=float)
    scale = float(np.max(np.abs(C))) ** 2
    if scale == 0.0:  # every point has the same |C w|: the cheapest donors, equally
        cheapest = c == c.min()
        return cheapest / cheapest.sum()
    C_unit, c_unit = C / np.sqrt(scale), c / scale
    w = _active_set(C_unit, c_unit, _best_vertex(C_unit, c_unit))
    return w if w is not None else simplex_qp_cvxpy(C, c)


def _best_vertex(C: FloatArray, c: FloatArray) -> FloatArray:
    """All weight on the donor with the lowest objective alone: a feasible start
    (a penalised solution is sparse, so few donors enter)."""
    w = np.zeros(C.shape[1])
    w[int(np.argmin(np.sum(C**2, axis=0) + c))] = 1.0
    return w


def _active_set(C: FloatArray, c: FloatArray, w: FloatArray) -> FloatArray | None:
    """Primal active-set iterations from the feasible ``w`` to the exact optimum of
    ``|C w|^2 + c'w``; None if they do not end in a point that passes the KKT check."""
    support = list(np.flatnonzero(w > 0))
    for _ in range(4 * C.shape[1]):
        target = np.zeros_like(w)
        target[support] = _kkt_weights(C[:, support], c[support])
        step = target - w
        shrinking = [i for i in support if step[i] < 0]
        alpha = min([1.0] + [-w[i] / step[i] for i in shrinking])
        w = w + alpha * step
        if alpha < 1.0:
            support = [i for i in support if w[i] > 1e-14]
            w[[i for i in range(w.size) if i not in support]] = 0.0
            continue
        gradient = 2.0 * C.T @ (C @ w) + c
        outside = [i for i in range(w.size) if i not in support]
        level = float(np.max(gradient[support]))
        if not outside or gradient[outside].min() >= level - 1e-12 * (1.0 + abs(level)):
            break
        support.append(outside[int(np.argmin(gradient[outside]))])
    return w if _is_optimal(C, c, w) else None


def _kkt_weights(C_S: FloatArray, c_S: FloatArray) -> FloatArray:
    """Stationary point of ``|C_S w|^2 + c_S'w`` subject to ``sum(w) = 1``."""
    n = C_S.shape[1]
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = 2.0 * C_S.T @ C_S
    kkt[:n, n] = 1.0
    kkt[n, :n] = 1.0
    return np.linalg.lstsq(kkt, np.append(-c_S, 1.0), rcond=None)[0][:n]


def _is_optimal(C: FloatArray, c: FloatArray, w: FloatArray) -> bool:
    """KKT on the simplex: ``w >= 0``, sums to one, gradient minimal on the support."""
    gradient = 2.0 * C.T @ (C @ w) + c
    tol = 1e-9 * (1.0 + float(np.max(np.abs(gradient))))
    if np.any(w < -tol) or abs(w.sum() - 1.0) > 1e-9:
        return False
    support = w > tol
    return bool(support.any()) and float(np.min(gradient)) >= float(np.max(gradient[support])) - tol


def solve_inner(x1: FloatArray, X0: FloatArray, v: FloatArray) -> InnerSolution:
    """Donor weights for fixed predictor weights, with the fallback path.

    The exact active set is tried first; if it breaks down the cvxpy formulation is
    used and the returned ``method`` says so.
    """
    C = discrepancy(x1, X0, v)
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
