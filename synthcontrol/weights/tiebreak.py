"""Ties in the inner problem: among all inner-optimal donor weights, the best outcome fit.

Every minimiser of the inner problem has the same weighted fitted predictors, and
(by the KKT conditions) puts weight only on donors whose gradient component is
minimal. Restricted to those candidates the optimal face is
``F = {w >= 0, sum(w) = 1, sqrt(v) C w = r*}`` (``r*`` the unique optimal
residual). When ``F`` holds more than one point, the outcome MSPE ``|D w|^2 / T0`` is
minimised over it exactly, with no external solver:

1. a penalty NNLS, ``min_{u >= 0} |D u|^2 + rho^2 (|sqrt(v) C u - r*|^2 + (1'u - 1)^2)``
   with a large ``rho``, solved by the compiled active set warm-started at the
   basic solution: a guess of the answer's support, nothing more;
2. a primal active set on ``F`` itself, started at the basic solution (a point of
   ``F``) with the guessed support and the basic support free to move: each step
   solves the equality-constrained least-squares problem on the free weights,
   stops where a weight reaches zero, and frees a fixed weight whose multiplier
   is negative. Every iterate lies on ``F`` and none is worse than the start, so
   a wrong guess costs steps, never the answer.

The answer replaces the basic solution only when it is inner-optimal and improves
the outcome fit, both judged relative to the scale of the numbers compared.
"""

from __future__ import annotations

import numpy as np

from . import _nnls
from .inner import FloatArray, _power_of_two, outcome_loss

__all__ = ["optimal_face_tiebreak", "face_tiebreak", "least_norm_tiebreak"]

#: Weight of the face constraints against the outcome fit in the penalty NNLS
#: (both scaled to unit size): the guess meets the face to about 1 / PENALTY^2.
#: Larger values lose the dual values of the active set to round-off (they grow as
#: PENALTY^2 times machine precision).
PENALTY = 1e3
#: Relative round-off allowed when comparing objectives and checking constraints.
RELATIVE_TOLERANCE = 1e-9
#: Newton steps allowed to :func:`least_norm_tiebreak` (each is one small solve; it
#: usually needs a handful).
LEAST_NORM_STEPS = 100


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
    # harmless: the face is {Cv w = r*} whatever the candidates, and every point of it
    # has the optimal inner objective |r*|^2.
    tolerance = 1e-9 * max(float(np.max(np.abs(gradient))), float(np.max(np.abs(Cv))) ** 2)
    candidates = np.flatnonzero(gradient <= float(np.max(gradient[w > 0])) + tolerance)
    face = np.vstack([Cv[:, candidates], np.ones((1, candidates.size))])
    if candidates.size <= face.shape[0] and np.linalg.matrix_rank(face) == candidates.size:
        return None
    start = w[candidates]
    guess = _penalty_nnls(Cv[:, candidates], residual, D[:, candidates], start)
    free = start > 0
    if guess is not None:
        free |= guess > 0
    exact = _active_set(face, np.append(residual, 1.0), D[:, candidates], start, free)
    w_new = np.zeros_like(w)
    w_new[candidates] = exact / exact.sum()
    inner_old = float(residual @ residual)
    inner_new = float(np.sum((Cv @ w_new) ** 2))
    scale = float(np.max(np.abs(Cv))) ** 2
    inner_ok = inner_new <= inner_old * (1 + RELATIVE_TOLERANCE) + 1e-15 * scale
    loss_old, loss_new = float(np.sum((D @ w) ** 2)), float(np.sum((D @ w_new) ** 2))
    better = loss_new < loss_old - RELATIVE_TOLERANCE * loss_old
    return w_new if inner_ok and better else None


def _penalty_nnls(A: FloatArray, target: FloatArray, D: FloatArray, start: FloatArray) -> FloatArray | None:
    """``argmin_{u >= 0} |D u|^2 + PENALTY^2 (|A u - target|^2 + (1'u - 1)^2)``, warm-started
    at ``start`` (a point of the face): a guess of the answer's support."""
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
    # The rows carry PENALTY, and so does the round-off bound of the dual values that
    # decides entry. A cycle stopped by the cap still leaves a usable guess: the exact
    # active set below starts from the face, not from this point.
    status = _nnls.nnls(
        M, rs, b, u, passive, n_passive, np.zeros(n, dtype=np.int8), np.empty((m, m)), np.empty((m, m)),
        np.empty(m), np.empty(m), np.empty(n), np.empty(m), _nnls.DUAL_SAFETY, 4 * m + 20,
    )
    usable = status in (_nnls.OK, _nnls.ITERATION_LIMIT) and u.sum() > 0
    return u if usable else None


def _active_set(E: FloatArray, e: FloatArray, D: FloatArray, x: FloatArray, free: FloatArray) -> FloatArray:
    """``argmin |D x|^2`` over the face ``{x >= 0, E x = e}`` by a primal active set.

    Starts at ``x`` (a point of the face) with the variables of ``free`` allowed to
    move; every step stays on the face and never raises the objective, so the answer
    is at least as good as the start even if the iteration cap stops it. On the free
    set the equality-constrained problem is solved in the null space of ``E`` (no
    normal equations: ``D`` may be rank-deficient, the minimum-norm step is taken);
    a step that would make a weight negative stops at it and fixes it at zero; at a
    minimiser over the free set, the fixed weight with the most negative multiplier
    is freed. Each step also removes the round-off drift from the face.
    """
    x, free = np.maximum(np.asarray(x, float), 0.0), np.asarray(free, bool).copy()
    scale = max(float(np.max(np.abs(D))), 1e-300)
    # A weight freed on a multiplier that is negative by round-off only is fixed again
    # by a step of length zero; it may not enter again until a step lowers the
    # objective, or the same weight would cycle until the cap.
    refused, newest = np.zeros(x.size, bool), -1
    objective = float(np.sum((D @ x) ** 2))
    for _ in range(3 * x.size + 20):
        step = _face_step(E, e, D, x, free)
        negative = free & (step < 0.0)
        ratios = np.where(negative, x / np.where(negative, -step, 1.0), np.inf)
        alpha = min(1.0, float(ratios.min()))
        x = np.where(free, np.maximum(x + alpha * step, 0.0), 0.0)
        previous, objective = objective, float(np.sum((D @ x) ** 2))
        if objective < previous:
            refused[:] = False
        if alpha < 1.0:
            leaving = int(np.argmin(ratios))
            refused[leaving] = alpha == 0.0 and leaving == newest
            free[leaving] = False
            x[~free] = 0.0
            continue
        newest = _entering(E, D, x, free, refused, scale)
        if newest < 0:
            return x
        free[newest] = True
    return x


def _face_step(E: FloatArray, e: FloatArray, D: FloatArray, x: FloatArray, free: FloatArray) -> FloatArray:
    """The step from ``x`` to the minimiser of ``|D y|^2`` on ``{E y = e}`` with ``y``
    zero outside ``free`` (minimum-norm where that is not unique)."""
    index = np.flatnonzero(free)
    step = np.zeros(x.size)
    if index.size == 0:
        return step
    E_F, D_F = E[:, index], D[:, index]
    U, s, Vt = np.linalg.svd(E_F, full_matrices=True)
    rank = int(np.sum(s > 1e-12 * max(float(s.max()), 1e-300))) if s.size else 0
    # Back onto {E_F y = e} (round-off drift), then the best move within its null space.
    correction = Vt[:rank].T @ ((U[:, :rank].T @ (e - E_F @ x[index])) / s[:rank])
    null = Vt[rank:].T
    p = correction
    if null.shape[1]:
        target = -(D_F @ (x[index] + correction))
        z = np.linalg.lstsq(D_F @ null, target, rcond=1e-12)[0]
        p = correction + null @ z
    step[index] = p
    return step


def _entering(E: FloatArray, D: FloatArray, x: FloatArray, free: FloatArray, refused: FloatArray,
              scale: float) -> int:
    """A fixed weight, not ``refused``, whose multiplier is negative (the most
    negative), or -1 when ``x`` is optimal: the gradient ``2 D'D x`` minus the face's
    part, read off the free weights, must be non-negative on the fixed ones."""
    fixed = np.flatnonzero(~free & ~refused)
    if fixed.size == 0:
        return -1
    gradient = 2.0 * (D.T @ (D @ x))
    index = np.flatnonzero(free)
    multipliers = np.linalg.lstsq(E[:, index].T, gradient[index], rcond=1e-12)[0] if index.size else np.zeros(E.shape[0])
    reduced = gradient[fixed] - E[:, fixed].T @ multipliers
    size = max(float(np.max(np.abs(gradient))), float(np.max(np.abs(E[:, fixed].T @ multipliers))))
    # Below the round-off of 2 D'D x (a few eps of |D|^2 per row) a sign means nothing.
    roundoff = 64.0 * D.shape[0] * np.finfo(float).eps * scale**2
    best = int(np.argmin(reduced))
    return int(fixed[best]) if reduced[best] < -max(1e-9 * size, roundoff) else -1


def least_norm_tiebreak(C: FloatArray, w: FloatArray) -> FloatArray:
    """Among the minimisers of ``|C w|^2`` over the simplex, the one of least norm.

    Where the simplex least-squares problem has many minimisers (more columns than
    rows and an exact fit, columns parallel over the rows, duplicates), which one an
    active set returns depends on round-off, so on the order, labels and units of
    the data. They all share the residual ``r* = C w`` (the objective is strictly
    convex in ``C w``), so they form the face ``{w >= 0, 1'w = 1, C w = r*}``, whose
    least-norm point is unique: the same for any column order and any scale of
    ``C``, equal weights on duplicate columns, and the limit of a vanishing ridge
    penalty ``zeta^2 |w|^2`` (synthdid's weights as ``zeta -> 0``).

    Parameters
    ----------
    C : ndarray, shape (T, J)
        The problem's matrix (for donor weights: the donors' gaps to the treated unit).
    w : ndarray, shape (J,)
        A minimiser, e.g. from :func:`~synthcontrol.weights.simplex_least_squares`.

    Returns
    -------
    ndarray, shape (J,)
        The least-norm minimiser; ``w`` itself where it already is one (to a relative
        1e-9 in the squared norm) or where the solve does not reach the face.

    Notes
    -----
    The face is ``{x >= 0, E x = E w}`` with ``E`` orthonormal rows spanning those of
    ``[C; 1']``. Solved through the dual: ``x = max(0, E'y)`` with ``y`` (at most T + 1
    values) maximising the concave piecewise quadratic ``e'y - |max(0, E'y)|^2 / 2``,
    ``e = E w``, by Newton steps on the current support with a backtracking line
    search (a finite Newton method): linear in ``J``, each step one small solve.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[1.0, 1.0, -1.0]])   # w = (a, 1/2 - a, 1/2) fits exactly for any a
    >>> least_norm_tiebreak(C, np.array([0.5, 0.0, 0.5])).round(12).tolist()
    [0.25, 0.25, 0.5]
    """
    C, w = np.asarray(C, float), np.asarray(w, float)
    B = np.vstack([C / _power_of_two(float(np.max(np.abs(C))) or 1.0), np.ones((1, C.shape[1]))])
    # The face as {E x = E w} with orthonormal rows E spanning those of B: dependent
    # rows (de-meaned data sum to zero) would make {B x = B w} inconsistent by
    # round-off, and the dual unbounded. Rows dependent to 1e-9 count as dependent:
    # data shifted far from zero (levels 1e5 times their spread) keep only that
    # much of the dependence, and ignoring it moves the objective by about 1e-18.
    _, singular, Vt = np.linalg.svd(B, full_matrices=False)
    E = Vt[singular > 1e-9 * singular[0]]
    e = E @ w
    tolerance = 1e-12
    y = e  # x = E'y starts at the projection of w onto the face's directions
    for _ in range(LEAST_NORM_STEPS):
        s = E.T @ y
        gradient = e - E @ np.maximum(s, 0.0)
        if float(np.max(np.abs(gradient))) <= tolerance:
            break
        y = y + _dual_step(E, e, y, s, gradient)
    candidate = np.maximum(E.T @ y, 0.0)
    on_face = float(np.max(np.abs(E @ candidate - e))) <= 1e3 * tolerance
    shorter = float(candidate @ candidate) < float(w @ w) * (1.0 - RELATIVE_TOLERANCE)
    return candidate / candidate.sum() if on_face and shorter else w


def _dual_step(B: FloatArray, b: FloatArray, y: FloatArray, s: FloatArray, gradient: FloatArray) -> FloatArray:
    """A Newton step of the dual of :func:`least_norm_tiebreak` (steepest ascent where
    the support gives no ascent direction), shortened until it gains enough. ``B``
    and ``b`` are the face's constraints ``B x = b``, ``s = B'y``."""
    def dual(point: FloatArray) -> float:
        positive = np.maximum(B.T @ point, 0.0)
        return float(b @ point - 0.5 * positive @ positive)

    support = B[:, s > 0]
    direction = np.linalg.lstsq(support @ support.T, gradient, rcond=1e-13)[0]
    if not float(gradient @ direction) > 1e-14 * float(gradient @ gradient):
        direction = gradient
    slope, start, step = float(gradient @ direction), dual(y), 1.0
    while step > 1e-12 and dual(y + step * direction) < start + 1e-4 * step * slope:
        step /= 2.0
    return step * direction
