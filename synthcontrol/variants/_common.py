"""Pieces the variant estimators share: checks of their settings, the pre-period
outcomes, and the estimate of an estimator that matches on outcomes.

Each variant returns an :class:`~synthcontrol.estimators.Estimate`, which
:func:`~synthcontrol.estimators.fit_design` packs into the one result type, so that
placebos, leave-one-out and conformal inference refit it without special cases.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..estimators import Estimate
from ..spec import Design
from ..weights import NestedSolution, outcome_loss
from ..weights.canonical import canonical_columns

__all__ = ["is_nonnegative_number", "is_positive_int", "pre_outcomes", "outcome_estimate", "in_canonical_form"]


def is_nonnegative_number(value: Any) -> bool:
    """True for a finite real number >= 0 (not a bool)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and value >= 0
    )


def is_positive_int(value: Any) -> bool:
    """True for an integer >= 1 (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def in_canonical_form(solve: Callable[[np.ndarray], np.ndarray], C: np.ndarray) -> np.ndarray:
    """Donor weights of a simplex problem whose optimum may not be unique, the same
    for any donor order and donor names.

    ``solve(columns)`` solves the problem on the donors ``columns`` (indices into the
    columns of ``C``, the data the problem sees of each donor) and returns their
    weights. It is called with the donors sorted by their data and exact duplicate
    columns merged (:func:`~synthcontrol.weights.canonical.canonical_columns`, as
    the classic core does); a merged donor's weight is split equally among its
    copies. Valid for objectives that depend on the donors only through ``C`` (a
    duplicate's weight can then move to its copy without changing the objective).

    Examples
    --------
    >>> import numpy as np
    >>> from synthcontrol.weights import simplex_least_squares
    >>> C = np.array([[1.0, -1.0, -1.0]])                 # donors 2 and 3 are copies
    >>> in_canonical_form(lambda cols: simplex_least_squares(C[:, cols])[0], C).tolist()
    [0.5, 0.25, 0.25]
    """
    order, new_group = canonical_columns(C)
    group = np.cumsum(new_group) - 1
    weights = np.empty(order.size)
    weights[order] = (solve(order[new_group]) / np.bincount(group))[group]
    return weights


def pre_outcomes(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Treated and donor outcomes over the fit-window periods before treatment."""
    Z = design.outcome[design.pre_mask]
    return Z[:, 0], Z[:, 1:]


def outcome_estimate(
    design: Design, weights: np.ndarray, *, objective: float, intercept: float = 0.0, details: tuple = ()
) -> Estimate:
    """The estimate of an estimator that matches on outcomes rather than predictors.

    The predictors of the spec play no part in such an estimator, so its predictor
    weights are NaN (an honest "not used" rather than a made-up ``v``; the result's
    ``uses_predictor_weights`` is False). The lower bound is NaN too: the classic
    bound (best simplex fit without an intercept) does not bound an estimator with
    an intercept or unconstrained weights.
    """
    z1, Z0 = pre_outcomes(design)
    solution = NestedSolution(
        predictor_weights=np.full(len(design.predictor_labels), np.nan),
        weights=np.asarray(weights, dtype=float),
        loss=outcome_loss(z1 - intercept, Z0, weights),
        inner_objective=float(objective),
        lower_bound=float("nan"),
        certified=False,
        n_starts=0,
        n_evaluations=1,
    )
    return Estimate(solution, intercept=float(intercept), details=tuple(details))
