"""The nested choice of predictor weights: bound, certificate, multi-start search, ties.

The compiled kernels (:mod:`synthcontrol.weights._kernels`) do the work; this
module puts the problem in canonical form, chooses the starts, runs the local
searches and maps the answer back.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
from scipy import optimize

from ..errors import ConvergenceWarning
from . import _kernels
from .inner import FloatArray, Workspace, _discrepancy, solve_inner, solve_weights_cvxpy
from .tiebreak import face_tiebreak

__all__ = [
    "NestedSolution",
    "is_admissible",
    "regression_start",
    "choose_predictor_weights",
    "nested_fit",
]


@dataclass(frozen=True)
class NestedSolution:
    """The outcome of the nested choice of predictor and donor weights.

    Attributes
    ----------
    predictor_weights : ndarray, shape (K,)
        ``v``, admissible (see :func:`is_admissible`).
    weights : ndarray, shape (J,)
        ``W(v)``, after the tie-breaking rule.
    loss : float
        Outcome MSPE over the fit window, ``|z1 - Z0 w|^2 / T0``.
    inner_objective : float
        Predictor discrepancy ``(x1 - X0 w)' diag(v) (x1 - X0 w)``.
    lower_bound : float
        Best outcome MSPE any simplex weights can reach (whatever ``v``).
    certified : bool
        True when ``loss`` equals ``lower_bound`` up to round-off: a global optimum.
    n_starts : int
        Number of local searches run.
    n_evaluations : int
        Number of inner solves spent by the search.
    start_losses : tuple of float
        Loss reached from each start, in start order.
    converged : bool
        False when the best local search stopped on an iteration limit.
    tie_broken : bool
        True when the final ``W(v)`` was chosen among several optimal weight vectors.
    inner_method : str
        How the final ``W(v)`` was solved: ``"nnls"`` or the ``"cvxpy"`` fallback.
    """

    predictor_weights: FloatArray
    weights: FloatArray
    loss: float
    inner_objective: float
    lower_bound: float
    certified: bool
    n_starts: int
    n_evaluations: int
    start_losses: tuple[float, ...] = field(default_factory=tuple)
    converged: bool = True
    tie_broken: bool = False
    inner_method: str = "nnls"

    @property
    def gap(self) -> float:
        """``loss - lower_bound``: how far the result can still be from the optimum."""
        return max(self.loss - self.lower_bound, 0.0)


def is_admissible(v: FloatArray, min_ratio: float, rtol: float = 1e-9) -> bool:
    """Whether ``v`` is admissible predictor weights for the floor ``min_ratio``.

    Admissible: non-negative, summing to one, and ``min(v) >= min_ratio * max(v)``,
    each up to a relative round-off of ``rtol`` (see :mod:`synthcontrol.weights`).

    Examples
    --------
    >>> is_admissible(np.array([0.5, 0.5]), 1e-8), is_admissible(np.array([1.0, 0.0]), 1e-8)
    (True, False)
    """
    v = np.asarray(v, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < 0):
        return False
    top = float(v.max())
    return abs(float(v.sum()) - 1.0) <= rtol and float(v.min()) >= min_ratio * top * (1 - rtol)


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


# ------------------------------------------------------------------- canonical problem


class _Problem:
    """A nested problem in canonical form, with the work arrays of its searches.

    Canonical form makes the work independent of how the data were given: donors
    are sorted by their data (so any donor order gives bitwise the same work),
    exact duplicates (same predictors and outcomes) are merged into one column
    whose weight is split equally among them afterwards, and predictor and outcome
    discrepancies are divided by powers of two (exact) to unit size.
    """

    def __init__(self, x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray):
        C, D = X0 - x1[:, None], Z0 - z1[:, None]
        order, new_group = canonical_columns(C, D)
        self.order = order
        self.group = np.cumsum(new_group) - 1  # group of each sorted donor
        keep = order[new_group]
        self.counts = np.bincount(self.group)
        # Unit maximum: the same data in other units give the same numbers to round-off.
        self.C_scale = float(np.max(np.abs(C))) or 1.0
        self.D_scale = float(np.max(np.abs(D))) or 1.0
        self.C = np.take(C, keep, axis=1)
        self.C /= self.C_scale
        del C
        self.D = np.take(D, keep, axis=1)
        self.D /= self.D_scale
        self.workspace = Workspace(np.vstack([self.C, np.ones((1, keep.size))]))

    @property
    def K(self) -> int:
        return self.C.shape[0]

    @property
    def n_evaluations(self) -> int:
        return int(self.workspace.state[-1][0])

    def expand(self, w_reduced: FloatArray) -> FloatArray:
        """Weights of the original donors (in their given order) from merged columns."""
        w = np.zeros(self.order.size)
        w[self.order] = (w_reduced / self.counts)[self.group]
        return w

    def weights(self, v: FloatArray, cold: bool = False) -> FloatArray:
        """``W(v)`` of the merged problem (warm-started from the last solve unless ``cold``)."""
        _kernels.inner_row_scales(np.asarray(v, float), self.workspace.row_scales)
        return self.workspace.solve(cold=cold)[0]

    def loss(self, w: FloatArray) -> float:
        """Outcome loss at unit scale (the search's own units)."""
        r = self.D @ w
        return float(r @ r) / self.D.shape[0]

    def search_loss(self, x: FloatArray, delta: float) -> float:
        return float(_kernels.loss_at(np.asarray(x, float), delta, self.workspace.M, self.D, self.workspace.state))

    def point(self, x: FloatArray, delta: float, converged: bool = True) -> "_Point":
        """The loss at ``x`` as the search sees it (warm-started from the last solve),
        with the support of the ``W(v)`` it was computed with."""
        loss = self.search_loss(x, delta)
        passive, n_passive = self.workspace.state[3], self.workspace.state[4]
        return _Point(np.asarray(x, float), loss, converged, np.sort(passive[: n_passive[0]]))

    def weights_on(self, v: FloatArray, support: FloatArray) -> FloatArray:
        """``W(v)`` of the merged problem warm-started from ``support``: where round-off
        leaves several supports optimal at ``v`` (weights spanning many orders of
        magnitude), the one the search evaluated."""
        _kernels.inner_row_scales(np.asarray(v, float), self.workspace.row_scales)
        return self.workspace.solve(start=support)[0]

    def inner_objective(self, v: FloatArray, w: FloatArray) -> float:
        r = np.sqrt(np.asarray(v, float) / np.max(v))[:, None] * self.C @ w
        return float(r @ r)

    def matches_exactly(self) -> bool:
        """Whether some donor weights reproduce the treated predictors (to round-off)."""
        residual = self.C @ self.weights(np.full(self.K, 1.0 / self.K), cold=True)
        return float(residual @ residual) <= 1e-24 * self.K

    def lower_bound(self) -> tuple[FloatArray, float]:
        """The outcome-only fit ``min_w |D w|^2 / T0`` (merged weights, unit scale)."""
        bound = Workspace(np.vstack([self.D, np.ones((1, self.D.shape[1]))]))
        w, status = bound.solve(cold=True)
        if status != _kernels.OK:  # the cvxpy formulation is the fallback
            w = solve_weights_cvxpy(np.zeros(self.D.shape[0]), self.D, np.ones(self.D.shape[0]))
        return w, self.loss(w)


def canonical_columns(*blocks: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The columns shared by ``blocks`` (2-D arrays with as many columns each) sorted
    by their values, the rows of the blocks in turn as keys, and whether each sorted
    column differs from the one before it (False: an exact duplicate).

    Sorted by the first row, then only runs of columns tied in it by all rows (one
    sort of J values for continuous data); compared chunk by chunk, so no sorted
    copy of the data is made.
    """
    rows = [row for block in blocks for row in block]
    order = np.argsort(rows[0], kind="stable")
    tied = rows[0][order[1:]] == rows[0][order[:-1]]
    if tied.any():
        run_starts = np.flatnonzero(np.concatenate([[True], ~tied]))
        run_ends = np.append(run_starts[1:], order.size)
        for start, end in zip(run_starts, run_ends):
            if end - start > 1:
                members = order[start:end]
                order[start:end] = members[np.lexsort([row[members] for row in rows][::-1])]
    new_group = np.zeros(order.size, dtype=bool)
    for block in blocks:
        new_group |= _differs_from_previous(block, order)
    return order, new_group


def _differs_from_previous(block: FloatArray, order: FloatArray) -> FloatArray:
    """Whether each column of ``block`` taken in ``order`` differs from the one before
    it (the first always does); chunk by chunk."""
    differs = np.ones(order.size, dtype=bool)
    for start in range(0, order.size - 1, 2048):
        part = block[:, order[start : start + 2049]]
        differs[start + 1 : start + part.shape[1]] = np.any(part[:, 1:] != part[:, :-1], axis=0)
    return differs


# ---------------------------------------------------------------------------- search


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


def _to_v(y: FloatArray, delta: float) -> FloatArray:
    v = np.empty(y.size)
    _kernels.to_predictor_weights(np.asarray(y, float), delta, v)
    return v


#: Above this many predictors, edge midpoints are no longer screened (K(K-1)/2 points).
MAX_PREDICTORS_FOR_EDGES = 20

#: Edge of Nelder-Mead's first simplex, in log(v), and its evaluations per predictor.
POLISH_STEP = 0.5
POLISH_EVALUATIONS = 60
#: Values tried per predictor weight in a coordinate sweep (log-spaced, floor to one).
SWEEP_POINTS = 16

#: The kick stage (:func:`~synthcontrol.weights._kernels.kick`): rounds, orders of magnitude tried per predictor
#: weight, and BFGS searches per round.
KICK_ROUNDS = 3
KICK_LEVELS = 12
KICK_SEARCHES = 4

#: A local search has stalled when the loss improved by less than this (relative)
#: over :data:`STALL_WINDOW` iterations: BFGS zigzags at the kinks of ``L``.
STALL_TOLERANCE = 1e-9
STALL_WINDOW = 5


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
    :func:`choose_predictor_weights`). Built once per size and integer seed: the
    treated fit and its placebos share them."""
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


def _ranked(losses: FloatArray) -> FloatArray:
    """Indices by increasing loss, equal losses in their given order. The kernels'
    losses are rounded (:data:`~synthcontrol.weights._kernels.LOSS_BITS`), so losses
    equal up to round-off tie, and round-off cannot reorder the starts."""
    return np.argsort(np.asarray(losses), kind="stable")


class _Point(NamedTuple):
    """A point of the search: the search variable, its loss, whether the local search
    that ended there converged, and the support of ``W(v)`` behind the loss."""

    x: FloatArray
    loss: float
    converged: bool
    support: FloatArray


def _best(points: Sequence[_Point]) -> _Point:
    return points[int(_ranked(np.array([p.loss for p in points]))[0])]


def _settings(delta: float, max_iterations: int) -> tuple:
    """The settings tuple of :func:`~synthcontrol.weights._kernels.run_search`."""
    floor = float(np.log(max(delta, 1e-12)))
    return (
        int(max_iterations), STALL_TOLERANCE, STALL_WINDOW, np.linspace(floor - 1.0, 1.0, SWEEP_POINTS),
        POLISH_STEP, POLISH_EVALUATIONS, np.linspace(floor - 1.0, 0.0, KICK_LEVELS), KICK_ROUNDS, KICK_SEARCHES,
    )


def _search(
    problem: _Problem, starts: FloatArray, delta: float, n_local: int, n_polish: int, max_iterations: int
) -> list[_Point]:
    """Screening, local searches, polishes and the kick stage, in one compiled call
    (:func:`~synthcontrol.weights._kernels.run_search`): the best screened point and
    the end point of every search, in the order they ran."""
    rows = 1 + n_local + (n_polish + 2 if n_polish > 0 else 0)
    xs, losses = np.empty((rows, problem.K)), np.empty(rows)
    converged = np.empty(rows, dtype=np.bool_)
    supports = np.empty((rows, problem.workspace.M.shape[0]), dtype=np.int64)
    count = _kernels.run_search(
        np.ascontiguousarray(starts), delta, problem.workspace.M, problem.D, problem.workspace.state,
        n_local, n_polish, _settings(delta, max_iterations), xs, losses, converged, supports,
    )
    return [_Point(xs[i], float(losses[i]), bool(converged[i]), supports[i][supports[i] >= 0]) for i in range(count)]


def choose_predictor_weights(
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    *,
    n_random_starts: int = 2000,
    seed: int | np.random.Generator | None = 0,
    max_iterations: int = 200,
    n_local: int = 6,
    n_polish: int = 3,
    min_predictor_weight: float = 1e-8,
    extra_starts: Sequence[FloatArray] = (),
    global_search: bool = False,
) -> NestedSolution:
    """Choose predictor weights ``v`` minimising the outcome MSPE of ``W(v)``.

    First the lower bound ``min_w |z1 - Z0 w|^2 / T0`` is computed and, when its
    minimiser is ``W(v)`` for an admissible ``v`` (an LP), that ``v`` is returned as
    a certified global optimum. Otherwise candidate ``v`` are screened (one inner
    solve each, see :func:`_fixed_starts`); BFGS with the analytic gradient, on
    ``log v``, runs from the ``n_local`` best candidates whose ``W(v)`` have
    different supports; the ``n_polish`` best end points are refined by coordinate
    sweeps across orders of magnitude and by Nelder-Mead (both cross the kinks and
    flat stretches where BFGS stops), each followed by BFGS; with ``n_polish >= 1``
    a final kick stage moves each predictor weight of the best point across orders
    of magnitude and searches again from the most promising moves (the kick stage);
    the best point wins. ``global_search=True`` adds differential evolution over
    ``log v``. Everything that repeats is compiled
    (:mod:`synthcontrol.weights._kernels`), and the work does not depend on the
    donors' order (see :class:`_Problem`).

    Parameters
    ----------
    x1, X0 : ndarray
        Treated and donor predictors, shapes (K,) and (K, J), already scaled.
    z1, Z0 : ndarray
        Treated and donor outcomes over the fit window, shapes (T0,) and (T0, J).
    n_random_starts : int, default 2000
        Seeded random candidates screened besides the deterministic ones (half sparse
        Dirichlet draws, half hierarchical: one to three large weights, the others
        log-uniform between the floor and 0.01).
    seed : int, Generator or None, default 0
        Seed of the random starts; the result is reproducible for a given seed.
    max_iterations : int, default 200
        Iteration cap of each BFGS search.
    n_local : int, default 6
        How many of the best screened candidates start a BFGS search.
    n_polish : int, default 3
        How many of the best local optima are refined by Nelder-Mead; with at least
        one, the best point also goes through the kick stage.
    min_predictor_weight : float, default 1e-8
        The floor ``delta`` of the admissible class ``min(v) >= delta * max(v)``
        (see :mod:`synthcontrol.weights`).
    extra_starts : sequence of ndarray, optional
        Further starting ``v`` (e.g. the treated unit's weights for a placebo).
    global_search : bool, default False
        Also run differential evolution on ``v`` (slow; for hard problems).

    Returns
    -------
    NestedSolution
        The best ``v`` found, its ``W(v)``, the loss, the lower bound and whether
        the optimum is certified.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> X0, Z0 = rng.normal(size=(3, 6)), rng.normal(size=(8, 6))
    >>> w_true = np.array([0.7, 0.3, 0, 0, 0, 0])
    >>> sol = choose_predictor_weights(X0 @ w_true, X0, Z0 @ w_true, Z0)
    >>> bool(sol.certified), round(sol.loss, 10)
    (True, 0.0)
    """
    x1, X0, z1, Z0 = (np.asarray(a, dtype=float) for a in (x1, X0, z1, Z0))
    problem = _Problem(x1, X0, z1, Z0)
    delta = float(min_predictor_weight)
    K = x1.size
    w_bound, bound = problem.lower_bound()
    tolerance = _loss_tolerance(problem, bound)
    equal = np.full(K, 1.0 / K)
    if K == 1 or problem.matches_exactly():
        # One predictor, or x1 = X0 w attainable: every admissible v gives the same
        # optimal face, so v is irrelevant and the tie-breaking rule decides.
        return _finish(problem, x1, X0, z1, Z0, equal, bound, [], True)
    # A certificate needs w* = W(v); W(v) has at most K + 1 donors unless the data are
    # degenerate (handled above), so the LP is solved only when it can succeed.
    v_cert = _certify(problem, w_bound, delta) if np.count_nonzero(w_bound) <= K + 1 else None
    # W(v_cert) is w* up to the LP's tolerance (ill-conditioned where v reaches its
    # floor); then w* itself, which attains the bound, is the certified answer.
    if v_cert is not None and problem.loss(problem.weights(v_cert, cold=True)) <= bound * (1 + 1e-6) + tolerance:
        return _finish(problem, x1, X0, z1, Z0, v_cert, bound, [], True, certified_weights=w_bound)
    starts = _starts(np.column_stack([x1, X0]), np.column_stack([z1, Z0]), n_random_starts, seed, extra_starts, delta)
    results = _search(problem, starts, delta, n_local, n_polish, max_iterations)
    if global_search:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(None if seed is None else (seed, 1))
        results.append(_differential_evolution(problem, delta, rng, max_iterations))
    best = _best(results)
    return _finish(
        problem, x1, X0, z1, Z0, _to_v(best.x, delta), bound, [r.loss for r in results], best.converged,
        support=best.support,
    )


def _loss_tolerance(problem: _Problem, bound: float) -> float:
    """Round-off allowance (unit scale) when comparing an outcome MSPE with the bound."""
    return 1e-9 * bound + 1e-12 * float(np.mean(problem.D**2))


def _certify(problem: _Problem, w_star: FloatArray, delta: float) -> FloatArray | None:
    """Admissible predictor weights making ``w_star`` inner-optimal, if any (an LP).

    Inner KKT at ``w_star`` for weights ``v``: with ``r = C w*`` and
    ``g_j(v) = sum_k v_k C_kj r_k``, ``g_j = -mu`` on the support of ``w*`` and
    ``g_j >= -mu`` elsewhere; linear in ``(v, mu)``. The admissible class adds
    ``v_k >= delta v_i`` for every pair, and ``sum(v) = 1``.
    """
    C = problem.C
    G = (C * (C @ w_star)[:, None]).T  # g = G v
    K = C.shape[0]
    support = w_star > 0
    ones = np.ones((G.shape[0], 1))
    # Variables (v, mu, t): the margin t by which donors off the support stay off is
    # maximised, so that W(v) = w* holds robustly and not only to the LP's tolerance.
    A_eq = np.vstack([np.hstack([G[support], ones[support], np.zeros((support.sum(), 1))]),
                      np.append(np.ones(K), [0.0, 0.0])])
    b_eq = np.append(np.zeros(support.sum()), 1.0)
    ratio = _ratio_rows(K, delta)
    A_ub = np.vstack([-np.hstack([G[~support], ones[~support], -ones[~support]]),
                      np.hstack([ratio, np.zeros((len(ratio), 2))])])
    result = optimize.linprog(
        np.append(np.zeros(K + 1), -1.0), A_ub=A_ub, b_ub=np.zeros(len(A_ub)), A_eq=A_eq, b_eq=b_eq,
        bounds=[(0, None)] * K + [(None, None), (None, 1.0)], method="highs",
    )
    if result.status != 0 or result.x[-1] < 0:
        return None
    v = np.maximum(result.x[:K], 0.0)
    v = v / v.sum()
    # The LP meets the ratio floor to its own tolerance; lift it exactly into the class.
    if not is_admissible(v, delta):
        v = v + delta * v.max() / (1.0 - delta)  # then min(v) >= delta * max(v)
        v = v / v.sum()
    return v


def _ratio_rows(K: int, delta: float) -> FloatArray:
    """Rows of ``delta v_i - v_k <= 0`` for every ordered pair ``i != k``."""
    rows = []
    for i in range(K):
        for k in range(K):
            if i != k:
                row = np.zeros(K)
                row[i], row[k] = delta, -1.0
                rows.append(row)
    return np.array(rows).reshape(-1, K)


def _differential_evolution(
    problem: _Problem, delta: float, rng: np.random.Generator, max_iterations: int
) -> _Point:
    # The search variable is log v relative to the largest weight: the box spans
    # the floor to one, every order of magnitude an optimum may use.
    bounds = [(float(np.log(max(delta, 1e-12))) - 1.0, 0.0)] * problem.K
    result = optimize.differential_evolution(
        lambda x: problem.search_loss(x, delta), bounds, seed=rng, tol=1e-10, polish=False, maxiter=200,
    )
    settings = _settings(delta, max_iterations)
    end, support = np.empty(problem.K), np.empty(problem.workspace.M.shape[0], dtype=np.int64)
    loss, converged = _kernels.local_search(
        np.asarray(result.x, float), delta, problem.workspace.M, problem.D, problem.workspace.state,
        *settings[:3], end, support,
    )
    return _best([problem.point(result.x, delta), _Point(end, float(loss), bool(converged), support[support >= 0])])


def _finish(
    problem: _Problem,
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    v: FloatArray,
    bound: float,
    start_losses: Sequence[float],
    converged: bool,
    certified_weights: FloatArray | None = None,
    support: FloatArray | None = None,
) -> NestedSolution:
    """Final ``W(v)`` with the tie-breaking rule, mapped back to the given donors
    (``certified_weights``: merged weights that attain the bound, kept as they are;
    ``support``: the one the search's loss at ``v`` was computed with)."""
    w_merged = _final_weights(problem, v, support)
    method = "nnls"
    if certified_weights is not None:
        w, tie_broken = problem.expand(certified_weights), False
    elif problem.workspace.state[-1][1]:
        # The active set broke down somewhere: solve the final W(v) with the fallback.
        inner = solve_inner(x1, X0, v)
        w, method, tie_broken = inner.weights, inner.method, False
    else:
        better = face_tiebreak(problem.C, problem.D, v, w_merged)
        tie_broken = better is not None
        w = problem.expand(better if tie_broken else w_merged)
    loss = float(np.sum((z1 - Z0 @ w) ** 2)) / len(z1)
    scale = problem.D_scale**2
    if not converged:
        warnings.warn(
            "the best local search of the predictor weights stopped at its iteration "
            "limit before converging; the loss reached is reported but may not be a local "
            "optimum: raise max_iterations or set global_search=True",
            ConvergenceWarning,
            stacklevel=3,
        )
    return NestedSolution(
        predictor_weights=v,
        weights=w,
        loss=loss,
        inner_objective=float(np.sum((_discrepancy(x1, X0, v) @ w) ** 2)),
        lower_bound=bound * scale,
        certified=loss <= (bound + _loss_tolerance(problem, bound)) * scale,
        n_starts=len(start_losses),
        n_evaluations=problem.n_evaluations,
        start_losses=tuple(float(s) * scale for s in start_losses),
        converged=converged,
        tie_broken=tie_broken,
        inner_method=method,
    )


def _final_weights(problem: _Problem, v: FloatArray, support: FloatArray | None) -> FloatArray:
    """``W(v)`` solved from scratch, or from the search's ``support`` when that gives
    an equally good inner objective (to round-off) and a better outcome fit: at
    predictor weights spanning many orders of magnitude round-off can leave two
    supports optimal, and the search chose ``v`` for the loss of its own."""
    cold = problem.weights(v, cold=True)
    if support is None:
        return cold
    warm = problem.weights_on(v, support)
    inner_cold, inner_warm = problem.inner_objective(v, cold), problem.inner_objective(v, warm)
    scale = float(np.max(np.abs(problem.C))) ** 2
    equally_optimal = inner_warm <= inner_cold * (1 + 1e-9) + 1e-15 * scale
    return warm if equally_optimal and problem.loss(warm) < problem.loss(cold) else cold


def nested_fit(
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    *,
    predictor_weights: FloatArray | None = None,
    **search_options: object,
) -> NestedSolution:
    """Fit donor weights: with given predictor weights, or choosing them.

    With ``predictor_weights`` (normalised here) ``W(v)`` is solved once and the
    tie-breaking rule applied; otherwise :func:`choose_predictor_weights` runs with
    ``search_options``.
    """
    if predictor_weights is None:
        return choose_predictor_weights(x1, X0, z1, Z0, **search_options)  # type: ignore[arg-type]
    x1, X0, z1, Z0 = (np.asarray(a, dtype=float) for a in (x1, X0, z1, Z0))
    v = np.asarray(predictor_weights, dtype=float)
    v = v / v.sum()
    problem = _Problem(x1, X0, z1, Z0)
    _, bound = problem.lower_bound()
    return _finish(problem, x1, X0, z1, Z0, v, bound, [], True)
