"""Ties in the inner problem: among all inner-optimal donor weights, the best outcome fit.

Every minimiser of the inner problem has the same weighted fitted predictors, and
(by the KKT conditions) puts weight only on donors whose gradient component is
minimal. Restricted to those candidates the optimal face is
``F = {w >= 0, sum(w) = 1, sqrt(v) C w = r*}`` (``r*`` the unique optimal
residual). When ``F`` holds more than one point, the outcome MSPE ``|D w|^2 / T0``
is minimised over it in two exact steps, with no external solver:

1. a penalty NNLS, ``min_{u >= 0} |D u|^2 + rho^2 (|sqrt(v) C u - r*|^2 + (1'u - 1)^2)``
   with a large ``rho``, solved by the compiled active set warm-started at the
   basic solution (which lies on ``F``): it finds the support of the answer;
2. the exact KKT polish on that support: the equality-constrained least-squares
   problem ``min |D_S x|^2`` s.t. ``sqrt(v) C_S x = r*``, ``1'x = 1`` solved as one
   linear system, so that the answer lies on ``F`` to round-off.

The answer replaces the basic solution only when it is inner-optimal and improves
the outcome fit, both judged relative to the scale of the numbers compared.
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from .inner import FloatArray, _power_of_two, outcome_loss

__all__ = ["optimal_face_tiebreak", "face_tiebreak"]

#: Weight of the face constraints against the outcome fit in the penalty NNLS
#: (both scaled to unit size): the face is met to about 1 / PENALTY^2 before the polish.
#: Larger values lose the dual values of the active set to round-off (they grow as
#: PENALTY^2 times machine precision).
PENALTY = 1e3
#: Relative round-off allowed when comparing objectives and checking constraints.
RELATIVE_TOLERANCE = 1e-9


def optimal_face_tiebreak(
    x1: FloatArray,
    X0: FloatArray,
    v: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    w: FloatArray,
) -> tuple[FloatArray, bool]:
    """Among all inner-optimal donor weights, the one with the best outcome fit.

    Parameters
    ----------
    x1, X0 : ndarray, shapes (K,) and (K, J)
        Treated and donor predictors.
    v : ndarray, shape (K,)
        Predictor weights.
    z1, Z0 : ndarray, shapes (T0,) and (T0, J)
        Treated and donor outcomes over the fit window.
    w : ndarray, shape (J,)
        An inner-optimal donor weight vector (e.g. from :func:`solve_weights`).

    Returns
    -------
    weights : ndarray, shape (J,)
    changed : bool
        True when a different optimal weight vector with a better outcome fit was chosen.

    Examples
    --------
    >>> import numpy as np
    >>> X0 = np.array([[1.0, 1.0, 5.0]])       # donors 0 and 1 match the treated unit
    >>> Z0 = np.array([[3.0, 1.0, 0.0], [4.0, 2.0, 0.5]])
    >>> w, changed = optimal_face_tiebreak(np.array([1.0]), X0, np.array([1.0]),
    ...                                    Z0[:, 1], Z0, np.array([1.0, 0.0, 0.0]))
    >>> np.round(w, 12), changed
    (array([0., 1., 0.]), True)
    """
    C = np.asarray(X0, float) - np.asarray(x1, float)[:, None]
    D = np.asarray(Z0, float) - np.asarray(z1, float)[:, None]
    C_unit = C / _power_of_two(float(np.max(np.abs(C))) or 1.0)
    D_unit = D / _power_of_two(float(np.max(np.abs(D))) or 1.0)
    w_new = face_tiebreak(C_unit, D_unit, np.asarray(v, float), np.asarray(w, float))
    changed = w_new is not None and outcome_loss(z1, Z0, w_new) < outcome_loss(z1, Z0, w)
    return (w_new, True) if changed else (np.asarray(w, float), False)


def face_tiebreak(C: FloatArray, D: FloatArray, v: FloatArray, w: FloatArray) -> FloatArray | None:
    """The best outcome fit on the optimal face of ``W(v)``, or None if nothing better.

    ``C`` (K, J) and ``D`` (T0, J) are the predictor and outcome discrepancies at
    unit scale, ``w`` an inner-optimal basic solution.
    """
    Cv = np.sqrt(v / np.max(v))[:, None] * C
    residual = Cv @ w
    gradient = Cv.T @ residual
    # Gradients within round-off of the support's are candidates; extra ones are
    # harmless (the answer must still pass the inner-optimality check below).
    tolerance = 1e-9 * max(float(np.max(np.abs(gradient))), float(np.max(np.abs(Cv))) ** 2)
    candidates = np.flatnonzero(gradient <= float(np.max(gradient[w > 0])) + tolerance)
    face = np.vstack([Cv[:, candidates], np.ones((1, candidates.size))])
    if candidates.size <= face.shape[0] and np.linalg.matrix_rank(face) == candidates.size:
        return None
    u = _penalty_nnls(Cv[:, candidates], residual, D[:, candidates], w[candidates])
    if u is None:
        return None
    exact = _polish(Cv[:, candidates], residual, D[:, candidates], u)
    if exact is None:
        return None
    w_new = np.zeros_like(w)
    w_new[candidates] = exact
    inner_old = float(residual @ residual)
    inner_new = float(np.sum((Cv @ w_new) ** 2))
    scale = float(np.max(np.abs(Cv))) ** 2
    inner_ok = inner_new <= inner_old * (1 + RELATIVE_TOLERANCE) + 1e-15 * scale
    loss_old, loss_new = float(np.sum((D @ w) ** 2)), float(np.sum((D @ w_new) ** 2))
    better = loss_new < loss_old - RELATIVE_TOLERANCE * loss_old
    return w_new if inner_ok and better else None


def _penalty_nnls(A: FloatArray, target: FloatArray, D: FloatArray, start: FloatArray) -> FloatArray | None:
    """``argmin_{u >= 0} |D u|^2 + PENALTY^2 (|A u - target|^2 + (1'u - 1)^2)``, warm-started
    at ``start`` (a point of the face)."""
    K, n = A.shape
    M = np.ascontiguousarray(np.vstack([A, np.ones((1, n)), D]))
    m = M.shape[0]
    rs = np.concatenate([np.full(K + 1, PENALTY), np.ones(D.shape[0])])
    b = np.zeros(m)
    b[:K] = PENALTY * target
    b[K] = PENALTY
    u = np.where(start > 0, start, 0.0)
    passive = np.zeros(m, dtype=np.int64)
    support = np.flatnonzero(u)[:m]
    passive[: support.size] = support
    n_passive = np.array([support.size], dtype=np.int64)
    # The system's rows carry PENALTY, so its dual values carry round-off of about
    # PENALTY^2 times machine precision: a smaller entry threshold lets columns
    # enter on round-off and cycle. A cycle stopped by the cap still leaves a point
    # whose support the exact polish below checks and completes.
    tolerance = 64.0 * np.finfo(float).eps * m * PENALTY**2
    status = _kernels.nnls(
        M, rs, b, u, passive, n_passive, np.zeros(n, dtype=np.int8), np.empty((m, m)), np.empty((m, m)),
        np.empty(m), np.empty(m), np.empty(n), np.empty(m), tolerance, 4 * m + 20,
    )
    usable = status in (_kernels.OK, _kernels.ITERATION_LIMIT) and u.sum() > 0
    return u if usable else None


def _polish(A: FloatArray, target: FloatArray, D: FloatArray, u: FloatArray) -> FloatArray | None:
    """The exact minimiser of ``|D x|^2`` on ``{A x = target, 1'x = 1}`` restricted to the
    support of ``u``, dropping the most negative weight and solving again (a few
    times) when the support was not quite right; None if that does not settle."""
    support = np.flatnonzero(u > 1e-12 * float(np.max(u)))
    constraints = np.vstack([A, np.ones((1, A.shape[1]))])
    rhs = np.append(target, 1.0)
    for _ in range(4):
        E, n = constraints[:, support], support.size
        kkt = np.zeros((n + E.shape[0], n + E.shape[0]))
        kkt[:n, :n] = D[:, support].T @ D[:, support]
        kkt[:n, n:] = E.T
        kkt[n:, :n] = E
        solution = np.linalg.lstsq(kkt, np.append(np.zeros(n), rhs), rcond=1e-14)[0][:n]
        largest = float(np.max(np.abs(solution)))
        if solution.min() >= -1e-12 * largest:
            x = np.zeros(A.shape[1])
            x[support] = np.maximum(solution, 0.0)
            violation = np.max(np.abs(constraints @ x - rhs))
            size = float(np.max(np.abs(constraints) @ np.abs(x))) + float(np.max(np.abs(rhs)))
            return x / x.sum() if violation <= RELATIVE_TOLERANCE * size else None
        support = np.delete(support, int(np.argmin(solution)))
    return None
