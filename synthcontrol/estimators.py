"""Estimators: from a long data frame and a :class:`~synthcontrol.spec.Spec` to results.

:func:`fit` validates once at the boundary (panel, spec, options), then hands a
:class:`~synthcontrol.spec.Design` to :func:`fit_design`, the entry point every
inference routine reuses to refit placebos without validating again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import SpecError
from .panel import Panel
from .results import FitOptions, SynthResult, SynthResults
from .spec import Design, Predictor, Spec, prepare
from .weights import nested_fit

__all__ = [
    "fit",
    "fit_design",
    "prepare_designs",
    "cross_validate_predictor_weights",
    "register_estimator",
    "ESTIMATORS",
]


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
) -> SynthResult | SynthResults:
    """Fit the synthetic control of ``spec`` (Abadie, Diamond and Hainmueller).

    Parameters
    ----------
    data : DataFrame
        Long panel: one row per unit and period, with the columns ``spec`` names.
    spec : Spec
        What to fit. With several treated units each gets its own fit.
    predictor_weights : sequence or Series, optional
        Fixed predictor weights ``v`` (in predictor order, or a Series indexed by
        predictor label); normalised to sum to one. Default: chosen by the nested
        optimisation, minimising the outcome MSPE over the fit window.
    seed : int, default 0
        Seed of the random starts; the same seed gives the same result.
    n_random_starts, n_local, n_polish, max_iterations, min_predictor_weight, global_search
        Search settings, see :func:`synthcontrol.weights.choose_predictor_weights`.
    estimator : str, default "classic"
        A registered estimator name (see :data:`ESTIMATORS`).
    estimator_options : mapping, optional
        Settings of that estimator.

    Returns
    -------
    SynthResult, or SynthResults for several treated units.

    Raises
    ------
    SynthControlError
        Any problem with the data or the specification, naming the culprit.

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
    options = _options(
        seed, n_random_starts, n_local, n_polish, max_iterations, min_predictor_weight, global_search
    )
    options = replace(
        options,
        estimator=_check_estimator(estimator),
        estimator_options=tuple(sorted((estimator_options or {}).items())),
    )
    designs = prepare_designs(data, spec)
    results = {
        treated: fit_design(design, predictor_weights=_check_v(predictor_weights, design), options=options)
        for treated, design in designs.items()
    }
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
    X, scale = design.scaled_predictors()
    Z = design.outcome[design.fit_mask]
    search = options.search_options() | {"extra_starts": tuple(extra_starts)}
    solution = nested_fit(
        X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:], predictor_weights=predictor_weights, **search
    )
    return SynthResult(
        design=design,
        solution=solution,
        scale=scale,
        options=options,
        predictor_weights_given=predictor_weights is not None,
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
        When ``training_predictors`` and ``spec.predictors`` differ in number.
    """
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


def _options(
    seed: int,
    n_random_starts: int,
    n_local: int,
    n_polish: int,
    max_iterations: int,
    min_predictor_weight: float,
    global_search: bool,
) -> FitOptions:
    checks = {
        "seed": (seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)),
        "n_random_starts": (n_random_starts, isinstance(n_random_starts, int) and n_random_starts >= 0),
        "n_local": (n_local, isinstance(n_local, int) and n_local >= 1),
        "n_polish": (n_polish, isinstance(n_polish, int) and n_polish >= 0),
        "max_iterations": (max_iterations, isinstance(max_iterations, int) and max_iterations > 0),
        "min_predictor_weight": (min_predictor_weight, 0.0 <= min_predictor_weight < 1.0),
    }
    for name, (value, ok) in checks.items():
        if not ok:
            raise SpecError(f"{name}={value!r} is not valid; see the fit() docstring for allowed values")
    return FitOptions(
        seed=int(seed),
        n_random_starts=n_random_starts,
        n_local=n_local,
        n_polish=n_polish,
        max_iterations=max_iterations,
        min_predictor_weight=float(min_predictor_weight),
        global_search=bool(global_search),
    )


def _check_estimator(name: str) -> str:
    if name not in ESTIMATORS:
        raise SpecError(f"estimator={name!r} is not known; choose one of {sorted(ESTIMATORS)}")
    return name


def _check_v(weights: Sequence[float] | pd.Series | None, design: Design) -> np.ndarray | None:
    """Validate user predictor weights against the design's predictor labels."""
    if weights is None:
        return None
    labels = list(design.predictor_labels)
    if isinstance(weights, pd.Series):
        unknown = [k for k in weights.index if k not in labels]
        missing = [k for k in labels if k not in weights.index]
        if unknown or missing:
            raise SpecError(
                f"predictor_weights labels do not match the predictors: unknown {unknown}, "
                f"missing {missing}; expected {labels}"
            )
        weights = weights.reindex(labels)
    v = np.asarray(weights, dtype=float).ravel()
    if v.size != len(labels):
        raise SpecError(
            f"predictor_weights has {v.size} entries for {len(labels)} predictors {labels}"
        )
    if not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        raise SpecError(
            f"predictor_weights must be finite, non-negative and not all zero; got {v.tolist()}"
        )
    return v / v.sum()
