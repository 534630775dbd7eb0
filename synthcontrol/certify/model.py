"""The exact reformulation of the nested problem as a convex MIQP, in SCIP (see
:mod:`synthcontrol.certify`), and the donor screen that comes before it."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy import optimize

__all__ = ["SolverOutcome", "NestedMiqp", "weightable_donors", "row_scale", "SCIP_FEASTOL", "EXPOSURE_TOL"]

FloatArray = np.ndarray

#: SCIP's feasibility tolerance. Its default (1e-6) lets ``n = v * d`` reach ``1e-8``
#: scale with every KKT condition "satisfied": on California it then reports 2.744, a
#: loss no admissible ``v`` attains (the exact check gives 34.9 at its ``v``).
SCIP_FEASTOL = 1e-9


def row_scale(delta: float) -> float:
    """Factor on the floor and KKT rows: ``1e-4 / delta``, within ``[1, 1e4]``.

    SCIP's tolerance is absolute for rows of small activity, and these rows live at
    the scale ``delta * |d|``; scaled, the tolerance is about ``delta * 1e-5``. On
    California and two hard placebos (``delta = 1e-8``) a factor of 1 let SCIP report
    losses that fail the exact check, 1e8 ran out of time, 1e4 certified all three.
    """
    return float(np.clip(1e-4 / delta, 1.0, 1e4))


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


class NestedMiqp:
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
