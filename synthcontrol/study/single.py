"""A study made of fits done in Python, so that one report serves a single
:class:`~synthcontrol.SynthResult` as it serves a study from a configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Hashable, Union

import numpy as np
import pandas as pd

from .._validation import describe
from ..errors import ArgumentError, SpecError
from ..inference import (
    ConformalResult,
    InTimePlaceboResult,
    LeaveOneOutResult,
    PlaceboResult,
    PooledResult,
)
from ..results import SynthResult, SynthResults
from .model import (
    Analysis,
    Estimator,
    InferenceOptions,
    InferencePlan,
    Outcome,
    PlaceboPlan,
    Pool,
    ReportOptions,
    StudyConfig,
    StudyData,
    Task,
)
from .result import StudyResult, TaskResult, UnitResult

__all__ = ["study_of", "InferenceResult"]

InferenceResult = Union[PlaceboResult, LeaveOneOutResult, InTimePlaceboResult, ConformalResult, PooledResult]
_KINDS = {PlaceboResult: "placebo", LeaveOneOutResult: "leave_one_out", InTimePlaceboResult: "in_time",
          ConformalResult: "conformal"}
_RESULTS = (*_KINDS, PooledResult)
_EXPECTED = ("None, an inference result (placebo_test, leave_one_out, in_time_placebo, conformal or "
             "pooled_test) or a list of them")


def study_of(
    fits: SynthResult | SynthResults,
    *,
    inference: InferenceResult | Iterable[InferenceResult] | None = (),
    title: str | None = None,
) -> StudyResult:
    """A one-task study of ``fits`` (one fit, or several treated units of one spec)
    and the inference results given for them.

    Parameters
    ----------
    fits : SynthResult or SynthResults
    inference : inference result, iterable of them, or None
        Placebo, leave-one-out, in-time, conformal and pooled results of ``fits``
        (one result alone, or several); ``None`` or empty: no inference.
    title : str, optional
        The report's title (not blank); by default it names the outcome and the
        treated units.

    Raises
    ------
    ArgumentError
        When ``inference`` holds something other than inference results, or
        ``title`` is not a non-blank text.
    SpecError
        When ``fits`` is not a fit, the fits differ in outcome, start or estimator, or
        an inference result belongs to no fit or is given twice.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"])
    >>> res = sc.fit(sc.datasets.load_smoking(), spec)
    >>> study = study_of(res, inference=[sc.placebo_test(res)])
    >>> estimate = study.estimates[0]
    >>> estimate.treated, estimate.fit_quality, round(estimate.p_value, 4)
    ('California', 'good', 0.1667)
    """
    results = _fits(fits)
    first = results[0]
    title = check_title(title)
    units, pooled = _attach(results, inference_results(inference))
    task = Task(analysis="main", outcome=_outcome(first), pool="donors", estimator=first.estimator,
                spec=first.spec, estimator_options=first.options.estimator_options, plan=_plan(units, pooled))
    spec = first.spec
    treated = tuple(r.treated for r in results)
    analysis = Analysis("main", treated, spec.treatment_start, spec.fit_window, (spec.outcome,), ("donors",), None)
    config = StudyConfig(
        title=title or f"Synthetic control of {spec.outcome} for {', '.join(map(str, treated))}",
        description="", sources=(), source=None, data=_data(results),
        groups=(), pools=(Pool("donors", tuple(dict.fromkeys(d for r in results for d in r.donors)),
                               "the donors given to the fit"),),
        excluded_units=tuple(spec.exclude), outcomes=(task.outcome,), analyses=(analysis,),
        estimators=(Estimator(first.estimator, first.options.estimator_options),), estimator_scope="headline",
        fit_options=first.options, inference=_inference_options(task.plan), report=ReportOptions(),
        speccurve=None, output=None, tasks=(task,),
    )
    return StudyResult(config, (TaskResult(task, units, pooled),))


def _fits(fits: SynthResult | SynthResults) -> list[SynthResult]:
    if isinstance(fits, SynthResult):
        return [fits]
    if isinstance(fits, SynthResults) and len(fits):
        results = list(fits.values())
        keys = {(r.spec.outcome, r.spec.treatment_start, r.estimator) for r in results}
        if len(keys) > 1:
            raise SpecError(f"the fits of one report share outcome, treatment start and estimator; got {sorted(keys)}")
        return results
    raise SpecError(f"a report needs a SynthResult, SynthResults or StudyResult, got {type(fits).__name__}")


def inference_results(value: object, name: str = "inference") -> tuple[InferenceResult, ...]:
    """``value`` as a tuple of inference results: one result, an iterable of them, or
    ``None`` (none).

    Examples
    --------
    >>> inference_results(None)
    ()
    >>> inference_results([3])
    Traceback (most recent call last):
    ...
    synthcontrol.errors.ArgumentError: inference[0] is the integer 3, not an inference result; ...
    """
    if value is None:
        return ()
    if isinstance(value, _RESULTS):
        return (value,)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ArgumentError(f"{name} must be {_EXPECTED}, got {describe(value)}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, _RESULTS):
            raise ArgumentError(f"{name}[{i}] is {describe(item)}, not an inference result; {name} must be "
                                f"{_EXPECTED}")
    return items


def check_title(value: object, name: str = "title") -> str | None:
    """``value`` if it is ``None`` or a text that is not blank."""
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise ArgumentError(f"{name} must be None (a title naming the outcome and treated units) or a non-blank "
                        f"text, got {describe(value)}")


def _attach(results: list[SynthResult], given: tuple) -> tuple[tuple[UnitResult, ...], PooledResult | None]:
    """Each inference result matched to its fit by treated unit."""
    by_unit: dict[Hashable, dict] = {r.treated: {} for r in results}
    pooled = [g for g in given if isinstance(g, PooledResult)]
    for item in given:
        if isinstance(item, PooledResult):
            continue
        kind = next(k for cls, k in _KINDS.items() if isinstance(item, cls))
        slot = by_unit.get(item.treated)
        if slot is None or kind in slot:
            raise SpecError(f"{type(item).__name__} of {item.treated!r} is given twice or belongs to no fit "
                            f"(treated units: {list(by_unit)})")
        slot[kind] = item
    if len(pooled) > 1:
        raise SpecError("give at most one PooledResult")
    units = tuple(UnitResult(r, **by_unit[r.treated]) for r in results)
    return units, pooled[0] if pooled else None


def _plan(units: tuple[UnitResult, ...], pooled: PooledResult | None) -> InferencePlan:
    """The plan the given inference amounts to (what the report describes)."""
    placebos = [u.placebo for u in units if u.placebo is not None]
    in_time = next((u.in_time for u in units if u.in_time is not None), None)
    conformal = next((u.conformal for u in units if u.conformal is not None), None)
    return InferencePlan(
        placebo=PlaceboPlan(placebos[0].reused_predictor_weights, pooled is not None) if placebos else None,
        leave_one_out=any(u.leave_one_out is not None for u in units),
        in_time_start=in_time.fake_starts[0] if in_time is not None else None,
        conformal_alpha=conformal.alpha if conformal is not None else None,
    )


def _inference_options(plan: InferencePlan) -> InferenceOptions:
    def scope(planned: bool):
        return "all" if planned else "none"

    return InferenceOptions(
        placebo=scope(plan.placebo is not None), leave_one_out=scope(plan.leave_one_out),
        in_time=scope(plan.in_time_start is not None), conformal=scope(plan.conformal_alpha is not None),
        in_time_start=plan.in_time_start, conformal_alpha=plan.conformal_alpha or 0.1,
        pooled=plan.placebo is not None and plan.placebo.pooled, n_jobs=1,
        refit_placebo_weights=scope(plan.placebo is not None and not plan.placebo.reuse_predictor_weights),
    )


def _outcome(result: SynthResult) -> Outcome:
    spec = result.spec
    return Outcome(column=spec.outcome, label=spec.outcome, headline=True, exclude_flagged=False,
                   predictors=tuple(spec.predictors))


def _data(results: list[SynthResult]) -> StudyData:
    """The outcome the fits saw, as a long frame (units by periods)."""
    spec = results[0].spec
    frames = []
    for result in results:
        design = result.design
        periods = np.repeat(np.array(design.periods, dtype=object), len(design.units))
        units = np.tile(np.array(design.units, dtype=object), len(design.periods))
        frames.append(pd.DataFrame({spec.unit: units, spec.time: periods, spec.outcome: design.outcome.ravel()}))
    frame = pd.concat(frames, ignore_index=True).drop_duplicates([spec.unit, spec.time])
    return StudyData(frame=frame, source="the data given to sc.fit (outcome of the fitted units)",
                     unit=spec.unit, time=spec.time)
