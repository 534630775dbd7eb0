"""Estimators: from a long data frame and a :class:`~synthcontrol.spec.Spec` to results.

:func:`fit` validates once at the boundary (panel, spec, options), then hands a
:class:`~synthcontrol.spec.Design` to :func:`fit_design`, the entry point every
inference routine reuses to refit placebos without validating again.

An estimator is a function ``fit(design, request) -> Estimate`` registered, with
its declarations, in :mod:`synthcontrol.registry`. It receives a :class:`FitRequest`
(the options, its settings with defaults filled in, given predictor weights and extra
starts) and returns an :class:`Estimate` (the weights as a
:class:`~synthcontrol.weights.NestedSolution`, an intercept, its own outputs and an
optional certificate); :func:`fit_design` packs every estimate into the one result
type, :class:`~synthcontrol.results.SynthResult`. Estimators that choose predictor
weights run :func:`nested_search`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._validation import check_seed
from .audit_warnings import FLAGGED_WEIGHT, audit_flags, warn_flagged
from .certify import Certificate, certify_nested
from .errors import ArgumentError, MissingColumnError, SpecError
from .options import FitOptions, SearchOptions
from .panel import Panel
from .registry import ESTIMATORS, register_estimator
from .results import SynthResult, SynthResults
from .spec import Design, Predictor, Spec, check_spec, prepare, require_treated_units
from .weights import NestedSolution, choose_predictor_weights, nested_fit

__all__ = [
    "fit",
    "fit_design",
    "prepare_designs",
    "check_fit_options",
    "cross_validate_predictor_weights",
    "nested_search",
    "FitRequest",
    "Estimate",
    "register_estimator",
    "ESTIMATORS",
]

def fit(
    data: pd.DataFrame,
    spec: Spec,
    *,
    predictor_weights: Sequence[float] | pd.Series | None = None,
    seed: int = SearchOptions.seed,
    n_random_starts: int = SearchOptions.n_random_starts,
    n_local: int = SearchOptions.n_local,
    n_polish: int = SearchOptions.n_polish,
    max_iterations: int = SearchOptions.max_iterations,
    min_predictor_weight: float = SearchOptions.min_predictor_weight,
    global_search: bool = SearchOptions.global_search,
    estimator: str = "classic",
    estimator_options: Mapping[str, object] | None = None,
    audit: pd.DataFrame | bool | None = None,
    certify: bool = SearchOptions.certify,
    certify_time_limit: float | None = SearchOptions.certify_time_limit,
) -> SynthResult | SynthResults:
    """Fit the synthetic control of ``spec`` (Abadie, Diamond and Hainmueller).

    Parameters
    ----------
    data : DataFrame
        Long panel: one row per unit and period, with the columns ``spec`` names.
    spec : Spec
        What to fit. With several treated units each gets its own fit.
    predictor_weights : sequence, Series or dict, optional
        Fixed predictor weights ``v`` (in predictor order, or a Series or dict keyed
        by predictor label, each label once); normalised to sum to one. Default: chosen by the nested
        optimisation, minimising the outcome MSPE over the fit window.
    seed : int, default 0
        Seed of the random starts (a non-negative integer); the same seed gives the
        same result.
    n_random_starts, n_local, n_polish, max_iterations, min_predictor_weight, global_search
        Search settings, checked by :class:`~synthcontrol.options.SearchOptions`
        (see :func:`synthcontrol.weights.choose_predictor_weights` for what they do):
        integers ``n_random_starts >= 0``, ``n_local >= 1``, ``n_polish >= 0``,
        ``max_iterations >= 1``; ``0 <= min_predictor_weight < 1``; a boolean.
    estimator : str, default "classic"
        A registered estimator name (see :data:`ESTIMATORS`).
    estimator_options : mapping, optional
        Settings of that estimator (the classic estimator takes none).
    audit : DataFrame or bool, optional
        Suspect cells from :func:`synthcontrol.audit` (or a dataset's flags table
        with the same columns), or True to audit the columns ``spec`` uses here
        with the default thresholds. An :class:`~synthcontrol.errors.AuditWarning`
        names every donor with weight of at least :data:`FLAGGED_WEIGHT` (and the
        treated unit) that has a flagged cell where the fit relies on it: the
        outcome in the fit window or the post-period, a predictor's variable in its
        window (the treated unit's post-period outcome is the effect, not checked).
        Default None: no check, since real events are flagged too (DATASHEET.md
        lists what the default audit flags on the classic panels). The flags'
        periods are converted to the type of the data's period column ('2005' for
        2005; else :class:`~synthcontrol.errors.TypeMismatchError`), and flags
        naming a unit, column or period the data lack get an ``AuditWarning``.
    certify : bool, default False
        After the search, prove the nested fit globally optimal over the admissible
        predictor weights (``min(v) >= min_predictor_weight * max(v)``) or find a
        better one, with a mixed-integer solver (needs ``synthcontrol[certify]``, see
        :mod:`synthcontrol.certify`). The result's ``certificate`` says what was
        proven; when it lowers the loss the result carries the improved weights. The
        option travels with the fit, so placebo tests and other refits certify too.
        Classic estimator with chosen predictor weights only.
    certify_time_limit : float or None, default 60
        Seconds allowed to each certification (None: no limit), counted in the
        solver's CPU time so that a busy machine does not change which fits finish.
        The three classic studies need under 15 s; a fit that runs out of time is
        reported as ``"bounded"`` with its gap. The solver is deterministic; whether a
        hard fit finishes in time depends on the speed of the machine.

    Returns
    -------
    SynthResult or SynthResults
        The type follows the type of ``spec.treated``, never the data: one label
        gives a :class:`~synthcontrol.results.SynthResult`; a list or tuple of
        labels (even of one) gives a :class:`~synthcontrol.results.SynthResults`,
        a read-only mapping from treated unit to its result.

    Raises
    ------
    SynthControlError
        Any problem with the data or the specification, naming the culprit.
    MissingDependencyError
        ``certify=True`` without the optional package ``pyscipopt``.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> df = sc.datasets.load_smoking()
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.mean("retprice", 1980, 1988), sc.at("cigsale", 1975),
    ...                            sc.at("cigsale", 1980), sc.at("cigsale", 1988)])
    >>> res = sc.fit(df, spec)
    >>> round(float(res.weights.sum()), 10)
    1.0
    >>> res.average_effect < 0
    True
    """
    options = FitOptions(
        seed=seed, n_random_starts=n_random_starts, n_local=n_local, n_polish=n_polish,
        max_iterations=max_iterations, min_predictor_weight=min_predictor_weight,
        global_search=global_search, estimator=estimator, estimator_options=estimator_options,
        certify=certify, certify_time_limit=certify_time_limit,
    )
    if options.certify and predictor_weights is not None:
        raise SpecError("certify=True certifies chosen predictor weights; drop predictor_weights or certify")
    panel = _as_panel(data, spec)
    designs = prepare_designs(panel, spec)
    flags = audit_flags(audit, data, spec, panel)
    results = {
        treated: fit_design(design, predictor_weights=_check_v(predictor_weights, design), options=options)
        for treated, design in designs.items()
    }
    if flags is not None:
        for result in results.values():
            weights = {d: w for d, w in zip(result.donors, result.solution.weights) if w >= FLAGGED_WEIGHT}
            warn_flagged(flags, result.design, weights)
    if isinstance(spec.treated, (list, tuple)):
        return SynthResults(results)
    return next(iter(results.values()))


def prepare_designs(data: pd.DataFrame | Panel, spec: Spec) -> dict[Hashable, Design]:
    """Validate ``data`` against ``spec`` and build one design per treated unit."""
    panel = _as_panel(data, spec)
    require_treated_units(panel, spec)
    return {t: prepare(panel, spec.for_treated(t)) for t in spec.treated_units}


def _as_panel(data: pd.DataFrame | Panel, spec: Spec) -> Panel:
    """``data`` as a validated panel of the variables ``spec`` uses (a panel as it is)."""
    check_spec(spec)
    if isinstance(data, Panel):
        missing = [v for v in spec.variables if v not in data.values]
        if missing:
            raise MissingColumnError(
                f"the panel given as data holds no variable {missing} (it holds {sorted(data.values)}); "
                f"build it with Panel.from_frame(..., variables=[...]) listing every variable the spec uses "
                f"({spec.variables}), or pass the data frame"
            )
        return data
    return Panel.from_frame(data, unit=spec.unit, time=spec.time, variables=spec.variables)


@dataclass(frozen=True)
class FitRequest:
    """What an estimator is asked to fit, besides the design.

    Attributes
    ----------
    options : FitOptions
        The search settings (the estimator may run :func:`nested_search`) and the
        estimator.
    settings : dict
        The estimator's settings, with the defaults it declares filled in.
    predictor_weights : ndarray or None
        Predictor weights fixed by the user (only for estimators that use them).
    extra_starts : tuple of ndarray
        Further starting predictor weights of the search.
    """

    options: FitOptions
    settings: Mapping[str, Any]
    predictor_weights: np.ndarray | None = None
    extra_starts: tuple = ()


@dataclass(frozen=True)
class Estimate:
    """What an estimator returns; :func:`fit_design` packs it into a SynthResult.

    Attributes
    ----------
    solution : NestedSolution
        Donor (and predictor) weights, losses and how they were found.
    intercept : float
        Constant added to the synthetic outcome.
    details : tuple of (name, value) pairs
        The estimator's own outputs (``SynthResult.extras``).
    certificate : Certificate or None
    """

    solution: NestedSolution
    intercept: float = 0.0
    details: tuple = ()
    certificate: Certificate | None = None


def fit_design(
    design: Design,
    *,
    predictor_weights: np.ndarray | None = None,
    options: FitOptions | None = None,
    extra_starts: Sequence[np.ndarray] = (),
) -> SynthResult:
    """Fit a prepared design with the estimator of ``options`` (default: classic).

    The trusted inner entry point of every refit (placebos, leave-one-out, ...).
    ``extra_starts`` adds starting predictor weights to a search (a placebo may
    start from the treated unit's weights); they never replace the default starts.

    Raises
    ------
    SpecError
        Predictor weights given to an estimator that matches on outcomes only.
    """
    options = FitOptions() if options is None else check_fit_options(options)
    entry = options.entry
    if predictor_weights is not None and not entry.uses_predictor_weights:
        raise SpecError(
            f"estimator {entry.name!r} matches on pre-period outcomes and uses no predictor "
            "weights; drop predictor_weights (and reuse_predictor_weights in inference), or use "
            f"an estimator that uses them ({', '.join(sorted(n for n, e in ESTIMATORS.items() if e.uses_predictor_weights))})"
        )
    request = FitRequest(options, entry.resolved(options.estimator_options), predictor_weights, tuple(extra_starts))
    estimate = entry.fit(design, request)
    return SynthResult(
        design=design,
        solution=estimate.solution,
        scale=design.scaled_predictors()[1],
        options=options,
        predictor_weights_given=predictor_weights is not None,
        estimator=options.estimator,
        intercept=float(estimate.intercept),
        details=estimate.details,
        certificate=estimate.certificate,
    )


def nested_search(design: Design, request: FitRequest) -> NestedSolution:
    """The nested fit of ``design``: donor weights for the given predictor weights, or
    predictor weights chosen by the search with the request's settings (the one
    place that hands :class:`~synthcontrol.options.SearchOptions` to the core)."""
    X, _ = design.scaled_predictors()
    Z = design.outcome[design.fit_mask]
    x1, X0, z1, Z0 = X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:]
    if request.predictor_weights is not None:
        return nested_fit(x1, X0, z1, Z0, predictor_weights=request.predictor_weights)
    return choose_predictor_weights(
        x1, X0, z1, Z0, **request.options.search_options(), extra_starts=request.extra_starts
    )


@register_estimator("classic", uses_predictor_weights=True, certifiable=True, simplex_weights=True)
def _fit_classic(design: Design, request: FitRequest) -> Estimate:
    """Abadie, Diamond and Hainmueller's synthetic control with nested ``v``, certified
    on request."""
    solution = nested_search(design, request)
    if not request.options.certify or request.predictor_weights is not None:
        return Estimate(solution)
    X, _ = design.scaled_predictors()
    Z = design.outcome[design.fit_mask]
    certificate = certify_nested(
        X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:],
        predictor_weights=solution.predictor_weights, weights=solution.weights,
        min_ratio=request.options.min_predictor_weight, time_limit=request.options.certify_time_limit,
    )
    return Estimate(_with_certified_weights(solution, certificate, X[:, 0], X[:, 1:]), certificate=certificate)


def _with_certified_weights(
    solution: NestedSolution, certificate: Certificate, x1: np.ndarray, X0: np.ndarray
) -> NestedSolution:
    """``solution`` with the certificate's weights when it found a lower loss."""
    if certificate.weights is None:
        return solution
    v = solution.predictor_weights if certificate.predictor_weights is None else certificate.predictor_weights
    w = np.array(certificate.weights)
    residual = np.sqrt(v) * (X0 @ w - x1)
    return replace(
        solution, predictor_weights=np.array(v), weights=w, loss=certificate.loss,
        inner_objective=float(residual @ residual),
    )


def cross_validate_predictor_weights(
    data: pd.DataFrame,
    spec: Spec,
    *,
    training_predictors: Sequence[Predictor],
    validation_window: tuple[Hashable, Hashable],
    seed: int = 0,
) -> pd.Series:
    """Predictor weights chosen on a training period (Abadie, Diamond and Hainmueller 2015).

    The weights are chosen by fitting ``training_predictors`` (the same variables
    measured in an earlier, training period) to the outcome over
    ``validation_window``; they are returned indexed by ``spec``'s predictor labels,
    position by position, ready for ``fit(data, spec, predictor_weights=...)``.

    Raises
    ------
    SpecError
        When ``spec`` has no predictors, ``training_predictors`` and
        ``spec.predictors`` differ in number, or ``validation_window`` is not a
        (start, end) pair.
    """
    check_spec(spec)
    if isinstance(training_predictors, (str, Predictor)) or not isinstance(training_predictors, Sequence):
        raise ArgumentError(f"training_predictors must be a list of sc.at(...)/sc.mean(...) predictors, "
                            f"got {training_predictors!r:.80}")
    if isinstance(validation_window, str) or not isinstance(validation_window, Sequence) or len(validation_window) != 2:
        raise ArgumentError(f"validation_window must be (start, end), got {validation_window!r:.80}")
    check_seed(seed)
    training_predictors = tuple(training_predictors)
    if not spec.predictors:
        raise SpecError(
            "spec has no predictors (it matches the outcome in every fit-window period), so there are no "
            "predictor weights to choose; give spec.predictors (sc.at/sc.mean) and one training predictor each"
        )
    if len(training_predictors) != len(spec.predictors):
        raise SpecError(
            f"training_predictors has {len(training_predictors)} entries but spec.predictors "
            f"has {len(spec.predictors)}; give one training predictor per predictor, in order"
        )
    training = replace(spec, predictors=training_predictors, fit_window=tuple(validation_window))
    result = fit(data, training, seed=seed)
    if isinstance(result, SynthResults):
        raise SpecError("cross-validated predictor weights need a spec with one treated unit")
    return pd.Series(
        result.solution.predictor_weights, index=[p.label for p in spec.predictors], name="predictor_weight"
    )


def check_fit_options(options: object) -> FitOptions:
    """``options`` if it is a :class:`~synthcontrol.options.FitOptions` (checked when it
    was built), else an :class:`~synthcontrol.errors.ArgumentError`: the check of an
    ``options`` argument at every entry point that takes one."""
    if not isinstance(options, FitOptions):
        raise ArgumentError(f"options must be a synthcontrol.FitOptions, got {type(options).__name__}")
    return options


def _check_v(weights: Sequence[float] | pd.Series | None, design: Design) -> np.ndarray | None:
    """Validate user predictor weights against the design's predictor labels."""
    if weights is None:
        return None
    labels = list(design.predictor_labels)
    if isinstance(weights, Mapping):
        weights = pd.Series(dict(weights), dtype=object)
    if isinstance(weights, pd.Series):
        repeated = sorted({str(k) for k in weights.index[weights.index.duplicated()]})
        if repeated:
            raise SpecError(f"predictor_weights gives label(s) {repeated} more than once; give each predictor once")
        unknown = [k for k in weights.index if k not in labels]
        missing = [k for k in labels if k not in weights.index]
        if unknown or missing:
            raise SpecError(
                f"predictor_weights labels do not match the predictors: unknown {unknown}, "
                f"missing {missing}; expected {labels}"
            )
        weights = weights.reindex(labels)
    v = _as_floats(weights)
    if v.size != len(labels):
        raise SpecError(
            f"predictor_weights has {v.size} entries for {len(labels)} predictors {labels}"
        )
    if not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        raise SpecError(
            f"predictor_weights must be finite, non-negative and not all zero; got {v.tolist()}"
        )
    return v / v.sum()


def _as_floats(weights: object) -> np.ndarray:
    """User predictor weights as a flat float array, or a SpecError naming the entry."""
    if isinstance(weights, (str, bytes)):
        raise SpecError(f"predictor_weights must be numbers, got the text {weights!r}")
    array = np.asarray(weights, dtype=object)
    if sum(n > 1 for n in array.shape) > 1:
        raise SpecError(f"predictor_weights must be one-dimensional, got shape {array.shape}")
    flat = array.ravel().tolist()
    bad = [w for w in flat if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, float, np.number))]
    if bad:
        raise SpecError(f"predictor_weights must be numbers; got {bad[0]!r} among {flat}")
    return np.array(flat, dtype=float)
