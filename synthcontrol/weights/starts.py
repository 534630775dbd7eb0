"""The starts of the predictor-weight search, as search points in screening order.

R Synth's regression-based start (:func:`regression_start`), the caller's extra
starts, and the fixed ones that depend only on the problem's size and the seed
(equal weights, vertices and edge midpoints of the simplex, seeded random draws);
both the regression start and the fixed starts are computed once and shared by a
treated fit and its placebos.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from .canonical import canonical_columns
from .inner import FloatArray

__all__ = ["regression_start"]

#: Above this many predictors, edge midpoints are no longer screened (K(K-1)/2 points).
MAX_PREDICTORS_FOR_EDGES = 20


def regression_start(X: FloatArray, Z: FloatArray) -> FloatArray:
    """R Synth's regression-based starting predictor weights.

    Regress every fit-window outcome on the predictors (with an intercept) across all
    units; the start is ``diag(B B')`` normalised, ``B`` the slope matrix.

    Parameters
    ----------
    X : ndarray, shape (K, N)
        Scaled predictors of all units (treated first or not; order is irrelevant).
    Z : ndarray, shape (T0, N)
        Fit-window outcomes of the same units.

    Returns
    -------
    ndarray, shape (K,)
        Starting weights, or equal weights when the regression is degenerate.
    """
    design = np.column_stack([np.ones(X.shape[1]), X.T])
    # Least squares through a thin QR of the (N, K + 1) design: the (T0, N) outcomes
    # are only multiplied, never copied or decomposed (N can be 10,000 units).
    Q, R = np.linalg.qr(design)
    projected = (Z @ Q).T / (float(np.max(np.abs(Z))) or 1.0)
    beta = np.linalg.lstsq(R, projected, rcond=None)[0]
    start = np.sum(beta[1:] ** 2, axis=1)
    total = start.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(X.shape[0], 1.0 / X.shape[0])
    return start / total

def _to_search(points: FloatArray, delta: float) -> FloatArray:
    """Search points ``y`` (rows) whose predictor weights are the rows of ``points``:
    an admissible row maps exactly, any other as if its weights below the floor were
    at it (weights of zero become ``delta``-small)."""
    v = np.maximum(np.atleast_2d(np.asarray(points, float)), 0.0)
    v = v / v.sum(axis=1, keepdims=True)
    top = v.max(axis=1, keepdims=True)
    admissible = (v.min(axis=1, keepdims=True) >= delta * top * (1 - 1e-9)) & (delta > 0)
    q = np.where(admissible, np.maximum(v - delta * top, 0.0), v)
    return np.log(np.maximum(q / q.max(axis=1, keepdims=True), 1e-3 * max(delta, 1e-12)))


def _starts(
    X: FloatArray, Z: FloatArray, n_random: int, seed: int | np.random.Generator | None,
    extra: Sequence[FloatArray], delta: float,
) -> FloatArray:
    """Search points to screen: the problem's own starts (R Synth's regression-based
    start and the caller's extra starts) first, then the fixed ones (see
    :func:`_fixed_starts`), each block in screening order."""
    points = np.array([_shared_regression_start(X, Z), *(np.asarray(p, dtype=float) for p in extra)])
    own = _to_search(points, delta)
    return np.vstack([own[_screening_order(own)], _fixed_starts(X.shape[0], n_random, seed, delta)])


def _fixed_starts(K: int, n_random: int, seed: int | np.random.Generator | None, delta: float) -> FloatArray:
    """The starts that depend only on the problem's size and the seed, as search points
    in screening order: equal weights; every vertex and (for up to
    :data:`MAX_PREDICTORS_FOR_EDGES` predictors) every edge midpoint of the simplex,
    because the optimum often puts nearly all weight on one or two predictors; seeded
    random draws (sparse Dirichlet and hierarchical, see
    :func:`~synthcontrol.weights.search.choose_predictor_weights`). Built once per
    size and integer seed: the treated fit and its placebos share them."""
    key = (K, n_random, seed, delta) if isinstance(seed, (int, np.integer)) else None
    if key in _FIXED_STARTS:
        return _FIXED_STARTS[key]
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    points = [np.full((1, K), 1.0 / K), np.eye(K)]
    if K <= MAX_PREDICTORS_FOR_EDGES:
        rows, cols = np.triu_indices(K, 1)
        edges = np.zeros((rows.size, K))
        edges[np.arange(rows.size), rows] = edges[np.arange(rows.size), cols] = 0.5
        points.append(edges)
    # Half sparse Dirichlet draws, half hierarchical ones: optimal v often put most
    # weight on one to three predictors and the rest at distinct orders of
    # magnitude between the floor and 1%, each acting as a tie-breaker.
    points.append(rng.dirichlet(np.full(K, 0.3), size=n_random - n_random // 2))
    points.append(_hierarchical(rng, n_random // 2, K, delta))
    starts = _to_search(np.vstack(points), delta)
    starts = starts[_screening_order(starts)]
    starts.setflags(write=False)
    if key is not None:
        if len(_FIXED_STARTS) >= 16:
            _FIXED_STARTS.pop(next(iter(_FIXED_STARTS)))
        _FIXED_STARTS[key] = starts
    return starts


#: Fixed starts by (K, n_random, seed, delta), oldest first.
_FIXED_STARTS: dict[tuple, FloatArray] = {}


def _screening_order(starts: FloatArray) -> FloatArray:
    """Candidates grouped by their three largest predictor weights, so that each inner
    solve of the screening starts near the last one (about 12% fewer steps)."""
    top = np.argsort(-starts, axis=1, kind="stable")[:, :3]
    return np.lexsort(top[:, ::-1].T)


def _hierarchical(rng: np.random.Generator, n: int, K: int, delta: float) -> FloatArray:
    """``n`` draws with one to three dominant weights in [0.1, 1] and the others
    log-uniform between the floor and 0.01."""
    points = 10.0 ** rng.uniform(np.log10(max(delta, 1e-12)), -2.0, size=(n, K))
    dominant = rng.random((n, K)).argsort(axis=1) < rng.integers(1, min(K, 3) + 1, size=(n, 1))
    points[dominant] = rng.uniform(0.1, 1.0, size=int(dominant.sum()))
    return points


def _shared_regression_start(X: FloatArray, Z: FloatArray) -> FloatArray:
    """:func:`regression_start` of the distinct units of ``(X, Z)`` taken in a canonical
    order (so the same for any order of the units, and for any number of copies of a
    unit: a copy adds no information, and must not change the search), and computed
    once per unit set: the treated fit and all its placebos share the units, only who
    is treated changes."""
    order, distinct = canonical_columns(X, Z)
    order = order[distinct]
    X, Z = np.take(X, order, axis=1), np.take(Z, order, axis=1)
    digest = hashlib.blake2b(X.data, digest_size=16)
    digest.update(Z.data)
    key = (digest.hexdigest(), X.shape, Z.shape)
    if key not in _REGRESSION_STARTS:
        if len(_REGRESSION_STARTS) >= 32:
            _REGRESSION_STARTS.pop(next(iter(_REGRESSION_STARTS)))
        start = regression_start(X, Z)
        start.setflags(write=False)
        _REGRESSION_STARTS[key] = start
    return _REGRESSION_STARTS[key]


#: Regression starts by unit set (a hash of the canonically ordered data), oldest first.
_REGRESSION_STARTS: dict[tuple, FloatArray] = {}
