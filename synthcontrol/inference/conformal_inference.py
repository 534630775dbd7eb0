"""Conformal inference (Chernozhukov, Wuethrich and Zhu 2021).

Under the sharp null that the effect in the tested post-periods is ``theta``, the
treated outcome without treatment is known there (``y - theta``). The result's own
estimator is refitted on the pre-period *and* those post-periods, treated as if they
were pre-periods (as augsynth's ``conformal_inf`` refits the augmented synthetic
control), and the residuals of the tested periods are compared with the residuals
moved by every cyclic shift of the time index (moving-block permutations). The
statistic is ``S_1 = sum |u_t|`` over the tested block (``q = 1``); the p-value is the
share of shifts at least as large (ties, up to round-off, count as at least as large).

What "refitting the estimator" means, estimator by estimator (every refit goes
through :func:`~synthcontrol.estimators.fit_design` with the result's own options):

* ``classic``, ``penalized``, ``augmented``: the nested search chooses the predictor
  weights anew on the enlarged fit window, so the null enters through the outcome
  loss (and, for ``augmented``, through the ridge correction too). With the default
  spec (the outcome in every fit-window period as predictors) the tested periods
  become predictors too. Predictor weights fixed by the user stay fixed.
* ``demeaned``, ``did``, ``robust``: outcome-only fits on the enlarged window.
* Chernozhukov, Wuethrich and Zhu's p-values are exact for an estimator that treats
  every period of the refit alike (invariant to reordering them). Outcome-only
  estimators and the default spec are; predictors that summarise particular
  pre-periods are not: the refit matches those periods through the predictors but
  the tested ones only through the outcome loss, and the p-values can be too small
  (a simulation with three summary predictors gave the smallest attainable p-value
  in 2 of 8 no-effect panels). Such results get an
  :class:`~synthcontrol.errors.InferenceWarning`; the p-values are then valid only
  approximately (when the estimator predicts the counterfactual consistently).
* Tuning parameters chosen from the data stay at the original fit's choice (each
  estimator declares them in :mod:`synthcontrol.registry`: ``augmented`` and
  ``penalized`` ``lambda``, ``robust`` ``sv_count``), as augsynth holds its
  cross-validated ``lambda`` in its refits.
* Estimators whose weights depend on the post-period are refused (``sdid``: its time
  weights target the post-period, which a null refit moves into the pre-period, so
  the estimator is undefined there); use :func:`~synthcontrol.inference.placebo_test`
  or ``extras["se"]``.

A test inversion refits the estimator dozens of times per post period. A full
predictor-weight search costs tenths of a second on California, so by default the
null refits search locally: one local search from the best of the original fit's
predictor weights and the default deterministic starts (no random starts, no
polish). The null moves one period of the outcome loss, so the optimum moves away
from the original one continuously; on California this costs about a tenth of a
full search and reached the full search's loss to about 0.1%. ``full_search=True``
runs the result's own search settings in every refit instead. Either way the tasks
(one per post period) are spread over ``n_jobs`` workers and can be checkpointed.

Per-period confidence sets invert the test of one post period at a time (the
pre-period plus that period): the set is every effect with p-value above ``alpha``.
With ``T0`` pre-periods no p-value is below ``1 / (T0 + 1)``; when ``alpha`` is
below that, no effect can be rejected, the intervals are the whole line (reported
as ``-inf, inf``) and an :class:`~synthcontrol.errors.InferenceWarning` says so.
Otherwise each bound is searched: a grid of effects around the estimate, an outward
search (doubling the distance) when the grid's end is still accepted, then
bisection between the outermost accepted and the first rejected effect; the
reported bound is that rejected effect, so the interval never leaves out an effect
the search found acceptable. A side still accepted after the outward search is
unbounded (``-inf`` or ``inf``, flagged ``lower_open`` / ``upper_open``). The joint
p-value tests zero effect in all post periods at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable, Hashable, Sequence

import numpy as np
import pandas as pd

from .._validation import check_bool, check_int, check_number
from ..errors import InferenceWarning, SpecError, warn
from ..options import FitOptions
from ..results import Summary, SynthResult
from ._common import Execution, check_result, design_parts, frozen
from .conformal_test import NullFits, block_p_value, conformal_p_value, null_design, null_task
from .plots import plot_conformal
from .runner import RunLog

__all__ = ["conformal", "ConformalResult", "conformal_p_value", "block_p_value", "null_design", "refit_options"]


@dataclass(frozen=True, eq=False)
class ConformalResult:
    """Conformal p-values and per-period confidence intervals.

    Attributes
    ----------
    treated : hashable
    estimator : str
        The estimator refitted under each null.
    post_periods : tuple
    estimates : ndarray, shape (T1,)
        The fit's effects (gaps) in the post-periods.
    p_values : ndarray, shape (T1,)
        Per-period p-value of zero effect.
    joint_p_value : float
        P-value of zero effect in every post period (moving-block permutations).
    grid : ndarray, shape (T1, G)
        Effects tested per period on the regular grid.
    grid_p_values : ndarray, shape (T1, G)
        Their p-values.
    lower, upper : ndarray, shape (T1,)
        Interval bounds after the outward search and bisection (``-inf`` / ``inf``
        where no effect on that side could be rejected).
    alpha : float
    min_p_value : float
        Smallest attainable per-period p-value, ``1 / (T0 + 1)``.
    time : str
    run : RunLog
    """

    treated: Hashable
    estimator: str
    post_periods: tuple
    estimates: np.ndarray
    p_values: np.ndarray
    joint_p_value: float
    grid: np.ndarray
    grid_p_values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    min_p_value: float
    time: str
    run: RunLog

    def __repr__(self) -> str:
        return (
            f"<ConformalResult {self.estimator}: {self.treated!r}, joint p = {self.p_value:.4g}, "
            f"{1 - self.alpha:.0%} intervals for {len(self.post_periods)} periods>"
        )

    @property
    def p_value(self) -> float:
        """P-value of the sharp null of no effect in every post period."""
        return self.joint_p_value

    @property
    def table(self) -> pd.DataFrame:
        """Per post period: estimate, p-value of zero effect, and the confidence
        interval. ``lower_open`` / ``upper_open`` flag an unbounded side;
        ``connected`` is False when the accepted grid effects have holes (the
        interval is then their hull)."""
        accepted = self.grid_p_values > self.alpha
        connected = [
            bool(hits.size == 0 or hits[-1] - hits[0] + 1 == hits.size)
            for hits in (np.flatnonzero(row) for row in accepted)
        ]
        return pd.DataFrame(
            {
                "estimate": self.estimates,
                "p_value": self.p_values,
                "lower": self.lower,
                "upper": self.upper,
                "lower_open": np.isneginf(self.lower),
                "upper_open": np.isposinf(self.upper),
                "connected": connected,
            },
            index=pd.Index(self.post_periods, name=self.time),
        )

    @property
    def p_grid(self) -> pd.DataFrame:
        """Long frame of every effect of the regular grid: period, effect, p-value."""
        G = self.grid.shape[1]
        return pd.DataFrame({
            self.time: np.repeat(np.array(self.post_periods, dtype=object), G),
            "effect": self.grid.ravel(),
            "p_value": self.grid_p_values.ravel(),
        })

    def summary(self) -> Summary:
        """Per-period intervals and the joint p-value (prints nothing)."""
        notes = [
            f"Joint p-value of no effect in any post period: {self.joint_p_value:.4g} "
            "(moving-block permutations, S_1 statistic).",
            f"{1 - self.alpha:.0%} confidence intervals by test inversion, the '{self.estimator}' "
            "estimator refitted under each null.",
        ]
        if self.alpha < self.min_p_value:
            notes.append(
                f"alpha = {self.alpha:.4g} is below the smallest attainable p-value "
                f"{self.min_p_value:.4g}: no effect can be rejected, the intervals are unbounded."
            )
        return Summary(f"Conformal inference for {self.treated}", {"Post periods": self.table}, tuple(notes))

    def plot(self, ax=None):
        """Estimates with their confidence bands; returns the Axes."""
        return plot_conformal(self, ax=ax)


def conformal(
    result: SynthResult,
    *,
    alpha: float = 0.1,
    grid: Sequence[float] | None = None,
    n_grid: int = 21,
    n_jobs: int | None = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    full_search: bool = False,
) -> ConformalResult:
    """Conformal p-values and confidence intervals (Chernozhukov, Wuethrich and Zhu 2021).

    Parameters
    ----------
    result : SynthResult
        A fit of any registered estimator except ``"sdid"`` (see the module docstring).
    alpha : float, default 0.1
        Intervals have level ``1 - alpha``. With ``T0`` pre-periods no p-value is
        below ``1 / (T0 + 1)``; a smaller ``alpha`` gives unbounded intervals, with
        an :class:`~synthcontrol.errors.InferenceWarning`.
    grid : sequence of float, optional
        Effects tested in every post period. Default: ``n_grid`` values centred on
        each period's estimate, spanning the larger of four times the largest
        absolute pre-period gap and twice the root mean square post-period gap on
        each side. The bounds are then refined beyond the grid (module docstring).
    n_grid : int, default 21
        Effects on the regular grid (at least 3; unused when ``grid`` is given); it
        finds holes in the accepted set, while the bounds' precision comes from the
        bisection (a thousandth of the grid's width).
    n_jobs : int or None, default 1
        Workers (one task per post period, plus the joint test).
    checkpoint_dir : path, optional
        Directory where each finished task is stored; a rerun with the same
        directory computes only the missing ones.
    progress : bool or callable, optional
        As in :func:`~synthcontrol.inference.placebo_test`.
    full_search : bool, default False
        Refit with the result's full predictor-weight search instead of a local
        search from its predictor weights (module docstring); slower.

    Returns
    -------
    ConformalResult

    Raises
    ------
    SpecError
        A bad argument, or an estimator that cannot be refitted under the null.
    CheckpointError
        When ``checkpoint_dir`` holds another job's results.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> res = sc.fit(sc.datasets.load_smoking(), spec, estimator="demeaned")
    >>> cf = sc.conformal(res, n_grid=21)
    >>> round(cf.min_p_value, 3), int((cf.table["upper"] < 0).sum())  # 19 pre-periods; 8 of 12 years
    (0.05, 8)
    """
    result = check_result(result, "conformal")
    alpha, n_grid = _check_arguments(result, alpha, n_grid, grid, full_search)
    execution = Execution.checked(n_jobs, checkpoint_dir, progress)
    design = result.design
    pre, post = np.flatnonzero(design.pre_mask), np.flatnonzero(design.post_mask)
    gap = result.path["gap"].to_numpy()
    min_p = 1.0 / (pre.size + 1)
    grids = _grids(grid, n_grid, gap[post], gap[pre])
    _warn_if_inexact(result, alpha, pre.size)
    jobs = _null_fits(result, grids, alpha >= min_p, float(alpha), full_search)
    periods = tuple(np.array(design.periods, dtype=object)[post].tolist())
    first = jobs[0]
    records, log = execution.map(
        null_task, jobs, kind="conformal", keys=[*(f"conformal:{p}" for p in periods), "conformal:joint"],
        description=f"conformal inference for {result.treated}",
        fingerprint_parts=[*design_parts(design), first.options, first.predictor_weights, first.extra_starts,
                           float(alpha), frozen(grids)],
    )
    per_period = records[:-1]
    return ConformalResult(
        treated=result.treated,
        estimator=result.estimator,
        post_periods=periods,
        estimates=frozen(gap[post]),
        p_values=frozen([r["p_zero"] for r in per_period]),
        joint_p_value=float(records[-1]["p_zero"]),
        grid=frozen(grids),
        grid_p_values=frozen([r["p_grid"] for r in per_period]),
        lower=frozen([r["bounds"][0] for r in per_period]),
        upper=frozen([r["bounds"][1] for r in per_period]),
        alpha=float(alpha),
        min_p_value=min_p,
        time=design.spec.time,
        run=log,
    )


def refit_options(result: SynthResult, full_search: bool = False) -> FitOptions:
    """The options of the null refits: the result's own, with its data-chosen tuning
    parameters held fixed and, unless ``full_search``, a local predictor-weight search."""
    held = result.options.entry.chosen_from_data
    extras = result.extras
    fixed = {option: None if key is None else extras[key] for option, key in held.items()}
    merged = dict(result.options.estimator_options) | fixed
    options = replace(result.options, estimator_options=tuple(sorted(merged.items())))
    return options if full_search else replace(options, n_random_starts=0, n_local=1, n_polish=0)


def _null_fits(result: SynthResult, grids: np.ndarray, searchable: bool, alpha: float,
               full_search: bool) -> list[NullFits]:
    """One task per post period (its test inversion), then the joint test."""
    design = result.design
    pre, post = np.flatnonzero(design.pre_mask), np.flatnonzero(design.post_mask)
    v = tuple(result.solution.predictor_weights.tolist()) if result.predictor_weights_given else None
    # The original predictor weights start the local search where the predictors stay.
    warm = (tuple(result.solution.predictor_weights.tolist()),) if design.spec.predictors and v is None else ()
    common = {"design": design, "options": refit_options(result, full_search), "predictor_weights": v,
              "alpha": alpha, "searchable": searchable, "extra_starts": () if full_search else warm}
    jobs = [NullFits(rows=(*pre, t), n_tested=1, grid=tuple(g), **common) for t, g in zip(post, grids)]
    return [*jobs, NullFits(rows=(*pre, *post), n_tested=post.size, grid=(), **common)]


def _warn_if_inexact(result: SynthResult, alpha: float, n_pre: int) -> None:
    """Warn when no effect can be rejected, or when the estimator is not symmetric in time."""
    min_p = 1.0 / (n_pre + 1)
    if alpha < min_p:
        warn(
            f"alpha={alpha} is below the smallest p-value attainable with {n_pre} pre-periods "
            f"(1/{n_pre + 1} = {min_p:.4g}): no effect can be rejected, so every interval is "
            "the whole line; use alpha >= that, or a longer pre-period",
            InferenceWarning,
        )
    if result.design.spec.predictors and result.uses_predictor_weights:
        warn(
            f"conformal inference for {result.treated!r}: the {result.estimator!r} fit matches on "
            "predictors measured in particular pre-periods, so the null refits do not treat the "
            "tested periods like the pre-periods and the p-values are exact only for estimators "
            "symmetric in time; prefer the default spec (outcome lags), an outcome-only estimator "
            "or placebo_test",
            InferenceWarning,
        )


def _check_arguments(
    result: SynthResult, alpha: object, n_grid: object, grid: Sequence[float] | None, full_search: object
) -> tuple[float, int]:
    """The checked ``(alpha, n_grid)``; refuses an estimator undefined under the null."""
    check_bool(full_search, "full_search")
    if result.options.entry.needs_post_period:
        raise SpecError(
            f"conformal cannot refit estimator {result.estimator!r}: its weights depend on the post-period "
            "(sdid's time weights target it), which a conformal refit moves into the pre-period, so the "
            "estimator is undefined under the null; use placebo_test (or result.extras['se']) instead"
        )
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    return alpha, check_int(n_grid, "n_grid", minimum=3)


def _grids(grid: Sequence[float] | None, n_grid: int, estimates: np.ndarray, pre_gaps: np.ndarray) -> np.ndarray:
    if grid is not None:
        given = np.asarray(grid, dtype=object).ravel().tolist()
        values = np.unique([check_number(value, f"grid[{i}]") for i, value in enumerate(given)])
        if values.size < 2:
            raise SpecError("grid must hold at least two distinct finite effects to test")
        return np.tile(values, (estimates.size, 1))
    scale = max(float(np.max(np.abs(estimates), initial=0.0)), float(np.max(np.abs(pre_gaps), initial=0.0)))
    span = max(4 * float(np.max(np.abs(pre_gaps))), 2 * float(np.sqrt(np.mean(estimates**2))), 1e-8 * scale, 1e-300)
    return estimates[:, None] + np.linspace(-span, span, int(n_grid))[None, :]
