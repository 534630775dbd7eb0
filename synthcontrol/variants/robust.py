"""Robust synthetic control (Amjad, Shah and Shen 2018, JMLR).

The donors' outcome matrix ``Y0`` (``T x J``, every period of the design, before and
after treatment) is de-noised by hard singular-value thresholding,

    M = (1 / p) * sum_{i <= k} s_i u_i v_i',

keeping the ``k`` largest singular values (``p`` is the share of observed entries:
1 here, since the design has no missing donor outcome). The donor weights are then
the ridge regression of the treated unit's pre-period outcome on the de-noised
donors' pre-period outcomes, with no intercept and no constraint:

    w = argmin_w |y1[P] - M[P] w|^2 + lambda |w|^2,

the minimum-norm least-squares solution when ``lambda = 0`` (the paper's
Algorithm 1; ``lambda > 0`` its ridge variant). The weights may be negative and
need not sum to one.

Options (``estimator_options``):

* ``sv_count``: how many singular values to keep; or
* ``threshold``: keep the singular values larger than this (at least one), in
  outcome units; give at most one of the two. Default: Gavish and Donoho's (2014)
  optimal hard threshold for an unknown noise level, ``omega(beta) * median(s)``
  with ``beta`` the aspect ratio of ``Y0`` (smaller over larger dimension) and
  ``omega(beta) = 0.56 beta^3 - 0.95 beta^2 + 1.82 beta + 1.43`` (at least one
  value kept). It is scale-free and needs no tuning; the paper itself leaves the
  threshold to the user, and results can be sensitive to it (California keeps 6
  values: -4.4; with 2: -17.3), so report a few choices;
* ``lambda_``: ridge penalty ``>= 0`` (default 0), in squared outcome units.

Reference: pysyncon 1.7.0 ``RobustSynth.fit(dataprep, lambda_, sv_count=...)``
computes the same weights (on California, Basque and Texas, with ``sv_count`` 2
and 4, the largest weight difference measured was 1.4e-8; ``benchmarks/bench_variants.py``) with two conventions worth knowing: it regresses
on every period from the first period of the data to the end of
``time_optimize_ssr`` (here: the fit window before treatment, so set ``fit_window``
to start at the first period to reproduce it), and it counts zero outcomes as
missing when computing ``p``. As in pysyncon, the synthetic outcome applies the
weights to the observed donor outcomes (the paper's Algorithm 1 applies them to the
de-noised matrix instead).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import ArgumentError, SpecError
from ..estimators import Estimate, FitRequest
from ..registry import Setting, register_estimator
from ..spec import Design
from ._common import is_nonnegative_number, is_positive_int, outcome_estimate

__all__ = ["denoise", "robust_weights", "optimal_sv_count", "fit_robust"]


def denoise(Y0: np.ndarray, sv_count: int) -> np.ndarray:
    """The rank-``sv_count`` truncation of ``Y0`` (hard singular-value thresholding).

    Parameters
    ----------
    Y0 : ndarray, shape (T, J)
        Donor outcomes, complete.
    sv_count : int
        Singular values kept, ``>= 1``.

    Examples
    --------
    >>> import numpy as np
    >>> Y0 = np.outer(np.arange(1.0, 5.0), [1.0, 2.0, 3.0])      # rank one
    >>> bool(np.allclose(denoise(Y0 + 0.0, 1), Y0))
    True
    """
    u, s, vt = np.linalg.svd(Y0, full_matrices=False)
    k = min(int(sv_count), s.size)
    return (u[:, :k] * s[:k]) @ vt[:k]


def robust_weights(y1: np.ndarray, M: np.ndarray, lambda_: float) -> np.ndarray:
    """``argmin_w |y1 - M w|^2 + lambda |w|^2`` (minimum norm when ``lambda = 0``).

    Parameters
    ----------
    y1 : ndarray, shape (T0,)
        Treated pre-period outcome.
    M : ndarray, shape (T0, J)
        De-noised donor pre-period outcomes.
    lambda_ : float
        Ridge penalty, ``>= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> M = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> robust_weights(M @ np.array([2.0, -1.0]), M, 0.0).round(10).tolist()
    [2.0, -1.0]
    """
    J = M.shape[1]
    stacked = np.vstack([M, np.sqrt(lambda_) * np.eye(J)])
    target = np.concatenate([y1, np.zeros(J)])
    return np.linalg.lstsq(stacked, target, rcond=None)[0]


def optimal_sv_count(Y0: np.ndarray) -> int:
    """Singular values above Gavish and Donoho's (2014) optimal hard threshold.

    For a ``T x J`` matrix of signal plus white noise of unknown level, the
    threshold is ``omega(beta) * median(s)``, ``beta = min(T, J) / max(T, J)``,
    with their approximation ``omega(beta) = 0.56 beta^3 - 0.95 beta^2 + 1.82 beta + 1.43``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 30)) * 5
    >>> optimal_sv_count(signal + 0.1 * rng.normal(size=(40, 30)))
    2
    """
    s = np.linalg.svd(Y0, compute_uv=False)
    beta = min(Y0.shape) / max(Y0.shape)
    omega = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    return max(int(np.sum(s > omega * np.median(s))), 1)


_SETTINGS = {
    "sv_count": Setting(None, lambda v: v is None or is_positive_int(v),
                        "None (optimal hard threshold) or an integer >= 1"),
    "threshold": Setting(
        None, lambda v: v is None or (is_nonnegative_number(v) and v > 0), "None or a number > 0 (outcome units)"
    ),
    "lambda_": Setting(0.0, is_nonnegative_number, "a number >= 0 (ridge penalty)"),
}


def _one_rule(settings: Mapping[str, Any]) -> None:
    if settings["sv_count"] is not None and settings["threshold"] is not None:
        raise ArgumentError("estimator 'robust' takes sv_count or threshold, not both; drop one of them")


def _sv_count(settings: Mapping[str, Any], Y0: np.ndarray) -> tuple[int, str]:
    """``(k, how it was chosen)`` from the options."""
    if settings["sv_count"] is not None:
        k, available = int(settings["sv_count"]), min(Y0.shape)
        if k > available:
            raise SpecError(
                f"estimator_options sv_count={k} exceeds the {available} singular values of the donors' "
                f"pre-period outcomes ({Y0.shape[0]} periods x {Y0.shape[1]} donors); choose at most {available}"
            )
        return k, "given"
    if settings["threshold"] is not None:
        s = np.linalg.svd(Y0, compute_uv=False)
        return max(int(np.sum(s > settings["threshold"])), 1), "threshold"
    return optimal_sv_count(Y0), "optimal hard threshold"


@register_estimator("robust", settings=_SETTINGS, check=_one_rule,
                    chosen_from_data={"sv_count": "sv_count", "threshold": None})
def fit_robust(design: Design, request: FitRequest) -> Estimate:
    """Robust synthetic control of ``design`` (see the module docstring).

    ``extras`` holds ``sv_count``, ``sv_count_chosen_by`` (``"given"``,
    ``"threshold"`` or ``"optimal hard threshold"``), ``lambda_`` and
    ``singular_values`` of the donor outcome matrix. The spec's predictors are not
    used.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> res = sc.fit(sc.datasets.load_smoking(), spec, estimator="robust",
    ...              estimator_options={"sv_count": 4, "lambda_": 0.1})
    >>> res.extras["sv_count"], round(res.average_effect, 1)
    (4, -7.2)
    """
    settings = request.settings
    y1, Y0, pre = design.outcome[:, 0], design.outcome[:, 1:], design.pre_mask
    k, chosen_by = _sv_count(settings, Y0)
    lambda_ = float(settings["lambda_"])
    M = denoise(Y0, k)
    weights = robust_weights(y1[pre], M[pre], lambda_)
    residual = y1[pre] - M[pre] @ weights
    details = (
        ("sv_count", k),
        ("sv_count_chosen_by", chosen_by),
        ("lambda_", lambda_),
        ("singular_values", tuple(np.linalg.svd(Y0, compute_uv=False).tolist())),
    )
    return outcome_estimate(
        design, weights, objective=float(residual @ residual + lambda_ * weights @ weights), details=details
    )
