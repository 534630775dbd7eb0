"""The nested choice of predictor weights: bound, certificate, multi-start search, ties.

The compiled search (:mod:`synthcontrol.weights._multistart`) does the work; this
module puts the problem in canonical form (:mod:`synthcontrol.weights.canonical`),
takes the starts (:mod:`synthcontrol.weights.starts`), runs the search and maps the
answer back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
from scipy import optimize

from ..errors import ConvergenceWarning, SolverError, warn
from . import _multistart, _outer_loss
from .canonical import _Problem
from .inner import FloatArray, _discrepancy, simplex_least_squares, solve_inner
from .starts import _starts, regression_start
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


# ---------------------------------------------------------------------------- search


def _to_v(y: FloatArray, delta: float) -> FloatArray:
    v = np.empty(y.size)
    _outer_loss.to_predictor_weights(np.asarray(y, float), delta, v)
    return v


#: Edge of Nelder-Mead's first simplex, in log(v), and its evaluations per predictor.
POLISH_STEP = 0.5
POLISH_EVALUATIONS = 60
#: Values tried per predictor weight in a coordinate sweep (log-spaced, floor to one).
SWEEP_POINTS = 16

#: The kick stage (:func:`~synthcontrol.weights._multistart.kick`): rounds, orders of
#: magnitude tried per predictor weight, and BFGS searches per round.
KICK_ROUNDS = 3
KICK_LEVELS = 12
KICK_SEARCHES = 4

#: A local search has stalled when the loss improved by less than this (relative)
#: over :data:`STALL_WINDOW` iterations: BFGS zigzags at the kinks of ``L``.
STALL_TOLERANCE = 1e-9
STALL_WINDOW = 5


def _ranked(losses: FloatArray) -> FloatArray:
    """Indices by increasing loss, equal losses in their given order. The kernels'
    losses are rounded (:data:`~synthcontrol.weights._outer_loss.LOSS_BITS`), so losses
    equal up to round-off tie, and round-off cannot reorder the starts."""
    return np.argsort(np.asarray(losses), kind="stable")


class _Point(NamedTuple):
    """A point of the search: the search variable, its loss, whether the local search
    that ended there converged, and the support of ``W(v)`` behind the loss."""

    x: FloatArray
    loss: float
    converged: bool
    support: FloatArray


def _point_at(problem: _Problem, x: FloatArray, delta: float, converged: bool = True) -> _Point:
    """The loss at ``x`` as the search sees it (warm-started from the last solve),
    with the support of the ``W(v)`` it was computed with."""
    loss = problem.search_loss(x, delta)
    passive, n_passive = problem.workspace.state[3], problem.workspace.state[4]
    return _Point(np.asarray(x, float), loss, converged, np.sort(passive[: n_passive[0]]))


def _best(points: Sequence[_Point]) -> _Point:
    return points[int(_ranked(np.array([p.loss for p in points]))[0])]


def _settings(delta: float, max_iterations: int) -> tuple:
    """The settings tuple of :func:`~synthcontrol.weights._multistart.run_search`."""
    floor = float(np.log(max(delta, 1e-12)))
    return (
        int(max_iterations), STALL_TOLERANCE, STALL_WINDOW, np.linspace(floor - 1.0, 1.0, SWEEP_POINTS),
        POLISH_STEP, POLISH_EVALUATIONS, np.linspace(floor - 1.0, 0.0, KICK_LEVELS), KICK_ROUNDS, KICK_SEARCHES,
    )


def _search(
    problem: _Problem, starts: FloatArray, delta: float, n_local: int, n_polish: int, max_iterations: int
) -> list[_Point]:
    """Screening, local searches, polishes and the kick stage, in one compiled call
    (:func:`~synthcontrol.weights._multistart.run_search`): the best screened point and
    the end point of every search, in the order they ran."""
    rows = 1 + n_local + (n_polish + 2 if n_polish > 0 else 0)
    xs, losses = np.empty((rows, problem.K)), np.empty(rows)
    converged = np.empty(rows, dtype=np.bool_)
    supports = np.empty((rows, problem.workspace.M.shape[0]), dtype=np.int64)
    count = _multistart.run_search(
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
    minimiser is ``W(v)`` for an admissible ``v`` (an LP), that ``v`` is returned as a
    certified global optimum. Otherwise candidate ``v`` are screened (one inner solve
    each, see :func:`~synthcontrol.weights.starts._fixed_starts`); BFGS with the
    analytic gradient, on ``log v``, runs from the ``n_local`` best candidates whose
    ``W(v)`` have different supports; the ``n_polish`` best end points are refined by
    coordinate sweeps across orders of magnitude and by Nelder-Mead (both cross the
    kinks and flat stretches where BFGS stops), each followed by BFGS; with
    ``n_polish >= 1`` a final kick stage moves each predictor weight of the best point
    across orders of magnitude and searches again from the most promising moves (the
    kick stage); the best point wins. ``global_search=True`` adds differential
    evolution over ``log v``. Everything that repeats is compiled
    (:mod:`synthcontrol.weights._multistart`), and the work does not depend on the
    donors' order (see :class:`~synthcontrol.weights.canonical._Problem`).

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
    if not _equal_duals_possible(G[support]):
        return None
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


#: Largest spread of the support's dual values, relative to their scale, that
#: :func:`_equal_duals_possible` still passes to the LP. Over the 2,332 certificate
#: LPs of the YRD study the spread was round-off (at most 2e-16) in each of the 1,356
#: that found a certificate and above 1e-6 in 581 of the 976 that did not.
EQUAL_DUALS_TOLERANCE = 1e-6


def _equal_duals_possible(G_support: FloatArray) -> bool:
    """Whether some ``v`` on the simplex gives every donor of the support the same dual
    value (the rows of ``G_support v`` all equal), as the certificate LP requires: one
    small simplex least-squares problem, a twentieth of the LP's cost, that rules out
    most of the LPs that would fail. A relaxation of the LP (no floor on ``v``, no
    conditions off the support), so it never rules out a certificate."""
    scale = float(np.max(np.abs(G_support))) if G_support.size else 0.0
    if scale == 0.0:
        return True
    centred = (G_support - G_support.mean(axis=0)) / scale
    try:
        v, _ = simplex_least_squares(centred)
    except SolverError:
        return True  # undecided: the LP decides
    return float(np.max(np.abs(centred @ v))) <= EQUAL_DUALS_TOLERANCE


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
    loss, converged = _multistart.local_search(
        np.asarray(result.x, float), delta, problem.workspace.M, problem.D, problem.workspace.state,
        *settings[:3], end, support,
    )
    return _best([_point_at(problem, result.x, delta), _Point(end, float(loss), bool(converged), support[support >= 0])])


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
        warn(
            "the best local search of the predictor weights stopped at its iteration "
            "limit before converging; the loss reached is reported but may not be a local "
            "optimum: raise max_iterations or set global_search=True",
            ConvergenceWarning,
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
