"""Run a study: fit every task, then the inference its plan names, then the blocks
of treated units and the specification curves. Nothing is written here; see
:mod:`synthcontrol.report`.

Audit warnings (:class:`~synthcontrol.errors.AuditWarning`) of the fits and placebo
tests are recorded on each task's result (for the report), logged, and summarised in
one AuditWarning per task (a study of many fits raises hundreds)."""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Callable

import pandas as pd

from .._validation import check_directory, check_n_jobs, describe
from ..inference import conformal, in_time_placebo, leave_one_out, placebo_tests, pooled_test
from ..inference.runner import fingerprint
from ..errors import ArgumentError, AuditWarning, DroppedDonorsWarning, warn
from ..estimators import fit
from ..registry import ESTIMATORS
from ..speccurve import specification_curve
from ..variants.several import fit_several
from .model import BlockTask, CurveTask, StudyConfig, Task
from .result import BlockResult, CurveResult, StudyResult, TaskResult, UnitResult

__all__ = ["run_study"]

logger = logging.getLogger("synthcontrol.study")


def run_study(config: StudyConfig, *, n_jobs: int | None = None,
              checkpoint_dir: str | os.PathLike | None = None) -> StudyResult:
    """Fit every task of ``config`` and run its inference.

    Parameters
    ----------
    config : StudyConfig
        From :func:`~synthcontrol.study.load_config`.
    n_jobs : int, optional
        Workers for the inference refits; default: ``config.inference.n_jobs``.
        Results do not depend on it.
    checkpoint_dir : path, optional
        Folder in which the inference of every task and specification curve saves
        each refit as it finishes, so that a run interrupted part of the way
        resumes where it stopped when run again with the same folder (the fits
        themselves take milliseconds and are redone). Each task keeps its refits in
        a subfolder named by a digest of the task, the ``[fit]`` settings and the
        data: a task that a changed configuration or changed data alter starts
        afresh instead of reusing refits of another design.

    Returns
    -------
    StudyResult

    Examples
    --------
    >>> from synthcontrol.study import load_config
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
    >>> estimate = study.estimates[0]
    >>> estimate.treated_code, estimate.n_donors, round(estimate.p_value, 4)
    ('California', 5, 0.1667)
    """
    if not isinstance(config, StudyConfig):
        raise ArgumentError(f"config must be a StudyConfig (sc.load_config), got {describe(config)}")
    n_jobs = config.inference.n_jobs if n_jobs is None else check_n_jobs(n_jobs)
    saves = _Checkpoints(check_directory(checkpoint_dir, "checkpoint_dir"), config)
    start = time.perf_counter()
    results = []
    for number, task in enumerate(config.tasks, 1):
        logger.info("[%d/%d] %s | %s | %s | %s", number, len(config.tasks), task.analysis,
                    task.outcome.column, task.pool, task.estimator)
        began = time.perf_counter()
        results.append(_run_task(config, task, n_jobs, saves.of(task)))
        logger.info("[%d/%d] done in %.1f s", number, len(config.tasks), time.perf_counter() - began)
    blocks = tuple(_run_block(config, block) for block in config.block_tasks)
    curves = tuple(_run_curve(config, curve, n_jobs, saves.of(curve)) for curve in config.curves)
    seconds = time.perf_counter() - start
    logger.info("study finished: %d tasks in %.1f s", len(config.tasks), seconds)
    return StudyResult(config, tuple(results), curves, seconds, blocks)


class _Checkpoints:
    """The checkpoint folder of each task or curve of a study (None: no checkpoints)."""

    def __init__(self, directory: Path | None, config: StudyConfig) -> None:
        self.directory = directory
        if directory is not None:  # the data, hashed once: a task's refits depend on all of it
            data = pd.util.hash_pandas_object(config.data.frame, index=False).to_numpy()
            self._settings = fingerprint(data, list(config.data.frame.columns), config.fit_options)

    def of(self, work: Task | CurveTask) -> Callable[[str], Path | None]:
        """Subfolder ``name`` of the folder of ``work`` (a task or curve)."""
        if self.directory is None:
            return lambda name: None
        folder = self.directory / fingerprint(self._settings, work)[:20]
        return lambda name: folder / name


def _audit_flags(config: StudyConfig) -> pd.DataFrame | None:
    """The flags the fits and placebo tests warn about (None: no audit)."""
    return None if config.audit is None else config.audit.with_actions(config.audit.warn)


class _Warnings:
    """Records the warnings of a block of code: dropped donors are logged, audit
    warnings kept (for the report) and logged, others issued again."""

    def __init__(self) -> None:
        self.audit: list[str] = []
        self._context = warnings.catch_warnings(record=True)

    def __enter__(self) -> "_Warnings":
        self._caught = self._context.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)
        for warning in self._caught:
            if issubclass(warning.category, DroppedDonorsWarning):
                logger.info("  %s", warning.message)
                continue
            if issubclass(warning.category, AuditWarning):
                self.audit.append(str(warning.message))
                logger.debug("  %s", warning.message)
                continue
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    def summarise(self, task: Task) -> None:
        """One AuditWarning for the audit warnings of ``task``, if any."""
        if self.audit:
            warn(f"{task.analysis} | {task.outcome.column} | {task.pool} | {task.estimator}: "
                 f"{len(self.audit)} audit warning(s) from the fits and placebo tests (the report's "
                 f"data audit counts them, the debug log lists them); the first: {self.audit[0]}",
                 AuditWarning)


def _run_task(config: StudyConfig, task: Task, n_jobs: int | None,
              saves: Callable[[str], Path | None]) -> TaskResult:
    """The task's fits and the inference of its plan, every inference call in one place;
    ``saves(name)`` is the checkpoint folder of each inference call (or None)."""
    flags = _audit_flags(config)
    with _Warnings() as caught:
        fits = dict(fit(config.data.frame, task.spec, estimator=task.estimator, audit=flags,
                        estimator_options=dict(task.estimator_options), **_search_settings(config, task)))
        plan = task.plan
        placebos = {} if plan.placebo is None else placebo_tests(
            fits, n_jobs=n_jobs, reuse_predictor_weights=plan.placebo.reuse_predictor_weights, audit=flags,
            checkpoint_dir=saves("placebo"))
    caught.summarise(task)
    units = tuple(
        UnitResult(
            fit=result,
            placebo=placebos.get(treated),
            leave_one_out=leave_one_out(result, n_jobs=n_jobs, checkpoint_dir=saves(f"leave_one_out-{i}"))
            if plan.leave_one_out else None,
            in_time=None if plan.in_time_start is None else in_time_placebo(
                result, fake_start=plan.in_time_start, n_jobs=n_jobs, checkpoint_dir=saves(f"in_time-{i}")),
            conformal=None if plan.conformal_alpha is None else conformal(
                result, alpha=plan.conformal_alpha, n_jobs=n_jobs, checkpoint_dir=saves(f"conformal-{i}")),
        )
        for i, (treated, result) in enumerate(fits.items())
    )
    pooled = signed = None
    if plan.placebo is not None and plan.placebo.pooled and len(placebos) > 1:
        statistic = config.inference.pooled_statistic
        pooled = pooled_test(list(placebos.values()), statistic=statistic)
        signed = pooled if statistic == "mean" else pooled_test(list(placebos.values()))
    return TaskResult(task, units, pooled, signed, tuple(caught.audit))


def _search_settings(config: StudyConfig, task: Task) -> dict:
    """The ``[fit]`` settings of ``task``'s fits: the search, and the certificate where
    the estimator's choice of predictor weights can be certified."""
    options = config.fit_options
    certify = options.certify and ESTIMATORS[task.estimator].certifiable
    return {**options.search_options(), "certify": certify, "certify_time_limit": options.certify_time_limit}


def _run_block(config: StudyConfig, task: BlockTask) -> BlockResult:
    """A block of treated units fitted together (:func:`~synthcontrol.fit_several`)."""
    logger.info("block %s | %s | %s | %s", task.block.name, task.outcome.column, task.pool, task.estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedDonorsWarning)  # logged with the main fit
        result = fit_several(config.data.frame, task.spec, estimator=task.estimator,
                             standard_error=task.standard_error, n_replications=task.n_replications,
                             seed=config.fit_options.seed)
    return BlockResult(task, result)


def _run_curve(config: StudyConfig, curve: CurveTask, n_jobs: int | None,
               saves: Callable[[str], Path | None]) -> CurveResult:
    logger.info("specification curve | %s | %s", config.unit_name(curve.treated), curve.pool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedDonorsWarning)  # logged with the main fit
        result = specification_curve(
            config.data.frame, dict(curve.specs), estimators=curve.estimators,
            estimator_options={name: dict(options) for name, options in curve.estimator_options},
            options=config.fit_options, placebo=curve.placebo, n_jobs=n_jobs, checkpoint_dir=saves("curve"))
    return CurveResult(curve.treated, curve.pool, result)
