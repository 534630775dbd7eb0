"""De-meaned (intercept-shifted) synthetic control.

Ferman and Pinto (2021) and Doudchenko and Imbens (2016): the synthetic control may
differ from the treated unit by a constant. Removing each unit's pre-period mean and
matching the de-meaned outcomes over the simplex,

    w = argmin_{w in simplex} |(z1 - mean(z1)) - (Z0 - mean(Z0)) w|^2,

then shifting the synthetic outcome by ``intercept = mean(z1) - mean(Z0) w``, is the
same as minimising ``|z1 - Z0 w - c|^2`` over simplex ``w`` and a free constant ``c``.
Where several ``w`` are optimal (donors parallel over the pre-period, more donors
than pre-periods and an exact fit) the least-norm one is taken
(:func:`~synthcontrol.weights.least_norm_tiebreak`: unique, so the same for any
order, names or units of the donors, and equal weights on exact duplicates).
The fit-window periods before treatment are the pre-period; the spec's predictors
are not used. The problem is the project's exact simplex least squares.
"""

from __future__ import annotations

import numpy as np

from ..estimators import Estimate, FitRequest
from ..registry import register_estimator
from ..spec import Design
from ..weights import least_norm_tiebreak, simplex_least_squares
from ._common import outcome_estimate, pre_outcomes

__all__ = ["demeaned_weights", "fit_demeaned"]


def demeaned_weights(z1: np.ndarray, Z0: np.ndarray) -> tuple[np.ndarray, float]:
    """Simplex weights matching de-meaned outcomes, and the intercept.

    Parameters
    ----------
    z1 : ndarray, shape (T0,)
        Treated outcome over the pre-period.
    Z0 : ndarray, shape (T0, J)
        Donor outcomes over the pre-period.

    Returns
    -------
    weights : ndarray, shape (J,)
    intercept : float
        ``mean(z1) - mean(Z0) @ weights``.

    Examples
    --------
    >>> import numpy as np
    >>> Z0 = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    >>> w, c = demeaned_weights(Z0[:, 0] + 10.0, Z0)
    >>> np.round(w, 10).tolist(), round(c, 10)
    ([1.0, 0.0], 10.0)
    """
    gaps = (Z0 - Z0.mean(axis=0)) - (z1 - z1.mean())[:, None]
    # Donors parallel over the pre-period, or more donors than pre-periods, leave
    # many optimal weightings with different post-period paths: one is chosen by a
    # rule that does not depend on how the donors are given. (Merging duplicates
    # first would not do: de-meaning leaves donors that differ by a constant equal
    # or not depending on round-off, and the least-norm point is continuous anyway.)
    weights = least_norm_tiebreak(gaps, simplex_least_squares(gaps)[0])
    return weights, float(z1.mean() - Z0.mean(axis=0) @ weights)


@register_estimator("demeaned")
def fit_demeaned(design: Design, request: FitRequest) -> Estimate:
    """The de-meaned synthetic control of ``design`` (no estimator options).

    There is no predictor-weight search; the intercept is ``result.intercept``.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> res = sc.fit(sc.datasets.load_smoking(), spec, estimator="demeaned")
    >>> bool(abs(res.path["gap"][res.design.pre_mask].mean()) < 1e-8)   # the intercept centres the fit
    True
    """
    z1, Z0 = pre_outcomes(design)
    weights, intercept = demeaned_weights(z1, Z0)
    residual = z1 - Z0 @ weights - intercept
    return outcome_estimate(
        design, weights, objective=float(residual @ residual) / len(z1), intercept=intercept,
        details=(("intercept", intercept),),
    )
