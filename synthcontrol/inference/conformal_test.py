"""The conformal test of Chernozhukov, Wuethrich and Zhu (2021) and its inversion.

A null design puts the tested post-periods into the fit window with the hypothesised
effect removed (:func:`null_design`); the result's estimator is refitted on it and
the residuals of the tested periods are compared with every cyclic shift
(:func:`block_p_value`). :class:`NullFits` is the task a worker runs: the p-value of
zero effect, and for one post period the p-values of a grid of effects and the
bounds of the confidence set (outward search, then bisection). The public routine
and its result are in :mod:`synthcontrol.inference.conformal_inference`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..estimators import fit_design
from ..options import FitOptions
from ..spec import Design, is_constant
from ..weights import simplex_least_squares

__all__ = ["block_p_value", "conformal_p_value", "null_design", "NullFits", "null_task"]

_MAX_DOUBLINGS = 12  # outward search: up to 4096 times the grid's half-width
_REFINE = 1e-3  # bisection stops when a bound is known to this share of the grid's width


def block_p_value(residuals: np.ndarray, n_post: int) -> float:
    """Moving-block p-value of the last ``n_post`` residuals (``S_1`` statistic).

    Examples
    --------
    >>> block_p_value(np.array([0.1, -0.2, 0.1, 0.15, 3.0]), 1)
    0.2
    """
    u = np.abs(np.asarray(residuals, dtype=float))
    T = u.size
    # S_1 of every cyclic shift: the sum of |u| over the post block moved by j.
    shifted = np.array([u[(np.arange(T - n_post, T) + j) % T].sum() for j in range(T)])
    return float(np.mean(shifted >= shifted[0] * (1 - 1e-12)))


def conformal_p_value(y: np.ndarray, Z: np.ndarray, n_post: int) -> float:
    """Moving-block p-value that the last ``n_post`` rows of ``y`` follow the
    outcome-only synthetic control of ``Z`` fitted on every row (the estimator of
    Chernozhukov, Wuethrich and Zhu's synthetic control example).

    Parameters
    ----------
    y : ndarray, shape (T,)
        Treated outcome, with the hypothesised effect already subtracted from the
        last ``n_post`` rows.
    Z : ndarray, shape (T, J)
        Donor outcomes.
    n_post : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(20, 4))
    >>> y = Z @ np.array([0.5, 0.5, 0, 0]) + 0.1 * rng.normal(size=20)
    >>> conformal_p_value(y, Z, 1) > 0.05
    True
    >>> y[-1] += 10
    >>> conformal_p_value(y, Z, 1)
    0.05
    """
    w, _ = simplex_least_squares(Z - y[:, None])
    return block_p_value(y - Z @ w, n_post)


def null_design(design: Design, rows: Sequence[int], n_tested: int, theta: float) -> Design:
    """``design`` under the null that the effect is ``theta`` in its last ``n_tested`` rows.

    Only ``rows`` are kept (the pre-period, then the tested post-periods), all in
    the fit window and none in the post-period; the treated outcome of the tested
    rows is lowered by ``theta``. With the default spec (outcome lags as
    predictors) the predictors are the outcome over the new fit window.
    """
    rows = np.asarray(rows)
    outcome = design.outcome[rows].copy()
    outcome[rows.size - n_tested :, 0] -= theta
    periods = tuple(design.periods[i] for i in rows)
    null = replace(
        design,
        periods=periods,
        outcome=outcome,
        fit_mask=np.ones(rows.size, dtype=bool),
        post_mask=np.zeros(rows.size, dtype=bool),
    )
    if design.spec.predictors:
        return null
    varying = [i for i in range(rows.size) if not is_constant(outcome[i])]
    labels = tuple(f"{design.spec.outcome}({periods[i]})" for i in varying)
    return replace(null, predictor_labels=labels, predictors=outcome[varying])


@dataclass(frozen=True)
class NullFits:
    """What a worker needs to refit one period's nulls (or the joint null)."""

    design: Design
    options: FitOptions
    predictor_weights: tuple | None
    rows: tuple
    n_tested: int
    alpha: float
    grid: tuple
    searchable: bool
    extra_starts: tuple = ()


def _p_value(job: NullFits, theta: float) -> float:
    design = null_design(job.design, job.rows, job.n_tested, theta)
    v = None if job.predictor_weights is None else np.asarray(job.predictor_weights)
    starts = tuple(np.asarray(start) for start in job.extra_starts)
    fit = fit_design(design, predictor_weights=v, options=job.options, extra_starts=starts)
    residuals = design.outcome[:, 0] - design.outcome[:, 1:] @ fit.solution.weights - fit.intercept
    return block_p_value(residuals, job.n_tested)


def _joint_task(job: NullFits) -> dict:
    return {"p_zero": _p_value(job, 0.0)}


def _period_task(job: NullFits) -> dict:
    """P-value of zero effect, the grid's p-values and both interval bounds."""
    grid = np.asarray(job.grid)
    p_grid = np.array([_p_value(job, theta) for theta in grid])
    accepted = np.flatnonzero(p_grid > job.alpha)
    if not job.searchable:
        bounds = (-np.inf, np.inf)
    elif accepted.size == 0:
        bounds = (np.nan, np.nan)  # nothing accepted on the grid: an empty set as far as seen
    else:
        bounds = (_bound(job, grid, p_grid, accepted[0], -1), _bound(job, grid, p_grid, accepted[-1], 1))
    return {"p_zero": _p_value(job, 0.0), "p_grid": p_grid.tolist(), "bounds": list(map(float, bounds))}


def _bound(job: NullFits, grid: np.ndarray, p_grid: np.ndarray, edge: int, side: int) -> float:
    """Outer bound on one side: the first rejected effect beyond the accepted ``edge``,
    found on the grid or by doubling outward, then tightened by bisection."""
    width = grid[-1] - grid[0]
    inside, outside = grid[edge], None
    if 0 <= edge + side < grid.size:
        outside = grid[edge + side]
    else:
        step = width / 2
        for _ in range(_MAX_DOUBLINGS):
            candidate = inside + side * step
            if _p_value(job, candidate) <= job.alpha:
                outside = candidate
                break
            inside, step = candidate, 2 * step
    if outside is None:
        return side * np.inf
    while abs(outside - inside) > _REFINE * width:
        middle = (inside + outside) / 2
        if _p_value(job, middle) > job.alpha:
            inside = middle
        else:
            outside = middle
    return float(outside)


def null_task(job: NullFits) -> dict:
    """A runner task: the joint test (no grid) or one period's test inversion."""
    return _joint_task(job) if not job.grid else _period_task(job)
