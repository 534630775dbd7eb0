"""The compiled local optimisers of the outer loss: BFGS, Nelder-Mead, coordinate sweeps.

Each minimises the loss of :mod:`synthcontrol.weights._outer_loss` over search
points from one start, warm-starting every inner solve from the last: BFGS with the
analytic gradient follows smooth stretches of ``L``; Nelder-Mead and the coordinate
sweep across orders of magnitude cross the kinks and flat stretches where BFGS
stops. :mod:`synthcontrol.weights._multistart` combines them into the search.
"""

from __future__ import annotations

import numpy as np

from ._jit import _compiled
from ._outer_loss import _evaluate, _gradient, _loss, work_arrays

# ------------------------------------------------------------------------------ BFGS


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
        slope = _descent_direction(H, g, direction)
        dmax = 0.0
        for k in range(K):
            dmax = max(dmax, abs(direction[k]))
        # A first step of at most one unit of log(v) in any predictor weight.
        step = 1.0 if scaled else min(1.0, 1.0 / max(dmax, 1e-300))
        accepted, f_new = _backtrack(x, f, direction, slope, step, trial, delta, M, D, state, work, g_new)
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
def _descent_direction(H, g, direction):
    """``direction = -H g`` and its slope ``g' direction``; when that is no descent
    direction (round-off in ``H``), ``H`` is reset to the identity and the direction
    is steepest descent. Returns the slope."""
    K = g.shape[0]
    slope = 0.0
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
    return slope


@_compiled
def _backtrack(x, f, direction, slope, step, trial, delta, M, D, state, work, g_new):
    """Backtracking (Armijo) line search from ``x`` (loss ``f``) along ``direction``,
    halving ``step`` at most 40 times. Returns ``(accepted, loss at trial)``; on
    acceptance ``trial`` is the new point and ``g_new`` its gradient."""
    f_new = f
    for _ in range(40):
        for k in range(x.shape[0]):
            trial[k] = x[k] + step * direction[k]
        f_new = _loss(trial, delta, M, D, state, work)
        if f_new <= f + 1e-4 * step * slope:
            _gradient(trial, delta, M, D, state, work, g_new)  # only where the step is taken
            return True, f_new
        step *= 0.5
    return False, f_new


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


# ----------------------------------------------------------------------- Nelder-Mead


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
        evaluations += _nelder_mead_step(simplex, values, rho, chi, psi, sigma, centroid, xr, xe, xc,
                                         delta, M, D, state, work)
    best = 0
    for i in range(1, n + 1):
        if values[i] < values[best]:
            best = i
    x_out[:] = simplex[best]
    return values[best]


@_compiled
def _nelder_mead_step(simplex, values, rho, chi, psi, sigma, centroid, xr, xe, xc, delta, M, D, state, work):
    """One step on the sorted ``simplex``: the worst vertex is reflected through the
    centroid of the others, then the reflection expanded, or contracted outside or
    inside, or the simplex shrunk towards its best vertex. ``centroid``, ``xr``,
    ``xe`` and ``xc`` are work space. Returns how many losses were evaluated."""
    n = centroid.shape[0]
    for k in range(n):
        total = 0.0
        for i in range(n):
            total += simplex[i, k]
        centroid[k] = total / n
    _affine(xr, 1 + rho, centroid, -rho, simplex[n])
    fr = _loss(xr, delta, M, D, state, work)
    evaluations = 1
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
    return evaluations


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


# ------------------------------------------------------------------- coordinate sweep


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

