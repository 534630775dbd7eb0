"""Typed results of a study: each treated unit's fit with its inference, per task;
each block of treated units fitted together; and one :class:`Estimate` per fit and
block, the row of ``results.csv``.

Fit quality
    Each fit's pre-period RMSPE is divided by the smaller of two spreads of the
    outcome over the pre-period: across units (the root mean square of the
    cross-sectional standard deviation of the treated unit and its donors) and over
    time (the standard deviation of the treated unit's own path): ``fit_ratio``. A
    ratio up to ``fit_good`` (default 0.25) is a "good" fit, up to ``fit_fair`` (0.5)
    "fair", above it "poor": a poor synthetic control misses the treated unit by
    more than half of how much units differ or the unit itself moved, and its gaps
    say little (see :func:`fit_quality`). A fit with a single pre-treatment period
    is not judged (``fit_ratio`` NaN, ``fit_quality`` empty): its spread over time
    is undefined.

Identification
    A fit whose pre-period MSPE is more than ``identified_ratio`` (default 10, about
    3.2 times in RMSPE) times the median placebo's (``pre_mspe_ratio``) is not
    identified: the synthetic control misses the unit's own past by far more than it
    misses a typical donor's, so its post-period gap cannot be told from that misfit.
    A "good" fit (see above) is identified whatever the placebos do: with a short fit
    window and many donors most placebos fit exactly, and the ratio then compares
    with round-off. Fits without a placebo test are not judged.

Effects
    ``effect`` is the average post-period gap, in the outcome's units; for a log
    outcome ``effect_pct`` is ``exp(effect) - 1`` (per cent of the synthetic
    control). ``change`` is the average gap minus the gap of the last period before
    the treatment: a gap that was already open before the treatment started shows
    in ``gap_last_pre`` and not in ``change``.

Blocks
    A block of treated units (:func:`~synthcontrol.fit_several`) has one row, with
    ``scope = "block"``: its average effect, synthdid's standard error and interval,
    and in-space placebo p-values from the placebo blocks (random sets of donors
    fitted as if treated): the share of the ``n_replications`` placebo estimates at
    least as large in absolute value (``p_value``), at most / at least as large
    (``p_negative``, ``p_positive``), counting the block itself as one member.

Certificates
    With ``[fit] certify = true`` the fits of certifiable estimators (the classic
    one) and their placebo refits are certified globally optimal over the
    admissible predictor weights (``sc.fit(..., certify=True)``): ``certificate`` is
    the treated fit's status, ``placebos_certified`` how many of its placebo fits
    are certified ("" and NaN otherwise).
"""

from __future__ import annotations

import re
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
from ..variants.several import SeveralTreatedResult
from .model import BlockTask, StudyConfig, Task

__all__ = ["FitQuality", "UnitResult", "TaskResult", "BlockResult", "CurveResult", "Estimate", "StudyResult",
           "fit_quality", "per_cent"]

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
    """The fits of one task, one per treated unit, the pooled tests over them (with the
    configured statistic, and with the signed mean for one-sided tests) and the
    audit warnings its fits and placebo tests raised."""

    task: Task
    units: tuple[UnitResult, ...]
    pooled: PooledResult | None = None
    pooled_signed: PooledResult | None = None
    audit_warnings: tuple[str, ...] = ()

    @property
    def fits(self) -> dict[Hashable, SynthResult]:
        """Treated unit -> fit."""
        return {u.treated: u.fit for u in self.units}


@dataclass(frozen=True, eq=False)
class BlockResult:
    """A block of treated units fitted together, and its placebo p-values."""

    task: BlockTask
    result: SeveralTreatedResult

    def _p(self, extreme: np.ndarray) -> float:
        return float((1 + extreme.sum()) / (1 + extreme.size)) if extreme.size else float("nan")

    @property
    def p_value(self) -> float:
        """Share of placebo blocks with an estimate at least as large in absolute value."""
        tau, null = self.result.average_effect, self.result.placebo_estimates
        return self._p(np.abs(null) >= abs(tau) * (1 - 1e-10))

    @property
    def p_negative(self) -> float:
        tau, null = self.result.average_effect, self.result.placebo_estimates
        return self._p(null <= tau + 1e-10 * abs(tau))

    @property
    def p_positive(self) -> float:
        tau, null = self.result.average_effect, self.result.placebo_estimates
        return self._p(null >= tau - 1e-10 * abs(tau))

    @property
    def gaps(self) -> pd.Series:
        """Gap of the block's average treated unit in every period (after the intercept
        and time weights of the estimator; its post-period mean is the effect)."""
        (cohort,) = self.result.cohorts
        estimate = cohort.estimate
        gap = cohort.treated_outcome.mean(axis=1) - cohort.donor_outcome @ estimate.unit_weights - estimate.intercept
        return pd.Series(gap, index=pd.Index(cohort.periods, name=self.result.time), name="gap")


@dataclass(frozen=True, eq=False)
class CurveResult:
    """The specification curve of one treated unit's headline outcome in one pool."""

    treated: Hashable
    pool: str
    curve: SpecCurveResult


@dataclass(frozen=True, eq=False)
class Estimate:
    """One fit of a study with its inference: one row of ``results.csv``.

    The fields up to ``audit_warnings`` are the columns, in order; ``task`` and
    ``result`` link back to the model. Numbers not computed are NaN (see the module
    notes for the effect, identification and block columns).
    """

    analysis: str
    scope: Literal["unit", "block"]
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
    fit_quality: FitQuality | Literal[""]
    pre_mspe_ratio: float
    identified: Literal["yes", "no", ""]
    post_rmspe: float
    effect: float
    effect_pct: float
    effect_first: float
    effect_last: float
    gap_last_pre: float
    change: float
    change_pct: float
    p_value: float
    p_negative: float
    p_positive: float
    n_placebos: float  # an integer where a placebo test ran
    placebo_weights: Literal["reused", "refitted", ""]
    se: float
    ci_lower: float
    ci_upper: float
    pooled_statistic: str
    pooled_p: float
    pooled_p_negative: float
    pooled_p_positive: float
    loo_min: float
    loo_max: float
    in_time_effect: float
    in_time_ratio: float
    real_ratio: float
    conformal_p: float
    n_audit_dropped: float
    audit_warnings: int
    certificate: str
    placebos_certified: float
    task: Task | BlockTask = field(repr=False, metadata={"column": False})
    result: UnitResult | BlockResult = field(repr=False, metadata={"column": False})

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
    blocks : tuple of BlockResult
        Blocks of treated units fitted together (empty without ``[blocks]``).
    """

    config: StudyConfig
    task_results: tuple[TaskResult, ...]
    curves: tuple[CurveResult, ...] = ()
    seconds: float = float("nan")
    blocks: tuple[BlockResult, ...] = ()

    @cached_property
    def estimates(self) -> tuple[Estimate, ...]:
        """One :class:`Estimate` per task and treated unit, in task order."""
        return tuple(_estimate(self.config, tr, unit, _pooled_columns(tr))
                     for tr in self.task_results for unit in tr.units)

    @cached_property
    def block_estimates(self) -> tuple[Estimate, ...]:
        """One :class:`Estimate` per block result, in task order."""
        return tuple(_block_estimate(self.config, block) for block in self.blocks)

    @property
    def results(self) -> pd.DataFrame:
        """One row per analysis, treated unit (or block), outcome, pool and estimator."""
        return pd.DataFrame([e.row() for e in (*self.estimates, *self.block_estimates)])

    @property
    def weights(self) -> pd.DataFrame:
        """Donor weights of every fit and block (zeros included), one row per donor."""
        rows = [
            {**_keys(self.config, tr.task, unit.treated), "donor_code": donor,
             "donor": self.config.unit_name(donor), "weight": float(w)}
            for tr in self.task_results
            for unit in tr.units
            for donor, w in unit.fit.weights.items()
        ]
        rows += [
            {**_block_keys(block.task), "donor_code": donor, "donor": self.config.unit_name(donor), "weight": float(w)}
            for block in self.blocks
            for donor, w in zip(block.result.cohorts[0].donors, block.result.cohorts[0].estimate.unit_weights)
        ]
        return pd.DataFrame(rows)

    @property
    def paths(self) -> pd.DataFrame:
        """Observed and synthetic outcome and their gap for every fit and block, every period."""
        frames = []
        for tr in self.task_results:
            for unit in tr.units:
                path = unit.fit.path.rename(columns={"treated": "observed"}).rename_axis("period")
                frames.append(_long(path, _keys(self.config, tr.task, unit.treated)))
        for block in self.blocks:
            cohort = block.result.cohorts[0]
            observed = pd.Series(cohort.treated_outcome.mean(axis=1), index=block.gaps.index)
            path = pd.DataFrame({"observed": observed, "synthetic": observed - block.gaps, "gap": block.gaps})
            frames.append(_long(path.rename_axis("period"), _block_keys(block.task)))
        return pd.concat(frames, ignore_index=True)


def _long(path: pd.DataFrame, keys: dict) -> pd.DataFrame:
    return path.reset_index().assign(**keys)[[*keys, "period", *path.columns]]


def per_cent(log_points: float) -> float:
    """A gap in log points as a per cent difference, ``exp(gap) - 1`` (times 100).

    Examples
    --------
    >>> round(per_cent(-0.1), 2)
    -9.52
    """
    return float(np.expm1(log_points) * 100)


def fit_quality(result: SynthResult,
                thresholds: tuple[float, float] = (0.25, 0.5)) -> tuple[float, FitQuality | Literal[""]]:
    """Pre-period RMSPE relative to how much the outcome varies, and its label.

    The yardstick is the smaller of two spreads over the pre-period: across units
    (the root mean square of the cross-sectional standard deviation of the treated
    unit and its donors) and over time (the standard deviation of the treated unit's
    own path). A synthetic control must miss by little compared with both how units
    differ and how the treated unit moved; ``ratio <= good`` is "good", ``<= fair``
    "fair", above it "poor". With a single pre-treatment period the spread over time
    is undefined (and any donor mix near the treated value matches it): the fit is
    not judged, ``(nan, "")``.

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
    if len(pre) < 2:  # no spread over time, and matching one period says nothing of the fit
        return np.nan, ""
    across = float(np.sqrt(np.mean(pre.std(axis=1, ddof=1) ** 2)))
    over_time = float(pre[:, 0].std(ddof=1))
    scale = min(across, over_time)
    ratio = result.pre_rmspe / scale if scale > 0 else (np.inf if result.pre_rmspe > 0 else 0.0)
    good, fair = thresholds
    return ratio, "good" if ratio <= good else "fair" if ratio <= fair else "poor"


def _keys(config: StudyConfig, task: Task, treated: Hashable) -> dict:
    return {
        "analysis": task.analysis,
        "scope": "unit",
        "treated_code": treated,
        "treated": config.unit_name(treated),
        "outcome": task.outcome.column,
        "pool": task.pool,
        "estimator": task.estimator,
    }


def _block_keys(task: BlockTask) -> dict:
    return {"analysis": task.analysis, "scope": "block", "treated_code": task.block.name,
            "treated": task.block.name, "outcome": task.outcome.column, "pool": task.pool,
            "estimator": task.estimator}


def _effect_columns(log: bool, gaps: pd.Series, post: np.ndarray, start: Hashable) -> dict:
    """Average effect, its first and last period, the last pre-treatment gap and the
    change since then, in per cent too for a log outcome."""
    effects = gaps[post]
    before = gaps[(~post) & (gaps.index < start)]
    effect = float(effects.mean())
    last_pre = float(before.iloc[-1]) if len(before) else np.nan
    nan = np.nan
    return dict(effect=effect, effect_pct=per_cent(effect) if log else nan,
                effect_first=float(effects.iloc[0]), effect_last=float(effects.iloc[-1]), gap_last_pre=last_pre,
                change=effect - last_pre, change_pct=per_cent(effect - last_pre) if log else nan)


def _estimate(config: StudyConfig, tr: TaskResult, unit: UnitResult, pooled: dict) -> Estimate:
    res = unit.fit
    ratio, label = fit_quality(res, config.fit_thresholds)
    gaps = res.path["gap"]
    return Estimate(
        **_keys(config, tr.task, unit.treated),
        outcome_label=tr.task.outcome.label,
        treatment_start=res.spec.treatment_start,
        n_donors=len(res.donors),
        n_post=int(res.design.post_mask.sum()),
        pre_rmspe=res.pre_rmspe,
        fit_ratio=ratio,
        fit_quality=label,
        **_identification(unit.placebo, config.report.identified_ratio, label),
        post_rmspe=res.post_rmspe,
        **_effect_columns(tr.task.outcome.log, gaps, res.design.post_mask, res.spec.treatment_start),
        **_placebo_columns(unit.placebo),
        se=np.nan, ci_lower=np.nan, ci_upper=np.nan,
        **pooled,
        **_robustness_columns(unit),
        n_audit_dropped=len(tr.task.audit_dropped) if config.audit is not None else np.nan,
        audit_warnings=sum(bool(re.search(rf"(?<!\w){re.escape(repr(unit.treated))}(?!\w)", w))
                           for w in tr.audit_warnings),
        **_certificate_columns(unit),
        task=tr.task,
        result=unit,
    )


def _certificate_columns(unit: UnitResult) -> dict:
    """The treated fit's certificate status and how many of its placebo fits are
    certified globally optimal ("" and NaN without ``[fit] certify``)."""
    certificate = unit.fit.certificate
    placebo = unit.placebo
    statuses = placebo.certificates[1:] if placebo is not None else ()
    certified = sum(s in ("certified", "improved and certified") for s in statuses)
    return dict(certificate="" if certificate is None else certificate.status,
                placebos_certified=certified if any(s is not None for s in statuses) else np.nan)


def _identification(placebo: PlaceboResult | None, limit: float, quality: FitQuality) -> dict:
    """The pre-period MSPE relative to the median placebo's, and whether the fit is
    identified (see the module notes)."""
    if placebo is None:
        return dict(pre_mspe_ratio=np.nan, identified="")
    pre = np.maximum(placebo.table["pre_rmspe"].to_numpy(), placebo.round_off)
    ratio = float((pre[0] / np.median(pre[1:])) ** 2)
    return dict(pre_mspe_ratio=ratio, identified="yes" if ratio <= limit or quality == "good" else "no")


def _pooled_columns(tr: TaskResult) -> dict:
    pooled, signed = tr.pooled, tr.pooled_signed
    return dict(pooled_statistic=pooled.statistic if pooled is not None else "",
                pooled_p=pooled.p_value if pooled is not None else np.nan,
                pooled_p_negative=signed.p_negative if signed is not None else np.nan,
                pooled_p_positive=signed.p_positive if signed is not None else np.nan)


def _placebo_columns(placebo: PlaceboResult | None) -> dict:
    """The placebo test's p-values (its ranks over the number of units, as
    :class:`~synthcontrol.inference.PlaceboResult` defines them, from one table)."""
    if placebo is None:
        return dict(p_value=np.nan, p_negative=np.nan, p_positive=np.nan, n_placebos=np.nan, placebo_weights="")
    treated, n = placebo.table.iloc[0], len(placebo.units)
    return dict(p_value=float(treated["rank"] / n), p_negative=float(treated["rank_negative"] / n),
                p_positive=float(treated["rank_positive"] / n), n_placebos=n - 1,
                placebo_weights="reused" if placebo.reused_predictor_weights else "refitted")


def _block_estimate(config: StudyConfig, block: BlockResult) -> Estimate:
    task, result = block.task, block.result
    (cohort,) = result.cohorts
    gaps = block.gaps
    low, high = result.confidence_interval
    nan = np.nan
    return Estimate(
        **_block_keys(task), outcome_label=task.outcome.label, treatment_start=task.spec.treatment_start,
        n_donors=len(cohort.donors), n_post=int(cohort.post_mask.sum()),
        pre_rmspe=float(np.sqrt(np.mean(gaps[cohort.pre_mask] ** 2))), fit_ratio=nan, fit_quality="",
        pre_mspe_ratio=nan, identified="", post_rmspe=float(np.sqrt(np.mean(gaps[cohort.post_mask] ** 2))),
        **_effect_columns(task.outcome.log, gaps, cohort.post_mask, task.spec.treatment_start),
        p_value=block.p_value, p_negative=block.p_negative, p_positive=block.p_positive,
        n_placebos=float(result.placebo_estimates.size), placebo_weights="",
        se=result.se, ci_lower=low, ci_upper=high,
        pooled_statistic="", pooled_p=nan, pooled_p_negative=nan, pooled_p_positive=nan,
        loo_min=nan, loo_max=nan, in_time_effect=nan, in_time_ratio=nan, real_ratio=nan, conformal_p=nan,
        n_audit_dropped=nan, audit_warnings=0, certificate="", placebos_certified=nan, task=task, result=block,
    )


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
