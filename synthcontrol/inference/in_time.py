"""In-time placebos (Abadie, Diamond and Hainmueller 2015): the same specification with
the treatment start moved back into the pre-period.

How the specification is moved to a fake start ``f``:

* the fit window keeps its first period and ends at the last period before ``f``;
* a predictor window reaching ``f`` or later is clipped to end at the last period
  before ``f`` (``lnincome(1980-1988)`` becomes ``lnincome(1980-1984)`` for
  ``f = 1985``); a predictor starting at ``f`` or later is dropped;
* with no predictors declared (the outcome in every fit-window period) the
  predictors follow the new fit window;
* the donors are the original fit's donors; user-given predictor weights are kept
  for the predictors that remain.

The moved design is rebuilt by :meth:`~synthcontrol.spec.Design.shift` from the
panel the fit was prepared from, with every rule of
:func:`~synthcontrol.spec.prepare` (:func:`~synthcontrol.spec.shift_spec` moves the
specification).

The fake effect is the gap between ``f`` and the real treatment start, the window in
which no effect should appear.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import numpy as np
import pandas as pd

from ..errors import ArgumentError
from ..panel import Panel
from ..periods import coerce_period
from ..results import Summary, SynthResult
from ..spec import Design, Predictor, shift_spec
from ._common import Execution, Refit, check_result, frozen, over_pre_rmspe, refit, rmspe, round_off_floor
from .plots import plot_in_time
from .runner import RunLog

__all__ = ["in_time_placebo", "InTimePlaceboResult", "shift_spec"]


@dataclass(frozen=True, eq=False)
class InTimePlaceboResult:
    """Fits of the treated unit with fake treatment starts.

    Attributes
    ----------
    treated : hashable
    fake_starts : tuple
    treatment_start : hashable
        The real start.
    periods : tuple
    gap_matrix : ndarray, shape (T, F)
        Gap of each fake-start fit over every period.
    pre_masks, fake_masks : ndarray of bool, shape (F, T)
        Each fit's pre-period (its fit window) and fake post-period (from the fake
        start to the period before the real start).
    predictors : tuple of tuple of str
        Predictor labels each fit used (after clipping and dropping).
    real_ratio, real_average_effect : float
        The original fit's post/pre RMSPE ratio and average effect, for comparison.
    time, outcome : str
    run : RunLog
    round_off : float
        Gaps up to this size are round-off (see
        :func:`~synthcontrol.inference.placebo_test`): the ratio of an exact
        pre-period fit divides by it instead of by zero.
    """

    treated: Hashable
    fake_starts: tuple
    treatment_start: Hashable
    periods: tuple
    gap_matrix: np.ndarray
    pre_masks: np.ndarray
    fake_masks: np.ndarray
    predictors: tuple
    real_ratio: float
    real_average_effect: float
    time: str
    outcome: str
    run: RunLog
    round_off: float

    def __repr__(self) -> str:
        effects = ", ".join(f"{f}: {e:.4g}" for f, e in self.table["fake_effect"].items())
        return f"<InTimePlaceboResult: {self.treated!r}, fake effects {effects}>"

    @property
    def table(self) -> pd.DataFrame:
        """One row per fake start: pre-period RMSPE, RMSPE and average gap between the
        fake and the real start, their ratio, and the predictors used."""
        rows = {}
        for i, start in enumerate(self.fake_starts):
            gap = self.gap_matrix[:, i]
            pre = rmspe(gap, self.pre_masks[i])
            fake = rmspe(gap, self.fake_masks[i])
            rows[start] = {
                "pre_rmspe": float(pre),
                "fake_rmspe": float(fake),
                "ratio": float(over_pre_rmspe(fake, pre, self.round_off)),
                "fake_effect": float(gap[self.fake_masks[i]].mean()),
                "n_fit_periods": int(self.pre_masks[i].sum()),
                "predictors": ", ".join(self.predictors[i]),
            }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("fake_start")

    @property
    def fake_effect(self) -> float:
        """Average fake effect of the first fake start."""
        return float(self.table["fake_effect"].iloc[0])

    @property
    def gaps(self) -> pd.DataFrame:
        """Gap paths, periods by fake start."""
        return pd.DataFrame(
            self.gap_matrix,
            index=pd.Index(self.periods, name=self.time),
            columns=pd.Index(self.fake_starts, name="fake_start"),
        )

    def summary(self) -> Summary:
        """Fake-start table (prints nothing)."""
        return Summary(
            f"In-time placebos for {self.treated}",
            {"Fake starts": self.table},
            (
                f"Real treatment start {self.treatment_start}: post/pre RMSPE ratio "
                f"{self.real_ratio:.4g}, average effect {self.real_average_effect:.4g}.",
                "Fit windows end before each fake start; predictor windows are clipped to "
                "end before it, and predictors starting at or after it are dropped.",
            ),
        )

    def plot(self, ax=None):
        """Gap paths of the fake starts; returns the Axes."""
        return plot_in_time(self, ax=ax)


def in_time_placebo(
    result: SynthResult,
    fake_start: Hashable | Sequence[Hashable],
    *,
    data: pd.DataFrame | Panel | None = None,
    n_jobs: int | None = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> InTimePlaceboResult:
    """Refit with the treatment start moved back to ``fake_start``.

    Parameters
    ----------
    result : SynthResult
    fake_start : period or sequence of periods
        Fake treatment start(s), before the real one, each once; converted to the
        period column's type when the conversion is exact (``"1985"`` for years).
    data : DataFrame or Panel, optional
        No longer needed and ignored: the design keeps the panel it was built from
        (see :meth:`~synthcontrol.spec.Design.shift`). Accepted so that older calls
        keep working.
    n_jobs, checkpoint_dir, progress
        As in :func:`~synthcontrol.inference.placebo_test`.

    Returns
    -------
    InTimePlaceboResult

    Raises
    ------
    SpecError
        When a fake start leaves no fit period or no predictor.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1980)],
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"])
    >>> res = sc.fit(sc.datasets.load_smoking(), spec)
    >>> placebo = sc.in_time_placebo(res, fake_start=1985)
    >>> abs(placebo.fake_effect) < abs(res.average_effect)
    True
    """
    result = check_result(result, "in_time_placebo")
    execution = Execution.checked(n_jobs, checkpoint_dir, progress)
    starts = _fake_starts(fake_start, result.design)
    designs = [result.design.shift(start) for start in starts]
    jobs = [
        Refit(design=d, options=result.options,
              predictor_weights=_kept_weights(result, d) if result.predictor_weights_given else None)
        for d in designs
    ]
    records, log = execution.map(refit, jobs, kind="in_time_placebo", keys=[f"fake_start:{s}" for s in starts],
                                 description=f"in-time placebos of {result.treated}")
    design = result.design
    periods = np.array(design.periods, dtype=object)
    shifted_periods = [np.array(d.periods, dtype=object) for d in designs]
    return InTimePlaceboResult(
        treated=result.treated,
        fake_starts=starts,
        treatment_start=design.spec.treatment_start,
        periods=design.periods,
        gap_matrix=frozen(np.column_stack([_align(r["gap"], p, periods) for r, p in zip(records, shifted_periods)])),
        pre_masks=frozen([np.isin(periods, p[d.pre_mask]) for d, p in zip(designs, shifted_periods)], bool),
        fake_masks=frozen([(periods >= s) & ~design.post_mask for s in starts], bool),
        predictors=tuple(d.predictor_labels for d in designs),
        real_ratio=float(over_pre_rmspe(result.post_rmspe, result.pre_rmspe, round_off_floor(design.outcome))),
        real_average_effect=result.average_effect,
        time=design.spec.time,
        outcome=design.spec.outcome,
        run=log,
        round_off=round_off_floor(design.outcome),
    )


def _fake_starts(fake_start: object, design: Design) -> tuple:
    """The fake starts as a tuple of the design's period type, each once."""
    if fake_start is None:
        raise ArgumentError("fake_start is None; give a period (or a list of periods) before the treatment start")
    listed = isinstance(fake_start, (list, tuple, range, np.ndarray, pd.Index, pd.Series))
    given = list(fake_start) if listed else [fake_start]
    if not given:
        raise ArgumentError("fake_start is empty; give at least one period before the treatment start")
    starts = tuple(coerce_period(s, design.periods, argument="fake_start", column=design.spec.time) for s in given)
    repeated = sorted({str(s) for s in starts if starts.count(s) > 1})
    if repeated:
        raise ArgumentError(f"fake_start lists {repeated} more than once; give each fake start once")
    return starts


def _kept_weights(result: SynthResult, design: Design) -> tuple:
    """User predictor weights of the predictors kept, matched by variable and start
    (a clipped window keeps its weight), or by label for outcome-lag predictors."""
    def key(p: Predictor | str) -> object:
        return (p.variable, p.start) if isinstance(p, Predictor) else p

    old = result.spec.predictors or result.design.predictor_labels
    weights = dict(zip(map(key, old), result.solution.predictor_weights))
    return tuple(weights[key(p)] for p in design.spec.predictors or design.predictor_labels)


def _align(gap: Sequence[float], own: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """A shifted fit's gap on the original periods (NaN where it has none)."""
    lookup = dict(zip(own.tolist(), gap))
    return np.array([lookup.get(p, np.nan) for p in periods.tolist()])
