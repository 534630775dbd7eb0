"""Penalised synthetic control (Abadie and L'Hour 2021).

With predictor weights ``V`` and ``C = V^(1/2) (X0 - x1 1')`` (column ``j`` is donor
``j``'s weighted predictor gap, ``d_j = |C_j|^2`` its squared distance),

    w(lambda) = argmin_{w in simplex} |C w|^2 + lambda * sum_j w_j d_j,

which trades the fit of the synthetic unit against the fit of each donor it uses:
``lambda -> 0`` gives the classic synthetic control (among several classic optima,
the one closest to the treated unit donor by donor), ``lambda -> inf`` one-nearest
neighbour matching. For ``lambda > 0`` the solution is unique in general and sparse.

``V`` is the classic nested choice for the design (minimising the outcome MSPE over
the fit window) unless the user fixes ``predictor_weights``. ``lambda`` is given
(``estimator_options={"lambda_": x}``) or chosen, as Abadie and L'Hour propose, by
leave-one-out prediction among the donors: each donor in turn is the pseudo-treated
unit, matched with the same ``V`` by the other donors, and the ``lambda`` of the grid
with the smallest mean squared error of its fit-window outcomes wins.

The problem is a quadratic programme with a linear term on the simplex. It is solved
exactly: a ridge-regularised version (``C'C + eps I``, factorised as a stacked matrix)
reduces to the project's simplex least squares and finds the support; the KKT system
of the unregularised problem on that support then gives the exact weights, which are
kept only if they pass the optimality conditions on every donor. An independent cvxpy
formulation (:func:`penalized_weights_cvxpy`) is the fallback and the test reference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ..errors import SolverError
from ..estimators import register_estimator
from ..results import FitOptions, SynthResult
from ..spec import Design
from ..weights import nested_fit, outcome_loss, simplex_least_squares
from ._common import Option, is_nonnegative_number, read_options

__all__ = [
    "DEFAULT_LAMBDAS",
    "penalized_weights",
    "penalized_weights_cvxpy",
    "choose_lambda",
    "fit_penalized",
]

#: Default grid of ``lambda`` for the leave-one-out choice.
DEFAULT_LAMBDAS = (0.0, *np.geomspace(1e-3, 10.0, 13).tolist())


def _gaps(x1: np.ndarray, X0: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``C = sqrt(v) (X0 - x1)`` and the donors' squared distances ``d``."""
    C = np.sqrt(np.asarray(v, float))[:, None] * (np.asarray(X0, float) - np.asarray(x1, float)[:, None])
    return C, np.sum(C**2, axis=0)


def penalized_weights(x1: np.ndarray, X0: np.ndarray, v: np.ndarray, lambda_: float) -> np.ndarray:
    """Penalised synthetic control weights for given predictor weights and ``lambda``.

    Parameters
    ----------
    x1 : array_like, shape (K,)
        Treated unit's (scaled) predictors.
    X0 : array_like, shape (K, J)
        Donors' (scaled) predictors.
    v : array_like, shape (K,)
        Non-negative predictor weights.
    lambda_ : float
        Penalty, ``>= 0``; 0 gives the classic weights.

    Returns
    -------
    ndarray, shape (J,)
        Donor weights on the simplex.

    Examples
    --------
    >>> import numpy as np
    >>> X0 = np.array([[0.0, 2.0, 1.2]])   # the treated unit sits at 1.0
    >>> np.round(penalized_weights([1.0], X0, [1.0], 1e-3), 2)   # near-exact fit, closest donors
    array([0.17, 0.  , 0.83])
    >>> np.round(penalized_weights([1.0], X0, [1.0], 100.0), 6)   # nearest neighbour
    array([0., 0., 1.])
    """
    C, d = _gaps(x1, X0, v)
    if lambda_ == 0.0:
        return simplex_least_squares(C)[0]
    scale = float(np.max(np.abs(C))) ** 2
    if scale == 0.0:
        return np.full(C.shape[1], 1.0 / C.shape[1])
    C, c = C / np.sqrt(scale), lambda_ * d / scale
    w = _exact_on_support(C, c, _best_vertex(C, c))
    return w if w is not None else penalized_weights_cvxpy(x1, X0, v, lambda_)


def _best_vertex(C: np.ndarray, c: np.ndarray) -> np.ndarray:
    """All weight on the donor with the lowest objective alone: a feasible start for
    the active-set iterations (the penalised solution is sparse, so few donors enter)."""
    w = np.zeros(C.shape[1])
    w[int(np.argmin(np.sum(C**2, axis=0) + c))] = 1.0
    return w


def _exact_on_support(C: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """Primal active-set iterations from the feasible ``w`` to the exact optimum.

    On the current support the KKT system of the equality-constrained problem is
    solved; a step that would leave the simplex stops at the first weight reaching
    zero (that donor leaves the support), and a donor whose gradient undercuts the
    support's enters it. Returns None if the iterations do not certify an optimum.
    """
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


def _kkt_weights(C_S: np.ndarray, c_S: np.ndarray) -> np.ndarray:
    """Stationary point of ``|C_S w|^2 + c_S'w`` subject to ``sum(w) = 1``."""
    n = C_S.shape[1]
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = 2.0 * C_S.T @ C_S
    kkt[:n, n] = 1.0
    kkt[n, :n] = 1.0
    return np.linalg.lstsq(kkt, np.append(-c_S, 1.0), rcond=None)[0][:n]


def _is_optimal(C: np.ndarray, c: np.ndarray, w: np.ndarray) -> bool:
    """KKT on the simplex: ``w >= 0``, sums to one, gradient minimal on the support."""
    gradient = 2.0 * C.T @ (C @ w) + c
    tol = 1e-9 * (1.0 + float(np.max(np.abs(gradient))))
    if np.any(w < -tol) or abs(w.sum() - 1.0) > 1e-9:
        return False
    support = w > tol
    return bool(support.any()) and float(np.min(gradient)) >= float(np.max(gradient[support])) - tol


def penalized_weights_cvxpy(x1: np.ndarray, X0: np.ndarray, v: np.ndarray, lambda_: float) -> np.ndarray:
    """The same problem as :func:`penalized_weights`, by cvxpy (reference and fallback).

    Examples
    --------
    >>> import numpy as np
    >>> np.round(penalized_weights_cvxpy([1.0], np.array([[0.0, 2.0, 1.2]]), [1.0], 100.0), 4)
    array([0., 0., 1.])
    """
    import cvxpy as cp

    C, d = _gaps(x1, X0, v)
    scale = float(np.max(np.abs(C))) ** 2 or 1.0
    w = cp.Variable(C.shape[1], nonneg=True)
    objective = cp.sum_squares(C / np.sqrt(scale) @ w) + (lambda_ * d / scale) @ w
    problem = cp.Problem(cp.Minimize(objective), [cp.sum(w) == 1])
    problem.solve(solver="CLARABEL" if "CLARABEL" in cp.installed_solvers() else None)
    if w.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise SolverError(f"cvxpy failed on the penalised weighting problem: {problem.status}")
    u = np.maximum(np.asarray(w.value, float), 0.0)
    return u / u.sum()


def choose_lambda(
    X0: np.ndarray, Z0: np.ndarray, v: np.ndarray, lambdas: Sequence[float] = DEFAULT_LAMBDAS
) -> tuple[float, np.ndarray]:
    """``lambda`` by leave-one-out prediction among the donors (Abadie and L'Hour).

    Parameters
    ----------
    X0 : ndarray, shape (K, J)
        Donors' scaled predictors.
    Z0 : ndarray, shape (T0, J)
        Donors' fit-window outcomes.
    v : ndarray, shape (K,)
        Predictor weights, the same for every pseudo-treated donor.
    lambdas : sequence of float
        The grid.

    Returns
    -------
    lambda_ : float
        The grid value with the smallest mean squared prediction error (the
        first in grid order on ties).
    errors : ndarray, shape (len(lambdas),)
        Mean squared error of each grid value over donors and periods.
    """
    J = X0.shape[1]
    errors = np.zeros(len(lambdas))
    for j in range(J):
        others = np.delete(np.arange(J), j)
        for k, lam in enumerate(lambdas):
            w = penalized_weights(X0[:, j], X0[:, others], v, lam)
            errors[k] += outcome_loss(Z0[:, j], Z0[:, others], w) / J
    return float(lambdas[int(np.argmin(errors))]), errors


def _is_grid(value: object) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) > 0
        and all(is_nonnegative_number(x) for x in value)
    )


_OPTIONS = {
    "lambda_": Option(
        None, lambda v: v is None or is_nonnegative_number(v), "None (leave-one-out choice) or a number >= 0"
    ),
    "lambdas": Option(DEFAULT_LAMBDAS, _is_grid, "a non-empty tuple of numbers >= 0 (the leave-one-out grid)"),
}


@register_estimator("penalized")
def fit_penalized(
    design: Design,
    *,
    predictor_weights: np.ndarray | None,
    options: FitOptions,
    extra_starts: Sequence[np.ndarray] = (),
) -> SynthResult:
    """Penalised synthetic control of ``design``.

    Options (``estimator_options``): ``lambda_`` fixes the penalty (default: chosen
    by leave-one-out over ``lambdas``, default :data:`DEFAULT_LAMBDAS`). ``V`` comes
    from the classic nested search (with ``extra_starts``) unless predictor weights
    are given. ``extras`` holds ``lambda_``, ``lambda_chosen_by``, ``cv_errors``
    ((lambda, MSPE) pairs, empty when given) and ``classic_weights``.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1980), sc.at("cigsale", 1988)])
    >>> res = sc.fit(sc.datasets.load_smoking(), spec, estimator="penalized",
    ...              estimator_options={"lambda_": 0.1})
    >>> res.extras["lambda_"], round(float(res.weights.sum()), 10), bool((res.weights >= 0).all())
    (0.1, 1.0, True)
    """
    settings = read_options("penalized", options, _OPTIONS)
    X, scale = design.scaled_predictors()
    Z = design.outcome[design.fit_mask]
    search = options.search_options() | {"extra_starts": tuple(extra_starts)}
    classic = nested_fit(X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:], predictor_weights=predictor_weights, **search)
    v = classic.predictor_weights
    if settings["lambda_"] is None:
        lambdas = tuple(float(x) for x in settings["lambdas"])
        lambda_, errors = choose_lambda(X[:, 1:], Z[:, 1:], v, lambdas)
        cv = tuple(zip(lambdas, errors.tolist()))
    else:
        lambda_, cv = float(settings["lambda_"]), ()
    w = penalized_weights(X[:, 0], X[:, 1:], v, lambda_)
    C, d = _gaps(X[:, 0], X[:, 1:], v)
    loss = outcome_loss(Z[:, 0], Z[:, 1:], w)
    solution = replace(
        classic,
        weights=w,
        loss=loss,
        inner_objective=float(np.sum((C @ w) ** 2)),
        certified=loss <= classic.lower_bound * (1 + 1e-9),
        tie_broken=False,
    )
    details = (
        ("lambda_", lambda_),
        ("lambda_chosen_by", "leave-one-out" if settings["lambda_"] is None else "given"),
        ("cv_errors", cv),
        ("penalty", float(d @ w)),
        ("classic_weights", tuple(classic.weights.tolist())),
    )
    return SynthResult(
        design=design,
        solution=solution,
        scale=scale,
        options=options,
        predictor_weights_given=predictor_weights is not None,
        estimator="penalized",
        details=details,
    )
