"""The whole multi-start search of the predictor weights, compiled as one call.

:func:`run_search` screens the starts, runs BFGS from the best of them with
different supports (:func:`local_search`), polishes the best end points with
coordinate sweeps and Nelder-Mead (:func:`polish`) and moves the best point across
orders of magnitude (:func:`kick`), all without returning to Python: the GIL is
released for the whole search. The optimisers are those of
:mod:`synthcontrol.weights._optimisers`; :mod:`synthcontrol.weights.search`
prepares the problem and reads the answer back.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import _compiled
from ._optimisers import bfgs, coordinate_sweep, nelder_mead
from ._outer_loss import loss_at, screen, to_predictor_weights


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
    the end point as :func:`~synthcontrol.weights._outer_loss.loss_at` sees it,
    warm-started from the last solve, and the support behind that loss is written to
    ``support``."""
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
