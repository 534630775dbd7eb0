"""The one place that chooses and calls external solvers for weighting problems.

The exact solvers of the package are its own (:mod:`synthcontrol.weights.inner`);
external solvers serve as references and fallbacks, and for the conic problem of
prediction intervals:

* :func:`qp_solver` names the cvxpy solver of every quadratic programme: Clarabel
  (an interior-point solver installed with cvxpy) when present, otherwise OSQP;
* :func:`simplex_qp_cvxpy` is the simplex quadratic programme
  ``min |C w|^2 + c'w`` over ``w >= 0``, ``sum(w) = 1`` as a cvxpy model, the
  independent reference of the tests and the fallback of the exact solvers;
* :class:`LocalisedSimplex` solves ``min c'x`` over a localised simplex with a
  quadratic constraint (scpi's in-sample problem) with Clarabel's own interface,
  built once and solved for many objectives.
"""

from __future__ import annotations

import clarabel
import numpy as np
from scipy import sparse

from ..errors import SolverError

__all__ = ["qp_solver", "simplex_qp_cvxpy", "clean_simplex", "LocalisedSimplex", "WEIGHT_FLOOR"]

#: Weights below this share of the largest are round-off of a solver and set to zero.
WEIGHT_FLOOR = 1e-12


def qp_solver() -> str:
    """The cvxpy solver for quadratic programmes: ``"CLARABEL"`` when installed
    (it is a dependency of cvxpy >= 1.4), else ``"OSQP"``."""
    import cvxpy as cp

    return "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "OSQP"


def simplex_qp_cvxpy(C: np.ndarray, c: np.ndarray | None = None, solver: str | None = None) -> np.ndarray:
    """``argmin |C w|^2 + c'w`` over the simplex, by cvxpy (reference and fallback).

    Parameters
    ----------
    C : ndarray, shape (M, J)
    c : ndarray, shape (J,), optional
        Linear term (none by default).
    solver : str, optional
        A cvxpy solver name; default :func:`qp_solver`.

    Returns
    -------
    ndarray, shape (J,)
        Weights clipped at zero, round-off zeroed (:func:`clean_simplex`), summing to one.

    Raises
    ------
    SolverError
        When the solver returns no solution.

    Examples
    --------
    >>> np.round(simplex_qp_cvxpy(np.array([[-1.0, 1.0]])), 6)
    array([0.5, 0.5])
    >>> np.round(simplex_qp_cvxpy(np.array([[-1.0, 1.0]]), np.array([0.0, 10.0])), 6)
    array([1., 0.])
    """
    import cvxpy as cp

    C = np.asarray(C, dtype=float)
    scale = float(np.max(np.abs(C))) if C.size else 0.0
    scale = scale if scale > 0 and np.isfinite(scale) else 1.0
    w = cp.Variable(C.shape[1], nonneg=True)
    objective = cp.sum_squares((C / scale) @ w)
    if c is not None:
        objective = objective + (np.asarray(c, dtype=float) / scale**2) @ w
    problem = cp.Problem(cp.Minimize(objective), [cp.sum(w) == 1])
    chosen = solver or qp_solver()
    problem.solve(solver=chosen)
    if w.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise SolverError(f"cvxpy solver {chosen} failed on the simplex weighting problem: {problem.status}")
    return clean_simplex(np.maximum(np.asarray(w.value, dtype=float), 0.0))


def clean_simplex(u: np.ndarray) -> np.ndarray:
    """Renormalise a non-negative vector onto the simplex, zeroing round-off."""
    u = np.where(u > WEIGHT_FLOOR * float(np.max(u)), u, 0.0)
    total = u.sum()
    if not np.isfinite(total) or total <= 0.0:
        raise SolverError("the solver returned no usable weights (all zero or NaN)")
    return u / total


class LocalisedSimplex:
    """``min c'x`` over ``sum(x) = 1``, ``x >= lower``, ``|R (x - w)|^2 <= 2 G'(x - w)``.

    Built once for Clarabel and solved for many ``c``, in the step ``d = x - w``
    measured in units of the localisation's size ``kappa = max|G| / |R|_2^2``: the
    feasible set is an ellipsoid through ``d = 0`` whose extent is about ``kappa``,
    often 1e-4 of the simplex, where an interior-point solver with absolute
    tolerances stalls (about 5% of scpi-style draws on California did, and which ones
    depended on round-off) unless it sees the problem at unit size. The quadratic
    constraint is a rotated second-order cone: ``u = G'd / kappa``, ``v = 1``,
    ``2uv >= |R d / kappa|^2``.

    Parameters
    ----------
    w : ndarray, shape (J,)
        Centre of the localisation.
    R : ndarray, shape (T, J)
    G : ndarray, shape (J,)
    lower : ndarray, shape (J,)
        Lower bounds of ``x``.

    Examples
    --------
    >>> w = np.array([0.5, 0.5])
    >>> problem = LocalisedSimplex(w, np.eye(2), np.array([1.0, -1.0]), np.zeros(2))
    >>> x = problem.minimise(np.array([1.0, 0.0]))   # as little weight on the first as allowed
    >>> bool(abs(x.sum() - 1) < 1e-8 and x[0] < 0.5)
    True
    """

    def __init__(self, w: np.ndarray, R: np.ndarray, G: np.ndarray, lower: np.ndarray):
        J, root2 = w.size, np.sqrt(2.0)
        norm = float(np.linalg.norm(R, 2)) if R.size else 0.0
        self.w = w
        self.kappa = float(np.max(np.abs(G))) / norm**2 if norm > 0 and np.any(G) else 1.0
        g = G / self.kappa
        A = np.vstack([np.ones((1, J)), -np.eye(J), -g[None, :] / root2, -g[None, :] / root2, -R])
        b = np.concatenate([[0.0], (w - lower) / self.kappa, [1 / root2, -1 / root2], np.zeros(R.shape[0])])
        self.A, self.b = sparse.csc_matrix(A), b
        self.P = sparse.csc_matrix((J, J))
        self.cones = [clarabel.ZeroConeT(1), clarabel.NonnegativeConeT(J), clarabel.SecondOrderConeT(R.shape[0] + 2)]
        self.settings = clarabel.DefaultSettings()
        self.settings.verbose = False

    def minimise(self, c: np.ndarray) -> np.ndarray | None:
        """The minimiser for objective ``c``, or None when the solver does not finish."""
        scale = float(np.max(np.abs(c))) or 1.0
        solution = clarabel.DefaultSolver(self.P, c / scale, self.A, self.b, self.cones, self.settings).solve()
        if solution.status in (clarabel.SolverStatus.Solved, clarabel.SolverStatus.AlmostSolved):
            return self.w + self.kappa * np.asarray(solution.x)
        return None
