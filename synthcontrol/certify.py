"""Certified global optimum of the nested problem, on request (needs ``pyscipopt``).

Pure numerics on numpy arrays, in the notation of :mod:`synthcontrol.weights`
(``x1``, ``X0``, ``z1``, ``Z0``, ``v``, ``w``). The search of
:func:`~synthcontrol.weights.choose_predictor_weights` finds a good ``v``; this module
proves how good it is, or finds a better one.

The exact reformulation
-----------------------
The inner problem only sees ``v`` up to scale, so the admissible predictor weights
(:func:`~synthcontrol.weights.is_admissible`: ``min(v) >= delta * max(v)``) are, up to
scale, the box ``delta <= v_k <= 1``. With ``d = x1 - X0 w`` and
``n = v * d`` (elementwise), ``w`` is inner-optimal exactly when, for some ``c``,
``n'X0_j <= c`` for every donor ``j``, with equality on the support of ``w`` (the KKT
conditions of the convex inner problem). For each predictor ``k`` the set
``{(d_k, n_k) : delta <= v_k <= 1}`` is the union of two polyhedral cones, one per
sign of ``d_k``. So the nested problem restricted to the class is a convex
mixed-integer QP:

* ``K`` sign binaries ``s_k`` choosing the cone of ``(d_k, n_k)``;
* ``J`` support binaries ``z_j``: ``w_j <= z_j``, and ``z_j = 1`` forces
  ``n'X0_j >= c``. Every switched constraint is an indicator constraint, never a
  big-M row, whose slack solvers exploit;
* the convex objective ``|z1 - Z0 w|^2 / T0`` through an epigraph variable, with the
  valid cuts ``loss >= min_w |z1 - Z0 w|^2 / T0`` (the outcome-only bound) and
  ``n'x1 >= c`` (``n'x1 - c = sum_k v_k d_k^2 >= 0``);
* donors that no ``v`` can weight fixed to zero beforehand: donor ``j`` can carry
  weight only if some direction ``n`` exposes it as a farthest donor
  (``n'X0_j >= n'X0_i`` for all ``i``) while ``x1`` lies beyond it
  (``n'(x1 - X0_j) > 0``), one small LP per donor.

SCIP (``pyscipopt``) solves it, seeded with the search's solution, whose loss is the
cutoff, within a time budget. The rows holding ``n`` are multiplied by
:func:`row_scale` (SCIP's tolerance is absolute on small rows, and these live at the
scale ``delta * |d|``), with SCIP's feasibility tolerance at :data:`SCIP_FEASTOL`.
Fixing the scale of ``v`` as well (binaries marking a ``v_k = 1``) gave the same optima
on ten California fits with twice the nodes, so the model leaves it free.

Never believing the solver
--------------------------
A solver answers within tolerances, and with ``v`` spanning eight orders of
magnitude (``delta = 1e-8``) a KKT condition violated by less than the tolerance can
make an unattainable loss look attainable. So the solver's ``v`` is recovered
(``n_k / d_k`` clipped into the class, and the ``v`` that makes the solver's ``w``
optimal with the widest margin, an LP; when both miss the solver's objective, a
Nelder-Mead search in ``log10 v`` refines the better) and the inner problem is solved
again at that ``v`` by the package itself (:func:`~synthcontrol.weights.nested_fit`, with its
tie-breaking rule), then once more in exact rational arithmetic on the support found
(an active-set method on :class:`fractions.Fraction`, which proves the KKT
conditions with no tolerance at all). Only that checked loss is reported, and the
status is downgraded whenever it differs from the dual bound by more than
:data:`CERTIFIED_RTOL`. The dual bound itself carries the solver's tolerances
(feasibility ``1e-9``, :data:`SCIP_FEASTOL`) and those of the donor screen.

Ill-posed problems
------------------
When the treated unit lies in the convex hull of the donors in predictor space,
``x1 = X0 w`` is attainable, every admissible ``v`` has the same optimal face
``{w : X0 w = x1}``, and ``v`` is not identified. The certificate says so and reports
the optimistic value (the best outcome fit on that face) instead of a ``v``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Iterator

import numpy as np
from scipy import optimize

from .errors import MissingDependencyError
from .weights import nested_fit, optimal_face_tiebreak, outcome_loss, simplex_least_squares, solve_weights

__all__ = [
    "Certificate",
    "certify_nested",
    "require_solver",
    "weightable_donors",
    "check_predictor_weights",
    "recover_predictor_weights",
    "judge",
    "SolverOutcome",
    "row_scale",
    "STATUSES",
    "CERTIFIED_RTOL",
    "DEFAULT_TIME_LIMIT",
]

FloatArray = np.ndarray

#: The statuses a certificate can have.
STATUSES = ("certified", "improved and certified", "bounded", "ill-posed")

#: A loss is certified when it is within this relative distance of the dual bound.
#: The exact check of the solver's ``v`` typically lands 1e-7 above the solver's own
#: objective (its tolerances), so a tighter threshold would refuse true optima.
CERTIFIED_RTOL = 1e-6

#: Default time budget of one certification, in seconds (the solver's CPU time).
#: Measured: California (ADH) 2.4 s, Basque and Texas at once (the outcome-only bound
#: is attained); the 39 California fits a median of 2.2 s and at most 37 s.
DEFAULT_TIME_LIMIT = 60.0

#: SCIP's feasibility tolerance. Its default (1e-6) lets ``n = v * d`` reach ``1e-8``
#: scale with every KKT condition "satisfied": on California it then reports 2.744, a
#: loss no admissible ``v`` attains (the exact check gives 34.9 at its ``v``).
SCIP_FEASTOL = 1e-9

#: A loss below the search's by more than this (relative) counts as an improvement.
IMPROVEMENT_RTOL = CERTIFIED_RTOL


def row_scale(delta: float) -> float:
    """Factor on the floor and KKT rows: ``1e-4 / delta``, within ``[1, 1e4]``.

    SCIP's tolerance is absolute for rows of small activity, and these rows live at
    the scale ``delta * |d|``; scaled, the tolerance is about ``delta * 1e-5``. On
    California and two hard placebos (``delta = 1e-8``) a factor of 1 let SCIP report
    losses that fail the exact check, 1e8 ran out of time, 1e4 certified all three.
    """
    return float(np.clip(1e-4 / delta, 1.0, 1e4))


@dataclass(frozen=True, eq=False)
class Certificate:
    """How far the nested fit is from the global optimum over the admissible class.

    Attributes
    ----------
    status : str
        ``"certified"``: the search's loss equals the dual bound (within
        :data:`CERTIFIED_RTOL`); ``"improved and certified"``: the solver found a lower
        loss, checked exactly, that equals the bound; ``"bounded"``: the time ran out
        or the check failed, so only ``dual_bound <= optimum <= loss`` is proven;
        ``"ill-posed"``: the treated unit lies in the donors' hull in predictor space,
        every admissible ``v`` gives the same predictor match, and ``loss`` is the
        optimistic value (best outcome fit among the exact matches).
    loss : float
        Best outcome MSPE attained by admissible predictor weights, checked by an
        exact inner solve.
    dual_bound : float
        No admissible predictor weights reach a lower loss.
    gap : float
        ``(loss - dual_bound) / loss`` (0 when both are 0).
    floor : float
        The ratio floor ``delta`` of the class (``min(v) >= delta * max(v)``).
    seconds : float
        Wall time of the certification (screen, solve and checks).
    search_loss : float
        The loss of the search that seeded the solver.
    predictor_weights, weights : ndarray or None
        The improved ``v`` and ``W(v)`` when the certificate lowers the loss, else None.
    solver_status : str
        SCIP's final status (``"optimal"``, ``"timelimit"``, ...), or ``"not run"``.
    n_nodes : int
        Branch-and-bound nodes.
    n_donors_screened : int
        Donors fixed to zero because no admissible ``v`` can weight them.
    note : str
        What happened, in words (for summaries).
    """

    status: str
    loss: float
    dual_bound: float
    gap: float
    floor: float
    seconds: float
    search_loss: float
    predictor_weights: FloatArray | None = None
    weights: FloatArray | None = None
    solver_status: str = "not run"
    n_nodes: int = 0
    n_donors_screened: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} is not one of {STATUSES}")
        for name in ("predictor_weights", "weights"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, dtype=float, copy=True)
                value.setflags(write=False)
                object.__setattr__(self, name, value)

    @property
    def certified(self) -> bool:
        """True when the loss reported is proven globally optimal in the class."""
        return self.status in ("certified", "improved and certified")

    @property
    def improved(self) -> bool:
        """True when the certificate carries better weights than the search found."""
        return self.predictor_weights is not None

    def as_dict(self) -> dict:
        """The scalar fields, for tables and records."""
        return {
            "certificate_status": self.status,
            "certified_loss": self.loss,
            "dual_bound": self.dual_bound,
            "certificate_gap": self.gap,
            "certificate_floor": self.floor,
            "certificate_seconds": self.seconds,
            "certificate_improved": self.improved,
        }


def require_solver():
    """The ``pyscipopt`` module, or a :class:`MissingDependencyError` saying how to get it."""
    try:
        import pyscipopt
    except ImportError as error:
        raise MissingDependencyError(
            "certify=True needs the SCIP solver from the optional package pyscipopt: "
            "install it with `pip install synthcontrol[certify]` (or `pip install pyscipopt`)"
        ) from error
    return pyscipopt


def certify_nested(
    x1: FloatArray,
    X0: FloatArray,
    z1: FloatArray,
    Z0: FloatArray,
    *,
    predictor_weights: FloatArray,
    weights: FloatArray,
    min_ratio: float = 1e-8,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> Certificate:
    """Certify, or improve, a solution of the nested problem over the admissible class.

    Parameters
    ----------
    x1, X0 : ndarray
        Treated and donor predictors, shapes (K,) and (K, J), already scaled.
    z1, Z0 : ndarray
        Treated and donor outcomes over the fit window, shapes (T0,) and (T0, J).
    predictor_weights, weights : ndarray
        The search's ``v`` and ``W(v)``: the solver's first incumbent, whose loss is
        the cutoff.
    min_ratio : float, default 1e-8
        ``delta`` of the class ``min(v) >= delta * max(v)``: the search option
        ``min_predictor_weight``. Must be in ``(0, 1)``: with a zero floor ``v = 0``
        is in the closure of the class, every ``w`` is inner-optimal there, and the
        infimum is the outcome-only bound, generally not attained.
    time_limit : float or None, default 60
        Seconds for the certification (None: no limit): the solver gets what the
        screen left, counted in CPU time so that a busy machine does not change
        which fits finish. When it runs out the status is ``"bounded"`` unless the
        bound already meets the loss.

    Returns
    -------
    Certificate

    Raises
    ------
    MissingDependencyError
        When ``pyscipopt`` is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from synthcontrol.weights import choose_predictor_weights
    >>> rng = np.random.default_rng(3)
    >>> x1, X0 = rng.normal(size=3) + 3.0, rng.normal(size=(3, 6))
    >>> z1, Z0 = rng.normal(size=5), rng.normal(size=(5, 6))
    >>> sol = choose_predictor_weights(x1, X0, z1, Z0)
    >>> cert = certify_nested(x1, X0, z1, Z0, predictor_weights=sol.predictor_weights,
    ...                       weights=sol.weights)
    >>> cert.certified, cert.loss <= sol.loss, cert.gap <= 1e-6
    (True, True, True)
    """
    if not 0.0 < min_ratio < 1.0:
        raise ValueError(f"min_ratio={min_ratio!r}: the certificate needs a floor in (0, 1)")
    pyscipopt = require_solver()
    start = time.perf_counter()
    x1, X0, z1, Z0 = (np.asarray(a, dtype=float) for a in (x1, X0, z1, Z0))
    search_loss = outcome_loss(z1, Z0, np.asarray(weights, dtype=float))
    w_match = _hull_match(x1, X0)
    if w_match is not None:
        certificate = _ill_posed(x1, X0, z1, Z0, w_match, min_ratio, search_loss)
        return replace(certificate, seconds=time.perf_counter() - start)
    _, bound_sq = simplex_least_squares(Z0 - z1[:, None])
    outcome_bound = bound_sq / len(z1)
    if search_loss <= outcome_bound * (1 + CERTIFIED_RTOL):
        return Certificate(
            "certified", search_loss, outcome_bound, _relative_gap(search_loss, outcome_bound),
            min_ratio, time.perf_counter() - start, search_loss,
            note="the loss equals the outcome-only bound, which no donor weights can beat",
        )
    # The search's own support is weightable by definition (a guard against LP round-off).
    weightable = weightable_donors(x1, X0) | (np.asarray(weights) > 0)
    model = _NestedMiqp(pyscipopt, x1, X0, z1, Z0, weightable, min_ratio, outcome_bound)
    model.seed(np.asarray(predictor_weights, dtype=float), np.asarray(weights, dtype=float), search_loss)
    budget = None if time_limit is None else max(time_limit - (time.perf_counter() - start), 0.0)
    outcome = model.solve(budget)
    certificate = judge(x1, X0, z1, Z0, outcome, min_ratio, search_loss)
    return replace(
        certificate, seconds=time.perf_counter() - start, n_donors_screened=int(np.sum(~weightable))
    )


def _relative_gap(loss: float, bound: float) -> float:
    if loss == bound:
        return 0.0
    return (loss - bound) / max(abs(loss), 1e-300)


# ------------------------------------------------------------- before the solver


def _hull_match(x1: FloatArray, X0: FloatArray) -> FloatArray | None:
    """Donor weights reproducing ``x1`` exactly (to round-off), or None.

    The same test as the search's: the simplex least-squares residual of ``X0 - x1``
    at most ``1e-24`` times the largest squared entry.
    """
    C = X0 - x1[:, None]
    w, residual = simplex_least_squares(C)
    return w if residual <= 1e-24 * max(float(np.max(C**2)), 1e-300) else None


def _ill_posed(
    x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray,
    w_match: FloatArray, min_ratio: float, search_loss: float,
) -> Certificate:
    """The optimistic value when ``x1`` lies in the donors' hull: the best outcome fit
    among the weights with ``X0 w = x1``, the inner optimum for every admissible ``v``."""
    equal = np.full(x1.size, 1.0 / x1.size)
    w_best, _ = optimal_face_tiebreak(x1, X0, equal, z1, Z0, w_match)
    value = min(outcome_loss(z1, Z0, w_best), outcome_loss(z1, Z0, w_match))
    w_best = w_best if outcome_loss(z1, Z0, w_best) <= outcome_loss(z1, Z0, w_match) else w_match
    better = value < search_loss * (1 - IMPROVEMENT_RTOL)
    return Certificate(
        "ill-posed", value, value, 0.0, min_ratio, 0.0, search_loss,
        weights=w_best if better else None,
        note="the treated unit lies in the donors' convex hull in predictor space: every "
        "admissible v gives the same predictor match, so v is not identified; the loss is "
        "the optimistic value (best outcome fit among the exact matches)",
    )


#: A donor is screened out when no direction exposes it by more than this (on
#: predictors scaled to a largest gap of one); HiGHS solves these LPs to about 1e-9.
EXPOSURE_TOL = 1e-9


def weightable_donors(x1: FloatArray, X0: FloatArray) -> np.ndarray:
    """Which donors some admissible ``v`` can give positive weight.

    Donor ``j`` can be on the support of ``W(v)`` only if the inner KKT conditions hold
    for it: ``n'X0_j >= n'X0_i`` for every donor ``i`` with ``n = v * d`` and
    ``n'(x1 - X0_j) = sum_k v_k d_k^2 > 0`` (``d != 0`` unless the problem is
    ill-posed). So ``j`` is weightable only if ``max t`` subject to
    ``n'(X0_i - X0_j) <= 0`` for all ``i``, ``n'(x1 - X0_j) >= t``, ``|n_k| <= 1`` is
    positive; one LP per donor.

    Returns
    -------
    ndarray of bool, shape (J,)
    """
    C = X0 - x1[:, None]
    C = C / max(float(np.max(np.abs(C))), 1e-300)
    K, J = C.shape
    keep = np.ones(J, dtype=bool)
    objective = np.zeros(K + 1)
    objective[-1] = -1.0
    for j in range(J):
        exposes = np.hstack([(C - C[:, [j]]).T, np.zeros((J, 1))])
        beyond = np.append(C[:, j], 1.0)  # n'(x1 - X0_j) >= t  <=>  C_j'n + t <= 0
        result = optimize.linprog(
            objective, A_ub=np.vstack([exposes, beyond]), b_ub=np.zeros(J + 1),
            bounds=[(-1.0, 1.0)] * K + [(None, 1.0)], method="highs",
        )
        keep[j] = result.status != 0 or -result.fun > EXPOSURE_TOL
    return keep


# ------------------------------------------------------------------- the MIQP


@dataclass(frozen=True)
class SolverOutcome:
    """What the solver returned: its status, dual bound, and best point (or None).

    ``w``, ``d`` and ``n`` are the solver's donor weights, predictor gaps and
    ``n = v * d``.
    """

    status: str
    dual_bound: float
    objective: float | None = None
    w: FloatArray | None = None
    d: FloatArray | None = None
    n: FloatArray | None = None
    n_nodes: int = 0


class _NestedMiqp:
    """The convex MIQP of the module docstring, built once, in SCIP."""

    def __init__(self, scip, x1, X0, z1, Z0, weightable, delta, outcome_bound):
        self.model = model = scip.Model("nested synthetic control")
        model.hideOutput()
        model.setParam("numerics/feastol", SCIP_FEASTOL)
        K, J = X0.shape
        self.x1, self.X0, self.z1, self.Z0, self.delta = x1, X0, z1, Z0, delta
        self.outcome_bound = outcome_bound
        self.scale = row_scale(delta)
        quicksum = scip.quicksum
        self.w = [model.addVar(f"w{j}", lb=0.0, ub=1.0 if weightable[j] else 0.0) for j in range(J)]
        model.addCons(quicksum(self.w) == 1)
        d_low, d_high = x1 - X0[:, weightable].max(axis=1), x1 - X0[:, weightable].min(axis=1)
        self.d = [model.addVar(f"d{k}", lb=d_low[k], ub=d_high[k]) for k in range(K)]
        self.n = [model.addVar(f"n{k}", lb=min(d_low[k], 0.0), ub=max(d_high[k], 0.0)) for k in range(K)]
        self.sign = [model.addVar(f"s{k}", vtype="B") for k in range(K)]
        for k in range(K):
            model.addCons(self.d[k] == x1[k] - quicksum(X0[k, j] * self.w[j] for j in np.flatnonzero(weightable)))
            self._predictor_cones(k)
        self.c = model.addVar("c", lb=None, ub=None)
        self.support = [model.addVar(f"z{j}", vtype="B", ub=1.0 if weightable[j] else 0.0) for j in range(J)]
        for j in np.flatnonzero(weightable):
            gain = self.scale * (quicksum(X0[k, j] * self.n[k] for k in range(K)) - self.c)
            model.addCons(gain <= 0)
            model.addConsIndicator(-gain <= 0, self.support[j])
            model.addCons(self.w[j] <= self.support[j])
        model.addCons(quicksum(x1[k] * self.n[k] for k in range(K)) - self.c >= 0)
        self.residual = [model.addVar(f"r{t}", lb=None, ub=None) for t in range(len(z1))]
        for t, r in enumerate(self.residual):
            model.addCons(r == z1[t] - quicksum(Z0[t, j] * self.w[j] for j in np.flatnonzero(weightable)))
        self.loss = model.addVar("loss", lb=0.0, ub=None)
        model.addCons(self.loss >= outcome_bound)
        model.addCons(quicksum(r * r for r in self.residual) / len(z1) <= self.loss)
        model.setObjective(self.loss, "minimize")

    def _predictor_cones(self, k: int) -> None:
        """``(d_k, n_k)`` in the cone of its sign: ``delta d <= n <= d`` for ``d >= 0``,
        ``d <= n <= delta d`` for ``d <= 0``."""
        add, d, n, s, delta = self.model.addConsIndicator, self.d[k], self.n[k], self.sign[k], self.delta
        add(-d <= 0, s)
        add(n - d <= 0, s)
        add(self.scale * (delta * d - n) <= 0, s)
        add(d <= 0, s, activeone=False)
        add(d - n <= 0, s, activeone=False)
        add(self.scale * (n - delta * d) <= 0, s, activeone=False)

    def seed(self, v: FloatArray, w: FloatArray, loss: float) -> None:
        """The search's solution as the first incumbent; its loss is the cutoff."""
        model = self.model
        scaled = v / v.max()
        d = self.x1 - self.X0 @ w
        n = scaled * d
        gains = self.X0.T @ n
        pairs = [
            (self.w, w), (self.d, d), (self.n, n), (self.sign, d >= 0),
            (self.support, w > 0), (self.residual, self.z1 - self.Z0 @ w),
            ([self.c, self.loss], [gains[w > 0].max(), loss]),
        ]
        solution = model.createSol()
        for variables, values in pairs:
            for variable, value in zip(variables, values):
                model.setSolVal(solution, variable, float(value))
        model.addSol(solution)  # checked when SCIP transforms the problem
        # A hair above the loss, so that the seed stays feasible.
        model.setObjlimit(loss * (1 + 1e-9) + 1e-300)

    def solve(self, time_limit: float | None) -> SolverOutcome:
        model = self.model
        if time_limit is not None:
            # CPU time, so that a busy machine does not change which fits finish.
            model.setParam("timing/clocktype", 1)
            model.setParam("limits/time", max(time_limit, 0.01))
        with _stderr_filter.active():
            try:
                model.optimize()
            except Exception as error:  # pyscipopt raises a bare Exception on solver errors
                # Whatever the tree had proven may rest on the failed LP: keep only the
                # outcome-only bound.
                return SolverOutcome(f"error ({error})", self.outcome_bound, n_nodes=int(model.getNNodes()))
        status = str(model.getStatus())
        nodes = int(model.getNNodes())
        if model.getNSols() == 0:
            return SolverOutcome(status, float(model.getDualbound()), n_nodes=nodes)
        best = model.getBestSol()
        values = lambda variables: np.array([model.getSolVal(best, x) for x in variables])  # noqa: E731
        return SolverOutcome(
            status, float(model.getDualbound()), float(model.getSolObjVal(best)),
            w=values(self.w), d=values(self.d), n=values(self.n), n_nodes=nodes,
        )


#: What SoPlex prints (to the C-level stderr, ignoring SCIP's output settings) when
#: SCIP tightens the LP tolerance below what double precision supports.
_LP_MESSAGE = "Cannot set feasibility tolerance"


class _StderrFilter:
    """Drop SoPlex's tolerance messages from file descriptor 2, passing anything else on.

    Descriptor 2 belongs to the whole process, so concurrent solves (threads) share
    one redirection: the first to enter opens it, the last to leave restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None
        self._sink = None

    @contextmanager
    def active(self) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                try:
                    sys.stderr.flush()
                    self._saved = os.dup(2)
                except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters)
                    self._saved = None
                else:
                    self._sink = tempfile.TemporaryFile(mode="w+b")
                    os.dup2(self._sink.fileno(), 2)
            self._depth += 1

    def _leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth or self._saved is None:
                return
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._sink.seek(0)
            text = self._sink.read().decode(errors="replace")
            self._sink.close()
            kept = [line for line in text.splitlines() if _LP_MESSAGE not in line]
            if kept:
                print("\n".join(kept), file=sys.stderr)


_stderr_filter = _StderrFilter()


# ------------------------------------------------------------------ the check


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
        if outcome.objective is not None and _relative_gap(loss, outcome.objective) > CERTIFIED_RTOL:
            notes.append(
                f"the solver's solution (loss {outcome.objective:.10g}) failed the exact check: "
                f"the inner problem at its v gives {loss:.10g}"
            )
    gap = _relative_gap(best, bound)
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
    if outcome.objective is not None and _relative_gap(best[2], outcome.objective) > CERTIFIED_RTOL:
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
