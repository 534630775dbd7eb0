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

The problem is a quadratic programme with a linear term on the simplex, solved
exactly by the weighting core's :func:`~synthcontrol.weights.simplex_qp` (a primal
active set on the KKT system, checked on every donor, with the cvxpy model as its
fallback); :func:`penalized_weights_cvxpy` is the independent cvxpy formulation the
tests compare it with. Once ``lambda`` is large enough for the nearest-neighbour
limit to be exact (see :func:`_penalized_qp`) that limit is computed directly, so
any finite ``lambda`` is solved. The donors are taken in canonical order, exact
duplicates merged (:func:`~._common.in_canonical_form`), so that where the optimum
is not unique (``lambda = 0``, ties) the answer does not depend on their order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ..estimators import Estimate, FitRequest, nested_search
from ..registry import Setting, register_estimator
from ..spec import Design
from ..weights import discrepancy, outcome_loss, simplex_least_squares, simplex_qp
from ..weights.solvers import simplex_qp_cvxpy
from ._common import in_canonical_form, is_nonnegative_number

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
    C = discrepancy(x1, X0, v)
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
    return in_canonical_form(lambda columns: _penalized_qp(C[:, columns], d[columns], lambda_), C)


def _penalized_qp(C: np.ndarray, d: np.ndarray, lambda_: float) -> np.ndarray:
    """The penalised problem on given columns; its exact large-``lambda`` limit where
    that limit is reached.

    At a minimiser ``w*`` of ``|C w|^2`` over the donors nearest to the treated
    unit (``d_j = min d``), the gradient ``2 C'C w* + lambda d`` of any other donor
    ``k`` exceeds the support's by at least ``lambda (d_k - min d) - 4 max d``
    (``|C_k . C w*| <= max d``). Once that is positive for every ``k``, ``w*`` is the
    answer, and is computed as such: scaled to the quadratic term, a penalty many
    orders of magnitude larger breaks the active set (and cvxpy).
    """
    nearest = d == d.min()
    gap = float(np.min(d[~nearest], initial=np.inf)) - float(d.min())
    if np.isfinite(gap) and float(lambda_) * gap > 4.0 * float(d.max()):
        weights = np.zeros(d.size)
        weights[nearest] = simplex_least_squares(C[:, nearest])[0]
        return weights
    return simplex_qp(C, lambda_ * d)


def penalized_weights_cvxpy(x1: np.ndarray, X0: np.ndarray, v: np.ndarray, lambda_: float) -> np.ndarray:
    """The same problem as :func:`penalized_weights`, by cvxpy (the tests' reference).

    Examples
    --------
    >>> import numpy as np
    >>> np.round(penalized_weights_cvxpy([1.0], np.array([[0.0, 2.0, 1.2]]), [1.0], 100.0), 4)
    array([0., 0., 1.])
    """
    C, d = _gaps(x1, X0, v)
    return simplex_qp_cvxpy(C, lambda_ * d)


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


_SETTINGS = {
    "lambda_": Setting(
        None, lambda v: v is None or is_nonnegative_number(v), "None (leave-one-out choice) or a number >= 0"
    ),
    "lambdas": Setting(DEFAULT_LAMBDAS, _is_grid, "a non-empty tuple of numbers >= 0 (the leave-one-out grid)"),
}


@register_estimator("penalized", settings=_SETTINGS, uses_predictor_weights=True, simplex_weights=True,
                    chosen_from_data={"lambda_": "lambda_"})
def fit_penalized(design: Design, request: FitRequest) -> Estimate:
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
    settings = request.settings
    classic = nested_search(design, request)
    X, _ = design.scaled_predictors()
    Z = design.outcome[design.fit_mask]
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
    return Estimate(solution, details=details)
