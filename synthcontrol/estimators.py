"""Estimators: from a long data frame and a :class:`~synthcontrol.spec.Spec` to results.

:func:`fit` validates once at the boundary (panel, spec, options), then hands a
:class:`~synthcontrol.spec.Design` to :func:`fit_design`, the entry point every
inference routine reuses to refit placebos without validating again.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .certify import DEFAULT_TIME_LIMIT, Certificate, certify_nested, require_solver
from ._validation import check_bool, check_int, check_mapping, check_number, check_seed
from .audit import audit as run_audit
from .audit import check_flags, flagged_cells
from .errors import ArgumentError, AuditWarning, SpecError
from .panel import Panel
from .results import FitOptions, SynthResult, SynthResults
from .spec import Design, Predictor, Spec, prepare, require_treated_units
from .weights import NestedSolution, nested_fit

__all__ = [
    "fit",
    "fit_design",
    "prepare_designs",
    "check_fit_options",
    "cross_validate_predictor_weights",
    "register_estimator",
    "ESTIMATORS",
    "audit_windows",
    "warn_flagged",
    "FLAGGED_WEIGHT",
]

#: Donors with at least this weight are checked against audit flags (a smaller weight
#: cannot move the synthetic control by much).
FLAGGED_WEIGHT = 1e-3


def fit(
    data: pd.DataFrame,
    spec: Spec,
    *,
    predictor_weights: Sequence[float] | pd.Series | None = None,
    seed: int = 0,
    n_random_starts: int = 2000,
    n_local: int = 6,
    n_polish: int = 3,
    max_iterations: int = 200,
    min_predictor_weight: float = 1e-8,
    global_search: bool = False,
    estimator: str = "classic",
    estimator_options: Mapping[str, object] | None = None,
    audit: pd.DataFrame | bool | None = None,
    certify: bool = False,
    certify_time_limit: float | None = DEFAULT_TIME_LIMIT,
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
        Search settings, see :func:`synthcontrol.weights.choose_predictor_weights`:
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
        lists what the default audit flags on the classic panels).
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
    SynthResult, or SynthResults for several treated units.

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
    options = check_fit_options(FitOptions(
        seed=seed, n_random_starts=n_random_starts, n_local=n_local, n_polish=n_polish,
        max_iterations=max_iterations, min_predictor_weight=min_predictor_weight,
        global_search=global_search, estimator=estimator, estimator_options=estimator_options,
        certify=certify, certify_time_limit=certify_time_limit,
    ))
    if options.certify and predictor_weights is not None:
        raise SpecError("certify=True certifies chosen predictor weights; drop predictor_weights or certify")
    designs = prepare_designs(data, spec)
    flags = _audit_flags(audit, data, spec)
    results = {
        treated: fit_design(design, predictor_weights=_check_v(predictor_weights, design), options=options)
        for treated, design in designs.items()
    }
    if flags is not None:
        for result in results.values():
            weights = {d: w for d, w in zip(result.donors, result.solution.weights) if w >= FLAGGED_WEIGHT}
            warn_flagged(flags, result.design, weights, stacklevel=2)
    if len(spec.treated_units) == 1 and not isinstance(spec.treated, (list, tuple)):
        return next(iter(results.values()))
    return SynthResults(results)


def prepare_designs(data: pd.DataFrame | Panel, spec: Spec) -> dict[Hashable, Design]:
    """Validate ``data`` against ``spec`` and build one design per treated unit."""
    if not isinstance(spec, Spec):
        raise SpecError(f"spec must be a synthcontrol.Spec, got {type(spec).__name__}")
    panel = data if isinstance(data, Panel) else Panel.from_frame(
        data, unit=spec.unit, time=spec.time, variables=spec.variables
    )
    require_treated_units(panel, spec)
    return {t: prepare(panel, spec.for_treated(t)) for t in spec.treated_units}


#: Registered estimators: name -> function(design, predictor_weights, options, extra_starts).
ESTIMATORS: dict[str, Callable[..., SynthResult]] = {}


def register_estimator(name: str) -> Callable[[Callable[..., SynthResult]], Callable[..., SynthResult]]:
    """Register an estimator under ``name`` so that fit, placebos and every other
    refit reach it through :func:`fit_design`, with no special cases."""

    def decorate(function: Callable[..., SynthResult]) -> Callable[..., SynthResult]:
        ESTIMATORS[name] = function
        return function

    return decorate


def fit_design(
    design: Design,
    *,
    predictor_weights: np.ndarray | None = None,
    options: FitOptions = FitOptions(),
    extra_starts: Sequence[np.ndarray] = (),
) -> SynthResult:
    """Fit a prepared design with the estimator ``options.estimator``.

    The trusted inner entry point of every refit (placebos, leave-one-out, ...).
    ``extra_starts`` adds starting predictor weights to a search (a placebo may
    start from the treated unit's weights); they never replace the default starts.
    """
    estimator = ESTIMATORS[options.estimator]
    return estimator(design, predictor_weights=predictor_weights, options=options, extra_starts=extra_starts)


@register_estimator("classic")
def _fit_classic(
    design: Design,
    *,
    predictor_weights: np.ndarray | None,
    options: FitOptions,
    extra_starts: Sequence[np.ndarray],
) -> SynthResult:
    """Abadie, Diamond and Hainmueller's synthetic control with nested ``v``."""
    if options.estimator_options:
        raise ArgumentError(
            f"estimator_options {sorted(dict(options.estimator_options))} are not settings of estimator "
            "'classic', which takes none: drop them, or choose an estimator that takes them "
            f"(one of {sorted(set(ESTIMATORS) - {'classic'})})"
        )
    X, scale = design.scaled_predictors()
    Z = design.outcome[design.fit_mask]
    search = options.search_options() | {"extra_starts": tuple(extra_starts)}
    solution = nested_fit(
        X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:], predictor_weights=predictor_weights, **search
    )
    certificate = None
    if options.certify and predictor_weights is None:
        certificate = certify_nested(
            X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:],
            predictor_weights=solution.predictor_weights, weights=solution.weights,
            min_ratio=options.min_predictor_weight, time_limit=options.certify_time_limit,
        )
        solution = _with_certified_weights(solution, certificate, X[:, 0], X[:, 1:])
    return SynthResult(
        design=design,
        solution=solution,
        scale=scale,
        options=options,
        predictor_weights_given=predictor_weights is not None,
        certificate=certificate,
    )


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
        When ``training_predictors`` and ``spec.predictors`` differ in number, or
        ``validation_window`` is not a (start, end) pair.
    """
    if not isinstance(spec, Spec):
        raise SpecError(f"spec must be a synthcontrol.Spec, got {type(spec).__name__}")
    if isinstance(training_predictors, (str, Predictor)) or not isinstance(training_predictors, Sequence):
        raise ArgumentError(f"training_predictors must be a list of sc.at(...)/sc.mean(...) predictors, "
                            f"got {training_predictors!r:.80}")
    if isinstance(validation_window, str) or not isinstance(validation_window, Sequence) or len(validation_window) != 2:
        raise ArgumentError(f"validation_window must be (start, end), got {validation_window!r:.80}")
    check_seed(seed)
    training_predictors = tuple(training_predictors)
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


def check_fit_options(options: FitOptions) -> FitOptions:
    """``options`` with every field checked and in canonical form (plain ``int``,
    ``float`` and ``bool``), or an :class:`~synthcontrol.errors.ArgumentError`
    naming the field; the one check of search options, for :func:`fit` and every
    other entry point that takes them."""
    if not isinstance(options, FitOptions):
        raise ArgumentError(f"options must be a synthcontrol.FitOptions, got {type(options).__name__}")
    checked = replace(
        options,
        seed=check_seed(options.seed),
        n_random_starts=check_int(options.n_random_starts, "n_random_starts", minimum=0),
        n_local=check_int(options.n_local, "n_local", minimum=1),
        n_polish=check_int(options.n_polish, "n_polish", minimum=0),
        max_iterations=check_int(options.max_iterations, "max_iterations", minimum=1),
        min_predictor_weight=check_number(options.min_predictor_weight, "min_predictor_weight",
                                          low=0.0, high=1.0, high_open=True),
        global_search=check_bool(options.global_search, "global_search"),
        estimator=_check_estimator(options.estimator),
        estimator_options=_frozen_options(options.estimator_options, "estimator_options"),
        certify=check_bool(options.certify, "certify"),
        certify_time_limit=_check_time_limit(options.certify_time_limit),
    )
    if checked.certify:
        _check_certifiable(checked)
    return checked


def _frozen_options(options: Mapping[str, object] | tuple | None, name: str) -> tuple:
    """Estimator settings as sorted (name, value) pairs (hashable, immutable)."""
    if isinstance(options, tuple) and all(isinstance(o, tuple) and len(o) == 2 for o in options):
        options = dict(options)  # already frozen, as FitOptions holds them
    return tuple(sorted(check_mapping(options, name).items()))


def _check_time_limit(time_limit: object) -> float | None:
    if time_limit is None:
        return None
    return check_number(time_limit, "certify_time_limit", low=0.0, low_open=True)


def _check_certifiable(options: FitOptions) -> None:
    """Refuse ``certify=True`` where no certificate can exist, and check the solver
    now, before any search, so that a missing package fails fast."""
    if options.estimator != "classic":
        raise SpecError(
            f"certify=True certifies the classic estimator's nested choice of predictor weights; "
            f"estimator={options.estimator!r} has none: drop certify or use estimator='classic'"
        )
    if options.min_predictor_weight <= 0:
        raise SpecError(
            "certify=True needs min_predictor_weight > 0: with a zero floor the nested optimum is "
            "generally not attained (v = 0 makes every donor weighting optimal); use e.g. 1e-8"
        )
    require_solver()


def _check_estimator(name: str) -> str:
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise ArgumentError(f"estimator={name!r} is not known; choose one of {sorted(ESTIMATORS)}")
    return name


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


def _audit_flags(audit: pd.DataFrame | bool | None, data: pd.DataFrame, spec: Spec) -> pd.DataFrame | None:
    if audit is None or audit is False:
        return None
    if audit is True:
        return run_audit(data, unit=spec.unit, time=spec.time, columns=spec.variables)
    return check_flags(audit)


def audit_windows(design: Design, *, post: bool = True) -> dict[str, list[tuple]]:
    """Column -> the inclusive period ranges a fit of ``design`` relies on: the
    outcome over the fit window (and the post-period if ``post``), each predictor
    variable over its window (the default outcome lags lie in the fit window)."""
    periods = np.array(design.periods, dtype=object)
    fit, after = periods[design.fit_mask], periods[design.post_mask]
    windows: dict[str, list[tuple]] = {design.spec.outcome: [(fit[0], fit[-1])]}
    if post:
        windows[design.spec.outcome].append((after[0], after[-1]))
    for predictor in design.spec.predictors:
        windows.setdefault(predictor.variable, []).append((predictor.start, predictor.end))
    return windows


def warn_flagged(
    flags: pd.DataFrame,
    design: Design,
    units: Mapping[Hashable, float],
    *,
    what: str = "donor(s) with weight in the synthetic control",
    label: str = "weight",
    check_treated: bool = True,
    stacklevel: int = 2,
) -> pd.DataFrame:
    """Warn (:class:`~synthcontrol.errors.AuditWarning`) when one of ``units`` (unit ->
    its weight, or another number shown as ``label``), or the treated unit before
    treatment, has a flagged cell where ``design`` relies on it; return those flags.

    Examples
    --------
    >>> import warnings
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
    >>> df = sc.datasets.load_smoking()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     res = sc.fit(df, spec, audit=True)
    >>> "'Utah'" in str(caught[0].message)      # Utah's 1998 drop in cigarette sales
    True
    """
    found = flagged_cells(flags, list(units), audit_windows(design))
    treated = flagged_cells(flags, [design.treated], audit_windows(design, post=False)) if check_treated else found[:0]
    parts = []
    if len(found):
        parts.append(f"{found.unit.nunique()} {what} of {design.treated!r} have flagged data where the fit relies "
                     f"on it: {_describe(found, units, label)}")
    if len(treated):
        parts.append(f"the treated unit {design.treated!r} has flagged pre-treatment data: "
                     f"{_describe(treated, {}, label)}")
    if parts:
        warnings.warn("; ".join(parts) + ". Inspect them (sc.audit), repair the data or exclude those units.",
                      AuditWarning, stacklevel=stacklevel + 1)
    return pd.concat([treated, found])


def _describe(flags: pd.DataFrame, numbers: Mapping[Hashable, float], label: str, limit: int = 5) -> str:
    """'unit (weight 0.41): column period kind, ...', largest numbers first."""
    order = sorted(dict.fromkeys(flags.unit), key=lambda u: -numbers.get(u, 0.0))
    texts = []
    for unit in order[:limit]:
        rows = flags[flags.unit == unit]
        cells = ", ".join(f"{r.column} {r.period} {r.kind}" for r in rows.head(limit).itertuples())
        more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
        number = f" ({label} {numbers[unit]:.3g})" if unit in numbers else ""
        texts.append(f"{unit!r}{number}: {cells}{more}")
    more_units = f"; and {len(order) - limit} more unit(s)" if len(order) > limit else ""
    return "; ".join(texts) + more_units


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
