"""From analyses to tasks: one :class:`~synthcontrol.study.model.Task` per analysis,
outcome, donor pool and estimator, each with its inference plan, and the
specification curves of the headline outcome.

The rules, in one place:

* the reference estimator fits every outcome and pool of every analysis; the other
  estimators fit the main analysis, on the headline outcome (``[estimators] outcomes =
  "headline"``) or on every outcome (``"all"``), in every pool or in the pools
  ``[estimators] pools`` gives them;
* a task's fit window is the analysis' own (a sensitivity analysis that sets one),
  else the outcome's (ending before the analysis' treatment start), else the
  analysis' default;
* a task's donors are its pool's units minus the treated units, the excluded units
  (of the study and of the analysis), where the analysis or outcome says so the
  flagged units, and, unless the analysis keeps them (``drop_audited = false``), the
  donors with flagged outcome data in the fit window or post-period
  (:func:`~synthcontrol.study.flags.dropped_donors`);
* in-space placebos cover the tasks of ``[inference] placebo`` (and of
  ``placebo_estimators``); their predictor weights are chosen anew where
  ``refit_placebo_weights`` says so and the estimator has predictor weights, and the
  treated unit's are reused elsewhere; the pooled test covers the reference fits with
  several treated units;
* leave-one-out, in-time placebos and conformal inference cover the reference fits of
  the main analysis (all outcomes, or the headline one);
* a block of treated units (``[blocks]``) is fitted on the donors of the main
  analysis' reference fit of the same outcome and pool.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from ..errors import ConfigError, SpecError
from ..spec import Spec
from ..speccurve import standard_specs
from .flags import dropped_donors
from .model import (
    Analysis,
    AuditRules,
    BlockTask,
    CurveTask,
    Estimator,
    InferenceOptions,
    InferencePlan,
    Outcome,
    PlaceboPlan,
    Scope,
    SpecCurveOptions,
    StudyConfig,
    Task,
)
from .schema import in_toml_terms

__all__ = ["DonorRules", "tasks", "plan", "curve_tasks", "block_tasks", "task_window"]


@dataclass(frozen=True)
class DonorRules:
    """What decides a task's donors, besides its analysis and outcome."""

    unit: str
    time: str
    pools: Mapping[str, tuple]
    excluded: tuple
    flagged: tuple
    drop_incomplete: bool
    periods: tuple = ()
    audit: AuditRules | None = None


def tasks(config: StudyConfig, estimators: tuple[Estimator, ...], rules: DonorRules) -> tuple[Task, ...]:
    """Every task of ``config``: the reference fits first, then the other estimators'."""
    outcomes = {o.column: o for o in config.outcomes}
    reference, *others = estimators
    found = [
        _task(a, outcomes[o], pool, reference, rules, config.inference)
        for a in config.analyses for o in a.outcomes for pool in a.pools
    ]
    main = config.main
    found += [
        _task(main, outcomes[o], pool, estimator, rules, config.inference)
        for estimator in others
        for o in main.outcomes if config.estimator_scope == "all" or outcomes[o].headline
        for pool in main.pools if estimator.pools is None or pool in estimator.pools
    ]
    return tuple(found)


def task_window(analysis: Analysis, outcome: Outcome) -> tuple[int, int] | None:
    """The fit window of ``outcome`` in ``analysis`` (see the module notes)."""
    if analysis.own_window or outcome.fit_window is None:
        return analysis.fit_window
    start, end = outcome.fit_window
    return start, min(end, analysis.treatment_start - 1)


def _task(analysis: Analysis, outcome: Outcome, pool: str, estimator: Estimator, rules: DonorRules,
          inference: InferenceOptions) -> Task:
    flagged = analysis.exclude_flagged if analysis.exclude_flagged is not None else outcome.exclude_flagged
    excluded = set(rules.excluded) | set(analysis.exclude) | (set(rules.flagged) if flagged else set())
    donors = tuple(u for u in rules.pools[pool] if u not in analysis.treated and u not in excluded)
    window = task_window(analysis, outcome)
    audited = ()
    if rules.audit is not None and analysis.drop_audited:
        bounds = window or (rules.periods[0], analysis.treatment_start - 1)
        audited = dropped_donors(rules.audit, outcome.column, bounds, analysis.treatment_start, donors)
        donors = tuple(u for u in donors if u not in dict(audited))
    spec = Spec(
        outcome=outcome.column,
        unit=rules.unit,
        time=rules.time,
        treated=list(analysis.treated),
        treatment_start=analysis.treatment_start,
        predictors=outcome.predictors,
        fit_window=window,
        donors=donors,
        exclude=tuple(rules.excluded),
        drop_incomplete_donors=rules.drop_incomplete,
    )
    task = Task(analysis=analysis.name, outcome=outcome, pool=pool, estimator=estimator.name, spec=spec,
                estimator_options=estimator.options, reference=estimator.is_reference, audit_dropped=audited)
    return replace(task, plan=plan(task, estimator, inference))


def plan(task: Task, estimator: Estimator, options: InferenceOptions) -> InferencePlan:
    """The inference ``options`` give ``task`` (see the module notes)."""
    reference_main = task.is_main and task.is_reference
    return InferencePlan(
        placebo=_placebo_plan(task, estimator, options),
        leave_one_out=reference_main and _covers(options.leave_one_out, task),
        in_time_start=options.in_time_start if reference_main and _covers(options.in_time, task) else None,
        conformal_alpha=options.conformal_alpha if reference_main and _covers(options.conformal, task) else None,
    )


def _covers(scope: Scope, task: Task) -> bool:
    return scope == "all" or (scope == "headline" and task.outcome.headline)


def _placebo_plan(task: Task, estimator: Estimator, options: InferenceOptions) -> PlaceboPlan | None:
    listed = options.placebo_estimators is None or task.estimator in options.placebo_estimators
    if not (listed and _covers(options.placebo, task)):
        return None
    refit = options.refit_placebo_weights
    refits = refit == "all" or (refit == "headline" and task.is_headline and task.is_reference)
    return PlaceboPlan(
        reuse_predictor_weights=estimator.uses_predictor_weights and not refits,
        pooled=options.pooled and task.is_reference and len(task.spec.treated_units) > 1,
    )


def curve_tasks(config: StudyConfig) -> tuple[CurveTask, ...]:
    """One specification curve per treated unit and pool of the headline reference fits."""
    options = config.speccurve
    if options is None:
        return ()
    own = tuple((e.name, e.options) for e in config.estimators if e.name in options.estimators)
    return tuple(
        CurveTask(treated, task.pool, _curve_specs(config, options, task.spec.for_treated(treated)),
                  estimators=options.estimators, estimator_options=own, placebo=options.placebo)
        for task in config.tasks
        if task.is_headline and task.is_reference and task.pool in options.pools
        for treated in task.spec.treated_units
    )


def _curve_specs(config: StudyConfig, options: SpecCurveOptions, spec: Spec) -> tuple[tuple[str, Spec], ...]:
    try:
        specs = standard_specs(config.data.frame, spec, n_lags=options.n_lags, fit_windows=options.fit_windows)
    except SpecError as error:
        raise ConfigError(f"[speccurve] for {spec.treated!r}: {in_toml_terms(str(error))}") from error
    return tuple(specs.items())


def block_tasks(config: StudyConfig) -> tuple[BlockTask, ...]:
    """One task per block, estimator, pool and outcome of ``[blocks]``, on the donors of
    the main analysis' reference fit of that outcome and pool."""
    options = config.blocks
    if options is None:
        return ()
    reference = {(t.outcome.column, t.pool): t for t in config.tasks if t.is_main and t.is_reference}
    return tuple(
        BlockTask(block=block, outcome=task.outcome, pool=pool, estimator=estimator,
                  spec=replace(task.spec, treated=list(block.treated)), standard_error=options.standard_error,
                  n_replications=options.n_replications)
        for block in options.blocks
        for estimator in options.estimators
        for pool in options.pools if pool in config.main.pools
        for column in config.main.outcomes if options.outcomes == "all" or config.outcome(column).headline
        for task in [reference[(column, pool)]]
    )
