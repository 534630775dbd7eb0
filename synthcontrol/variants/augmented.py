"""Ridge augmented synthetic control (Ben-Michael, Feller and Rothstein 2021).

The synthetic control's remaining pre-period imbalance is corrected with a ridge
outcome model fitted on the pre-period outcomes. With ``X0`` the donors' fit-window
outcomes and ``x1`` the treated unit's, both centred on the donors' mean of each
period (``X0`` is ``J x T0``), and ``w`` the synthetic control weights,

    w_aug = w + X0 (X0' X0 + lambda I)^(-1) (x1 - X0' w).

Because the columns of the centred ``X0`` sum to zero, ``w_aug`` still sums to one,
but its entries may be negative: the estimator extrapolates beyond the donors' hull,
and the result says so (``extras["negative_weights"]``). ``lambda -> inf`` gives back
the synthetic control.

``w`` is the classic fit of the spec (with the default spec, the outcome in every
fit-window period, this is the outcome synthetic control augsynth uses). ``lambda``
is given (``estimator_options={"lambda_": x}``) or chosen as augsynth 0.2.0 does
(``R/ridge_lambda.R``, ``get_lambda_errors`` and ``choose_lambda``), by hold-out
cross-validation over the pre-period:

* the outcomes are centred once, on the donors' mean of each pre-period;
* fold ``i`` (``i = 1 .. T0 - holdout``) holds out periods ``i .. i + holdout - 1``
  and trains on *all the other* pre-periods: the outcome synthetic control
  (simplex least squares) and the ridge correction are fitted there and the
  squared error of the augmented weights is summed over the held-out periods
  (as in augsynth the last fold ends one period before the pre-period does, so
  the last pre-period is never held out);
* the grid is ``lambda_max * (1e-8)^(k / 20)``, ``k = 0..20``, with ``lambda_max``
  the largest squared singular value of the centred donor outcomes;
* the default choice rule is augsynth's ``min_1se = TRUE``: the *largest*
  ``lambda`` whose mean fold error is within one standard error (standard
  deviation of the fold errors over the square root of their number) of the
  smallest mean error; ``min_1se=False`` takes the minimiser.

On California (outcome only, 38 donors) this picks ``lambda`` = 429.8 and an
average effect of -15.95, as pysyncon 1.7.0's ``AugSynth(use_covariates=False)``;
on Basque too. pysyncon's grid runs one step higher than augsynth's (from
``lambda_max * 10^0.4``), so where the one-standard-error rule reaches the top of
the grid (Texas) pysyncon picks that extra value and we augsynth's ``lambda_max``.
"""

from __future__ import annotations

from dataclasses import replace
import numpy as np

from .._arrays import rmspe
from ..errors import DonorPoolError, SpecError
from ..estimators import Estimate, FitRequest, nested_search
from ..registry import Setting, register_estimator
from ..spec import Design
from ..weights import discrepancy, outcome_loss, simplex_least_squares
from ._common import is_nonnegative_number, is_positive_int

__all__ = ["ridge_correction", "lambda_grid", "choose_ridge_lambda", "fit_augmented"]

_N_LAMBDAS = 20
_LAMBDA_MIN_RATIO = 1e-8


def _centred(z1: np.ndarray, Z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Treated ``(T0,)`` and donors ``(J, T0)``, centred on the donors' period means."""
    means = Z0.mean(axis=1)
    return z1 - means, (Z0 - means[:, None]).T


def ridge_correction(z1: np.ndarray, Z0: np.ndarray, w: np.ndarray, lambda_: float) -> np.ndarray:
    """Augmented weights ``w + X0 (X0'X0 + lambda I)^(-1) (x1 - X0'w)``.

    Parameters
    ----------
    z1, Z0 : ndarray, shapes (T0,) and (T0, J)
        Treated and donor outcomes over the pre-period.
    w : ndarray, shape (J,)
        Synthetic control weights (summing to one).
    lambda_ : float
        Ridge penalty, ``> 0``.

    Examples
    --------
    >>> import numpy as np
    >>> Z0 = np.array([[1.0, 2.0, 4.0], [2.0, 1.0, 0.0]])
    >>> z1 = np.array([5.0, -1.0])           # outside the donors' hull
    >>> w_aug = ridge_correction(z1, Z0, np.array([0.0, 0.0, 1.0]), 1e-9)
    >>> round(float(w_aug.sum()), 8), np.round(Z0 @ w_aug, 4)
    (1.0, array([ 5., -1.]))
    """
    x1, X0 = _centred(z1, Z0)
    return _ridge_step(x1, X0, w, lambda_)


def _ridge_step(x1: np.ndarray, X0: np.ndarray, w: np.ndarray, lambda_: float) -> np.ndarray:
    """``w + X0 (X0'X0 + lambda I)^(-1) (x1 - X0'w)`` on centred ``x1 (T,)``, ``X0 (J, T)``."""
    imbalance = x1 - X0.T @ w
    return w + X0 @ np.linalg.solve(X0.T @ X0 + lambda_ * np.eye(X0.shape[1]), imbalance)


def lambda_grid(Z0: np.ndarray) -> np.ndarray:
    """augsynth's ridge grid: ``lambda_max * (1e-8)^(k / 20)``, ``k = 0..20``."""
    _, X0 = _centred(np.zeros(Z0.shape[0]), Z0)
    lambda_max = float(np.linalg.svd(X0, compute_uv=False)[0]) ** 2
    return lambda_max * _LAMBDA_MIN_RATIO ** (np.arange(_N_LAMBDAS + 1) / _N_LAMBDAS)


def choose_ridge_lambda(
    z1: np.ndarray, Z0: np.ndarray, *, holdout: int = 1, min_1se: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """Ridge penalty by augsynth's hold-out cross-validation over the pre-period.

    Fold ``i`` holds out pre-periods ``i .. i + holdout - 1`` and fits the outcome
    synthetic control and the ridge correction on every other pre-period (see the
    module docstring; augsynth 0.2.0 ``get_lambda_errors``).

    Parameters
    ----------
    z1, Z0 : ndarray
        As in :func:`ridge_correction`.
    holdout : int, default 1
        Length of each held-out block (augsynth's ``holdout_length``).
    min_1se : bool, default True
        True (augsynth's default): the largest ``lambda`` whose mean error is
        within one standard error of the smallest; False: the minimiser.

    Returns
    -------
    lambda_ : float
    lambdas, errors : ndarray
        The grid (descending) and the mean squared hold-out error of each value.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z0 = rng.normal(size=(12, 6)).cumsum(axis=0)
    >>> lam, grid, errors = choose_ridge_lambda(Z0[:, :2].mean(axis=1) + 0.1, Z0)
    >>> bool(lam in grid), grid.size, errors.shape
    (True, 21, (21,))
    """
    lambdas = lambda_grid(Z0)
    x1, X0 = _centred(z1, Z0)  # centred once on all pre-periods, as augsynth
    T0 = len(z1)
    errors = np.zeros((T0 - holdout, lambdas.size))
    for i in range(T0 - holdout):
        test = np.zeros(T0, dtype=bool)
        test[i : i + holdout] = True
        w, _ = simplex_least_squares(X0[:, ~test].T - x1[~test, None])
        for k, lam in enumerate(lambdas):
            w_aug = _ridge_step(x1[~test], X0[:, ~test], w, lam)
            errors[i, k] = float(np.sum((x1[test] - X0[:, test].T @ w_aug) ** 2))
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(errors.shape[0]) if errors.shape[0] > 1 else np.zeros_like(mean)
    best = int(np.argmin(mean))
    if min_1se:
        best = int(np.min(np.flatnonzero(mean <= mean[best] + se[best])))  # grid descends
    return float(lambdas[best]), lambdas, mean


_SETTINGS = {
    "lambda_": Setting(
        None, lambda v: v is None or (is_nonnegative_number(v) and v > 0), "None (cross-validated) or a number > 0"
    ),
    "holdout": Setting(1, is_positive_int, "an integer >= 1, shorter than the pre-period"),
    "min_1se": Setting(True, lambda v: isinstance(v, bool), "True or False"),
}


@register_estimator("augmented", settings=_SETTINGS, uses_predictor_weights=True,
                    chosen_from_data={"lambda_": "lambda_"})
def fit_augmented(design: Design, request: FitRequest) -> Estimate:
    """Ridge augmented synthetic control of ``design``.

    Options (``estimator_options``): ``lambda_`` fixes the ridge penalty (default:
    cross-validated), ``holdout`` (default 1) and ``min_1se`` (default True) set the
    cross-validation. ``extras`` holds ``lambda_``, ``lambda_chosen_by``,
    ``cv_errors`` ((lambda, error) pairs), ``negative_weights`` (bool),
    ``scm_weights`` (before the correction), ``scm_average_effect`` and
    ``scm_pre_rmspe``. Predictor weights, given or searched, serve the base fit.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> res = sc.fit(sc.datasets.load_smoking(), spec, estimator="augmented")
    >>> round(float(res.weights.sum()), 10), res.pre_rmspe <= res.extras["scm_pre_rmspe"]
    (1.0, True)
    """
    settings = request.settings
    base = nested_search(design, request)
    X, _ = design.scaled_predictors()
    z1, Z0 = design.outcome[design.fit_mask, 0], design.outcome[design.fit_mask, 1:]
    lambda_, cv = _ridge_lambda(z1, Z0, settings)
    w = ridge_correction(z1, Z0, base.weights, lambda_)
    C = discrepancy(X[:, 0], X[:, 1:], base.predictor_weights)
    solution = replace(
        base,
        weights=w,
        loss=outcome_loss(z1, Z0, w),
        inner_objective=float(np.sum((C @ w) ** 2)),
        lower_bound=float("nan"),
        certified=False,
        tie_broken=False,
    )
    post = design.post_mask
    scm_gap = design.outcome[:, 0] - design.outcome[:, 1:] @ base.weights
    details = (
        ("lambda_", lambda_),
        ("lambda_chosen_by", "cross-validation" if settings["lambda_"] is None else "given"),
        ("cv_errors", cv),
        ("negative_weights", bool(np.any(w < 0))),
        ("scm_weights", tuple(base.weights.tolist())),
        ("scm_average_effect", float(np.mean(scm_gap[post])) if post.any() else float("nan")),
        ("scm_pre_rmspe", float(rmspe(scm_gap, design.pre_mask))),
    )
    return Estimate(solution, details=details)


def _ridge_lambda(z1: np.ndarray, Z0: np.ndarray, settings: dict) -> tuple[float, tuple]:
    """``(lambda, cv_errors)``: the given ``lambda_``, else the cross-validated one.

    Raises
    ------
    SpecError
        Too few fit-window periods for the hold-out folds.
    DonorPoolError
        Donors identical in every fit-window period: the ridge grid is empty.
    """
    if settings["lambda_"] is not None:
        return float(settings["lambda_"]), ()
    holdout, T0 = settings["holdout"], len(z1)
    if holdout > T0 - 2:
        fix = f"use holdout <= {T0 - 2}, " if T0 > 2 else ""
        raise SpecError(
            f"estimator_options['holdout']={holdout} leaves too few of the {T0} fit-window periods to "
            f"cross-validate lambda_ (it needs holdout <= T0 - 2): {fix}give "
            "estimator_options['lambda_'] (a number > 0) or widen fit_window"
        )
    if np.ptp(Z0, axis=1).max() == 0:
        raise DonorPoolError(
            "estimator 'augmented': the donors have identical outcomes in every fit-window period, so "
            "the ridge correction is zero for every lambda_ and cross-validation has nothing to choose: "
            "give estimator_options['lambda_'] (any number > 0 gives the synthetic control) or use "
            "estimator='classic'"
        )
    lambda_, lambdas, errors = choose_ridge_lambda(z1, Z0, holdout=holdout, min_1se=settings["min_1se"])
    return lambda_, tuple(zip(lambdas.tolist(), errors.tolist()))
