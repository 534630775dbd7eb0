"""Typed results of a study: each treated unit's fit with its inference, per task, and
one :class:`Estimate` per fit, the row of ``results.csv``.

Fit quality
    Each fit's pre-period RMSPE is divided by the smaller of two spreads of the
    outcome over the pre-period: across units (the root mean square of the
    cross-sectional standard deviation of the treated unit and its donors) and over
    time (the standard deviation of the treated unit's own path): ``fit_ratio``. A
    ratio up to ``fit_good`` (default 0.25) is a "good" fit, up to ``fit_fair`` (0.5)
    "fair", above it "poor": a poor synthetic control misses the treated unit by
    more than half of how much units differ or the unit itself moved, and its gaps
    say little (see :func:`fit_quality`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Hashable, Literal

import numpy as np
import pandas as pd

from ..inference import (
    ConformalResult,
    InTimePlaceboResult,
    LeaveOneOutResult,
    PlaceboResult,
    PooledResult,
)
from ..results import SynthResult
from ..speccurve import SpecCurveResult
from .model import StudyConfig, Task

__all__ = ["FitQuality", "UnitResult", "TaskResult", "CurveResult", "Estimate", "StudyResult", "fit_quality"]

FitQuality = Literal["good", "fair", "poor"]


@dataclass(frozen=True, eq=False)
class UnitResult:
    """One treated unit's fit within a task, and the inference run on it (None where
    the task's plan runs none)."""

    fit: SynthResult
    placebo: PlaceboResult | None = None
    leave_one_out: LeaveOneOutResult | None = None
    in_time: InTimePlaceboResult | None = None
    conformal: ConformalResult | None = None

    @property
    def treated(self) -> Hashable:
        return self.fit.treated


@dataclass(frozen=True, eq=False)
class TaskResult:
    """The fits of one task, one per treated unit, and the pooled test over them."""

    task: Task
    units: tuple[UnitResult, ...]
    pooled: PooledResult | None = None

    @property
    def fits(self) -> dict[Hashable, SynthResult]:
        """Treated unit -> fit."""
        return {u.treated: u.fit for u in self.units}


@dataclass(frozen=True, eq=False)
class CurveResult:
    """The specification curve of one treated unit's headline outcome in one pool."""

    treated: Hashable
    pool: str
    curve: SpecCurveResult


@dataclass(frozen=True, eq=False)
class Estimate:
    """One fit of a study with its inference: one row of ``results.csv``.

    The fields up to ``conformal_p`` are the columns, in order; ``task`` and
    ``result`` link back to the model. Numbers not computed are NaN.
    """

    analysis: str
    treated_code: Hashable
    treated: str
    outcome: str
    pool: str
    estimator: str
    outcome_label: str
    treatment_start: Hashable
    n_donors: int
    n_post: int
    pre_rmspe: float
    fit_ratio: float
    fit_quality: FitQuality
    post_rmspe: float
    effect: float
    effect_first: float
    effect_last: float
    p_value: float
    p_negative: float
    p_positive: float
    n_placebos: float  # an integer where a placebo test ran
    placebo_weights: Literal["reused", "refitted", ""]
    pooled_p: float
    loo_min: float
    loo_max: float
    in_time_effect: float
    in_time_ratio: float
    real_ratio: float
    conformal_p: float
    task: Task = field(repr=False, metadata={"column": False})
    result: UnitResult = field(repr=False, metadata={"column": False})

    def row(self) -> dict:
        """The columns of ``results.csv``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("column", True)}

    @property
    def tested(self) -> bool:
        """Whether a placebo test gave a p-value."""
        return bool(np.isfinite(self.p_value))


@dataclass(frozen=True, eq=False)
class StudyResult:
    """Everything a study produced, with tidy views for the report and CSV files.

    Attributes
    ----------
    config : StudyConfig
    task_results : tuple of TaskResult
    curves : tuple of CurveResult
        Specification curves of the headline outcome (empty without ``[speccurve]``).
    seconds : float
        Wall time of :func:`~synthcontrol.study.run_study`.
    """

    config: StudyConfig
    task_results: tuple[TaskResult, ...]
    curves: tuple[CurveResult, ...] = ()
    seconds: float = float("nan")

    @cached_property
    def estimates(self) -> tuple[Estimate, ...]:
        """One :class:`Estimate` per task and treated unit, in task order."""
        return tuple(_estimate(self.config, tr, unit) for tr in self.task_results for unit in tr.units)

    @property
    def results(self) -> pd.DataFrame:
        """One row per analysis, treated unit, outcome, pool and estimator."""
        return pd.DataFrame([e.row() for e in self.estimates])

    @property
    def weights(self) -> pd.DataFrame:
        """Donor weights of every fit (zeros included), one row per donor."""
        rows = [
            {**_keys(self.config, tr.task, unit.treated), "donor_code": donor,
             "donor": self.config.unit_name(donor), "weight": float(w)}
            for tr in self.task_results
            for unit in tr.units
            for donor, w in unit.fit.weights.items()
        ]
        return pd.DataFrame(rows)

    @property
    def paths(self) -> pd.DataFrame:
        """Observed and synthetic outcome and their gap for every fit and period."""
        frames = []
        for tr in self.task_results:
            for unit in tr.units:
                path = unit.fit.path.rename(columns={"treated": "observed"}).rename_axis("period")
                keys = _keys(self.config, tr.task, unit.treated)
                frames.append(path.reset_index().assign(**keys)[[*keys, "period", *path.columns]])
        return pd.concat(frames, ignore_index=True)


def fit_quality(result: SynthResult, thresholds: tuple[float, float] = (0.25, 0.5)) -> tuple[float, FitQuality]:
    """Pre-period RMSPE relative to how much the outcome varies, and its label.

    The yardstick is the smaller of two spreads over the pre-period: across units
    (the root mean square of the cross-sectional standard deviation of the treated
    unit and its donors) and over time (the standard deviation of the treated unit's
    own path). A synthetic control must miss by little compared with both how units
    differ and how the treated unit moved; ``ratio <= good`` is "good", ``<= fair``
    "fair", above it "poor".

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
    >>> ratio, label = fit_quality(sc.fit(sc.datasets.load_smoking(), spec))
    >>> label
    'good'
    """
    design = result.design
    pre = design.outcome[design.pre_mask]
    across = float(np.sqrt(np.mean(pre.std(axis=1, ddof=1) ** 2)))
    over_time = float(pre[:, 0].std(ddof=1))
    scale = min(across, over_time)
    ratio = result.pre_rmspe / scale if scale > 0 else (np.inf if result.pre_rmspe > 0 else 0.0)
    good, fair = thresholds
    return ratio, "good" if ratio <= good else "fair" if ratio <= fair else "poor"


def _keys(config: StudyConfig, task: Task, treated: Hashable) -> dict:
    return {
        "analysis": task.analysis,
        "treated_code": treated,
        "treated": config.unit_name(treated),
        "outcome": task.outcome.column,
        "pool": task.pool,
        "estimator": task.estimator,
    }


def _estimate(config: StudyConfig, tr: TaskResult, unit: UnitResult) -> Estimate:
    res = unit.fit
    ratio, label = fit_quality(res, config.fit_thresholds)
    effects = res.effects
    return Estimate(
        **_keys(config, tr.task, unit.treated),
        outcome_label=tr.task.outcome.label,
        treatment_start=res.spec.treatment_start,
        n_donors=len(res.donors),
        n_post=len(effects),
        pre_rmspe=res.pre_rmspe,
        fit_ratio=ratio,
        fit_quality=label,
        post_rmspe=res.post_rmspe,
        effect=res.average_effect,
        effect_first=float(effects.iloc[0]),
        effect_last=float(effects.iloc[-1]),
        **_placebo_columns(unit.placebo),
        pooled_p=tr.pooled.p_value if tr.pooled is not None else np.nan,
        **_robustness_columns(unit),
        task=tr.task,
        result=unit,
    )


def _placebo_columns(placebo: PlaceboResult | None) -> dict:
    if placebo is None:
        return dict(p_value=np.nan, p_negative=np.nan, p_positive=np.nan, n_placebos=np.nan, placebo_weights="")
    return dict(p_value=placebo.p_value, p_negative=placebo.p_negative, p_positive=placebo.p_positive,
                n_placebos=len(placebo.units) - 1,
                placebo_weights="reused" if placebo.reused_predictor_weights else "refitted")


def _robustness_columns(unit: UnitResult) -> dict:
    """Leave-one-out range, in-time placebo and conformal p-value (NaN where not run)."""
    nan = np.nan
    columns = dict(loo_min=nan, loo_max=nan, in_time_effect=nan, in_time_ratio=nan, real_ratio=nan,
                   conformal_p=nan)
    if unit.leave_one_out is not None:
        effects = unit.leave_one_out.table["average_effect"].iloc[1:]
        columns.update(loo_min=effects.min(), loo_max=effects.max())
    if unit.in_time is not None:
        in_time = unit.in_time
        columns.update(in_time_effect=in_time.fake_effect, in_time_ratio=float(in_time.table["ratio"].iloc[0]),
                       real_ratio=in_time.real_ratio)
    if unit.conformal is not None:
        columns["conformal_p"] = unit.conformal.p_value
    return columns
