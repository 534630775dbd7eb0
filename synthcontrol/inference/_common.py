"""Pieces shared by the inference routines: how they run their refits (workers,
checkpoint, progress: :class:`Execution`), the refit task sent to workers, and the
rank and RMSPE helpers (``frozen`` and ``rmspe`` are
:mod:`synthcontrol._arrays`'s, shared with every result type).

Round-off floor
---------------
Permutation statistics divide by a pre-period RMSPE, which is zero (or round-off)
when a unit's pre-period fit is exact: a unit inside its donors' hull, or a placebo
with an identical twin among the donors. Gaps of at most :data:`ROUND_OFF` times
the outcome's scale (its largest absolute value over the design's units and
periods) cannot be told from zero, so

* a statistic in the numerator (post-period RMSPE, average gap, one period's gap)
  of at most the floor counts as 0;
* the pre-period RMSPE in the denominator is at least the floor.

An exact pre-period fit followed by a real gap thus gets a large ratio (post RMSPE
over the floor), and an exact fit throughout gets 0; neither is NaN, and the
floor scales with the data, so the statistics do not depend on its units. Ties up
to round-off count against the treated unit (:func:`conservative_rank`), so no
p-value is below ``1 / N``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from .._arrays import frozen, rmspe
from .._validation import check_directory, check_n_jobs, check_progress
from ..errors import ArgumentError, DonorPoolError, SpecError
from ..estimators import fit_design
from ..options import FitOptions
from ..results import SynthResult
from ..spec import Design
from .runner import Checkpoint, RunLog, fingerprint, run_tasks

__all__ = [
    "Execution", "Refit", "refit", "refit_key", "open_checkpoint", "conservative_rank", "rmspe", "frozen", "check_result",
    "result_list",
    "ROUND_OFF", "round_off_floor", "over_pre_rmspe",
]

#: Share of the outcome's scale below which a gap is round-off (see the module notes).
ROUND_OFF = 1e-8

@dataclass(frozen=True)
class Execution:
    """How an inference routine runs its refits: the options every routine that
    refits takes (``n_jobs``, ``checkpoint_dir``, ``progress``), checked once.

    Attributes
    ----------
    n_jobs : int or None
        Workers (joblib; the result does not depend on them).
    checkpoint_dir : Path or None
        Where each finished task is stored, so that a rerun computes only the rest.
    progress : bool, callable or None
        True: a line on stderr per finished task; a callable gets ``(done, total)``.
    """

    n_jobs: int | None = 1
    checkpoint_dir: Path | None = None
    progress: bool | Callable[[int, int], None] | None = None

    @classmethod
    def checked(cls, n_jobs: object = 1, checkpoint_dir: object = None, progress: object = None) -> "Execution":
        """The options of a public routine, checked (an ArgumentError names the bad one)."""
        return cls(check_n_jobs(n_jobs), check_directory(checkpoint_dir, "checkpoint_dir"), check_progress(progress))

    def map(
        self,
        task: Callable[[Any], Any],
        jobs: Sequence[Any],
        *,
        kind: str,
        keys: Sequence[Hashable],
        description: str,
        fingerprint_parts: Sequence[object] | None = None,
    ) -> tuple[list, RunLog]:
        """``task`` over ``jobs`` through the runner, checkpointed as job ``kind``
        (its fingerprint covers ``fingerprint_parts``, by default the jobs)."""
        parts = jobs if fingerprint_parts is None else fingerprint_parts
        checkpoint = open_checkpoint(self.checkpoint_dir, kind, parts, keys)
        return run_tasks(task, jobs, n_jobs=self.n_jobs, checkpoint=checkpoint, progress=self.progress,
                         description=description)


@dataclass(frozen=True)
class Refit:
    """One refit sent to a worker: a design (shared, small), how to alter it, and how
    to choose its predictor weights.

    ``relabel`` makes that column the treated unit (an in-space placebo); ``drop``
    removes donors (leave-one-out). The worker applies them, so the parent builds
    the design arrays once.
    """

    design: Design
    options: FitOptions
    relabel: int | None = None
    drop: tuple = ()
    predictor_weights: tuple | None = None
    extra_starts: tuple = ()


def refit(job: Refit) -> dict:
    """Fit ``job`` and return a JSON-ready record: gap path, weights, losses."""
    design = job.design
    if job.relabel is not None:
        design = design.relabel(job.relabel)
    if job.drop:
        design = design.without_donors(job.drop)
    v = None if job.predictor_weights is None else np.asarray(job.predictor_weights, dtype=float)
    result = fit_design(
        design,
        predictor_weights=v,
        options=job.options,
        extra_starts=tuple(np.asarray(s, dtype=float) for s in job.extra_starts),
    )
    return record(result)


def record(result: SynthResult) -> dict:
    """The numbers inference needs from a fit, as plain Python values."""
    return {
        "gap": result.path["gap"].to_numpy().tolist(),
        "weights": result.solution.weights.tolist(),
        "predictor_weights": result.solution.predictor_weights.tolist(),
        "loss_v": float(result.loss_v),
        "lower_bound": float(result.lower_bound),
        "certified": bool(result.solution.certified),
        "certificate": None if result.certificate is None else result.certificate.status,
    }


def design_parts(design: Design) -> tuple:
    """Everything a refit of ``design`` depends on, for :func:`fingerprint`."""
    return (
        design.spec,
        design.units,
        design.periods,
        design.predictor_labels,
        np.asarray(design.predictors, dtype=float),
        np.asarray(design.outcome, dtype=float),
        np.asarray(design.fit_mask),
        np.asarray(design.post_mask),
    )


def refit_key(job: Refit) -> str:
    """Fingerprint of what the numbers of a refit depend on: the altered design's
    arrays (not its Spec, whose exclusions differ between the treated units of one
    study while the fit does not), the options and the predictor weights given or
    used as starts. Equal keys mean equal fits, so a fit can be shared."""
    design = job.design if job.relabel is None else job.design.relabel(job.relabel)
    if job.drop:
        design = design.without_donors(job.drop)
    return fingerprint(*design_parts(design)[1:], job.options, job.predictor_weights, job.extra_starts)


def open_checkpoint(
    directory: str | os.PathLike | None, kind: str, jobs: Sequence[object], keys: Sequence[Hashable]
) -> Checkpoint | None:
    """The checkpoint of a job made of ``jobs`` (None without a directory).

    The fingerprint covers the kind of job, every task input (designs, options,
    predictor weights, starts) and the task keys.
    """
    if directory is None:
        return None
    parts: list[object] = [kind, *map(str, keys)]
    for job in jobs:
        if isinstance(job, Refit):
            parts += [*design_parts(job.design), job.options, job.relabel, job.drop,
                      job.predictor_weights, job.extra_starts]
        else:
            parts.append(job)
    return Checkpoint(directory, fingerprint(*parts), [str(k) for k in keys])


def conservative_rank(values: np.ndarray, descending: bool = True) -> np.ndarray:
    """Rank of each value counting ties against it: the number of values at least as
    extreme (1 = most extreme). Values equal up to round-off count as ties.

    Examples
    --------
    >>> conservative_rank(np.array([3.0, 1.0, 3.0, 2.0]))
    array([2, 4, 2, 3])
    """
    x = np.asarray(values, dtype=float)
    a, b = (x[None, :], x[:, None]) if descending else (x[:, None], x[None, :])
    at_least = (a > b) | np.isclose(x[None, :], x[:, None], rtol=1e-10, atol=0.0)
    return at_least.sum(axis=1)


def round_off_floor(outcome: np.ndarray) -> float:
    """The size below which a gap of ``outcome`` is round-off: :data:`ROUND_OFF` times
    its largest absolute value (the same for any order of units or periods)."""
    scale = float(np.nanmax(np.abs(outcome))) if np.size(outcome) else 0.0
    return ROUND_OFF * scale if scale > 0 else float(np.finfo(float).tiny)


def over_pre_rmspe(values: np.ndarray, pre_rmspe: np.ndarray, floor: float) -> np.ndarray:
    """``values / pre_rmspe`` with the round-off floor: values of at most ``floor`` in
    size count as 0, and the divisor is at least ``floor`` (see the module notes).

    Examples
    --------
    >>> over_pre_rmspe(np.array([2.0, 1e-12, 2.0]), np.array([1.0, 0.0, 0.0]), 1e-8)
    array([2.e+00, 0.e+00, 2.e+08])
    """
    values = np.asarray(values, dtype=float)
    kept = np.where(np.abs(values) <= floor, 0.0, values)
    return kept / np.maximum(np.asarray(pre_rmspe, dtype=float), floor)


def check_result(result: object, routine: str, min_donors: int = 2) -> SynthResult:
    """``result`` if it is one fitted synthetic control with at least ``min_donors``
    donors, else a clear error."""
    if not isinstance(result, SynthResult):
        raise SpecError(
            f"{routine} needs one SynthResult (from sc.fit with a single treated unit), got "
            f"{type(result).__name__}; for several treated units pass each result, or use pooled_test"
        )
    if len(result.donors) < min_donors:
        raise DonorPoolError(
            f"{routine} refits {result.treated!r} with one donor fewer, so it needs at least "
            f"{min_donors} donors; the fit has {len(result.donors)}: add donors"
        )
    return result


def result_list(results: object, accepted: str) -> list:
    """``results``, one result per treated unit (a list, or a mapping such as the
    :class:`~synthcontrol.results.SynthResults` of a fit), as a list; anything else
    (one result, text, a number, None) is an ArgumentError saying what ``accepted``
    results are."""
    if isinstance(results, Mapping):
        return list(results.values())
    if isinstance(results, (str, bytes)) or not isinstance(results, Iterable):
        raise ArgumentError(
            f"results must be a list of {accepted} (one per treated unit) or the SynthResults of a fit "
            f"with several treated units; got {type(results).__name__}"
        )
    return list(results)
