"""What the default search's missed optima look like (issue 13): a diagnosis, not a timing.

For every California fit (``benchmarks/reference.py``'s problems) whose default loss
is more than 0.1% above the reference loss of ``reference_losses.json``, this script
measures three things:

* **exact fit**: the predictors that ``W(v)`` fits exactly (residual below 1e-5 of
  the largest) at the reference's predictor weights and at the default's. The missed
  optima put almost all weight on a few predictors fitted exactly and spread the
  others over orders of magnitude below them, where they only choose among the many
  weightings that fit those few.
* **own QP**: for fixed donors with equal dual values ``S`` and a fixed sign pattern
  ``sigma`` of the predictor residuals, the nested problem is a convex QP in ``w``
  (the inner optimality conditions hold with the same multipliers ``s = v * r``
  whatever ``w`` on ``S`` keeps the signs; ``v = s / r`` follows). The default's end
  point is compared with the optimum of its own QP (cvxpy): equal means the miss is
  combinatorial (another ``S`` or ``sigma``), not a local search stopped short.
* **given the face**: the default multi-start search (:func:`run_search`, the same
  settings) with every start holding the reference's exactly fitted predictors at
  the top and the others 1% of it and below: the excess it reaches when told which
  predictors to fit exactly.
* **faces below**: how many sets of one to three predictors have a face bound (the
  best outcome fit among donor weights fitting those predictors exactly) below the
  default's loss, so that a search of their faces could not be ruled out; with
  ``--signs`` also how many of the ``3^K`` residual sign patterns have a bound (the
  best outcome fit with those residual signs, zero meaning fitted exactly) below it
  (slow: a few thousand QPs per fit).

    python benchmarks/misses.py                 # seconds once the kernels are compiled
    python benchmarks/misses.py --signs --markdown out.md
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.quality import TARGETS  # noqa: E402
from benchmarks.reference import REFERENCE, SETS, nested_problem  # noqa: E402
from synthcontrol.weights import choose_predictor_weights  # noqa: E402
from synthcontrol.weights.canonical import _Problem  # noqa: E402
from synthcontrol.weights.search import _search  # noqa: E402
from synthcontrol.weights.starts import _fixed_starts  # noqa: E402

#: A residual below this share of the largest predictor discrepancy counts as an exact fit.
EXACT = 1e-5
#: The default search settings, read from :func:`choose_predictor_weights`.
_DEFAULTS = {name: p.default for name, p in inspect.signature(choose_predictor_weights).parameters.items()}
DELTA, N_RANDOM, N_LOCAL, N_POLISH, MAX_ITERATIONS = (
    _DEFAULTS[name] for name in ("min_predictor_weight", "n_random_starts", "n_local", "n_polish", "max_iterations")
)
#: Depth of the other predictors below the exactly fitted ones in the face search (log).
FACE_DEPTH = float(np.log(1e-2))


def exactly_fitted(C: np.ndarray, w: np.ndarray) -> list[int]:
    residual = np.abs(C @ w)
    return [int(k) for k in np.flatnonzero(residual <= EXACT * np.abs(C).max())]


def own_qp(C: np.ndarray, D: np.ndarray, v: np.ndarray, w: np.ndarray) -> float:
    """The optimum of the convex QP of ``w``'s (S, sigma): donors with the smallest dual
    value (to 1e-7 of the largest) and the residuals' signs (zero where fitted exactly)."""
    r = C @ w
    dual = C.T @ (v * r)
    S = np.flatnonzero(dual - dual.min() <= 1e-7 * np.abs(dual).max())
    sigma = np.where(np.abs(r) <= EXACT * np.abs(C).max(), 0.0, np.sign(r))
    return best_fit_with_residual_signs(C[:, S], D[:, S], sigma)


def face_search(problem: _Problem, top: list[int]) -> float:
    """The default search with every start holding ``top`` at the largest weight."""
    others = [k for k in range(problem.K) if k not in top]
    fixed = _fixed_starts(len(others), N_RANDOM, 0, DELTA)
    starts = np.zeros((fixed.shape[0], problem.K))
    starts[:, others] = fixed + FACE_DEPTH
    points = _search(problem, starts, DELTA, N_LOCAL, N_POLISH, MAX_ITERATIONS)
    return min(point.loss for point in points) * problem.D_scale**2


def best_fit_with_residual_signs(C: np.ndarray, D: np.ndarray, sigma: np.ndarray) -> float:
    """min ``|D w|^2 / T0`` over the simplex with residual ``k`` of sign ``sigma[k]``
    (zero: fitted exactly; NaN: free); infinite when no weights have those signs."""
    w = cp.Variable(C.shape[1])
    fitted = C @ w
    constraints = [w >= 0, cp.sum(w) == 1]
    constraints += [fitted[k] == 0 if sigma[k] == 0 else sigma[k] * fitted[k] >= 0
                    for k in range(C.shape[0]) if not np.isnan(sigma[k])]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(D @ w) / D.shape[0]), constraints)
    problem.solve(solver=cp.CLARABEL)
    return float(problem.value) if problem.status == cp.OPTIMAL else np.inf


def bounds_below(C: np.ndarray, D: np.ndarray, loss: float, signs: bool) -> tuple[int, int | None]:
    """How many exact-fit sets of one to three predictors, and (``signs``) how many
    residual sign patterns, have a bound more than 0.1% below ``loss``."""
    K, level = C.shape[0], loss * (1 - TARGETS["california"])
    faces = 0
    for size in (1, 2, 3):
        for fitted in itertools.combinations(range(K), size):
            sigma = np.full(K, np.nan)
            sigma[list(fitted)] = 0.0
            faces += best_fit_with_residual_signs(C, D, sigma) < level
    if not signs:
        return faces, None
    patterns = sum(best_fit_with_residual_signs(C, D, np.array(p, float)) < level
                   for p in itertools.product((-1, 0, 1), repeat=K))
    return faces, patterns


def diagnose(unit: str, nested: tuple[np.ndarray, ...], entry: dict[str, Any],
             signs: bool = False) -> dict[str, Any] | None:
    x1, X0, z1, Z0 = nested
    solution = choose_predictor_weights(x1, X0, z1, Z0)
    best = entry["loss"]
    if solution.loss <= best * (1 + TARGETS["california"]):
        return None
    problem = _Problem(x1, X0, z1, Z0)
    C, D = x1[:, None] - X0, z1[:, None] - Z0
    v_ref = np.asarray(entry["predictor_weights"])
    w_ref = problem.expand(problem.weights(v_ref, cold=True))
    top = exactly_fitted(C, w_ref)
    faces, patterns = bounds_below(C, D, solution.loss, signs)
    return {"unit": unit, "excess": solution.loss / best - 1,
            "reference_exact": top, "default_exact": exactly_fitted(C, solution.weights),
            "own_qp_excess": own_qp(C, D, solution.predictor_weights, solution.weights) / best - 1,
            "face_search_excess": face_search(problem, top) / best - 1,
            "faces_below": faces, "patterns_below": patterns}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["Default California fits more than 0.1% above the reference (excess = loss / reference - 1; "
             "predictors numbered from 0 in the order of `specs.py`):", "",
             "| unit | default excess | fitted exactly at the reference | fitted exactly by the default | "
             "optimum of the default's own QP | search given the reference's exact fit | "
             "exact-fit sets (of 63) with a bound below | sign patterns (of 2187) with a bound below |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        patterns = "not run" if r["patterns_below"] is None else r["patterns_below"]
        lines.append(f"| {r['unit']} | {r['excess']:.2e} | {r['reference_exact']} | {r['default_exact']} | "
                     f"{r['own_qp_excess']:.2e} | {r['face_search_excess']:.2e} | {r['faces_below']} | {patterns} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--signs", action="store_true", help="also count the sign patterns with a bound below (slow)")
    args = ap.parse_args(argv)
    reference = json.loads(REFERENCE.read_text())["problems"]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unit, design in SETS["california"]():
            found = diagnose(unit, nested_problem(design), reference[f"california/{unit}"], args.signs)
            if found is not None:
                rows.append(found)
    text = markdown(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return rows


if __name__ == "__main__":
    main()
