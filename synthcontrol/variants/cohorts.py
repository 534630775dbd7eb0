"""One cohort of :func:`~synthcontrol.variants.fit_several`: units treated at the same
time, fitted as a block with synthdid's estimators (``"sdid"``, ``"sc"``, ``"did"``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Hashable

import numpy as np

from .._arrays import frozen
from ..errors import SpecError
from .sdid import SDIDEstimate, ZETA_LAMBDA_FACTOR, noise_level, ridge_simplex, sdid_estimate

__all__ = ["CohortFit", "fit_cohort", "cohort_estimate", "contrast"]

#: synthdid's ``sc_estimate`` ridge, relative to the noise level.
SC_ETA_OMEGA = 1e-6


@dataclass(frozen=True, eq=False)
class CohortFit:
    """One cohort (units sharing a treatment start) fitted as a block.

    Attributes
    ----------
    start : hashable
        The cohort's treatment start.
    treated, donors, periods : tuple
    treated_outcome : ndarray, shape (T, N1)
    donor_outcome : ndarray, shape (T, N0)
    pre_mask, post_mask : ndarray of bool, shape (T,)
    estimate : SDIDEstimate
        Unit weights (over ``donors``), time weights (over the pre-periods), intercept, tau.
    zeta_omega, zeta_lambda, noise_level : float
    """

    start: Hashable
    treated: tuple
    donors: tuple
    periods: tuple
    treated_outcome: np.ndarray
    donor_outcome: np.ndarray
    pre_mask: np.ndarray
    post_mask: np.ndarray
    estimate: SDIDEstimate
    zeta_omega: float
    zeta_lambda: float
    noise_level: float

    @property
    def n_cells(self) -> int:
        """Treated unit-periods, ``N1 * T1``."""
        return len(self.treated) * int(self.post_mask.sum())

    def unit_effect(self, column: int) -> float:
        """The estimate for one treated unit with the cohort's weights."""
        return contrast(self.treated_outcome[:, column], self.donor_outcome, self.estimate, self.pre_mask, self.post_mask)

    def effect_curve(self) -> np.ndarray:
        """Per post-period effect of the average treated unit (synthdid_effect_curve)."""
        gap = self.treated_outcome.mean(axis=1) - self.donor_outcome @ self.estimate.unit_weights
        return gap[self.post_mask] - self.estimate.time_weights @ gap[self.pre_mask]


def fit_cohort(estimator: str, start: Hashable, units: list, shared: tuple) -> CohortFit:
    donors, periods, pre, post, Y1, Y0 = shared
    if pre.sum() < 2:
        raise SpecError(
            f"the cohort starting {start!r} has {int(pre.sum())} pre-treatment period(s) in the fit "
            "window; the noise level of the regularisation needs at least two: widen fit_window"
        )
    sigma = noise_level(Y0[pre])
    zeta_omega, zeta_lambda = _zetas(estimator, sigma, len(units), int(post.sum()))
    estimate = cohort_estimate(estimator, Y1.mean(axis=1), Y0, pre, post, zeta_omega, zeta_lambda)
    estimate = replace(estimate, unit_weights=frozen(estimate.unit_weights), time_weights=frozen(estimate.time_weights))
    for mask in (pre, post):
        mask.setflags(write=False)  # fresh arrays of the design, now owned by the result
    return CohortFit(
        start=start, treated=tuple(units), donors=donors, periods=periods,
        treated_outcome=frozen(Y1), donor_outcome=frozen(Y0),
        pre_mask=pre, post_mask=post, estimate=estimate,
        zeta_omega=zeta_omega, zeta_lambda=zeta_lambda, noise_level=sigma,
    )


def _zetas(estimator: str, sigma: float, n_treated: int, n_post: int) -> tuple[float, float]:
    """synthdid's default ``(zeta_omega, zeta_lambda)``."""
    if estimator == "sdid":
        return (n_treated * n_post) ** 0.25 * sigma, ZETA_LAMBDA_FACTOR * sigma
    if estimator == "sc":
        return SC_ETA_OMEGA * sigma, 0.0
    return 0.0, 0.0


def cohort_estimate(
    estimator: str, y1: np.ndarray, Y0: np.ndarray, pre: np.ndarray, post: np.ndarray,
    zeta_omega: float, zeta_lambda: float,
) -> SDIDEstimate:
    """One block estimate of the average treated unit ``y1``."""
    if estimator != "sc":
        return sdid_estimate(y1, Y0, pre, post, zeta_omega=zeta_omega, zeta_lambda=zeta_lambda,
                             uniform=estimator == "did")
    omega = ridge_simplex(Y0[pre], y1[pre], zeta_omega, intercept=False)
    estimate = SDIDEstimate(0.0, omega, np.zeros(int(pre.sum())), 0.0)
    return replace(estimate, tau=contrast(y1, Y0, estimate, pre, post))


def contrast(y1: np.ndarray, Y0: np.ndarray, estimate: SDIDEstimate, pre: np.ndarray, post: np.ndarray) -> float:
    """The weighted difference in differences with fixed weights."""
    gap = y1 - Y0 @ estimate.unit_weights
    return float(gap[post].mean() - estimate.time_weights @ gap[pre])
