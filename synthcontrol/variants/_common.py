"""Pieces every variant estimator shares: reading its options, and packing a result.

Each variant returns the one result type, :class:`~synthcontrol.results.SynthResult`,
so that placebos, leave-one-out and conformal inference refit it through
:func:`~synthcontrol.estimators.fit_design` without special cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import SpecError
from ..results import FitOptions, SynthResult
from ..spec import Design
from ..weights import NestedSolution, outcome_loss

__all__ = [
    "Option",
    "read_options",
    "is_nonnegative_number",
    "refuse_predictor_weights",
    "pre_outcomes",
    "outcome_result",
]


@dataclass(frozen=True)
class Option:
    """One estimator setting: its default, a check, and the allowed values in words."""

    default: Any
    check: Callable[[Any], bool]
    allowed: str


def read_options(estimator: str, options: FitOptions, known: Mapping[str, Option]) -> dict:
    """The estimator's settings from ``options.estimator_options``, checked.

    Raises
    ------
    SpecError
        Naming the unknown or invalid key and the values it allows.
    """
    given = dict(options.estimator_options)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SpecError(
            f"estimator_options {unknown} are not settings of estimator {estimator!r}; "
            f"it accepts {sorted(known)}"
        )
    values = {}
    for name, option in known.items():
        value = given.get(name, option.default)
        if not option.check(value):
            raise SpecError(
                f"estimator_options[{name!r}]={value!r} is not valid for estimator "
                f"{estimator!r}; allowed: {option.allowed}"
            )
        values[name] = value
    return values


def is_nonnegative_number(value: Any) -> bool:
    """True for a finite real number >= 0 (not a bool)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and value >= 0
    )


def pre_outcomes(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Treated and donor outcomes over the fit-window periods before treatment."""
    Z = design.outcome[design.pre_mask]
    return Z[:, 0], Z[:, 1:]


def outcome_result(
    design: Design,
    weights: np.ndarray,
    *,
    estimator: str,
    options: FitOptions,
    objective: float,
    intercept: float = 0.0,
    details: tuple = (),
) -> SynthResult:
    """A result for an estimator that matches on outcomes rather than predictors.

    The predictors of the spec play no part in such an estimator, so its predictor
    weights are reported as NaN (an honest "not used", rather than a made-up
    ``v``), and ``details`` says so with ``("predictors_used", False)``. The lower
    bound is NaN too: the classic bound (best simplex fit without an intercept)
    does not bound an estimator with an intercept or unconstrained weights.
    """
    z1, Z0 = pre_outcomes(design)
    _, scale = design.scaled_predictors()
    solution = NestedSolution(
        predictor_weights=np.full(len(design.predictor_labels), np.nan),
        weights=np.asarray(weights, dtype=float),
        loss=outcome_loss(z1 - intercept, Z0, weights),
        inner_objective=float(objective),
        lower_bound=float("nan"),
        certified=False,
        n_starts=0,
        n_evaluations=1,
    )
    return SynthResult(
        design=design,
        solution=solution,
        scale=scale,
        options=options,
        predictor_weights_given=False,
        estimator=estimator,
        intercept=float(intercept),
        details=(("predictors_used", False), *details),
    )


def refuse_predictor_weights(estimator: str, predictor_weights: np.ndarray | None) -> None:
    """Reject user predictor weights for an estimator that matches on outcomes."""
    if predictor_weights is not None:
        raise SpecError(
            f"estimator {estimator!r} matches on pre-period outcomes and uses no predictor "
            "weights; drop predictor_weights (and reuse_predictor_weights in inference), or "
            "use estimator='classic', 'penalized' or 'augmented'"
        )
