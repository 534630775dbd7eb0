"""Prediction intervals for synthetic controls (Cattaneo, Feng and Titiunik 2021, JASA).

The treated unit's counterfactual outcome in post-period ``t`` is ``p_t' w`` (the
donors' outcomes weighted) plus an out-of-sample error ``e_t``. Its prediction
interval adds two pieces, as the scpi packages do:

* **in-sample uncertainty**, from estimating ``w`` on the simplex. With the
  pre-period outcome as the single feature (``A`` the treated unit's, ``Z`` the
  donors', ``T0`` periods, ``V = I``), ``Q = Z'Z / T0``, pseudo-residuals
  ``u = A - Z w`` and the heteroskedasticity-robust ``Sigma = Z' diag(omega) Z / T0^2``,
  ``omega = (u - mean u)^2 * vc`` (``vc = T0 / (T0 - df)`` for HC1, ``df`` the
  number of non-zero weights minus one), each of ``sims`` draws ``G ~ N(0, Sigma)``
  gives the bounds ``min`` and ``max`` of ``p_t'(w - x)`` over the weights ``x`` of
  the localised simplex (``sum x = 1``, ``x_j >= w_j`` for weights below ``rho`` and
  ``x_j >= 0`` otherwise) with ``(x - w)' Q (x - w) - 2 G'(x - w) <= 0``; the
  bounds are the ``u_alpha / 2`` and ``1 - u_alpha / 2`` quantiles over the draws.
  ``rho`` is scpi's "type-2" rule,
  ``rho = sigma_u max_j sd(Z_j) / min_j var(Z_j) * sqrt(log(J) d0 log(T0) / T0)``
  capped at ``rho_max`` (``d0`` the non-zero weights), raised as scpi does when it
  falls below 0.001;
* **out-of-sample uncertainty** of ``e_t``, from the pre-period residuals ``u``
  and scpi's first-order moment model: a design ``H`` of the donors whose weight
  exceeds ``rho`` and a constant (only the constant when the pre-period has no more
  than ten periods more than ``H`` has columns), ``H1`` the same donors after
  treatment. With ``m = H1 b`` (least squares of ``u`` on ``H``), ``s^2 = exp(H1 g)``
  (least squares of ``log (u - H b)^2`` on ``H``) and ``sigma = min(s, IQR / 1.34)``
  (the interquartile range from quantile regressions of ``u - H b`` on ``H``):
  ``"gaussian"`` (sub-Gaussian bound): ``m -/+ sqrt(2 log(2 / e_alpha)) sigma``;
  ``"ls"`` (location-scale): ``m + sigma q``, ``q`` the ``e_alpha / 2`` and
  ``1 - e_alpha / 2`` quantiles of the standardised residuals; ``"qreg"``: quantile
  regressions of ``u`` on ``H`` at those levels. The same design gives the mean of
  ``u`` removed in ``omega``.

The interval for the synthetic outcome is
``[p_t'w + in_lower + out_lower, p_t'w + in_upper + out_upper]`` and the effect's is
``y_t`` minus it; its coverage is at least ``1 - u_alpha - e_alpha``.

This is scpi_pkg 4.0.0's ``scpi(...)`` for one treated unit, ``w_constr =
{"name": "simplex"}``, the outcome as the only feature, ``V = "separate"``,
``u_missp = True``, ``u_sigma``, ``rho = "type-2"``, ``rho_max = 0.2`` and its
default moment models (``u_order = e_order = 1``, no lags). scpi draws from numpy's
global random state and this module from ``default_rng(seed)``, so in-sample bounds
agree up to simulation noise; scpi fits its quantile regressions with statsmodels'
iterative solver, this module with an exact linear programme (HiGHS), which can
move ``sigma`` where the quantile is not unique. ``benchmarks/bench_variants.py``
measures the agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log, sqrt
from typing import Hashable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from .._validation import check_choice, check_int, check_number, check_seed
from ..errors import ArgumentError, SolverError, SpecError
from ..registry import ESTIMATORS
from ..results import Summary, SynthResult
from ..weights.solvers import LocalisedSimplex
from ._common import check_result, frozen

__all__ = ["prediction_intervals", "PredictionIntervalResult", "E_METHODS"]

#: Out-of-sample methods of :func:`prediction_intervals`.
E_METHODS = ("gaussian", "ls", "qreg")


@dataclass(frozen=True, eq=False)
class PredictionIntervalResult:
    """Prediction intervals per post period (Cattaneo, Feng and Titiunik 2021).

    Attributes
    ----------
    treated : hashable
    post_periods : tuple
    treated_outcome, synthetic : ndarray, shape (T1,)
    in_sample : ndarray, shape (T1, 2)
        Bounds of the in-sample error ``p_t'(w - x)``.
    out_of_sample : dict of str to ndarray, shape (T1, 2)
        Bounds of the out-of-sample error, per method.
    u_alpha, e_alpha : float
    sims : int
    failed_sims : int
        Draws whose problem the solver could not finish (left out of the quantiles).
    rho : float
    sigma : ndarray, shape (J, J)
        The in-sample variance ``Sigma``.
    time : str
    """

    treated: Hashable
    post_periods: tuple
    treated_outcome: np.ndarray
    synthetic: np.ndarray
    in_sample: np.ndarray
    out_of_sample: dict
    u_alpha: float
    e_alpha: float
    sims: int
    failed_sims: int
    rho: float
    sigma: np.ndarray
    time: str

    def __repr__(self) -> str:
        return (
            f"<PredictionIntervalResult: {self.treated!r}, {len(self.post_periods)} periods, "
            f"methods {', '.join(self.out_of_sample)}, level >= {1 - self.u_alpha - self.e_alpha:.0%}>"
        )

    @property
    def table(self) -> pd.DataFrame:
        """Per post period: treated and synthetic outcome, effect, in-sample bounds,
        and per method the synthetic outcome's and the effect's interval."""
        effect = self.treated_outcome - self.synthetic
        columns = {
            "treated": self.treated_outcome,
            "synthetic": self.synthetic,
            "effect": effect,
            "in_lower": self.synthetic + self.in_sample[:, 0],
            "in_upper": self.synthetic + self.in_sample[:, 1],
        }
        for method, bounds in self.out_of_sample.items():
            lower = self.synthetic + self.in_sample[:, 0] + bounds[:, 0]
            upper = self.synthetic + self.in_sample[:, 1] + bounds[:, 1]
            columns |= {
                f"{method}_lower": lower,
                f"{method}_upper": upper,
                f"{method}_effect_lower": self.treated_outcome - upper,
                f"{method}_effect_upper": self.treated_outcome - lower,
            }
        return pd.DataFrame(columns, index=pd.Index(self.post_periods, name=self.time))

    def summary(self) -> Summary:
        """The interval table and how it was computed (prints nothing)."""
        notes = (
            f"Prediction intervals (Cattaneo, Feng and Titiunik 2021) for {self.treated!r}: in-sample "
            f"level {1 - self.u_alpha:.0%} from {self.sims} draws ({self.failed_sims} failed), "
            f"out-of-sample level {1 - self.e_alpha:.0%}; joint level at least "
            f"{1 - self.u_alpha - self.e_alpha:.0%}.",
            f"Localisation rho = {self.rho:.4g} (scpi's type-2 rule).",
        )
        return Summary(f"Prediction intervals for {self.treated}", {"Post periods": self.table}, notes)


def prediction_intervals(
    result: SynthResult,
    *,
    u_alpha: float = 0.05,
    e_alpha: float = 0.05,
    e_method: Literal["gaussian", "ls", "qreg", "all"] = "all",
    sims: int = 200,
    u_sigma: Literal["HC0", "HC1", "HC2", "HC3"] = "HC1",
    rho: float | None = None,
    rho_max: float = 0.2,
    seed: int = 0,
) -> PredictionIntervalResult:
    """Prediction intervals of the synthetic outcome and the effect, per post period.

    Parameters
    ----------
    result : SynthResult
        A fit with simplex weights and no intercept (``"classic"`` or ``"penalized"``).
    u_alpha, e_alpha : float, default 0.05
        Levels of the in-sample and out-of-sample pieces (scpi's defaults).
    e_method : {"gaussian", "ls", "qreg", "all"}, default "all"
    sims : int, default 200
        Draws for the in-sample piece.
    u_sigma : {"HC0", "HC1", "HC2", "HC3"}, default "HC1"
    rho : float, optional
        Localisation threshold; default scpi's "type-2" rule (module docstring).
    rho_max : float, default 0.2
    seed : int, default 0
        Seed of the in-sample draws, given to the donors in label order (the order
        the spec lists them in does not change the intervals).

    Returns
    -------
    PredictionIntervalResult

    Raises
    ------
    SpecError
        A bad argument, or an estimator whose weights are not on the simplex.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989)
    >>> res = sc.fit(sc.datasets.load_smoking(), spec)
    >>> pi = sc.prediction_intervals(res, sims=20, e_method="gaussian")
    >>> t = pi.table
    >>> bool((t["gaussian_lower"] <= t["synthetic"]).all() and (t["synthetic"] <= t["gaussian_upper"]).all())
    True
    """
    result = check_result(result, "prediction_intervals")
    methods = _check_arguments(result, u_alpha, e_alpha, e_method, sims, u_sigma, rho, rho_max, seed)
    design = result.design
    pre, post = design.pre_mask, design.post_mask
    A, Z = design.outcome[pre, 0], design.outcome[pre, 1:]
    P = design.outcome[post, 1:]
    w = result.solution.weights
    residuals = A - Z @ w
    rho = _rho(residuals, Z, w, rho_max) if rho is None else float(rho)
    H0, H1 = _moment_designs(Z, P, w, rho)
    sigma = _sigma(residuals - H0 @ _least_squares(H0, residuals), Z, w, u_sigma)
    lower_bound = np.where(w < rho, w, 0.0)  # scpi's localgeom2step for the simplex
    draws, failed = _in_sample_draws(w, Z, P, sigma, lower_bound, sims, seed, _label_ranks(result.donors))
    in_sample = np.column_stack([
        np.nanquantile(draws[:, :, 0], u_alpha / 2, axis=0),
        np.nanquantile(draws[:, :, 1], 1 - u_alpha / 2, axis=0),
    ])
    out = {m: _out_of_sample(residuals, H0, H1, m, e_alpha) for m in methods}
    return PredictionIntervalResult(
        treated=result.treated,
        post_periods=tuple(np.array(design.periods, dtype=object)[post].tolist()),
        treated_outcome=frozen(design.outcome[post, 0]),
        synthetic=frozen(P @ w),
        in_sample=frozen(in_sample),
        out_of_sample={m: frozen(b) for m, b in out.items()},
        u_alpha=float(u_alpha),
        e_alpha=float(e_alpha),
        sims=int(sims),
        failed_sims=failed,
        rho=rho,
        sigma=frozen(sigma),
        time=design.spec.time,
    )


def _check_arguments(result, u_alpha, e_alpha, e_method, sims, u_sigma, rho, rho_max, seed) -> tuple:
    if not result.options.entry.simplex_weights or result.intercept:
        simplex = sorted(name for name, entry in ESTIMATORS.items() if entry.simplex_weights)
        raise SpecError(
            f"prediction_intervals needs simplex weights without intercept (estimators {simplex}); "
            f"the result is from estimator {result.estimator!r}"
        )
    u_alpha = check_number(u_alpha, "u_alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    e_alpha = check_number(e_alpha, "e_alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    if u_alpha + e_alpha >= 1:
        raise ArgumentError(
            f"u_alpha={u_alpha:g} and e_alpha={e_alpha:g} add up to {u_alpha + e_alpha:g}: the intervals' "
            "level, at least 1 - u_alpha - e_alpha, would be nothing; give levels that add up to less than 1"
        )
    check_choice(e_method, "e_method", (*E_METHODS, "all"))
    check_int(sims, "sims", minimum=2)
    check_choice(u_sigma, "u_sigma", ("HC0", "HC1", "HC2", "HC3"))
    if rho is not None:
        check_number(rho, "rho", low=0.0)
    check_number(rho_max, "rho_max", low=0.0, low_open=True)
    check_seed(seed)
    design = result.design
    if design.pre_mask.sum() < 3:
        raise SpecError("prediction_intervals needs at least three pre-treatment periods in the fit window")
    constant = [unit for unit, z in zip(design.donors, design.outcome[design.pre_mask, 1:].T) if np.var(z) == 0]
    if rho is None and constant:  # scpi's rule for rho divides by each donor's pre-period variance
        raise SpecError(
            f"donor(s) {constant} of {result.treated!r} have the same outcome in every pre-treatment period, "
            "so the default localisation rho (scpi's type-2 rule) is undefined; drop them from the donors "
            "or give rho"
        )
    return E_METHODS if e_method == "all" else (e_method,)


def _n_active(w: np.ndarray) -> int:
    return int(np.sum(np.abs(w) >= 1e-6))


def _rho(residuals: np.ndarray, Z: np.ndarray, w: np.ndarray, rho_max: float) -> float:
    """scpi's "type-2" localisation (``regularize_w`` and ``regularize_check_lb``)."""
    T0, J = Z.shape

    def rule(kind: str, cap: float) -> float:
        sigma_u = float(np.sqrt(np.mean((residuals - residuals.mean()) ** 2)))
        sd, var = Z.std(axis=0, ddof=1), Z.var(axis=0, ddof=1)  # positive: checked at the boundary
        scale = sigma_u / sd.min() if kind == "type-1" else sigma_u * sd.max() / var.min()
        return min(scale * sqrt(log(J) * _n_active(w) * log(T0)) / sqrt(T0), cap)

    rho = rule("type-2", rho_max)
    if rho < 0.001:  # too little shrinkage for the out-of-sample step: scpi raises it
        rho = max(rule("type-1", 0.2), rule("type-2", 0.2))
        rho = rho_max if rho < 0.05 else rho
    return rho


def _moment_designs(Z: np.ndarray, P: np.ndarray, w: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """scpi's first-order designs: the donors weighted above ``rho`` (at least the
    largest) and a constant, before and after treatment; only the constant when the
    pre-period is not ten periods longer than the design is wide."""
    selected = w > rho
    if not selected.any():
        selected[np.argmax(w)] = True
    H0 = np.column_stack([Z[:, selected], np.ones(Z.shape[0])])
    if Z.shape[0] - 10 <= H0.shape[1]:
        return np.ones((Z.shape[0], 1)), np.ones((P.shape[0], 1))
    return H0, np.column_stack([P[:, selected], np.ones(P.shape[0])])


def _least_squares(H: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(H, y, rcond=None)[0]


def _quantile_regression(H: np.ndarray, y: np.ndarray, tau: float) -> np.ndarray:
    """``argmin_b sum rho_tau(y - H b)``, exactly, as a linear programme."""
    n, k = H.shape
    cost = np.concatenate([np.zeros(k), np.full(n, tau), np.full(n, 1 - tau)])
    equality = np.hstack([H, np.eye(n), -np.eye(n)])
    bounds = [(None, None)] * k + [(0, None)] * (2 * n)
    solution = linprog(cost, A_eq=equality, b_eq=y, bounds=bounds, method="highs")
    if solution.status != 0:
        raise SolverError(f"the quantile regression of prediction_intervals failed: {solution.message}")
    return solution.x[:k]


def _sigma(residuals: np.ndarray, Z: np.ndarray, w: np.ndarray, u_sigma: str) -> np.ndarray:
    """``Z' diag(omega) Z / T0^2`` with HC weights (scpi's ``u_sigma_est``, ``V = I``);
    ``residuals`` are already centred on their modelled mean."""
    T0 = Z.shape[0]
    df = min(_n_active(w) - 1, T0 - 1)
    if u_sigma in ("HC2", "HC3"):
        leverage = np.diag(Z @ np.linalg.pinv(Z.T @ Z) @ Z.T)
        vc = 1 / (1 - leverage) ** (1 if u_sigma == "HC2" else 2)
    else:
        vc = T0 / (T0 - df) if u_sigma == "HC1" else 1.0
    omega = residuals**2 * vc
    return (Z.T * omega) @ Z / T0**2


def _label_ranks(donors: Sequence[Hashable]) -> np.ndarray:
    """Each donor's position among the donors sorted by label (labels of one panel
    are sortable, see :class:`~synthcontrol.panel.Panel`)."""
    rank = np.empty(len(donors), dtype=int)
    rank[sorted(range(len(donors)), key=donors.__getitem__)] = np.arange(len(donors))
    return rank


def _in_sample_draws(
    w: np.ndarray, Z: np.ndarray, P: np.ndarray, sigma: np.ndarray, lower_bound: np.ndarray, sims: int, seed: int,
    rank: np.ndarray,
) -> tuple[np.ndarray, int]:
    """``(sims, T1, 2)`` minima and maxima of ``p_t'(w - x)``, and the failed draws.
    Donor ``j`` takes row ``rank[j]`` of the seeded normals, so that the order the
    donors are listed in does not change the draws."""
    values, vectors = np.linalg.eigh(sigma)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    draws = root @ np.random.default_rng(seed).standard_normal((w.size, sims))[rank]
    # Scaled by the donors' outcome scale so that the solver's tolerances are relative.
    scale = max(float(np.abs(Z).max()), 1e-300)
    R = Z / (scale * np.sqrt(Z.shape[0]))
    out = np.full((sims, P.shape[0], 2), np.nan)
    for s in range(sims):
        problem = LocalisedSimplex(w, R, draws[:, s] / scale**2, lower_bound)
        for t, p in enumerate(P):
            for side, sign in enumerate((-1.0, 1.0)):  # lower: maximise p'x; upper: minimise it
                x = problem.minimise(sign * p / scale)
                if x is not None:
                    out[s, t, side] = p @ (w - x)
    failed = int(np.isnan(out).sum())
    if failed == out.size:
        raise SolverError("every in-sample problem of prediction_intervals failed to solve")
    return out, failed


def _out_of_sample(residuals: np.ndarray, H0: np.ndarray, H1: np.ndarray, method: str, e_alpha: float) -> np.ndarray:
    """``(T1, 2)`` bounds of the out-of-sample error (scpi's ``scpi_out``)."""
    levels = (e_alpha / 2, 1 - e_alpha / 2)
    if method == "qreg":
        if H0.shape[1] == 1:  # scpi: plain quantiles when the design is a constant
            return np.tile(np.quantile(residuals, levels), (H1.shape[0], 1))
        return np.column_stack([H1 @ _quantile_regression(H0, residuals, tau) for tau in levels])
    b = _least_squares(H0, residuals)
    mean, centred = H1 @ b, residuals - H0 @ b
    g = _least_squares(H0, np.log(np.maximum(centred**2, np.finfo(float).tiny)))
    q1, q3 = (H1 @ _quantile_regression(H0, centred, tau) for tau in (0.25, 0.75))
    sigma = np.minimum(np.sqrt(np.exp(H1 @ g)), np.abs(q3 - q1) / 1.34)
    if method == "gaussian":
        eps = sqrt(-2 * log(e_alpha / 2)) * sigma
        return np.column_stack([mean - eps, mean + eps])
    standardised = centred / np.sqrt(np.exp(H0 @ g))
    return mean[:, None] + sigma[:, None] * np.quantile(standardised, levels)[None, :]
