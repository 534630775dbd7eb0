"""Run a study described by a configuration: every fit, then its inference.

:func:`run_study` takes a :class:`~synthcontrol.config.StudyConfig` (see
:func:`~synthcontrol.config.load_config`), fits every task with
:func:`synthcontrol.fit`, runs the inference the configuration asks for in one
place (:func:`_inference`), and returns a :class:`StudyResult` whose
:attr:`~StudyResult.results`, :attr:`~StudyResult.weights` and
:attr:`~StudyResult.paths` are tidy frames. Nothing is written here; see
:mod:`synthcontrol.report`.

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

import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Hashable, Mapping

import numpy as np
import pandas as pd

from . import inference as sc_inference
from . import speccurve as specification
from .config import StudyConfig, Task
from .errors import DroppedDonorsWarning
from .estimators import fit
from .results import SynthResult

__all__ = ["TaskResult", "StudyResult", "run_study", "placebo_tests", "fit_quality"]

logger = logging.getLogger("synthcontrol.study")


@dataclass(frozen=True, eq=False)
class TaskResult:
    """The fits of one task (one per treated unit) and their inference.

    ``inference`` maps a method name (``"placebo"``, ``"leave_one_out"``,
    ``"in_time"``, ``"conformal"``) to ``{treated unit: result}``; ``pooled`` is the
    pooled test over the treated units (or None).
    """

    task: Task
    fits: dict[Hashable, SynthResult]
    inference: dict[str, dict[Hashable, Any]] = field(default_factory=dict)
    pooled: Any = None


@dataclass(frozen=True, eq=False)
class StudyResult:
    """Everything a study produced, with tidy views for the report and CSV files.

    Attributes
    ----------
    config : StudyConfig
    task_results : tuple of TaskResult
    curves : dict
        ``(treated unit, pool)`` -> :class:`~synthcontrol.speccurve.SpecCurveResult`
        of the headline outcome (empty without ``[speccurve]``).
    seconds : float
        Wall time of :func:`run_study`.
    """

    config: StudyConfig
    task_results: tuple[TaskResult, ...]
    curves: dict
    seconds: float

    @property
    def results(self) -> pd.DataFrame:
        """One row per analysis, treated unit, outcome, pool and estimator."""
        rows = [_result_row(self.config, tr, t) for tr in self.task_results for t in tr.fits]
        return pd.DataFrame(rows)

    @property
    def weights(self) -> pd.DataFrame:
        """Donor weights of every fit (zeros included), one row per donor."""
        rows = [
            {**_keys(self.config, tr.task, t), "donor_code": donor, "donor": self.config.unit_name(donor),
             "weight": float(w)}
            for tr in self.task_results
            for t, res in tr.fits.items()
            for donor, w in res.weights.items()
        ]
        return pd.DataFrame(rows)

    @property
    def paths(self) -> pd.DataFrame:
        """Observed and synthetic outcome and their gap for every fit and period."""
        frames = []
        for tr in self.task_results:
            for t, res in tr.fits.items():
                path = res.path.rename(columns={"treated": "observed"}).rename_axis("period")
                keys = _keys(self.config, tr.task, t)
                frames.append(path.reset_index().assign(**keys)[[*keys, "period", *path.columns]])
        return pd.concat(frames, ignore_index=True)


# -- running ----------------------------------------------------------------------------


def run_study(config: StudyConfig, *, n_jobs: int | None = None) -> StudyResult:
    """Fit every task of ``config`` and run its inference.

    Parameters
    ----------
    config : StudyConfig
    n_jobs : int, optional
        Workers for the inference refits; default: ``config.inference.n_jobs``.
        Results do not depend on it.

    Returns
    -------
    StudyResult

    Examples
    --------
    >>> from synthcontrol.config import load_config
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.toml"
    >>> _ = path.write_text('''
    ... [study]
    ... title = "Tiny"
    ... [data]
    ... dataset = "smoking"
    ... unit = "unit"
    ... time = "time"
    ... [design]
    ... treated = ["California"]
    ... treatment_start = 1989
    ... [pools.west]
    ... units = ["Utah", "Nevada", "Montana", "Colorado", "Idaho"]
    ... [[outcomes]]
    ... column = "cigsale"
    ... predictors = [{variable = "cigsale", at = 1975}, {variable = "cigsale", at = 1988}]
    ... [inference]
    ... leave_one_out = "none"
    ... conformal = "none"
    ... ''')
    >>> study = run_study(load_config(path), n_jobs=1)
    >>> row = study.results.iloc[0]
    >>> row.treated_code, int(row.n_donors), round(float(row.p_value), 4)
    ('California', 5, 0.1667)
    """
    start = time.perf_counter()
    n_jobs = config.inference.n_jobs if n_jobs is None else n_jobs
    results = []
    for number, task in enumerate(config.tasks, 1):
        logger.info("[%d/%d] %s | %s | %s | %s", number, len(config.tasks), task.analysis,
                    task.outcome.column, task.pool, task.estimator)
        began = time.perf_counter()
        fits = _fit_task(config, task)
        inference, pooled = _inference(config, task, fits, n_jobs)
        results.append(TaskResult(task, fits, inference, pooled))
        logger.info("[%d/%d] done in %.1f s", number, len(config.tasks), time.perf_counter() - began)
    curves = _specification_curves(config, n_jobs)
    seconds = time.perf_counter() - start
    logger.info("study finished: %d tasks in %.1f s", len(config.tasks), seconds)
    return StudyResult(config, tuple(results), curves, seconds)


def _fit_task(config: StudyConfig, task: Task) -> dict[Hashable, SynthResult]:
    options = config.fit_options
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DroppedDonorsWarning)
        fits = fit(config.data, task.spec, estimator=task.estimator,
                   estimator_options=dict(task.estimator_options), **options.search_options())
    for warning in caught:
        if issubclass(warning.category, DroppedDonorsWarning):
            logger.info("  %s", warning.message)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return dict(fits)


def _inference(config: StudyConfig, task: Task, fits: dict, n_jobs: int | None) -> tuple[dict, Any]:
    """Every inference call of a study, in one place; ``config.inference`` decides
    which runs on ``task``."""
    options = config.inference
    calls = {
        "leave_one_out": lambda res: sc_inference.leave_one_out(res, n_jobs=n_jobs),
        "in_time": lambda res: sc_inference.in_time_placebo(
            res, fake_start=options.in_time_start, data=config.data, n_jobs=n_jobs),
        "conformal": lambda res: sc_inference.conformal(res, alpha=options.conformal_alpha, n_jobs=n_jobs),
    }
    inference = {}
    if options.applies("placebo", task):
        # Outcome-only estimators (sdid, did) have no predictor weights to reuse.
        uses_v = next(iter(fits.values())).extras.get("predictors_used", True)
        reuse = uses_v and not options.applies("refit_placebo_weights", task)
        inference["placebo"] = placebo_tests(fits, n_jobs=n_jobs, reuse_predictor_weights=reuse)
    for method, call in calls.items():
        if options.applies(method, task):
            inference[method] = {t: call(res) for t, res in fits.items()}
    pooled = None
    if options.pooled and "placebo" in inference and len(fits) > 1 and task.estimator == "classic":
        pooled = sc_inference.pooled_test(list(inference["placebo"].values()))
    return inference, pooled


def placebo_tests(
    fits: Mapping[Hashable, SynthResult], *, n_jobs: int | None = 1, reuse_predictor_weights: bool = False
) -> dict:
    """In-space placebo tests of several treated units, sharing the placebo fits.

    A placebo fit treats one donor and fits it on the other donors, the real treated
    unit left out; when two treated units have the same donors, data and options,
    and each placebo chooses its own predictor weights, it is the same fit for both.
    So the donors' fits are computed once, by
    :func:`~synthcontrol.inference.placebo_test` for the first treated unit, and each
    other treated unit's test swaps in its own fit (column 0); units whose placebos
    differ get their own :func:`~synthcontrol.inference.placebo_test`. With
    ``reuse_predictor_weights`` every placebo takes its treated unit's predictor
    weights (fast: one quadratic programme per placebo), so nothing is shared.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"])
    >>> fits = sc.fit(sc.datasets.load_smoking(), spec)
    >>> tests = placebo_tests(fits)
    >>> tests["Georgia"].p_value == sc.placebo_test(fits["Georgia"]).p_value
    True
    """
    tests: dict = {}
    for treated, result in fits.items():
        base = None if reuse_predictor_weights else next(
            (tests[t] for t in tests if _same_placebos(fits[t], result)), None)
        tests[treated] = _swap_treated(base, result) if base is not None else sc_inference.placebo_test(
            result, n_jobs=n_jobs, reuse_predictor_weights=reuse_predictor_weights)
    return tests


def _same_placebos(a: SynthResult, b: SynthResult) -> bool:
    """Whether the placebo fits of ``a`` and ``b`` are the same fits."""
    da, db = a.design, b.design
    return (
        not a.predictor_weights_given
        and not b.predictor_weights_given
        and a.options == b.options
        and da.donors == db.donors
        and da.periods == db.periods
        and da.predictor_labels == db.predictor_labels
        and np.array_equal(da.fit_mask, db.fit_mask)
        and np.array_equal(da.post_mask, db.post_mask)
        and np.array_equal(da.predictors[:, 1:], db.predictors[:, 1:])
        and np.array_equal(da.outcome[:, 1:], db.outcome[:, 1:])
    )


def _swap_treated(base: Any, result: SynthResult) -> Any:
    """``base``'s placebo test with ``result``'s treated unit and fit in column 0."""
    gaps = np.array(base.gap_matrix, copy=True)
    gaps[:, 0] = result.path["gap"].to_numpy()
    predictor_weights = np.array(base.predictor_weights, copy=True)
    predictor_weights[0] = result.solution.predictor_weights
    loss_v = np.array(base.loss_v, copy=True)
    loss_v[0] = result.loss_v
    for array in (gaps, predictor_weights, loss_v):
        array.setflags(write=False)
    return replace(
        base,
        units=(result.treated, *base.units[1:]),
        gap_matrix=gaps,
        weights=(result.solution.weights, *base.weights[1:]),
        predictor_weights=predictor_weights,
        loss_v=loss_v,
    )


def _specification_curves(config: StudyConfig, n_jobs: int | None) -> dict:
    """Specification curves of the headline outcome, per treated unit and pool."""
    options = config.speccurve
    if options is None:
        return {}
    curves = {}
    estimator_options = {name: o for name, o in config.estimator_options.items() if name in options.estimators}
    headline = [t for t in config.tasks if t.is_headline and t.estimator == "classic" and t.pool in options.pools]
    for task in headline:
        for treated in task.spec.treated_units:
            logger.info("specification curve | %s | %s", config.unit_name(treated), task.pool)
            spec = task.spec.for_treated(treated)
            specs = specification.standard_specs(config.data, spec, n_lags=options.n_lags,
                                                  fit_windows=options.fit_windows)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DroppedDonorsWarning)  # logged with the main fit
                curves[(treated, task.pool)] = specification.specification_curve(
                    config.data, specs, estimators=options.estimators, estimator_options=estimator_options,
                    options=config.fit_options, placebo=options.placebo, n_jobs=n_jobs)
    return curves


# -- fit quality ---------------------------------------------------------------------------


def fit_quality(result: SynthResult, thresholds: tuple[float, float] = (0.25, 0.5)) -> tuple[float, str]:
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


# -- tidy rows --------------------------------------------------------------------------------


def _keys(config: StudyConfig, task: Task, treated: Hashable) -> dict:
    return {
        "analysis": task.analysis,
        "treated_code": treated,
        "treated": config.unit_name(treated),
        "outcome": task.outcome.column,
        "pool": task.pool,
        "estimator": task.estimator,
    }


def _result_row(config: StudyConfig, tr: TaskResult, treated: Hashable) -> dict:
    res = tr.fits[treated]
    ratio, label = fit_quality(res, config.fit_thresholds)
    effects = res.effects
    row = {
        **_keys(config, tr.task, treated),
        "outcome_label": tr.task.outcome.label,
        "treatment_start": res.spec.treatment_start,
        "n_donors": len(res.donors),
        "n_post": len(effects),
        "pre_rmspe": res.pre_rmspe,
        "fit_ratio": ratio,
        "fit_quality": label,
        "post_rmspe": res.post_rmspe,
        "effect": res.average_effect,
        "effect_first": float(effects.iloc[0]),
        "effect_last": float(effects.iloc[-1]),
    }
    row.update(_inference_columns(tr, treated))
    return row


def _inference_columns(tr: TaskResult, treated: Hashable) -> dict:
    """p-values and robustness numbers of one treated unit (NaN where not run)."""
    found = {method: results[treated] for method, results in tr.inference.items()}
    nan = np.nan
    columns = dict(p_value=nan, p_negative=nan, p_positive=nan, n_placebos=nan, placebo_weights="", pooled_p=nan,
                   loo_min=nan, loo_max=nan, in_time_effect=nan, in_time_ratio=nan, real_ratio=nan,
                   conformal_p=nan)
    if "placebo" in found:
        placebo = found["placebo"]
        columns.update(p_value=placebo.p_value, p_negative=placebo.p_negative,
                       p_positive=placebo.p_positive, n_placebos=len(placebo.units) - 1,
                       placebo_weights="reused" if placebo.reused_predictor_weights else "refitted")
    if tr.pooled is not None:
        columns["pooled_p"] = tr.pooled.p_value
    if "leave_one_out" in found:
        effects = found["leave_one_out"].table["average_effect"].iloc[1:]
        columns.update(loo_min=effects.min(), loo_max=effects.max())
    if "in_time" in found:
        in_time = found["in_time"]
        columns.update(in_time_effect=in_time.fake_effect, in_time_ratio=float(in_time.table["ratio"].iloc[0]),
                       real_ratio=in_time.real_ratio)
    if "conformal" in found:
        columns["conformal_p"] = found["conformal"].p_value
    return columns
