"""Never believing the solver: its predictor weights are recovered and the inner
problem solved again, by the package and in exact rational arithmetic, before a
certificate is issued (see :mod:`synthcontrol.certify`)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import optimize

from ..weights import nested_fit, outcome_loss, solve_weights
from .certificate import CERTIFIED_RTOL, IMPROVEMENT_RTOL, Certificate, relative_gap
from .model import SolverOutcome

__all__ = ["judge", "check_predictor_weights", "recover_predictor_weights"]

FloatArray = np.ndarray


def judge(
    x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray,
    outcome: SolverOutcome, min_ratio: float, search_loss: float,
) -> Certificate:
    """The certificate of a solver outcome, believing only what an exact inner solve
    confirms: the solver's ``v`` is recovered and checked, its claimed loss is not used."""
    notes = [f"SCIP {outcome.status}, {outcome.n_nodes} nodes"]
    bound = outcome.dual_bound
    if outcome.status == "infeasible":
        # The cutoff pruned everything: nothing beats the search (the seed was rejected).
        bound = search_loss
    best, v_best, w_best = search_loss, None, None
    if outcome.w is not None:
        v, w, loss, exact = _attained(x1, X0, z1, Z0, outcome, min_ratio)
        if loss < search_loss * (1 - IMPROVEMENT_RTOL):
            best, v_best, w_best = loss, v, w
            notes.append("checked " + ("in exact rational arithmetic" if exact else "in double precision"))
        if outcome.objective is not None and relative_gap(loss, outcome.objective) > CERTIFIED_RTOL:
            notes.append(
                f"the solver's solution (loss {outcome.objective:.10g}) failed the exact check: "
                f"the inner problem at its v gives {loss:.10g}"
            )
    gap = relative_gap(best, bound)
    if gap < -CERTIFIED_RTOL:
        notes.append("the dual bound exceeds a checked loss (solver tolerance): not certified")
    certified = abs(gap) <= CERTIFIED_RTOL
    status = ("improved and certified" if v_best is not None else "certified") if certified else "bounded"
    return Certificate(
        status, best, bound, gap, min_ratio, 0.0, search_loss,
        predictor_weights=v_best, weights=w_best, solver_status=outcome.status,
        n_nodes=outcome.n_nodes, note="; ".join(notes),
    )


def _attained(
    x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray, outcome: SolverOutcome, min_ratio: float
) -> tuple[FloatArray, FloatArray, float, bool]:
    """The best checked ``(v, W(v), loss, exact)`` near the solver's point.

    Candidates: ``n / d`` and the widest-margin ``v``. With ``v`` spanning eight orders
    of magnitude the loss can move with digits the solver does not resolve, so when
    both miss the solver's objective a Nelder-Mead search in ``log10 v`` (as MSCMT
    searches) refines the better one; every candidate goes through the exact check.
    """
    candidates = [recover_predictor_weights(outcome.d, outcome.n, min_ratio)]
    candidates += [v for v in [_widest_margin_weights(X0, outcome.d, outcome.w, min_ratio)] if v is not None]
    checked = [(v, *check_predictor_weights(x1, X0, z1, Z0, v)) for v in candidates]
    best = min(checked, key=lambda entry: entry[2])
    if outcome.objective is not None and relative_gap(best[2], outcome.objective) > CERTIFIED_RTOL:
        v = _refine_in_log_space(x1, X0, z1, Z0, best[0], min_ratio)
        best = min([best, (v, *check_predictor_weights(x1, X0, z1, Z0, v))], key=lambda entry: entry[2])
    return best


def _refine_in_log_space(
    x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray, v: FloatArray, min_ratio: float
) -> FloatArray:
    """Nelder-Mead on ``log10 v`` within ``[log10 delta, 0]`` from ``v``; admissible ``v``."""
    low = np.log10(min_ratio)

    def loss(u: FloatArray) -> float:
        return outcome_loss(z1, Z0, solve_weights(x1, X0, 10.0 ** np.clip(u, low, 0.0)))

    start = np.clip(np.log10(np.maximum(v / v.max(), 10.0**low)), low, 0.0)
    result = optimize.minimize(
        loss, start, method="Nelder-Mead",
        options={"maxfev": 300 * v.size, "xatol": 1e-8, "fatol": 0.0, "adaptive": True},
    )
    refined = 10.0 ** np.clip(result.x, low, 0.0)
    refined = np.maximum(refined / refined.max(), min_ratio)
    return refined / refined.sum()


def recover_predictor_weights(d: FloatArray, n: FloatArray, min_ratio: float) -> FloatArray:
    """Admissible ``v`` (summing to one) from the solver's ``d`` and ``n = v * d``.

    ``v_k = n_k / d_k`` where the gap ``d_k`` is not round-off; a predictor the solver
    matched to round-off gets the largest weight, which keeps it matched. Clipped into
    ``[delta max(v), max(v)]`` so that the ratio floor holds exactly.
    """
    d, n = np.asarray(d, float), np.asarray(n, float)
    scale = max(float(np.max(np.abs(d))), 1e-300)
    matched = np.abs(d) <= 1e-14 * scale
    ratio = np.clip(np.divide(n, d, out=np.zeros_like(d), where=~matched), 0.0, None)
    v = np.where(matched, max(float(ratio.max()), 1e-300), ratio)
    v = np.clip(v / max(float(v.max()), 1e-300), min_ratio, 1.0)
    return v / v.sum()


def _widest_margin_weights(
    X0: FloatArray, d: FloatArray, w: FloatArray, min_ratio: float
) -> FloatArray | None:
    """Admissible ``v`` making the solver's ``w`` inner-optimal with the widest margin.

    The inner KKT conditions at ``w`` are linear in ``v``: with ``g_j(v) =
    sum_k v_k d_k X0[k, j]``, ``g_j = c`` on the support and ``g_j <= c - s`` off it.
    Maximising ``s`` over ``delta <= v <= 1`` (an LP) picks a ``v`` whose support
    survives the solver's round-off, where ``n / d`` can sit on a boundary. None when
    the LP has no solution.
    """
    G = (np.asarray(d, float)[:, None] * X0).T  # g = G v
    G = G / max(float(np.max(np.abs(G))), 1e-300)
    K = G.shape[1]
    support = np.asarray(w) > 1e-9 * max(float(np.max(w)), 1e-300)
    ones = np.ones((G.shape[0], 1))
    a_eq = np.hstack([G[support], -ones[support], np.zeros((support.sum(), 1))])
    a_ub = np.hstack([G[~support], -ones[~support], ones[~support]])
    objective = np.zeros(K + 2)
    objective[-1] = -1.0
    result = optimize.linprog(
        objective, A_ub=a_ub if a_ub.size else None, b_ub=np.zeros(a_ub.shape[0]) if a_ub.size else None,
        A_eq=a_eq, b_eq=np.zeros(a_eq.shape[0]),
        bounds=[(min_ratio, 1.0)] * K + [(None, None), (None, 1.0)], method="highs",
    )
    if result.status != 0:
        return None
    v = np.clip(result.x[:K], min_ratio, 1.0)
    v = np.maximum(v / v.max(), min_ratio)
    return v / v.sum()


def check_predictor_weights(
    x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray, v: FloatArray
) -> tuple[FloatArray, float, bool]:
    """The loss the nested fit attains at ``v``, checked exactly where possible.

    The inner problem is solved by the package (:func:`~synthcontrol.weights.nested_fit`,
    with its tie-break), then again in exact rational arithmetic by an active-set method
    started on that support. Returns ``(w, loss, exact)``: with ``exact`` the KKT
    conditions of ``w`` at ``v`` hold with no tolerance and ``loss`` is computed
    exactly; otherwise (a singular system: several optimal weightings) the double
    precision answer.
    """
    solution = nested_fit(x1, X0, z1, Z0, predictor_weights=v)
    exact = _exact_inner(x1, X0, v, np.flatnonzero(solution.weights))
    if exact is None:
        return solution.weights, solution.loss, False
    w_exact = np.zeros(X0.shape[1])
    w_exact[list(exact)] = [float(u) for u in exact.values()]
    loss_exact = float(_exact_loss(z1, Z0, exact))
    if solution.loss < loss_exact * (1 - 1e-12):  # the tie-break found a better point of the face
        return solution.weights, solution.loss, False
    return w_exact, loss_exact, True


def _exact_inner(
    x1: FloatArray, X0: FloatArray, v: FloatArray, support: np.ndarray
) -> dict[int, Fraction] | None:
    """``W(v)`` in rational arithmetic by a primal active-set method from ``support``.

    Returns ``{donor: weight}`` once the KKT conditions hold exactly, or None when the
    system on the support is singular or the method does not settle quickly.
    """
    K, J = X0.shape
    C = [[Fraction(X0[k, j]) - Fraction(x1[k]) for j in range(J)] for k in range(K)]
    weights = [Fraction(x) for x in v]
    active = [int(j) for j in support]
    for _ in range(4 * K + 8):
        solved = _kkt_on_support(C, weights, active)
        if solved is None:
            return None
        u, mu = solved
        if min(u) <= 0:
            active = [j for j, uj in zip(active, u) if uj > 0]
            if not active:
                return None
            continue
        q = [weights[k] * sum(C[k][j] * uj for j, uj in zip(active, u)) for k in range(K)]
        multipliers = {j: sum(C[k][j] * q[k] for k in range(K)) + mu for j in range(J) if j not in active}
        entering = min(multipliers, key=multipliers.get, default=None)
        if entering is None or multipliers[entering] >= 0:
            return dict(zip(active, u))
        active.append(entering)
    return None


def _kkt_on_support(
    C: list[list[Fraction]], v: list[Fraction], active: list[int]
) -> tuple[list[Fraction], Fraction] | None:
    """Solve ``[C_S' V C_S, 1; 1', 0] [u; mu] = [0; 1]`` exactly (None if singular)."""
    m = len(active)
    rows = [
        [sum(C[k][a] * v[k] * C[k][b] for k in range(len(v))) for b in active] + [Fraction(1), Fraction(0)]
        for a in active
    ]
    rows.append([Fraction(1)] * m + [Fraction(0), Fraction(1)])
    for col in range(m + 1):
        pivot = next((r for r in range(col, m + 1) if rows[r][col] != 0), None)
        if pivot is None:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(m + 1):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    solution = [rows[i][m + 1] / rows[i][i] for i in range(m + 1)]
    return solution[:m], solution[m]


def _exact_loss(z1: FloatArray, Z0: FloatArray, weights: dict[int, Fraction]) -> Fraction:
    """``|z1 - Z0 w|^2 / T0`` in rational arithmetic."""
    total = Fraction(0)
    for t in range(len(z1)):
        residual = Fraction(z1[t]) - sum(Fraction(Z0[t, j]) * u for j, u in weights.items())
        total += residual * residual
    return total / len(z1)
