"""The outer problem's compiled loss: ``L`` at a search point, and its gradient.

A search point ``y`` (log-scale predictor weights, :func:`to_predictor_weights`)
gives ``v``, the inner solve of :mod:`synthcontrol.weights._nnls` gives ``W(v)``,
and the loss is ``|D W(v)|^2 / T0`` with ``D = Z0 - z1 1'`` the ``(T0, J)`` outcome
discrepancies scaled to unit maximum entry; the gradient follows by implicit
differentiation of the inner KKT system. Losses are rounded (:data:`LOSS_BITS`) so
that round-off cannot steer a search. :func:`screen` evaluates many points at once.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import _compiled
from ._nnls import OK, _back_substitute, inner_row_scales, solve_simplex

#: Losses are compared after rounding to this many significant bits: values that
#: differ only by round-off (the same data in other units or another order) then
#: compare equal, and the search takes the same path (2^-36 is about 1.5e-11,
#: far below the search's own tolerances).
LOSS_BITS = 36


# ------------------------------------------------------------------------ rounded loss


@_compiled
def snapped(value):
    """``value`` rounded to :data:`LOSS_BITS` significant bits."""
    if value == 0.0 or not np.isfinite(value):
        return value
    mantissa, exponent = math.frexp(value)
    return math.ldexp(np.round(mantissa * 2.0**LOSS_BITS) / 2.0**LOSS_BITS, exponent)


@_compiled
def support_loss(D, w, passive, p):
    """``|D w|^2 / T0`` summed over the support only."""
    total = 0.0
    for t in range(D.shape[0]):
        s = 0.0
        for k in range(p):
            s += D[t, passive[k]] * w[passive[k]]
        total += s * s
    return total / D.shape[0]


# --------------------------------------------------------------------- dense solve


@_compiled
def _solve_dense(A, x, original, original_x):
    """Solve ``A y = x`` in place (``x`` becomes ``y``, ``A`` is overwritten) by
    Gaussian elimination with partial pivoting; on a (numerically) singular ``A``,
    the least-squares solution. ``original`` and ``original_x`` (at least the sizes
    of ``A`` and ``x``) are work space."""
    n = A.shape[0]
    scale = 0.0
    for i in range(n):
        original_x[i] = x[i]
        for j in range(n):
            original[i, j] = A[i, j]
            if abs(A[i, j]) > scale:
                scale = abs(A[i, j])
    singular = scale == 0.0
    for k in range(n):
        if singular:
            break
        pivot = k
        for i in range(k + 1, n):
            if abs(A[i, k]) > abs(A[pivot, k]):
                pivot = i
        if abs(A[pivot, k]) <= 1e-13 * scale:
            singular = True
            break
        if pivot != k:
            for j in range(n):
                A[k, j], A[pivot, j] = A[pivot, j], A[k, j]
            x[k], x[pivot] = x[pivot], x[k]
        for i in range(k + 1, n):
            f = A[i, k] / A[k, k]
            if f != 0.0:
                for j in range(k, n):
                    A[i, j] -= f * A[k, j]
                x[i] -= f * x[k]
    if singular:  # rare: LAPACK takes over from the saved system
        solution = np.linalg.lstsq(np.ascontiguousarray(original[:n, :n]), original_x[:n].copy(), rcond=1e-13)[0]
        for i in range(n):
            x[i] = solution[i]
        return
    _back_substitute(A, x, n, x)  # in place: x[k] is read before it is overwritten


# ------------------------------------------------------------------------ outer problem


@_compiled
def to_predictor_weights(y, delta, v):
    """``v`` from the search variable ``y``: ``q = softmax(y)`` on the simplex, then
    ``v = (delta max(q) + (1 - delta) q) / sum(...)``, onto exactly the admissible
    class ``min v >= delta max v`` (every admissible ``v`` is reached). Working with
    logarithms lets a search move a weight across orders of magnitude in one step:
    optimal ``v`` often span ``delta`` to one. ``q`` is left in ``v`` scaled by the
    returned normaliser's inverse; returns the index of ``max(q)`` (first on ties)
    and the normaliser."""
    K = y.shape[0]
    top, arg = -np.inf, 0
    for k in range(K):
        if y[k] > top:
            top, arg = y[k], k
    if not np.isfinite(top):
        for k in range(K):
            v[k] = 1.0 / K
        return 0, 1.0
    total = 0.0
    for k in range(K):
        v[k] = math.exp(y[k] - top)
        total += v[k]
    norm = 0.0
    for k in range(K):
        v[k] = delta * (1.0 / total) + (1.0 - delta) * v[k] / total
        norm += v[k]
    for k in range(K):
        v[k] /= norm
    return arg, norm


@_compiled
def work_arrays(M, D):
    """Work space of the loss and gradient evaluations of a problem (``M`` (K+1, J),
    ``D`` (T0, J)): allocated once per kernel call, so an evaluation allocates nothing."""
    m, K, T0 = M.shape[0] + 1, M.shape[0] - 1, D.shape[0]
    return (np.empty((m, m)), np.empty((m, m)), np.empty(m), np.empty(m), np.empty(T0), np.empty(K), np.empty(K))


@_compiled
def _evaluate(x, delta, M, D, state, work, want_gradient, grad_x, check_warm=True):
    """Loss at the search point ``x`` and, if asked, its gradient in ``x``.

    ``state`` is the tuple of work arrays of a problem (see
    :class:`~synthcontrol.weights.canonical._Problem`), ``work``
    that of :func:`work_arrays`. The gradient comes from implicit differentiation of
    the inner KKT system on the support of ``W(v)``: one extra small dense solve.
    """
    (v, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w, counters) = state
    to_predictor_weights(x, delta, v)
    inner_row_scales(v, rs)
    status = solve_simplex(M, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w, check_warm)
    counters[0] += 1
    if status != OK:
        counters[1] += 1
    loss = snapped(support_loss(D, w, passive, n_passive[0]))
    if want_gradient:
        _gradient(x, delta, M, D, state, work, grad_x)
    return loss


@_compiled
def _gradient(x, delta, M, D, state, work, grad_x):
    """The gradient in ``x`` of the loss at ``x``, from the inner solution that the
    last evaluation (at ``x``) left in ``state``."""
    (v, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w, counters) = state
    (kkt_full, saved, rhs_full, saved_rhs, fitted, grad_v, q) = work
    K, T0, p = M.shape[0] - 1, D.shape[0], n_passive[0]
    arg, norm = to_predictor_weights(x, delta, v)
    kkt, rhs = kkt_full[: p + 1, : p + 1], rhs_full[: p + 1]
    for a in range(p):
        ja = passive[a]
        for c in range(a, p):
            jc = passive[c]
            s = 0.0
            for k in range(K):
                s += v[k] * M[k, ja] * M[k, jc]
            kkt[a, c] = s
            kkt[c, a] = s
        kkt[a, p] = 1.0
        kkt[p, a] = 1.0
    kkt[p, p] = 0.0
    rhs[p] = 0.0
    for t in range(T0):
        s = 0.0
        for a in range(p):
            s += D[t, passive[a]] * w[passive[a]]
        fitted[t] = s
    for a in range(p):
        s = 0.0
        for t in range(T0):
            s += D[t, passive[a]] * fitted[t]
        rhs[a] = 2.0 * s / T0
    _solve_dense(kkt, rhs, saved, saved_rhs)
    total = 0.0
    for k in range(K):
        residual = 0.0
        direction = 0.0
        for a in range(p):
            residual += M[k, passive[a]] * w[passive[a]]
            direction += M[k, passive[a]] * rhs[a]
        grad_v[k] = -residual * direction / norm
        total += grad_v[k]
    # Chain rule through v~ = delta max(q) + (1 - delta) q and q = softmax(y).
    top = x[arg]
    total_exp = 0.0
    for k in range(K):
        q[k] = math.exp(x[k] - top)
        total_exp += q[k]
    for k in range(K):
        q[k] /= total_exp
    for k in range(K):
        grad_x[k] = (1.0 - delta) * grad_v[k]
    grad_x[arg] += delta * total
    dot = 0.0
    for k in range(K):
        dot += grad_x[k] * q[k]
    for k in range(K):
        grad_x[k] = q[k] * (grad_x[k] - dot)


@_compiled
def _loss(x, delta, M, D, state, work, check_warm=True):
    return _evaluate(x, delta, M, D, state, work, False, work[5], check_warm)


@_compiled
def loss_at(x, delta, M, D, state):
    """The outcome loss at the search point ``x`` (one inner solve)."""
    return _loss(x, delta, M, D, state, work_arrays(M, D))


@_compiled
def support_signature(passive, p):
    """A hash of the set ``passive[:p]`` (the same for any order of its members)."""
    signature = np.uint64(0)
    for k in range(p):
        h = np.uint64(passive[k] + 1) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
        signature += h * np.uint64(0xBF58476D1CE4E5B9)
    return signature


@_compiled
def screen(points, delta, M, D, state, losses, supports):
    """The loss at each row of ``points`` (search variables), warm-starting each
    inner solve from the last, and a signature of the support of each ``W(v)``
    (equal supports, equal signatures). Consecutive points are unrelated, so the
    warm support is not checked first (see :func:`~synthcontrol.weights._nnls.nnls`)."""
    passive, n_passive = state[3], state[4]
    work = work_arrays(M, D)
    for i in range(points.shape[0]):
        losses[i] = _loss(points[i], delta, M, D, state, work, False)
        supports[i] = support_signature(passive, n_passive[0])

