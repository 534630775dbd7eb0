"""In-space placebo tests (Abadie, Diamond and Hainmueller 2010; Abadie 2021).

Every donor in turn is treated as if it were treated and fitted against the other
donors (the real treated unit left out) with the same specification and the same
way of choosing predictor weights. The treated unit's post/pre RMSPE ratio is then
ranked among all the units.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .._validation import check_bool, describe
from ..errors import ArgumentError, SpecError
from ..audit_warnings import flags_for_periods, warn_flagged
from ..estimators import check_fit_options, fit_design
from ..results import SynthResult
from ._common import Execution, Refit, check_result, frozen, refit, refit_key, result_list, round_off_floor
from .placebo_result import PlaceboResult
from .runner import RunLog

__all__ = ["placebo_test", "placebo_tests", "PlaceboResult", "ADH_CUTOFFS"]

#: Pre-period MSPE cut-offs of Abadie, Diamond and Hainmueller (2010), as multiples
#: of the treated unit's pre-period MSPE.
ADH_CUTOFFS = (2.0, 5.0, 20.0)


def placebo_test(
    result: SynthResult,
    *,
    n_jobs: int | None = 1,
    mspe_cutoff: float | Sequence[float] | None = None,
    reuse_predictor_weights: bool = False,
    start_from_treated: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    audit: pd.DataFrame | None = None,
    certify: bool | None = None,
) -> PlaceboResult:
    """In-space placebo test of a fitted synthetic control.

    Each donor is fitted as if treated, against the other donors (the treated unit
    excluded), through :func:`~synthcontrol.estimators.fit_design` with the result's
    own options, so each placebo chooses its own predictor weights exactly as the
    treated fit did. Predictor weights given by the user for the treated fit are
    given to the placebos too.

    Parameters
    ----------
    result : SynthResult
        A fit with one treated unit.
    n_jobs : int or None, default 1
        Parallel workers (joblib; ``joblib.parallel_config(backend="dask")`` for Dask).
        The result does not depend on it.
    mspe_cutoff : float or sequence of float, optional
        Pre-MSPE cut-offs (multiples of the treated unit's) reported besides
        Abadie, Diamond and Hainmueller's 2, 5 and 20.
    reuse_predictor_weights : bool, default False
        Give every placebo the treated unit's predictor weights (as tidysynth does)
        instead of choosing them anew.
    start_from_treated : bool, default False
        Add the treated unit's predictor weights as one more start of each
        placebo's search (the default starts are all kept, so the loss can only
        improve; it costs one more local search per placebo).
    checkpoint_dir : path, optional
        Directory where each finished placebo is stored; an interrupted run given
        the same directory refits only the missing placebos.
    progress : bool or callable, optional
        True: a progress line on stderr per finished fit; a callable gets ``(done, total)``.
    audit : DataFrame, optional
        Suspect cells from :func:`synthcontrol.audit`: an
        :class:`~synthcontrol.errors.AuditWarning` names every placebo unit whose
        post/pre RMSPE ratio is at least the treated unit's (it counts against the
        treated unit in the p-value) and that has a flagged cell where its fit
        relies on it: its large ratio may come from a data break. The flags'
        periods are converted to the type of the data's periods before the run
        (:class:`~synthcontrol.errors.TypeMismatchError` if one does not convert).
    certify : bool, optional
        Certify every fit's predictor weights (see ``sc.fit(..., certify=True)``);
        default: as the treated fit was. With True and a treated fit that was not
        certified, the treated unit is refitted with a certificate too, so that all
        units meet the same standard. Fits with fixed predictor weights get none.
        :attr:`PlaceboResult.certificate_counts` and the summary count the outcomes.

    Returns
    -------
    PlaceboResult

    Raises
    ------
    CheckpointError
        When ``checkpoint_dir`` is corrupted or holds another job's results.
    ArgumentError
        An argument of the wrong type or out of range, named in the message.

    Notes
    -----
    The pre-period is the fit window before treatment (``design.pre_mask``), the
    post-period every period from the treatment start (``design.post_mask``).
    ``p_value`` ranks the post/pre RMSPE ratio (both directions of effect);
    ``p_negative`` and ``p_positive`` rank the standardised effect, the average
    post-period gap divided by the pre-period RMSPE, ascending and descending.
    Ties, up to round-off, always count against the treated unit, so every p-value
    is at least ``1 / N`` with ``N`` units.

    Exact pre-period fits (a unit inside its donors' hull, or a placebo whose twin is
    a donor) make the pre-period RMSPE zero. Gaps up to ``1e-8`` times the largest
    absolute outcome of the design are treated as round-off: as zero in a numerator,
    and as the smallest pre-period RMSPE a ratio divides by
    (:attr:`PlaceboResult.round_off`). An exact fit followed by a real gap then
    ranks as extreme, an exact fit throughout (ratio 0) as not extreme at all, and
    no statistic is NaN. Units are sorted in the panel, so the order of the data's
    rows never changes a p-value.

    On California (ADH 2010 specification) the extra start lowered the fit-window
    loss of 2 of the 38 placebos (Missouri 1.816 to 1.514, Mississippi 4.179 to
    4.115) and left the p-value unchanged, at the cost of one more local search
    per placebo (``benchmarks/bench_placebo.py`` measures both).

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"])
    >>> res = sc.fit(sc.datasets.load_smoking(), spec)
    >>> inf = sc.placebo_test(res)
    >>> inf.rank, len(inf.table)
    (1, 6)
    >>> inf.p_value == 1 / 6
    True
    """
    result = check_result(result, "placebo_test", min_donors=3)
    audit = None if audit is None else flags_for_periods(audit, result.design.periods, result.design.spec.time)
    cutoffs = _cutoffs(mspe_cutoff)
    execution = Execution.checked(n_jobs, checkpoint_dir, progress)
    reuse_predictor_weights = check_bool(reuse_predictor_weights, "reuse_predictor_weights")
    start_from_treated = check_bool(start_from_treated, "start_from_treated")
    result = _with_certify(result, None if certify is None else check_bool(certify, "certify"))
    (test,) = shared_placebo_tests(
        [result], kind="placebo", cutoffs=cutoffs, reuse_predictor_weights=reuse_predictor_weights,
        start_from_treated=start_from_treated, execution=execution, description=f"placebo test of {result.treated}",
    )
    if audit is not None:
        _warn_flagged_placebos(test, result, audit)
    return test


def placebo_tests(
    results: Sequence[SynthResult] | Mapping[Hashable, SynthResult],
    *,
    n_jobs: int | None = 1,
    reuse_predictor_weights: bool = False,
    start_from_treated: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    audit: pd.DataFrame | None = None,
) -> dict[Hashable, PlaceboResult]:
    """In-space placebo tests of several treated units, each shared placebo fitted once.

    A placebo fit treats one donor and fits it on the other donors, the real treated
    unit left out. When two treated units have the same donors, data and options and
    each placebo chooses its own predictor weights, that fit is the same for both:
    placebos are matched by :func:`~synthcontrol.inference._common.refit_key` (what
    the numbers of a refit depend on), and every distinct one runs once, all of them
    as one parallel job. With ``reuse_predictor_weights`` each placebo takes its own
    treated unit's predictor weights, so only units with equal weights share.

    Parameters
    ----------
    results : sequence of SynthResult, or SynthResults
        One fit per treated unit.
    n_jobs, reuse_predictor_weights, start_from_treated, checkpoint_dir, progress, audit
        As in :func:`placebo_test` (``audit`` warns for each treated unit).

    Returns
    -------
    dict
        Treated unit -> :class:`PlaceboResult`, equal to :func:`placebo_test` of each.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)],
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Idaho"])
    >>> fits = sc.fit(sc.datasets.load_smoking(), spec)
    >>> tests = sc.placebo_tests(fits)
    >>> tests["Georgia"].p_value == sc.placebo_test(fits["Georgia"]).p_value
    True
    >>> tests["Georgia"].run.n_tasks  # five placebos shared by both units
    5
    """
    fits = [check_result(r, "placebo_tests", min_donors=3) for r in result_list(results, "SynthResult")]
    if not fits:
        raise ArgumentError("results is empty; give one SynthResult per treated unit")
    treated = [r.treated for r in fits]
    if len(set(treated)) < len(treated):
        raise SpecError(f"placebo_tests got the same treated unit twice: {treated}")
    execution = Execution.checked(n_jobs, checkpoint_dir, progress)
    reuse_predictor_weights = check_bool(reuse_predictor_weights, "reuse_predictor_weights")
    start_from_treated = check_bool(start_from_treated, "start_from_treated")
    flags = [None if audit is None else flags_for_periods(audit, r.design.periods, r.design.spec.time) for r in fits]
    tests = shared_placebo_tests(
        fits, kind="placebo tests", cutoffs=ADH_CUTOFFS, reuse_predictor_weights=reuse_predictor_weights,
        start_from_treated=start_from_treated, execution=execution,
        description=f"placebo tests of {', '.join(map(str, treated))}",
    )
    if audit is not None:
        for test, result, checked in zip(tests, fits, flags):
            _warn_flagged_placebos(test, result, checked)
    return dict(zip(treated, tests))


def shared_placebo_tests(
    fits: Sequence[SynthResult],
    *,
    kind: str,
    cutoffs: tuple,
    reuse_predictor_weights: bool,
    start_from_treated: bool,
    execution: Execution,
    description: str,
) -> tuple[PlaceboResult, ...]:
    """The placebo tests of ``fits`` (checked results), each distinct refit run once.

    The one mechanism that shares placebo fits between treated units
    (:func:`placebo_test`, :func:`placebo_tests`, the pooled test and studies): jobs
    with equal :func:`refit_key` are the same fit. ``kind`` names the job in its
    checkpoint; a checkpoint key is ``placebo:DONOR`` for one fit and
    ``placebo:TREATED:DONOR`` for several.
    """
    slots: dict[str, int] = {}  # refit key -> position in `distinct`
    distinct: list[Refit] = []
    keys: list[str] = []
    positions: list[list[int]] = []
    for result in fits:
        positions.append([])
        for job, donor in zip(placebo_jobs(result, reuse_predictor_weights, start_from_treated), result.donors):
            key = refit_key(job)
            if key not in slots:
                slots[key] = len(distinct)
                distinct.append(job)
                keys.append(f"placebo:{donor}" if len(fits) == 1 else f"placebo:{result.treated}:{donor}")
            positions[-1].append(slots[key])
    records, log = execution.map(refit, distinct, kind=kind, keys=keys, description=description)
    return tuple(
        placebo_result(result, [records[k] for k in where], cutoffs, reuse_predictor_weights, log)
        for result, where in zip(fits, positions)
    )


def _warn_flagged_placebos(inference: PlaceboResult, result: SynthResult, flags: pd.DataFrame) -> None:
    """Warn when a placebo that counts against the treated unit has flagged data."""
    ratio = inference.table["ratio"]
    above = ratio.iloc[1:][ratio.iloc[1:] >= ratio.iloc[0]]
    warn_flagged(flags, result.design, above.to_dict(), what="placebo unit(s) ranking at or above",
                 label="post/pre ratio", check_treated=False)


def placebo_jobs(result: SynthResult, reuse_predictor_weights: bool, start_from_treated: bool) -> list[Refit]:
    """One refit per donor of ``result``, that donor treated (see :func:`placebo_test`)."""
    if reuse_predictor_weights and not result.uses_predictor_weights:
        raise SpecError(
            f"reuse_predictor_weights=True: estimator {result.estimator!r} matches on pre-period outcomes "
            "and has no predictor weights to reuse; drop reuse_predictor_weights"
        )
    fixed = reuse_predictor_weights or result.predictor_weights_given
    v = tuple(result.solution.predictor_weights.tolist())
    return [
        Refit(
            design=result.design,
            options=result.options,
            relabel=position,
            predictor_weights=v if fixed else None,
            extra_starts=(v,) if start_from_treated and not fixed else (),
        )
        for position in range(1, len(result.design.units))
    ]


def _with_certify(result: SynthResult, certify: bool | None) -> SynthResult:
    """``result`` with ``certify`` (checked) in its options, refitted when it now needs
    a certificate, so that the treated unit and its placebos meet the same standard."""
    if certify is None or certify == result.options.certify:
        return result
    options = replace(result.options, certify=certify)
    if not certify or result.predictor_weights_given:
        return replace(result, options=options)
    return fit_design(result.design, options=check_fit_options(options))


def _cutoffs(mspe_cutoff: float | Sequence[float] | None) -> tuple:
    if mspe_cutoff is None:
        return ADH_CUTOFFS
    given = mspe_cutoff if isinstance(mspe_cutoff, (list, tuple, np.ndarray, pd.Series)) else [mspe_cutoff]
    values = np.asarray(given, dtype=object).ravel().tolist()
    for value in values:
        number = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
        if not number or not np.isfinite(value) or value <= 0:
            raise ArgumentError(
                f"mspe_cutoff must be a positive finite number or a list of them (multiples of the "
                f"treated unit's pre-period MSPE); got {describe(value)}"
            )
    return tuple(sorted(set(ADH_CUTOFFS) | {float(v) for v in values}))


def placebo_result(
    result: SynthResult, records: list[dict], cutoffs: tuple, reuse_predictor_weights: bool, log: RunLog
) -> PlaceboResult:
    """Assemble the :class:`PlaceboResult` of ``result`` from its placebo records."""
    design = result.design
    gaps = np.column_stack([result.path["gap"].to_numpy(), *(r["gap"] for r in records)])
    return PlaceboResult(
        units=design.units,
        periods=design.periods,
        gap_matrix=frozen(gaps),
        pre_mask=frozen(design.pre_mask, bool),
        post_mask=frozen(design.post_mask, bool),
        weights=(frozen(result.solution.weights), *(frozen(r["weights"]) for r in records)),
        predictor_weights=frozen(
            [result.solution.predictor_weights, *(r["predictor_weights"] for r in records)]
        ),
        loss_v=frozen([result.loss_v, *(r["loss_v"] for r in records)]),
        cutoffs=cutoffs,
        time=design.spec.time,
        outcome=design.spec.outcome,
        treatment_start=design.spec.treatment_start,
        reused_predictor_weights=reuse_predictor_weights or result.predictor_weights_given,
        run=log,
        round_off=round_off_floor(design.outcome),
        certificates=(
            None if result.certificate is None else result.certificate.status,
            *(r.get("certificate") for r in records),
        ),
    )
