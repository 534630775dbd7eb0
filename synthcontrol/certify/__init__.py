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

Modules
-------
:mod:`.certificate` the :class:`Certificate` and the solver requirement;
:mod:`.model` the donor screen and the MIQP; :mod:`.check` the exact check of the
solver's answer; :mod:`.solve` :func:`certify_nested`, which runs them in order.
"""

from __future__ import annotations

from .certificate import (
    CERTIFIED_RTOL,
    DEFAULT_TIME_LIMIT,
    IMPROVEMENT_RTOL,
    STATUSES,
    Certificate,
    require_solver,
)
from .check import check_predictor_weights, judge, recover_predictor_weights
from .model import SCIP_FEASTOL, SolverOutcome, row_scale, weightable_donors
from .solve import certify_nested

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
    "IMPROVEMENT_RTOL",
    "SCIP_FEASTOL",
]
