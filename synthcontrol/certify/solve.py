"""Certify, or improve, a solution of the nested problem (see :mod:`synthcontrol.certify`):
the ill-posed case first, then the outcome-only bound, then the MIQP and its check."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..weights import optimal_face_tiebreak, outcome_loss, simplex_least_squares
from .certificate import CERTIFIED_RTOL, DEFAULT_TIME_LIMIT, IMPROVEMENT_RTOL, Certificate, relative_gap, require_solver
from .check import judge
from .model import NestedMiqp, weightable_donors

__all__ = ["certify_nested"]

FloatArray = np.ndarray


def certify_nested(
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    *,
    predictor_weights: FloatArray,
    weights: FloatArray,
    min_ratio: float = 1e-8,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> Certificate:
    """Certify, or improve, a solution of the nested problem over the admissible class.

    Parameters
    ----------
    x1, X0, z1, Z0 : ndarray
        The nested problem, as :func:`~synthcontrol.weights.choose_predictor_weights`
        takes it (scaled predictors, fit-window outcomes).
    predictor_weights, weights : ndarray
        The search's ``v`` and ``W(v)``: the solver's first incumbent, whose loss is
        the cutoff.
    min_ratio : float, default 1e-8
        ``delta`` of the class ``min(v) >= delta * max(v)``: the search option
        ``min_predictor_weight``. Must be in ``(0, 1)``: with a zero floor ``v = 0``
        is in the closure of the class, every ``w`` is inner-optimal there, and the
        infimum is the outcome-only bound, generally not attained.
    time_limit : float or None, default 60
        Seconds for the certification (None: no limit): the solver gets what the
        screen left, counted in CPU time so that a busy machine does not change
        which fits finish. When it runs out the status is ``"bounded"`` unless the
        bound already meets the loss.

    Returns
    -------
    Certificate

    Raises
    ------
    MissingDependencyError
        When ``pyscipopt`` is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from synthcontrol.weights import choose_predictor_weights
    >>> rng = np.random.default_rng(3)
    >>> x1, X0 = rng.normal(size=3) + 3.0, rng.normal(size=(3, 6))
    >>> z1, Z0 = rng.normal(size=5), rng.normal(size=(5, 6))
    >>> sol = choose_predictor_weights(x1, X0, z1, Z0)
    >>> cert = certify_nested(x1, X0, z1, Z0, predictor_weights=sol.predictor_weights,
    ...                       weights=sol.weights)
    >>> cert.certified, cert.loss <= sol.loss, cert.gap <= 1e-6
    (True, True, True)
    """
    if not 0.0 < min_ratio < 1.0:
        raise ValueError(f"min_ratio={min_ratio!r}: the certificate needs a floor in (0, 1)")
    pyscipopt = require_solver()
    start = time.perf_counter()
    x1, X0, z1, Z0 = (np.asarray(a, dtype=float) for a in (x1, X0, z1, Z0))
    search_loss = outcome_loss(z1, Z0, np.asarray(weights, dtype=float))
    w_match = _hull_match(x1, X0)
    if w_match is not None:
        certificate = _ill_posed(x1, X0, z1, Z0, w_match, min_ratio, search_loss)
        return replace(certificate, seconds=time.perf_counter() - start)
    _, bound_sq = simplex_least_squares(Z0 - z1[:, None])
    outcome_bound = bound_sq / len(z1)
    if search_loss <= outcome_bound * (1 + CERTIFIED_RTOL):
        return Certificate(
            "certified", search_loss, outcome_bound, relative_gap(search_loss, outcome_bound),
            min_ratio, time.perf_counter() - start, search_loss,
            note="the loss equals the outcome-only bound, which no donor weights can beat",
        )
    # The search's own support is weightable by definition (a guard against LP round-off).
    weightable = weightable_donors(x1, X0) | (np.asarray(weights) > 0)
    model = NestedMiqp(pyscipopt, x1, X0, z1, Z0, weightable, min_ratio, outcome_bound)
    model.seed(np.asarray(predictor_weights, dtype=float), np.asarray(weights, dtype=float), search_loss)
    budget = None if time_limit is None else max(time_limit - (time.perf_counter() - start), 0.0)
    outcome = model.solve(budget)
    certificate = judge(x1, X0, z1, Z0, outcome, min_ratio, search_loss)
    return replace(
        certificate, seconds=time.perf_counter() - start, n_donors_screened=int(np.sum(~weightable))
    )


def _hull_match(x1: FloatArray, X0: FloatArray) -> FloatArray | None:
    """Donor weights reproducing ``x1`` exactly (to round-off), or None.

    The same test as the search's: the simplex least-squares residual of ``X0 - x1``
    at most ``1e-24`` times the largest squared entry.
    """
    C = X0 - x1[:, None]
    w, residual = simplex_least_squares(C)
    return w if residual <= 1e-24 * max(float(np.max(C**2)), 1e-300) else None


def _ill_posed(
    x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray,
    w_match: FloatArray, min_ratio: float, search_loss: float,
) -> Certificate:
    """The optimistic value when ``x1`` lies in the donors' hull: the best outcome fit
    among the weights with ``X0 w = x1``, the inner optimum for every admissible ``v``."""
    equal = np.full(x1.size, 1.0 / x1.size)
    w_best, _ = optimal_face_tiebreak(x1, X0, equal, z1, Z0, w_match)
    value = min(outcome_loss(z1, Z0, w_best), outcome_loss(z1, Z0, w_match))
    w_best = w_best if outcome_loss(z1, Z0, w_best) <= outcome_loss(z1, Z0, w_match) else w_match
    better = value < search_loss * (1 - IMPROVEMENT_RTOL)
    return Certificate(
        "ill-posed", value, value, 0.0, min_ratio, 0.0, search_loss,
        weights=w_best if better else None,
        note="the treated unit lies in the donors' convex hull in predictor space: every "
        "admissible v gives the same predictor match, so v is not identified; the loss is "
        "the optimistic value (best outcome fit among the exact matches)",
    )
