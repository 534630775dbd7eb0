"""Compiled kernels of the weighting core: one implementation, no Python twin.

Everything the nested search repeats thousands of times per fit is compiled with
numba: the non-negative least-squares active set that solves the inner problem,
the outcome loss and its gradient in ``v``, the screening of candidate ``v``,
BFGS and Nelder-Mead. ``cache=True`` stores the machine code next to this file
(``__pycache__``), so the compile cost (a few seconds) is paid once per
installation, not per process; ``nogil=True`` lets the placebo runner run fits on
threads.

The kernels call no BLAS and use no fast-math: every sum is a plain loop in a fixed
order, so a result is bitwise the same whatever the number of threads, processes
or BLAS threads, and single-threaded by construction (a fit never competes with
another job's fit for cores).

Problem layout (see :mod:`synthcontrol.weights` for the notation): ``M`` is the
``(K + 1, J)`` matrix ``[C; 1']`` with ``C = X0 - x1 1'`` scaled to unit maximum
entry, and ``D = Z0 - z1 1'`` the ``(T0, J)`` outcome discrepancies, also scaled.
A least-squares system is ``diag(rs) M`` for row scales ``rs``: the inner problem
for predictor weights ``v`` is ``rs = [sqrt(v / max v), 1]`` with right-hand side
``e_{K+1}`` (the NNLS reduction of the module docstring).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_compiled = njit(cache=True, nogil=True)

#: Status codes of :func:`nnls`.
OK, ITERATION_LIMIT, BREAKDOWN = 0, 1, 2

#: Losses are compared after rounding to this many significant bits: values that
#: differ only by round-off (the same data in other units or another order) then
#: compare equal, and the search takes the same path (2^-36 is about 1.5e-11,
#: far below the search's own tolerances).
LOSS_BITS = 36

#: A column enters the NNLS support only with a dual value above this multiple of
#: its own round-off bound (:func:`_enters`).
DUAL_SAFETY = 2.0
EPSILON = float(np.finfo(np.float64).eps)

#: A column whose remaining norm in the QR falls below this share of its own norm
#: lies in the span of the passive columns (round-off): it may not enter.
RANK_TOLERANCE = 1e-11


# ----------------------------------------------------------------------- least squares


@_compiled
def _rotation(a, b):
    # sqrt(a^2 + b^2) is a few times cheaper than hypot; the entries here are O(1)
    # (unit-scaled data, row scales at most PENALTY), so it can only underflow for
    # entries below 1e-154, where hypot takes over.
    r = math.sqrt(a * a + b * b)
    if r == 0.0 or not r < math.inf:
        r = math.hypot(a, b)
    return a / r, b / r, r


@_compiled
def _qr_append(M, rs, j, Qt, R, qtb, p, column):
    """Append column ``diag(rs) M[:, j]`` to the factorisation ``A_P = Q R`` (Givens
    rotations; ``Qt = Q'`` kept explicitly, row by row, and ``qtb = Q' b`` in step).
    False, and nothing appended, when the column lies in the span of the others.
    ``column`` (length ``m``) is work space."""
    m = M.shape[0]
    if p >= m:
        return False
    norm = 0.0
    for i in range(m):
        column[i] = rs[i] * M[i, j]
        norm += column[i] * column[i]
    for c in range(m):
        row = Qt[c]
        s = 0.0
        for i in range(m):
            s += row[i] * column[i]
        R[c, p] = s
    for i in range(m - 1, p, -1):
        if R[i, p] == 0.0:
            continue
        c, s, h = _rotation(R[i - 1, p], R[i, p])
        R[i - 1, p], R[i, p] = h, 0.0
        upper, lower = Qt[i - 1], Qt[i]
        for k in range(m):
            qa, qb = upper[k], lower[k]
            upper[k], lower[k] = c * qa + s * qb, c * qb - s * qa
        ta, tb = qtb[i - 1], qtb[i]
        qtb[i - 1], qtb[i] = c * ta + s * tb, c * tb - s * ta
    # The rotations only mixed the complement of span(A_P): a refusal leaves Q valid.
    return R[p, p] * R[p, p] > (RANK_TOLERANCE * RANK_TOLERANCE) * norm and norm > 0.0


@_compiled
def _qr_remove(position, passive, Qt, R, qtb, p):
    """Drop the column at ``position`` from ``A_P = Q R`` and from ``passive``."""
    m = Qt.shape[0]
    for c in range(position, p - 1):
        passive[c] = passive[c + 1]
        for i in range(c + 2):
            R[i, c] = R[i, c + 1]
    for i in range(position, p - 1):
        c, s, h = _rotation(R[i, i], R[i + 1, i])
        R[i, i], R[i + 1, i] = h, 0.0
        for col in range(i + 1, p - 1):
            ra, rb = R[i, col], R[i + 1, col]
            R[i, col], R[i + 1, col] = c * ra + s * rb, c * rb - s * ra
        upper, lower = Qt[i], Qt[i + 1]
        for k in range(m):
            qa, qb = upper[k], lower[k]
            upper[k], lower[k] = c * qa + s * qb, c * qb - s * qa
        ta, tb = qtb[i], qtb[i + 1]
        qtb[i], qtb[i + 1] = c * ta + s * tb, c * tb - s * ta
    return p - 1


@_compiled
def _back_substitute(R, qtb, p, z):
    for k in range(p - 1, -1, -1):
        s = qtb[k]
        for j in range(k + 1, p):
            s -= R[k, j] * z[j]
        z[k] = s / R[k, k]


@_compiled
def _residual(M, rs, b, u, passive, p, r, size):
    """``r = b - diag(rs) M u`` with ``u`` supported on ``passive[:p]``, and ``size`` the
    magnitude of its terms, ``|b| + diag(rs) |M| u``: the round-off of ``r`` is a few
    machine epsilons of ``size``, whatever the size of ``r`` itself."""
    for i in range(M.shape[0]):
        s, a = 0.0, 0.0
        for k in range(p):
            term = M[i, passive[k]] * u[passive[k]]
            s += term
            a += abs(term)
        r[i] = b[i] - rs[i] * s
        size[i] = abs(b[i]) + rs[i] * a


@_compiled
def _enters(M, rs, g, size, j, p, safety):
    """Whether column ``j``'s dual value ``g[j]`` is positive beyond round-off.

    The bound is the column's own: the error of ``(diag(rs) M)' r`` is at most about
    ``(m + p + 1) eps sum_i |rs_i M_ij| size_i`` (``size`` from :func:`_residual`). An
    absolute threshold would be too coarse for a predictor measured in small units,
    whose rows are tiny in the unit-scaled system: its gaps would never move a dual
    value past the threshold, and would be left unfitted.
    """
    if not g[j] > 0.0:
        return False
    bound = 0.0
    for i in range(M.shape[0]):
        bound += abs(rs[i] * M[i, j]) * size[i]
    return g[j] > safety * (M.shape[0] + p + 1) * EPSILON * bound


@_compiled
def _dual(M, rs, r, g):
    """``g = (diag(rs) M)' r``, row by row so that the inner loop is contiguous."""
    g[:] = 0.0
    for i in range(M.shape[0]):
        c = rs[i] * r[i]
        if c != 0.0:
            row = M[i]
            for j in range(M.shape[1]):
                g[j] += c * row[j]


@_compiled
def _warm_support_optimal(M, rs, b, u, passive, p, flags, R, qtb, z, g, r, safety):
    """Whether the warm support ``passive[:p]`` is still optimal, checked without the
    explicit ``Q`` of the main loop: a Householder QR of the support's columns (no
    ``m x m`` matrix, no rotations), the least-squares weights on it, their signs and
    the dual values of the other columns. When all pass, ``u`` holds the solution and
    True is returned; otherwise only work space was touched and the caller runs the
    full active set. During a search most solves start from a support that is still
    optimal, so this is the common path.
    """
    m = M.shape[0]
    if p > m:
        return False
    for c in range(p):
        j = passive[c]
        flags[j] = 1
        for i in range(m):
            R[i, c] = rs[i] * M[i, j]
    for i in range(m):
        qtb[i] = b[i]
    diagonal = r  # work space until the residual is formed
    for c in range(p):
        norm_all, norm = 0.0, 0.0
        for i in range(m):
            norm_all += R[i, c] * R[i, c]
        for i in range(c, m):
            norm += R[i, c] * R[i, c]
        if not norm > (RANK_TOLERANCE * RANK_TOLERANCE) * norm_all or norm == 0.0:
            return False  # numerically dependent: the main loop decides
        alpha = -math.sqrt(norm) if R[c, c] >= 0.0 else math.sqrt(norm)
        R[c, c] -= alpha  # the reflector h = x - alpha e_c, stored in R[c:, c]
        hh = norm - 2.0 * alpha * (R[c, c] + alpha) + alpha * alpha
        for col in range(c + 1, p):
            s = 0.0
            for i in range(c, m):
                s += R[i, c] * R[i, col]
            f = 2.0 * s / hh
            for i in range(c, m):
                R[i, col] -= f * R[i, c]
        s = 0.0
        for i in range(c, m):
            s += R[i, c] * qtb[i]
        f = 2.0 * s / hh
        for i in range(c, m):
            qtb[i] -= f * R[i, c]
        diagonal[c] = alpha
    for k in range(p - 1, -1, -1):
        s = qtb[k]
        for c in range(k + 1, p):
            s -= R[k, c] * z[c]
        z[k] = s / diagonal[k]
        if not z[k] > 0.0:
            return False
    for k in range(p):
        u[passive[k]] = z[k]
    _residual(M, rs, b, u, passive, p, r, z)
    _dual(M, rs, r, g)
    for j in range(M.shape[1]):
        if flags[j] == 0 and _enters(M, rs, g, z, j, p, safety):
            return False
    return True


@_compiled
def nnls(M, rs, b, u, passive, n_passive, flags, Q, R, qtb, z, g, r, safety, max_iter, check_warm=True):
    """Lawson-Hanson active set for ``min |diag(rs) M u - b|^2`` over ``u >= 0``.

    Warm-started: on entry ``u >= 0`` is supported on ``passive[:n_passive[0]]``
    (any such point will do, e.g. the last solution); on exit it is the optimum
    and ``n_passive[0]`` its support size. The least-squares problem on the
    support is kept as a QR factorisation updated by Givens rotations as columns
    enter and leave. A column enters only with a dual value above ``safety`` times
    its round-off bound (see :func:`_enters`); one
    that proves numerically dependent on the support is refused. ``flags`` (int8,
    one per column) is work space. Returns :data:`OK`, :data:`ITERATION_LIMIT` or
    :data:`BREAKDOWN`.
    """
    m, n = M.shape
    flags[:] = 0
    if check_warm and n_passive[0] > 0 and _warm_support_optimal(M, rs, b, u, passive, n_passive[0], flags, R, qtb, z, g, r, safety):
        return OK
    flags[:] = 0
    Q[:, :] = 0.0
    for i in range(m):
        Q[i, i] = 1.0
        qtb[i] = b[i]
    given, p = n_passive[0], 0
    for k in range(given):
        j = passive[k]
        if _qr_append(M, rs, j, Q, R, qtb, p, r):
            passive[p] = j
            flags[j] = 1
            p += 1
        else:
            u[j] = 0.0
    newest, iterations, need_solve = -1, 0, p > 0
    while True:
        while need_solve:
            iterations += 1
            if iterations > max_iter:
                n_passive[0] = p
                return ITERATION_LIMIT
            _back_substitute(R, qtb, p, z)
            feasible = True
            for k in range(p):
                if not z[k] > 0.0:
                    feasible = False
                    break
            if feasible:
                for k in range(p):
                    u[passive[k]] = z[k]
                if newest >= 0:
                    for j in range(n):  # progress was made: refused columns may enter again
                        if flags[j] == 2:
                            flags[j] = 0
                newest = -1
                break
            # Step from u towards z until the first weight reaches zero; it leaves.
            alpha, block = 1.0, -1
            for k in range(p):
                if not z[k] > 0.0:
                    uk = u[passive[k]]
                    step = uk / (uk - z[k]) if uk - z[k] > 0.0 else 0.0
                    if block < 0 or step < alpha:
                        alpha, block = step, k
            for k in range(p):
                j = passive[k]
                u[j] += alpha * (z[k] - u[j])
            u[passive[block]] = 0.0
            for k in range(p - 1, -1, -1):
                j = passive[k]
                if not u[j] > 0.0:
                    u[j] = 0.0
                    flags[j] = 2 if j == newest else 0
                    if j == newest:
                        newest = -1
                    p = _qr_remove(k, passive, Q, R, qtb, p)
            need_solve = p > 0
        _residual(M, rs, b, u, passive, p, r, z)  # z is free until the next solve
        _dual(M, rs, r, g)
        while True:
            best, top = -1, 0.0
            for j in range(n):
                if flags[j] == 0 and g[j] > top and _enters(M, rs, g, z, j, p, safety):
                    best, top = j, g[j]
            if best < 0:
                n_passive[0] = p
                return OK
            if _qr_append(M, rs, best, Q, R, qtb, p, r):
                break
            flags[best] = 2
        passive[p] = best
        p += 1
        flags[best] = 1
        u[best] = 0.0
        newest = best
        need_solve = True


# ------------------------------------------------------------------------ inner problem


@_compiled
def inner_row_scales(v, rs):
    """``rs = [sqrt(v / max v), 1]``: rows of the NNLS system stay O(1) for every ``v``."""
    top = 0.0
    for k in range(v.shape[0]):
        if v[k] > top:
            top = v[k]
    for k in range(v.shape[0]):
        rs[k] = np.sqrt(v[k] / top) if top > 0 else 1.0
    rs[v.shape[0]] = 1.0


@_compiled
def best_vertex(M, rs):
    """The donor whose own discrepancy ``sum_k rs_k^2 C_kj^2`` is smallest (first on ties)."""
    K = M.shape[0] - 1
    best, value = 0, np.inf
    for j in range(M.shape[1]):
        s = 0.0
        for k in range(K):
            s += (rs[k] * M[k, j]) ** 2
        if s < value:
            best, value = j, s
    return best


@_compiled
def solve_simplex(M, rs, u, passive, n_passive, flags, Q, R, qtb, z, g, r, b, w, check_warm=True):
    """Donor weights ``w`` on the simplex for the system ``diag(rs) M`` (last row ones).

    Warm-started from ``u``/``passive`` when ``n_passive[0] > 0``, else from the best
    single donor. On a failure of the warm start it restarts cold once. Returns
    the NNLS status; ``w`` is ``u / sum(u)`` (zero where ``u`` is).
    """
    m = M.shape[0]
    status = BREAKDOWN
    for attempt in range(2):
        if n_passive[0] == 0 or attempt == 1:
            for k in range(n_passive[0]):
                u[passive[k]] = 0.0
            j = best_vertex(M, rs)
            passive[0] = j
            n_passive[0] = 1
            u[j] = 1.0
        # Lawson-Hanson needs about as many steps as the support has donors (<= m);
        # a cap of a few times m stops a cycle among ties quickly.
        status = nnls(M, rs, b, u, passive, n_passive, flags, Q, R, qtb, z, g, r, DUAL_SAFETY, 10 * (m + 2), check_warm)
        if status == OK:
            break
    total = 0.0
    for k in range(n_passive[0]):
        total += u[passive[k]]
    w[:] = 0.0
    if total > 0.0:
        for k in range(n_passive[0]):
            w[passive[k]] = u[passive[k]] / total
    else:
        status = BREAKDOWN
    return status


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
    for k in range(n - 1, -1, -1):
        s = x[k]
        for j in range(k + 1, n):
            s -= A[k, j] * x[j]
        x[k] = s / A[k, k]


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

    ``state`` is the tuple of work arrays of a problem (see ``_Problem``), ``work``
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
    warm support is not checked first (see :func:`nnls`)."""
    passive, n_passive = state[3], state[4]
    work = work_arrays(M, D)
    for i in range(points.shape[0]):
        losses[i] = _loss(points[i], delta, M, D, state, work, False)
        supports[i] = support_signature(passive, n_passive[0])


@_compiled
def bfgs(x0, delta, M, D, state, max_iterations, stall_tolerance, stall_window, x_out):
    """BFGS with the analytic gradient and a backtracking (Armijo) line search.

    Stops at a stationary point, when the line search cannot descend (a kink of
    ``L``), or when the loss improved by less than ``stall_tolerance`` (relative)
    over ``stall_window`` iterations (BFGS zigzags at kinks). Returns
    ``(loss, converged)``; converged is False only when ``max_iterations`` stopped
    a search still in progress. The end point is written to ``x_out``.
    """
    K = x0.shape[0]
    work = work_arrays(M, D)
    x, g, trial, g_new, direction, Hy = x0.copy(), np.empty(K), np.empty(K), np.empty(K), np.empty(K), np.empty(K)
    f = _evaluate(x, delta, M, D, state, work, True, g)
    H = np.empty((K, K))
    _identity(H, 1.0)
    history = np.empty(max_iterations + 1)
    history[0] = f
    converged = False
    scaled = False
    for it in range(max_iterations):
        gmax = 0.0
        for k in range(K):
            gmax = max(gmax, abs(g[k]))
        if gmax <= 1e-14 * max(abs(f), 1e-300) or gmax == 0.0:
            converged = True
            break
        slope, dmax = 0.0, 0.0
        for i in range(K):
            s = 0.0
            for j in range(K):
                s -= H[i, j] * g[j]
            direction[i] = s
            slope += g[i] * s
        if slope >= 0.0:
            _identity(H, 1.0)
            slope = 0.0
            for k in range(K):
                direction[k] = -g[k]
                slope -= g[k] * g[k]
        for k in range(K):
            dmax = max(dmax, abs(direction[k]))
        # A first step of at most one unit of log(v) in any predictor weight.
        step = 1.0 if scaled else min(1.0, 1.0 / max(dmax, 1e-300))
        accepted = False
        f_new = f
        for _ in range(40):
            for k in range(K):
                trial[k] = x[k] + step * direction[k]
            f_new = _loss(trial, delta, M, D, state, work)
            if f_new <= f + 1e-4 * step * slope:
                accepted = True
                _gradient(trial, delta, M, D, state, work, g_new)  # only where the step is taken
                break
            step *= 0.5
        if not accepted:
            converged = True
            break
        sy, yy = 0.0, 0.0
        for k in range(K):
            sk = trial[k] - x[k]
            yk = g_new[k] - g[k]
            sy += sk * yk
            yy += yk * yk
        if sy > 1e-12 * yy and yy > 0.0:
            if not scaled:
                _identity(H, sy / yy)
                scaled = True
            _bfgs_update(H, trial, x, g_new, g, sy, Hy)
        for k in range(K):
            x[k] = trial[k]
            g[k] = g_new[k]
        f = f_new
        history[it + 1] = f
        if it + 1 >= stall_window:
            old = history[it + 1 - stall_window]
            if old - f <= stall_tolerance * max(abs(old), 1e-300):
                converged = True
                break
    x_out[:] = x
    return f, converged


@_compiled
def _identity(H, value):
    for i in range(H.shape[0]):
        for j in range(H.shape[1]):
            H[i, j] = value if i == j else 0.0


@_compiled
def _bfgs_update(H, x_new, x, g_new, g, sy, Hy):
    """The BFGS update of the inverse Hessian ``H`` for the step ``s = x_new - x`` and
    gradient change ``y = g_new - g`` (``sy = s'y``); ``Hy`` is work space."""
    K = H.shape[0]
    yHy = 0.0
    for i in range(K):
        t = 0.0
        for j in range(K):
            t += H[i, j] * (g_new[j] - g[j])
        Hy[i] = t
        yHy += (g_new[i] - g[i]) * t
    for i in range(K):
        si = x_new[i] - x[i]
        for j in range(K):
            sj = x_new[j] - x[j]
            H[i, j] += ((sy + yHy) * si * sj) / (sy * sy) - (Hy[i] * sj + si * Hy[j]) / sy


@_compiled
def nelder_mead(x0, delta, M, D, state, max_evaluations, step, xatol, fatol, x_out):
    """Adaptive Nelder-Mead (Gao and Han's coefficients) from ``x0``, on an initial
    simplex of edge ``step``: it crosses the kinks and flat stretches of ``L`` where
    BFGS stops. Returns the best loss and writes its point to ``x_out``."""
    n = x0.shape[0]
    work = work_arrays(M, D)
    rho, chi = 1.0, 1.0 + 2.0 / n
    psi, sigma = 0.75 - 1.0 / (2.0 * n), 1.0 - 1.0 / n
    simplex = np.empty((n + 1, n))
    values = np.empty(n + 1)
    for i in range(n + 1):
        simplex[i] = x0
        if i > 0:
            simplex[i, i - 1] = x0[i - 1] + step
        values[i] = _loss(simplex[i], delta, M, D, state, work)
    evaluations = n + 1
    centroid, xr, xe, xc = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    while evaluations < max_evaluations:
        _sort_vertices(simplex, values)
        spread, vspread = 0.0, 0.0
        for i in range(1, n + 1):
            vspread = max(vspread, abs(values[0] - values[i]))
            for k in range(n):
                spread = max(spread, abs(simplex[i, k] - simplex[0, k]))
        if spread <= xatol and vspread <= fatol:
            break
        for k in range(n):
            total = 0.0
            for i in range(n):
                total += simplex[i, k]
            centroid[k] = total / n
        _affine(xr, 1 + rho, centroid, -rho, simplex[n])
        fr = _loss(xr, delta, M, D, state, work)
        evaluations += 1
        shrink = False
        if fr < values[0]:
            _affine(xe, 1 + rho * chi, centroid, -rho * chi, simplex[n])
            fe = _loss(xe, delta, M, D, state, work)
            evaluations += 1
            if fe < fr:
                simplex[n], values[n] = xe, fe
            else:
                simplex[n], values[n] = xr, fr
        elif fr < values[n - 1]:
            simplex[n], values[n] = xr, fr
        elif fr < values[n]:
            _affine(xc, 1 + psi * rho, centroid, -psi * rho, simplex[n])
            fc = _loss(xc, delta, M, D, state, work)
            evaluations += 1
            if fc <= fr:
                simplex[n], values[n] = xc, fc
            else:
                shrink = True
        else:
            _affine(xc, 1 - psi, centroid, psi, simplex[n])
            fc = _loss(xc, delta, M, D, state, work)
            evaluations += 1
            if fc < values[n]:
                simplex[n], values[n] = xc, fc
            else:
                shrink = True
        if shrink:
            for i in range(1, n + 1):
                _affine(simplex[i], 1 - sigma, simplex[0], sigma, simplex[i])
                values[i] = _loss(simplex[i], delta, M, D, state, work)
                evaluations += 1
    best = 0
    for i in range(1, n + 1):
        if values[i] < values[best]:
            best = i
    x_out[:] = simplex[best]
    return values[best]


@_compiled
def _affine(out, a, x, b, y):
    """``out = a x + b y`` elementwise (``out`` may be ``y``)."""
    for k in range(out.shape[0]):
        out[k] = a * x[k] + b * y[k]


@_compiled
def _sort_vertices(simplex, values):
    """Sort the vertices by value, in place and stably (an insertion sort: Nelder-Mead
    replaces one vertex per step, so the rows are nearly sorted)."""
    n = values.shape[0]
    row = np.empty(simplex.shape[1])
    for i in range(1, n):
        value = values[i]
        row[:] = simplex[i]
        j = i - 1
        while j >= 0 and values[j] > value:
            values[j + 1] = values[j]
            simplex[j + 1] = simplex[j]
            j -= 1
        values[j + 1] = value
        simplex[j + 1] = row


@_compiled
def coordinate_sweep(y0, delta, M, D, state, offsets, max_sweeps, y_out):
    """Exhaustive one-dimensional moves: each predictor weight in turn is tried at
    every offset (in log(v), relative to the largest) and the best point kept, until a
    sweep improves nothing. It jumps across orders of magnitude and out of the flat
    stretches and kinks that stop gradient and simplex searches. Returns the loss."""
    K = y0.shape[0]
    work = work_arrays(M, D)
    y = y0.copy()
    trial = y0.copy()
    best = _loss(y, delta, M, D, state, work)
    for _ in range(max_sweeps):
        improved = False
        for k in range(K):
            top = -np.inf
            for i in range(K):
                if i != k and y[i] > top:
                    top = y[i]
            if K == 1:
                top = y[0]
            choice = y[k]
            for j in range(offsets.shape[0]):
                trial[:] = y
                trial[k] = top + offsets[j]
                value = _loss(trial, delta, M, D, state, work)
                if value < best:
                    best, choice, improved = value, trial[k], True
            y[k] = choice
        if not improved:
            break
    y_out[:] = y
    return best


# ------------------------------------------------------------------ the whole search


@_compiled
def search_point(v, delta, y):
    """The search variable ``y`` whose predictor weights are ``v`` (on the simplex):
    exact for an admissible ``v``; otherwise as if its weights below the floor were
    at it. Weights at the floor map to a fixed depth below the largest, so that a
    local search can move them again (far below, a change of ``y`` moves nothing)."""
    K = v.shape[0]
    total, top, low = 0.0, 0.0, np.inf
    for k in range(K):
        value = max(v[k], 0.0)
        total += value
        top = max(top, value)
        low = min(low, value)
    top /= total
    low /= total
    admissible = low >= delta * top * (1 - 1e-9) and delta > 0
    qmax = 0.0
    for k in range(K):
        q = max(v[k], 0.0) / total
        y[k] = max(q - delta * top, 0.0) if admissible else q
        qmax = max(qmax, y[k])
    floor = 1e-3 * max(delta, 1e-12)
    for k in range(K):
        y[k] = math.log(max(y[k] / qmax, floor))


@_compiled
def diverse(losses, supports, n):
    """Indices of the ``n`` lowest ``losses`` (ties in index order) whose ``supports``
    (signatures) differ pairwise, topped up with the next lowest if there are fewer
    distinct ones."""
    ranked = np.argsort(losses, kind="mergesort")
    n = min(n, losses.shape[0])
    chosen = np.empty(n, dtype=np.int64)
    taken = np.zeros(losses.shape[0], dtype=np.bool_)
    count = 0
    for i in ranked:
        if count == n:
            break
        seen = False
        for c in range(count):
            if supports[chosen[c]] == supports[i]:
                seen = True
                break
        if not seen:
            chosen[count] = i
            taken[i] = True
            count += 1
    for i in ranked:
        if count == n:
            break
        if not taken[i]:
            chosen[count] = i
            count += 1
    return chosen


@_compiled
def _support_into(state, support):
    """Copy the support of the last solve into ``support`` (sorted, padded with -1)."""
    passive, n_passive = state[3], state[4]
    support[:] = -1
    support[: n_passive[0]] = np.sort(passive[: n_passive[0]])


@_compiled
def local_search(x0, delta, M, D, state, max_iterations, stall_tolerance, stall_window, x_out, support):
    """BFGS from ``x0``; a search stopped by the iteration cap while still improving
    is restarted once from where it stopped (a fresh Hessian escapes the zigzag along
    a kink of ``L`` that usually slows it). Returns ``(loss, converged)``: the loss at
    the end point as :func:`loss_at` sees it, warm-started from the last solve, and
    the support behind that loss is written to ``support``."""
    x_out[:] = x0
    converged = False
    for _ in range(2):
        start = x_out.copy()
        _, converged = bfgs(start, delta, M, D, state, max_iterations, stall_tolerance, stall_window, x_out)
        if converged:
            break
    loss = loss_at(x_out, delta, M, D, state)
    _support_into(state, support)
    return loss, converged


@_compiled
def polish(x0, delta, M, D, state, settings, x_out, support):
    """Coordinate sweeps across orders of magnitude and Nelder-Mead from ``x0`` (both
    cross kinks and flat stretches), then :func:`local_search`. ``settings`` is the
    tuple of :func:`run_search`."""
    (max_iterations, stall_tolerance, stall_window, offsets, step, budget, _, _, _) = settings
    swept = np.empty_like(x0)
    simplexed = np.empty_like(x0)
    coordinate_sweep(x0, delta, M, D, state, offsets, 2, swept)
    nelder_mead(swept, delta, M, D, state, budget * x0.shape[0], step, 1e-9, 1e-13, simplexed)
    return local_search(simplexed, delta, M, D, state, max_iterations, stall_tolerance, stall_window, x_out, support)


@_compiled
def kick(x0, loss0, converged0, support0, delta, M, D, state, settings, x_out, support):
    """A variable-neighbourhood stage from ``x0``: every predictor weight in turn is
    moved to each of the ``levels`` (orders of magnitude relative to the largest other
    weight), the moved points are screened, and BFGS runs from the ``searches`` best
    with different supports; the best end point replaces the start when it is
    better, and the stage repeats (at most ``rounds`` times). Unlike the coordinate
    sweep it keeps moves that are worse at first: an optimum often needs one weight
    moved across several orders of magnitude and the others adjusted after it.
    Returns ``(loss, converged)`` of the point written to ``x_out`` (its support to
    ``support``)."""
    (max_iterations, stall_tolerance, stall_window, _, _, _, levels, rounds, searches) = settings
    K, L = x0.shape[0], levels.shape[0]
    x_out[:] = x0
    support[:] = support0
    loss, converged = loss0, converged0
    points = np.empty((K * L, K))
    losses = np.empty(K * L)
    signatures = np.empty(K * L, dtype=np.uint64)
    end, end_support = np.empty(K), np.empty_like(support)
    for _ in range(rounds):
        for k in range(K):
            top = x_out[0] if K == 1 else -np.inf
            for i in range(K):
                if i != k:
                    top = max(top, x_out[i])
            for level in range(L):
                points[k * L + level] = x_out
                points[k * L + level, k] = top + levels[level]
        screen(points, delta, M, D, state, losses, signatures)
        improved = False
        for i in diverse(losses, signatures, searches):
            value, done = local_search(points[i], delta, M, D, state, max_iterations, stall_tolerance,
                                       stall_window, end, end_support)
            if value < loss - stall_tolerance * loss:
                loss, converged, improved = value, done, True
                x_out[:] = end
                support[:] = end_support
        if not improved:
            break
    return loss, converged


@_compiled
def run_search(starts, delta, M, D, state, n_local, n_polish, settings, xs, losses, converged, supports):
    """The whole multi-start search, one call: screening of ``starts``, BFGS from the
    ``n_local`` best with different supports, polishes of the ``n_polish`` best end
    points, and (with ``n_polish >= 1``) the kick stage from the best and a last polish.

    ``settings`` is ``(max_iterations, stall_tolerance, stall_window, sweep offsets,
    Nelder-Mead step, Nelder-Mead evaluations per predictor, kick levels, kick rounds,
    kick searches)``. Every point the
    search ends at is written to a row of ``xs`` with its loss, whether its local
    search converged and the support of ``W(v)`` behind the loss (sorted, padded with
    -1): the best screened point first, then the searches in the order they ran.
    Returns how many rows were written (``n_local + 1``, plus ``n_polish + 2`` when
    polishing).
    """
    (max_iterations, stall_tolerance, stall_window, _, _, _, _, _, _) = settings
    n = starts.shape[0]
    screened = np.empty(n)
    signatures = np.empty(n, dtype=np.uint64)
    screen(starts, delta, M, D, state, screened, signatures)
    xs[0] = starts[np.argsort(screened, kind="mergesort")[0]]
    losses[0], converged[0] = loss_at(xs[0], delta, M, D, state), True
    _support_into(state, supports[0])
    count = 1
    for i in diverse(screened, signatures, n_local):
        losses[count], converged[count] = local_search(
            starts[i], delta, M, D, state, max_iterations, stall_tolerance, stall_window, xs[count], supports[count])
        count += 1
    order = np.argsort(losses[:count], kind="mergesort")
    for j in range(min(n_polish, count)):
        losses[count], converged[count] = polish(xs[order[j]], delta, M, D, state, settings, xs[count],
                                                 supports[count])
        count += 1
    if n_polish > 0:
        b = np.argsort(losses[:count], kind="mergesort")[0]
        losses[count], converged[count] = kick(xs[b], losses[b], converged[b], supports[b], delta, M, D, state,
                                               settings, xs[count], supports[count])
        count += 1
        # The best point usually sits at a kink of L, where BFGS stops short: a last
        # polish, from the point with its weights below the floor brought up to it.
        b = np.argsort(losses[:count], kind="mergesort")[0]
        v, y = np.empty(xs.shape[1]), np.empty(xs.shape[1])
        to_predictor_weights(xs[b], delta, v)
        search_point(v, delta, y)
        losses[count], converged[count] = polish(y, delta, M, D, state, settings, xs[count], supports[count])
        count += 1
    return count
