"""Leave-one-out robustness (Abadie, Diamond and Hainmueller 2015): refit without each
donor that has positive weight and report the range of paths and effects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
import pandas as pd

from .._validation import check_number
from ..errors import ArgumentError
from ..results import Summary, SynthResult
from ._common import Execution, Refit, check_result, frozen, refit, rmspe
from .plots import plot_leave_one_out
from .runner import RunLog

__all__ = ["leave_one_out", "LeaveOneOutResult"]


@dataclass(frozen=True, eq=False)
class LeaveOneOutResult:
    """Fits of the treated unit without each of its positive-weight donors.

    Attributes
    ----------
    treated : hashable
    dropped : tuple
        The donors left out, one per refit, largest weight first.
    dropped_weights : ndarray
        Their weights in the original fit.
    periods : tuple
    outcome_path : ndarray, shape (T,)
        The treated unit's outcome.
    gap_matrix : ndarray, shape (T, 1 + D)
        Gaps of the original fit (column 0) and of each refit.
    pre_mask, post_mask : ndarray of bool
    loss_v : ndarray, shape (1 + D,)
        Fit-window outcome MSPE of the original fit and each refit.
    time, outcome : str
    treatment_start : hashable
    run : RunLog
    """

    treated: Hashable
    dropped: tuple
    dropped_weights: np.ndarray
    periods: tuple
    outcome_path: np.ndarray
    gap_matrix: np.ndarray
    pre_mask: np.ndarray
    post_mask: np.ndarray
    loss_v: np.ndarray
    time: str
    outcome: str
    treatment_start: Hashable
    run: RunLog

    def __repr__(self) -> str:
        low, high = self.table["average_effect"].agg(["min", "max"])
        return (
            f"<LeaveOneOutResult: {self.treated!r}, {len(self.dropped)} refits, "
            f"average effect {low:.4g} to {high:.4g}>"
        )

    @property
    def _columns(self) -> pd.Index:
        return pd.Index(["original", *self.dropped], name="dropped")

    @property
    def table(self) -> pd.DataFrame:
        """One row per fit (``original`` first, then each dropped donor): the dropped
        donor's weight, pre/post RMSPE, average effect and fit-window loss."""
        post = self.gap_matrix[self.post_mask]
        return pd.DataFrame(
            {
                "weight_dropped": [0.0, *self.dropped_weights],
                "pre_rmspe": rmspe(self.gap_matrix, self.pre_mask),
                "post_rmspe": rmspe(self.gap_matrix, self.post_mask),
                "average_effect": post.mean(axis=0),
                "loss_v": self.loss_v,
            },
            index=self._columns,
        )

    @property
    def gaps(self) -> pd.DataFrame:
        """Gap paths, periods by fit."""
        return pd.DataFrame(self.gap_matrix, index=pd.Index(self.periods, name=self.time), columns=self._columns)

    @property
    def paths(self) -> pd.DataFrame:
        """Synthetic outcome paths, periods by fit (the treated outcome minus the gap)."""
        return pd.DataFrame(
            self.outcome_path[:, None] - self.gap_matrix,
            index=pd.Index(self.periods, name=self.time),
            columns=self._columns,
        )

    @property
    def effect_range(self) -> pd.DataFrame:
        """Per post period: the original effect and its range over the refits."""
        post = self.gaps[self.post_mask]
        refits = post.drop(columns="original")
        return pd.DataFrame({"original": post["original"], "min": refits.min(axis=1), "max": refits.max(axis=1)})

    def summary(self) -> Summary:
        """Fits table and effect ranges (prints nothing)."""
        return Summary(
            f"Leave-one-out fits for {self.treated}",
            {"Fits": self.table, "Effect range": self.effect_range},
            (f"Each positive-weight donor of {self.treated!r} dropped in turn and the fit redone "
             "with the same options.",),
        )

    def plot(self, ax=None):
        """Original and leave-one-out synthetic paths; returns the Axes."""
        return plot_leave_one_out(self, ax=ax)


def leave_one_out(
    result: SynthResult,
    *,
    min_weight: float = 1e-6,
    n_jobs: int | None = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> LeaveOneOutResult:
    """Refit without each donor whose weight exceeds ``min_weight``.

    Each refit uses the result's own options (and its predictor weights only when
    the user gave them), through :func:`~synthcontrol.estimators.fit_design`.

    Parameters
    ----------
    result : SynthResult
    min_weight : float, default 1e-6
        Donors with a weight above this are dropped in turn (a positive weight up
        to the solver's round-off); a number in (0, 1).
    n_jobs, checkpoint_dir, progress
        As in :func:`~synthcontrol.inference.placebo_test`.

    Returns
    -------
    LeaveOneOutResult

    Examples
    --------
    Leave out each donor of a California fit on its outcome lags:

    >>> import synthcontrol as sc
    >>> smoking = sc.datasets.load_smoking()
    >>> res = sc.fit(smoking, sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                               donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"]))
    >>> loo = sc.leave_one_out(res)
    >>> list(loo.table.index[1:]) == list(res.weights[res.weights > 1e-6].sort_values(ascending=False).index)
    True
    """
    result = check_result(result, "leave_one_out", min_donors=3)
    min_weight = check_number(min_weight, "min_weight", low=0.0, high=1.0, low_open=True, high_open=True)
    execution = Execution.checked(n_jobs, checkpoint_dir, progress)
    weights = result.weights[result.weights > min_weight].sort_values(ascending=False, kind="stable")
    if weights.empty:
        raise ArgumentError(
            f"min_weight={min_weight!r}: no donor of {result.treated!r} has a larger weight (the largest is "
            f"{result.weights.max():.4g}); lower min_weight"
        )
    v = tuple(result.solution.predictor_weights.tolist()) if result.predictor_weights_given else None
    jobs = [
        Refit(design=result.design, options=result.options, drop=(donor,), predictor_weights=v)
        for donor in weights.index
    ]
    records, log = execution.map(refit, jobs, kind="leave_one_out", keys=[f"without:{d}" for d in weights.index],
                                 description=f"leave-one-out of {result.treated}")
    design = result.design
    return LeaveOneOutResult(
        treated=result.treated,
        dropped=tuple(weights.index),
        dropped_weights=frozen(weights.to_numpy()),
        periods=design.periods,
        outcome_path=frozen(design.outcome[:, 0]),
        gap_matrix=frozen(np.column_stack([result.path["gap"].to_numpy(), *(r["gap"] for r in records)])),
        pre_mask=frozen(design.pre_mask, bool),
        post_mask=frozen(design.post_mask, bool),
        loss_v=frozen([result.loss_v, *(r["loss_v"] for r in records)]),
        time=design.spec.time,
        outcome=design.spec.outcome,
        treatment_start=design.spec.treatment_start,
        run=log,
    )
