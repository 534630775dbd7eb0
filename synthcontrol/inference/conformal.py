"""Conformal inference (Chernozhukov, Wuethrich and Zhu 2021).

Under the sharp null that the effect in the post-periods is ``theta``, the treated
outcome without treatment is known there (``y - theta``). The synthetic control is
refitted on the pre-period *and* those post-periods, and the post-period residuals
are compared with the residuals moved by every cyclic shift of the time index
(moving-block permutations). The statistic is ``S_1 = sum |u_t|`` over the post
block (``q = 1``); the p-value is the share of shifts at least as large.

What is refitted: the outcome-only synthetic control, simplex-constrained least
squares of the treated outcome on the donor outcomes (the estimator of the paper),
solved exactly by :func:`synthcontrol.weights.simplex_least_squares` (about half a
millisecond for California's 20 periods and 38 donors). Refitting the nested predictor-weight search instead would be
pointless: with the result's predictor weights fixed the donor weights depend on
pre-period predictors only, so the null would not enter the fit; and searching the
predictor weights anew at every grid point would cost thousands of nested fits.

The pre-period is the fit window before treatment (``design.pre_mask``). Per-period
confidence sets invert the test of one post period at a time (the pre-period plus
that period) over a grid of effects: the set is every grid value with p-value above
``alpha``. The joint p-value tests zero effect in all post periods at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import numpy as np
import pandas as pd

from .._validation import check_int, check_n_jobs, check_number, check_progress
from ..errors import SpecError
from ..results import Summary, SynthResult
from ..weights import simplex_least_squares
from ._common import check_result, frozen
from .runner import RunLog, run_tasks

__all__ = ["conformal", "ConformalResult", "conformal_p_value"]


@dataclass(frozen=True, eq=False)
class ConformalResult:
    """Conformal p-values and per-period confidence sets.

    Attributes
    ----------
    treated : hashable
    post_periods : tuple
    estimates : ndarray, shape (T1,)
        The fit's effects (gaps) in the post-periods.
    p_values : ndarray, shape (T1,)
        Per-period p-value of zero effect.
    joint_p_value : float
        P-value of zero effect in every post period (moving-block permutations).
    grid : ndarray, shape (T1, G)
        Effects tested per period.
    grid_p_values : ndarray, shape (T1, G)
        Their p-values.
    alpha : float
    time : str
    run : RunLog
    """

    treated: Hashable
    post_periods: tuple
    estimates: np.ndarray
    p_values: np.ndarray
    joint_p_value: float
    grid: np.ndarray
    grid_p_values: np.ndarray
    alpha: float
    time: str
    run: RunLog

    def __repr__(self) -> str:
        return (
            f"<ConformalResult: {self.treated!r}, joint p = {self.p_value:.4g}, "
            f"{1 - self.alpha:.0%} intervals for {len(self.post_periods)} periods>"
        )

    @property
    def p_value(self) -> float:
        """P-value of the sharp null of no effect in every post period."""
        return self.joint_p_value

    @property
    def table(self) -> pd.DataFrame:
        """Per post period: estimate, p-value of zero effect, and the confidence
        interval (the hull of the accepted grid values). ``lower_open`` or
        ``upper_open`` flag an interval that reaches the end of the grid: widen it.
        ``connected`` is False when the accepted set has holes."""
        accepted = self.grid_p_values > self.alpha
        rows = []
        for grid, ok in zip(self.grid, accepted):
            hits = np.flatnonzero(ok)
            rows.append({
                "lower": grid[hits[0]] if hits.size else np.nan,
                "upper": grid[hits[-1]] if hits.size else np.nan,
                "lower_open": bool(ok[0]),
                "upper_open": bool(ok[-1]),
                "connected": bool(hits.size == 0 or hits[-1] - hits[0] + 1 == hits.size),
            })
        table = pd.DataFrame(rows, index=pd.Index(self.post_periods, name=self.time))
        table.insert(0, "p_value", self.p_values)
        table.insert(0, "estimate", self.estimates)
        return table

    @property
    def p_grid(self) -> pd.DataFrame:
        """Long frame of every tested effect: period, effect, p-value."""
        G = self.grid.shape[1]
        return pd.DataFrame({
            self.time: np.repeat(np.array(self.post_periods, dtype=object), G),
            "effect": self.grid.ravel(),
            "p_value": self.grid_p_values.ravel(),
        })

    def summary(self) -> Summary:
        """Per-period intervals and the joint p-value (prints nothing)."""
        return Summary(
            f"Conformal inference for {self.treated}",
            {"Post periods": self.table},
            (
                f"Joint p-value of no effect in any post period: {self.joint_p_value:.4g} "
                "(moving-block permutations, S_1 statistic).",
                f"{1 - self.alpha:.0%} confidence intervals by test inversion with the "
                "outcome-only synthetic control refitted under each null.",
            ),
        )

    def plot(self, ax=None):
        """Estimates with their confidence bands; returns the Axes."""
        from .plots import plot_conformal

        return plot_conformal(self, ax=ax)


def conformal_p_value(y: np.ndarray, Z: np.ndarray, n_post: int) -> float:
    """Moving-block p-value that the last ``n_post`` rows of ``y`` follow the synthetic
    control of ``Z`` fitted on every row.

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
    u = np.abs(y - Z @ w)
    T = u.size
    # S_1 of every cyclic shift: the sum of |u| over the post block moved by j.
    shifted = np.array([u[(np.arange(T - n_post, T) + j) % T].sum() for j in range(T)])
    return float(np.mean(shifted >= shifted[0] * (1 - 1e-12)))


def _period_p_values(job: tuple) -> list:
    """P-values of every effect in ``grid`` for one post period (a runner task)."""
    y, Z, grid = job
    values = []
    for theta in grid:
        adjusted = y.copy()
        adjusted[-1] -= theta
        values.append(conformal_p_value(adjusted, Z, 1))
    return values


def conformal(
    result: SynthResult,
    *,
    alpha: float = 0.1,
    grid: Sequence[float] | None = None,
    n_grid: int = 201,
    n_jobs: int | None = 1,
    progress: bool | Callable[[int, int], None] | None = None,
) -> ConformalResult:
    """Conformal p-values and confidence intervals (Chernozhukov, Wuethrich and Zhu 2021).

    Parameters
    ----------
    result : SynthResult
    alpha : float, default 0.1
        Intervals have level ``1 - alpha``. With ``T0`` pre-periods no p-value is
        below ``1 / (T0 + 1)``, so ``alpha`` must exceed it for finite intervals.
    grid : sequence of float, optional
        Effects tested in every post period. Default: ``n_grid`` values centred on
        each period's estimate, spanning four times the largest absolute
        pre-period gap on each side.
    n_grid : int, default 201
    n_jobs, progress
        As in :func:`~synthcontrol.inference.placebo_test` (one task per period).

    Returns
    -------
    ConformalResult

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
    >>> res = sc.fit(sc.datasets.load_smoking(), spec)
    >>> cf = sc.conformal(res, n_grid=41)
    >>> cf.p_value < 0.1
    True
    """
    result = check_result(result, "conformal")
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    n_grid, n_jobs, progress = check_int(n_grid, "n_grid", minimum=3), check_n_jobs(n_jobs), check_progress(progress)
    design = result.design
    pre, post = np.flatnonzero(design.pre_mask), np.flatnonzero(design.post_mask)
    y, Z = design.outcome[:, 0], design.outcome[:, 1:]
    estimates = result.path["gap"].to_numpy()[post]
    grids = _grids(grid, n_grid, estimates, result.path["gap"].to_numpy()[pre])
    jobs = [(y[np.append(pre, t)], Z[np.append(pre, t)], g) for t, g in zip(post, grids)]
    grid_p, log = run_tasks(_period_p_values, jobs, n_jobs=n_jobs, progress=progress,
                            description=f"conformal inference for {result.treated}")
    rows = np.concatenate([pre, post])
    return ConformalResult(
        treated=result.treated,
        post_periods=tuple(np.array(design.periods, dtype=object)[post].tolist()),
        estimates=frozen(estimates),
        p_values=frozen([_period_p_values((y[np.append(pre, t)], Z[np.append(pre, t)], [0.0]))[0] for t in post]),
        joint_p_value=conformal_p_value(y[rows], Z[rows], post.size),
        grid=frozen(grids),
        grid_p_values=frozen(grid_p),
        alpha=float(alpha),
        time=design.spec.time,
        run=log,
    )


def _grids(grid: Sequence[float] | None, n_grid: int, estimates: np.ndarray, pre_gaps: np.ndarray) -> np.ndarray:
    if grid is not None:
        values = np.sort(np.asarray(grid, dtype=float).ravel())
        if values.size < 2 or not np.all(np.isfinite(values)):
            raise SpecError("grid must hold at least two finite effects to test")
        return np.tile(values, (estimates.size, 1))
    if n_grid < 3:
        raise SpecError(f"n_grid={n_grid!r} is too small; use at least 3 (default 201)")
    span = 4 * max(float(np.max(np.abs(pre_gaps))), 1e-8 * float(np.max(np.abs(estimates), initial=1.0)))
    return estimates[:, None] + np.linspace(-span, span, n_grid)[None, :]
