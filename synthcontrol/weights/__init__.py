"""The weighting core: donor weights for given predictor weights, and the nested choice.

Pure numerical code on numpy arrays; it knows nothing of pandas, units or periods, and
trusts its inputs (validation happens at the boundary, in :mod:`synthcontrol.spec`).

Notation (Abadie, Diamond and Hainmueller 2010), mapped to the public names:

==========  ======================  ==========================================
symbol      shape                   meaning
==========  ======================  ==========================================
``x1``      (K,)                    treated unit's (scaled) predictors
``X0``      (K, J)                  donors' (scaled) predictors, one column each
``z1``      (T0,)                   treated unit's outcome over the fit window
``Z0``      (T0, J)                 donors' outcomes over the fit window
``v``       (K,)                    predictor weights, ``v >= 0``, ``sum(v) = 1``
``w``       (J,)                    donor weights, ``w >= 0``, ``sum(w) = 1``
==========  ======================  ==========================================

Inner problem: ``W(v) = argmin_w (x1 - X0 w)' diag(v) (x1 - X0 w)`` over the simplex.
Outer problem: ``v* = argmin_v L(v)`` with ``L(v) = |z1 - Z0 W(v)|^2 / T0``.

The inner problem is solved exactly by a reduction to non-negative least squares:
because ``sum(w) = 1``, ``X0 w - x1 = C w`` with ``C = X0 - x1 1'``, and the
minimiser ``u`` of ``|C u|^2 + (1'u - 1)^2`` over ``u >= 0`` is ``s w*`` with
``s = 1 / (1 + d*)`` where ``w*`` is the simplex solution and ``d*`` its objective.
So ``w* = u / sum(u)`` with no penalty constant to tune. The NNLS problem is solved
by a compiled Lawson-Hanson active set (:mod:`synthcontrol.weights._nnls`),
warm-started from the last solution during a search. An independent cvxpy
formulation, :func:`solve_weights_cvxpy`, is the reference of the tests and the
fallback. Every variant estimator solves its simplex problems with the same
helpers: :func:`simplex_least_squares`, and :func:`simplex_qp` when the objective
has a linear term; :mod:`synthcontrol.weights.solvers` is the one place that
chooses and calls external solvers (cvxpy's, Clarabel).

The outer problem is searched from several starts (equal weights, the regression-based
start of R's Synth, every vertex and edge midpoint of the simplex, seeded random
starts) by BFGS; on a fixed support the inner KKT system is linear, so ``dL/dv``
follows by implicit differentiation at the cost of one small extra solve. The best
local optima are refined by Nelder-Mead, which crosses the kinks of ``L``. The
unrestricted outcome fit ``min_w |z1 - Z0 w|^2 / T0`` bounds ``L`` from below; when
its solution is ``W(v)`` for some admissible ``v`` (a linear feasibility problem on
the inner KKT conditions) that ``v`` is a certified global optimum. The whole
search loop is compiled, so a fit costs milliseconds and placebos get the same
search budget as the treated unit.

Admissible predictor weights: for a floor ``delta`` in ``[0, 1)`` (the search option
``min_predictor_weight``, default ``1e-8``), ``v`` is admissible when ``v >= 0``,
``sum(v) = 1`` and ``min(v) >= delta * max(v)``. The floor is a ratio, so it does not
depend on how many predictors there are and survives rescaling of ``v`` (the inner
problem only sees ``v`` up to scale). The search and the certificate of global
optimality work in this one class (:func:`is_admissible`): the search variable
``y`` maps to ``q = softmax(y)`` on the simplex and then to
``v = (delta max(q) + (1 - delta) q) / sum(...)``, which reaches every admissible
``v`` with all weights positive and nothing else. (The absolute floor ``v_k >= delta`` of earlier versions is a
subset of this class.) A weight of exactly zero is excluded because it makes
``W(v)`` non-unique in general: the nested optimum would then hinge on the
tie-breaking rule rather than on the predictors.

Invariance: the core puts every problem in a canonical form before any work (donors
sorted by their data, exact duplicate donors merged and their weight split equally,
discrepancies divided by their largest absolute value), so the donor order and
duplicated donors cannot change the work, and data in other units change it only by
round-off; every tolerance is relative to the scale of what it compares.

Ties: when several ``w`` reach the inner minimum (the treated unit inside the hull of
the donors' predictors, duplicate donors), every optimal ``w`` gives the same fitted
predictors ``X0 w``. synthcontrol then picks, among these, the ``w`` with the smallest
outcome loss over the fit window -- the choice most consistent with the outer
criterion -- and reports that it did so (:func:`optimal_face_tiebreak`).
"""

from __future__ import annotations

from .inner import (
    InnerSolution,
    discrepancy,
    outcome_loss,
    simplex_least_squares,
    simplex_qp,
    solve_inner,
    solve_weights,
    solve_weights_cvxpy,
)
from .search import NestedSolution, choose_predictor_weights, is_admissible, nested_fit
from .starts import regression_start
from .tiebreak import least_norm_tiebreak, optimal_face_tiebreak

__all__ = [
    "InnerSolution",
    "NestedSolution",
    "solve_weights",
    "solve_inner",
    "solve_weights_cvxpy",
    "simplex_least_squares",
    "simplex_qp",
    "discrepancy",
    "outcome_loss",
    "regression_start",
    "optimal_face_tiebreak",
    "least_norm_tiebreak",
    "choose_predictor_weights",
    "nested_fit",
    "is_admissible",
]
