"""Synthetic difference-in-differences (Arkhangelsky, Athey, Hirshberg, Imbens and Wager 2021).

With pre-period ``P`` (the fit-window periods before treatment, ``T0`` of them) and
post-period ``Q`` (``T1`` periods), controls ``Y0`` and treated outcome ``y1``:

* unit weights ``omega`` minimise
  ``|(Y0[P] - mean) omega - (y1[P] - mean)|^2 / T0 + zeta_omega^2 |omega|^2`` over the
  simplex, the means taken over time (the paper's unit weights with intercept), with
  ``zeta_omega = (N_tr T1)^(1/4) * sigma`` and ``sigma`` the standard deviation of the
  controls' first differences over the pre-period;
* time weights ``lambda`` minimise
  ``|(Y0[P]' - mean) lambda - (mean_Q Y0 - mean)|^2 / N0 + zeta_lambda^2 |lambda|^2``
  over the simplex, the means taken over units (time weights with intercept),
  ``zeta_lambda = 1e-6 * sigma``;
* the estimate is the weighted difference in differences
  ``tau = (mean_Q y1 - lambda' y1[P]) - (mean_Q Y0 omega - lambda' Y0[P] omega)``.

Both weighting problems are ridge-penalised simplex least squares, solved exactly by
the project's NNLS reduction (stacking ``sqrt(rows) * zeta * I`` under the centred
matrix), where the reference R package synthdid runs Frank-Wolfe to a tolerance.

Path: the synthetic outcome is ``Y0 omega + intercept`` with
``intercept = lambda' (y1[P] - Y0[P] omega)``, the time-weighted pre-period gap, so
the fit is aligned where the time weights put their mass and the post-period mean of
the gap is exactly ``tau``: ``result.average_effect`` is the SDID estimate.

Standard error: the placebo variance of the paper's Algorithm 4 (for one treated
unit) draws a control at random as pseudo-treated, re-estimates with the other
controls (same ``zeta``), and takes the standard deviation of the estimates over the
draws (times ``sqrt((B - 1) / B)``). Here every control is used once instead of
drawing ``B`` of them: the exact limit of Algorithm 4 as ``B`` grows, and free of a
seed. Estimator ``"did"`` is the same estimate with uniform unit and time weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from ..estimators import Estimate, FitRequest
from ..registry import Setting, register_estimator
from ..spec import Design
from ..weights import least_norm_tiebreak, simplex_least_squares
from ._common import is_nonnegative_number, outcome_estimate

__all__ = ["SDIDEstimate", "sdid_estimate", "ridge_simplex", "noise_level", "placebo_standard_error", "fit_sdid", "fit_did"]

#: The paper's time-weight regularisation, relative to the noise level.
ZETA_LAMBDA_FACTOR = 1e-6


@dataclass(frozen=True)
class SDIDEstimate:
    """Weights and point estimate of one SDID (or DID) fit.

    Attributes
    ----------
    tau : float
        The weighted difference in differences.
    unit_weights : ndarray, shape (N0,)
    time_weights : ndarray, shape (T0,)
    intercept : float
        Time-weighted pre-period gap ``lambda' (y1[P] - Y0[P] omega)``.
    """

    tau: float
    unit_weights: np.ndarray
    time_weights: np.ndarray
    intercept: float


def noise_level(Y0_pre: np.ndarray) -> float:
    """Standard deviation of the controls' first differences over the pre-period."""
    return float(np.std(np.diff(Y0_pre, axis=0), ddof=1))


def ridge_simplex(A: np.ndarray, b: np.ndarray, zeta: float, intercept: bool = True) -> np.ndarray:
    """``argmin |(A - mean) w - (b - mean)|^2 / rows + zeta^2 |w|^2`` over the simplex,
    means over rows (synthdid's ``sc.weight.fw``); because ``sum(w) = 1`` the residual
    is ``(A_c - b_c 1') w``. ``intercept=False`` drops the centring (synthdid's
    ``sc_estimate`` unit weights). With ``zeta = 0`` the optimum may not be unique;
    the least-norm one, the limit of ``zeta -> 0``, is taken
    (:func:`~synthcontrol.weights.least_norm_tiebreak`), so that the answer does not
    depend on the order, names or units of the columns."""
    rows, cols = A.shape
    if intercept:
        A, b = A - A.mean(axis=0), b - b.mean()
    discrepancy = A - b[:, None]
    if zeta == 0:
        return least_norm_tiebreak(discrepancy, simplex_least_squares(discrepancy)[0])
    with np.errstate(over="ignore"):  # the objective, unused here, overflows for a huge zeta
        weights, _ = simplex_least_squares(np.vstack([discrepancy, np.sqrt(rows) * zeta * np.eye(cols)]))
    return weights


def sdid_estimate(
    y1: np.ndarray,
    Y0: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    *,
    zeta_omega: float,
    zeta_lambda: float,
    uniform: bool = False,
) -> SDIDEstimate:
    """SDID weights and estimate for one treated unit.

    Parameters
    ----------
    y1 : ndarray, shape (T,)
        Treated outcome.
    Y0 : ndarray, shape (T, N0)
        Control outcomes.
    pre, post : ndarray of bool, shape (T,)
        Pre- and post-period masks.
    zeta_omega, zeta_lambda : float
        Ridge regularisation of unit and time weights.
    uniform : bool, default False
        Uniform unit and time weights: the plain difference in differences.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Y0 = rng.normal(size=(6, 4)).cumsum(axis=0)
    >>> y1 = Y0.mean(axis=1) + 3.0 + np.r_[0, 0, 0, 0, 2.0, 2.0]   # level shift, effect 2
    >>> post = np.arange(6) >= 4
    >>> est = sdid_estimate(y1, Y0, ~post, post, zeta_omega=0.0, zeta_lambda=0.0, uniform=True)
    >>> round(est.tau, 10)
    2.0
    """
    Y0_pre, Y0_post = Y0[pre], Y0[post]
    if not post.any() and not uniform:
        raise SpecError("synthetic difference in differences needs a post-period for its time weights")
    if uniform:
        omega = np.full(Y0.shape[1], 1.0 / Y0.shape[1])
        lam = np.full(int(pre.sum()), 1.0 / pre.sum())
    else:
        omega = ridge_simplex(Y0_pre, y1[pre], zeta_omega)
        lam = ridge_simplex(Y0_pre.T, Y0_post.mean(axis=0), zeta_lambda)
    synthetic = Y0 @ omega
    intercept = float(lam @ (y1[pre] - synthetic[pre]))
    # Without a post-period (a conformal null refit of DID) only the path is defined.
    tau = float(np.mean(y1[post] - synthetic[post]) - intercept) if post.any() else float("nan")
    return SDIDEstimate(tau, omega, lam, intercept)


def placebo_standard_error(
    Y0: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    *,
    zeta_omega: float,
    zeta_lambda: float,
    uniform: bool = False,
) -> tuple[float, np.ndarray]:
    """Placebo standard error (Algorithm 4, every control once) and the placebo estimates.

    Each control in turn is the pseudo-treated unit, the other controls its pool,
    with the regularisation of the real fit; the standard error is the population
    standard deviation of these estimates.
    """
    n = Y0.shape[1]
    estimates = np.array(
        [
            sdid_estimate(
                Y0[:, j], np.delete(Y0, j, axis=1), pre, post,
                zeta_omega=zeta_omega, zeta_lambda=zeta_lambda, uniform=uniform,
            ).tau
            for j in range(n)
        ]
    )
    return float(np.std(estimates)), estimates


_SE = {"se": Setting(True, lambda v: isinstance(v, bool), "True or False (compute the placebo standard error)")}
_SDID_SETTINGS = _SE | {
    "zeta_omega": Setting(
        None, lambda v: v is None or is_nonnegative_number(v), "None (the paper's default) or a number >= 0"
    ),
}


def _regularisation(name: str, Y0_pre: np.ndarray, n_post: int, zeta_omega: float | None) -> tuple[float, float, float]:
    """``(noise level, zeta_omega, zeta_lambda)`` as in the paper, ``zeta_omega`` unless given."""
    if Y0_pre.shape[0] < 2:
        raise SpecError(
            f"estimator {name!r} needs at least two pre-treatment periods in the fit window "
            f"(it has {Y0_pre.shape[0]}); widen fit_window"
        )
    sigma = noise_level(Y0_pre)
    if zeta_omega is None:
        zeta_omega = n_post**0.25 * sigma  # (N_tr T_post)^(1/4) sigma with N_tr = 1 per design
    return sigma, float(zeta_omega), ZETA_LAMBDA_FACTOR * sigma


def _fit(design: Design, settings: dict, name: str, uniform: bool) -> Estimate:
    y1, Y0 = design.outcome[:, 0], design.outcome[:, 1:]
    pre, post = design.pre_mask, design.post_mask
    sigma, zeta_omega, zeta_lambda = _regularisation(name, Y0[pre], int(post.sum()), settings.get("zeta_omega"))
    zetas = {"zeta_omega": zeta_omega, "zeta_lambda": zeta_lambda, "uniform": uniform}
    est = sdid_estimate(y1, Y0, pre, post, **zetas)
    pre_periods = np.asarray(design.periods, dtype=object)[pre].tolist()
    details = [
        ("tau", est.tau),
        ("intercept", est.intercept),
        ("time_weights", tuple(zip(pre_periods, est.time_weights.tolist()))),
        ("noise_level", sigma),
    ]
    if not uniform:
        details += [("zeta_omega", zeta_omega), ("zeta_lambda", zeta_lambda)]
    if settings["se"] and post.any():
        se, _ = placebo_standard_error(Y0, pre, post, **zetas)
        details.append(("se", se))
    residual = (y1 - Y0 @ est.unit_weights - est.intercept)[pre]
    return outcome_estimate(
        design, est.unit_weights, objective=float(est.time_weights @ residual**2), intercept=est.intercept,
        details=tuple(details),
    )


@register_estimator("sdid", settings=_SDID_SETTINGS, needs_post_period=True)
def fit_sdid(design: Design, request: FitRequest) -> Estimate:
    """Synthetic difference-in-differences of ``design``.

    Options (``estimator_options``): ``se`` (default True) computes the placebo
    standard error, ``zeta_omega`` overrides the unit-weight regularisation.
    ``extras`` holds ``tau`` (equal to ``average_effect``), ``intercept``,
    ``time_weights`` ((period, weight) pairs), ``noise_level``, ``zeta_omega``,
    ``zeta_lambda`` and ``se``. The spec's predictors are not used.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> res = sc.fit(sc.datasets.load_smoking(), spec, estimator="sdid")
    >>> round(res.average_effect, 1), round(res.extras["tau"], 1)
    (-15.6, -15.6)
    """
    return _fit(design, request.settings, "sdid", uniform=False)


@register_estimator("did", settings=_SE)
def fit_did(design: Design, request: FitRequest) -> Estimate:
    """Difference in differences: SDID with uniform unit and time weights.

    Option ``se`` (default True) as for ``"sdid"``.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> round(sc.fit(sc.datasets.load_smoking(), spec, estimator="did").average_effect, 1)
    -27.3
    """
    return _fit(design, request.settings, "did", uniform=True)
