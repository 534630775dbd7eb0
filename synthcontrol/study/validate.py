"""Checks of a study against its data, before any fit: every task's design, every
in-time shift, specification-curve and block design is built, and every estimator is
tried once with its options, so that a study :func:`~synthcontrol.study.load_config`
accepts does not fail later for a reason it could have seen.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Hashable

import numpy as np

from ..errors import ConfigError, SynthControlError
from ..estimators import fit_design
from ..panel import Panel
from ..options import FitOptions
from ..results import SynthResult
from ..spec import Design, Spec, prepare
from .model import BlockTask, Estimator, StudyConfig, Task
from .schema import in_toml_terms

__all__ = ["study_panel", "probe_estimators", "check_designs", "uses_predictor_weights"]

#: Placebo tests and leave-one-out refit each unit against the others, one donor fewer.
_REFIT_MIN_DONORS = 3


def study_panel(config: StudyConfig) -> Panel:
    """The data as one panel of every variable the tasks read (validated once)."""
    data = config.data
    variables = dict.fromkeys(v for t in config.tasks for v in t.spec.variables)
    try:
        return Panel.from_frame(data.frame, unit=data.unit, time=data.time, variables=list(variables))
    except SynthControlError as error:
        raise ConfigError(f"the data ({data.source}) cannot be used: {error}") from error


def probe_estimators(config: StudyConfig, panel: Panel) -> tuple[Estimator, ...]:
    """Each estimator of ``config`` fitted once, with the cheapest search, on its first
    task's first treated unit: its options are checked as every fit will check them,
    and the fit says whether the estimator has predictor weights for placebos to reuse.
    """
    probed = []
    for estimator in config.estimators:
        task = next(t for t in config.tasks if t.estimator == estimator.name)
        treated = task.spec.treated_units[0]
        design = _design(panel, task.spec.for_treated(treated), _describe(task, treated))
        try:
            options = FitOptions(n_random_starts=0, n_polish=0, estimator=estimator.name,
                                 estimator_options=estimator.options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the cheap search is no fit to warn about
                result = fit_design(design, options=options)
        except SynthControlError as error:
            raise ConfigError(f"estimator {estimator.name!r} cannot fit {_describe(task, treated)}: "
                              f"{in_toml_terms(str(error))}") from error
        probed.append(replace(estimator, uses_predictor_weights=uses_predictor_weights(result)))
    return tuple(probed)


def uses_predictor_weights(result: SynthResult) -> bool:
    """Whether the estimator of ``result`` chose predictor weights (outcome-only
    estimators such as sdid match on outcomes and have none)."""
    return result.uses_predictor_weights


def check_designs(config: StudyConfig, panel: Panel) -> None:
    """Build every design the study will fit, in-time shifts and curves included.

    Raises
    ------
    ConfigError
        Naming the task (analysis, outcome, pool, estimator, treated unit) and why
        the data cannot fit it.
    """
    built: dict[tuple, dict[Hashable, Design]] = {}  # estimators of one analysis, outcome and pool share designs
    for task in config.tasks:
        key = (task.analysis, task.outcome.column, task.pool)
        if key not in built:
            built[key] = {t: _design(panel, task.spec.for_treated(t), _describe(task, t))
                          for t in task.spec.treated_units}
        for treated, design in built[key].items():
            _check_inference(task, treated, design)
        if task.plan.placebo is not None and task.plan.placebo.pooled:
            _check_same_post_periods(task, built[key])
    for curve in config.curves:
        for label, spec in curve.specs:
            _design(panel, spec, f"specification curve of {curve.treated!r}, {curve.pool} pool, {label!r}")
    for block in config.block_tasks:
        _check_block(block, panel)


def _check_block(task: BlockTask, panel: Panel) -> None:
    """A block is fitted as one average unit: its units need the same periods and donors."""
    where = f"block {task.block.name!r}, outcome {task.outcome.column!r}, pool {task.pool!r}"
    designs = {t: _design(panel, task.spec.for_treated(t), f"{where}, treated unit {t!r}") for t in task.block.treated}
    (first, design), *others = designs.items()
    for unit, other in others:
        if other.periods != design.periods or set(other.donors) != set(design.donors):
            raise ConfigError(f"{where}: {first!r} and {unit!r} are observed in different periods or keep different "
                              "donors, and a block needs the same for all its units; fit them separately")
    if design.pre_mask.sum() < 2:
        raise ConfigError(f"{where}: the block needs at least two pre-treatment periods in the fit window")


def _design(panel: Panel, spec: Spec, where: str) -> Design:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dropped donors are logged when the task is fitted
            return prepare(panel, spec)
    except SynthControlError as error:
        raise ConfigError(f"{where}: {in_toml_terms(str(error))}") from error


def _check_inference(task: Task, treated: Hashable, design: Design) -> None:
    plan = task.plan
    refits = [name for name, planned in (("placebo tests", plan.placebo is not None),
                                         ("leave-one-out", plan.leave_one_out)) if planned]
    if refits and len(design.donors) < _REFIT_MIN_DONORS:
        raise ConfigError(
            f"{_describe(task, treated)}: {' and '.join(refits)} need at least {_REFIT_MIN_DONORS} donors, "
            f"the pool leaves {len(design.donors)}; widen the pool or set the [inference] scope to \"none\""
        )
    if plan.in_time_start is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                design.shift(plan.in_time_start)
        except SynthControlError as error:
            raise ConfigError(f"key 'inference.in_time_start' = {plan.in_time_start}, "
                              f"{_describe(task, treated)}: {error}") from error


def _check_same_post_periods(task: Task, designs: dict[Hashable, Design]) -> None:
    posts = {t: tuple(np.array(d.periods, dtype=object)[d.post_mask].tolist()) for t, d in designs.items()}
    first, *others = posts.items()
    for treated, periods in others:
        if periods != first[1]:
            raise ConfigError(
                f"{_describe(task, treated)}: the pooled test needs the same post-period for every treated "
                f"unit, but {first[0]!r} has {list(first[1])} and {treated!r} {list(periods)}; set "
                "[inference] pooled = false or treat units observed over the same periods"
            )


def _describe(task: Task, treated: Hashable) -> str:
    return (f"analysis {task.analysis!r}, outcome {task.outcome.column!r}, pool {task.pool!r}, "
            f"estimator {task.estimator!r}, treated unit {treated!r}")

