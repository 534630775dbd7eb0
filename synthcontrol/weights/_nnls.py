"""The inner problem's compiled solver: Lawson-Hanson NNLS on the simplex reduction.

For predictor weights ``v`` the donor weights ``W(v)`` solve a non-negative least
squares problem (the reduction of :mod:`synthcontrol.weights`): ``M`` is the
``(K + 1, J)`` matrix ``[C; 1']`` with ``C = X0 - x1 1'`` scaled to unit maximum
entry, a least-squares system is ``diag(rs) M`` for row scales
``rs = [sqrt(v / max v), 1]`` (:func:`inner_row_scales`), and the right-hand side is
``e_{K+1}``. :func:`nnls` is the warm-started active set on a QR factorisation
updated by Givens rotations, :func:`solve_simplex` maps its solution onto the
simplex. Compiled as :mod:`synthcontrol.weights._jit` says.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import _compiled

#: Status codes of :func:`nnls`.
OK, ITERATION_LIMIT, BREAKDOWN = 0, 1, 2

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
            p, newest = _step_to_first_zero(u, z, passive, p, flags, newest, Q, R, qtb)
            need_solve = p > 0
        _residual(M, rs, b, u, passive, p, r, z)  # z is free until the next solve
        _dual(M, rs, r, g)
        best = _entering_column(M, rs, g, z, flags, p, safety, Q, R, qtb, r)
        if best < 0:
            n_passive[0] = p
            return OK
        passive[p] = best
        p += 1
        flags[best] = 1
        u[best] = 0.0
        newest = best
        need_solve = True


@_compiled
def _step_to_first_zero(u, z, passive, p, flags, newest, Q, R, qtb):
    """Step from ``u`` towards the infeasible least-squares weights ``z`` until the
    first weight reaches zero, and drop every weight at zero from the support.

    A dropped column is refused until progress is made (``flags`` 2) when it is the
    one that entered last (``newest``): it would enter again at once. Returns the new
    support size and ``newest`` (-1 once it has left).
    """
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
    return p, newest


@_compiled
def _entering_column(M, rs, g, size, flags, p, safety, Q, R, qtb, column):
    """The column to enter the support (appended to the QR), or -1 at the optimum.

    The candidate with the largest dual value that passes :func:`_enters`; one that
    proves numerically dependent on the support is refused (``flags`` 2) and the
    next is tried. ``size`` is the residual's term size of :func:`_residual`,
    ``column`` work space.
    """
    while True:
        best, top = -1, 0.0
        for j in range(M.shape[1]):
            if flags[j] == 0 and g[j] > top and _enters(M, rs, g, size, j, p, safety):
                best, top = j, g[j]
        if best < 0 or _qr_append(M, rs, best, Q, R, qtb, p, column):
            return best
        flags[best] = 2


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
