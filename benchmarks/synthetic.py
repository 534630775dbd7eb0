"""Synthetic panels with a known answer, for the scaling benchmarks.

The treated unit is a known sparse convex combination of the donors plus noise,
so a fit can be scored against the truth: the donor weights, the counterfactual
path and the treatment effect.

Data-generating process (every draw from one seeded generator):

* donor outcome ``y_jt = a_j + l_j . f_t + e_jt``: a unit level ``a_j ~ N(0, 1)``,
  ``n_factors`` common factors ``f_t`` (Gaussian random walks) with loadings
  ``l_j ~ N(0, I)``, and an idiosyncratic ``e_jt ~ N(0, 1)`` that makes the donors
  distinguishable;
* donor covariate ``x_kj = g_k . l_j + u_kj`` with ``g_k, u_kj ~ N(0, 1)``:
  partly informative of the loadings, observed once, in the first period;
* treated unit ``sum_j w_j (x_kj, y_jt) + noise * N(0, 1)``, with ``w`` on
  ``n_active`` random donors, drawn Dirichlet(1); from period ``n_pre + 1`` on
  its outcome also carries ``effect``.

The specification matches on every covariate and chooses predictor weights over
the ``n_pre`` pre-periods. Without noise the truth is an exact solution; it is the
only one while the donors cannot reproduce the treated unit otherwise, which for a
sparse ``w`` holds when ``n_pre + n_predictors`` is not too small against
``log(n_donors)`` (the recovery error at large J and small T0, K measures exactly
this).

Examples
--------
>>> panel = make_panel(n_donors=8, n_predictors=3, n_pre=6, noise=0.0, seed=1)
>>> panel.frame.shape, len(panel.spec.predictors)
((99, 6), 3)
>>> round(float(panel.true_weights.sum()), 12), int((panel.true_weights > 0).sum())
(1.0, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import synthcontrol as sc

TREATED = "treated"


@dataclass(frozen=True)
class SyntheticPanel:
    """A long panel whose treated unit has a known synthetic control.

    Attributes
    ----------
    frame : pandas.DataFrame
        Long panel: ``unit``, ``time`` (1, 2, ...), outcome ``y`` and covariates
        ``x0, x1, ...`` (given in period 1 only).
    spec : synthcontrol.Spec
        Treated ``"treated"``, matching on every covariate, fit window the pre-periods.
    donors : tuple of str
        Donor names, in the order of ``true_weights``.
    true_weights : ndarray
        The convex combination that built the treated unit.
    counterfactual : ndarray
        The treated outcome without noise and effect, every period.
    effect : float
        The treatment effect added from the first post-period on.
    """

    frame: pd.DataFrame
    spec: sc.Spec
    donors: tuple
    true_weights: np.ndarray
    counterfactual: np.ndarray
    effect: float


def make_panel(
    n_donors: int,
    n_predictors: int,
    n_pre: int,
    *,
    n_post: int = 5,
    n_active: int = 4,
    n_factors: int = 3,
    noise: float = 0.1,
    effect: float = 1.0,
    seed: int = 0,
) -> SyntheticPanel:
    """Draw a panel with ``n_donors`` donors, ``n_predictors`` covariates and
    ``n_pre`` pre-periods (see the module docstring for the process).

    ``noise`` is the standard deviation of the treated unit's departure from its
    convex combination, in units of the donors' idiosyncratic standard deviation.
    """
    rng = np.random.default_rng(seed)
    n_periods = n_pre + n_post
    loadings = rng.normal(size=(n_factors, n_donors))
    factors = np.cumsum(rng.normal(size=(n_periods, n_factors)), axis=0)
    Z0 = rng.normal(size=(1, n_donors)) + factors @ loadings + rng.normal(size=(n_periods, n_donors))
    X0 = rng.normal(size=(n_predictors, n_factors)) @ loadings + rng.normal(size=(n_predictors, n_donors))
    weights = np.zeros(n_donors)
    active = rng.choice(n_donors, size=min(n_active, n_donors), replace=False)
    weights[active] = rng.dirichlet(np.ones(active.size))
    counterfactual = Z0 @ weights
    z1 = counterfactual + noise * rng.normal(size=n_periods) + effect * (np.arange(n_periods) >= n_pre)
    x1 = X0 @ weights + noise * rng.normal(size=n_predictors)
    donors = tuple(f"d{j:04d}" for j in range(n_donors))
    frame = _long_frame((TREATED, *donors), np.column_stack([z1, Z0]), np.column_stack([x1, X0]))
    spec = sc.Spec(outcome="y", treated=TREATED, treatment_start=n_pre + 1,
                   predictors=[sc.at(f"x{k}", 1) for k in range(n_predictors)], fit_window=(1, n_pre))
    return SyntheticPanel(frame, spec, donors, weights, counterfactual, effect)


def _long_frame(units: tuple, outcome: np.ndarray, covariates: np.ndarray) -> pd.DataFrame:
    """Long frame from a (T, N) outcome and (K, N) covariates observed in period 1."""
    n_periods, n_units = outcome.shape
    frame = pd.DataFrame({
        "unit": np.tile(np.asarray(units, dtype=object), n_periods),
        "time": np.repeat(np.arange(1, n_periods + 1), n_units),
        "y": outcome.ravel(),
    })
    baseline = np.full((n_periods * n_units, covariates.shape[0]), np.nan)
    baseline[:n_units] = covariates.T
    return frame.join(pd.DataFrame(baseline, columns=[f"x{k}" for k in range(covariates.shape[0])]))


def recovery(result: sc.SynthResult, panel: SyntheticPanel) -> dict[str, float]:
    """Score a fit of ``panel`` against the truth.

    Returns
    -------
    dict
        ``weight_l1`` (L1 distance of the donor weights, in [0, 2]),
        ``pre_rmspe`` (the fit's pre-period RMSPE), ``counterfactual_rmse``
        (synthetic against the noiseless counterfactual, post-period) and
        ``effect_error`` (estimated minus true average effect).

    Examples
    --------
    >>> panel = make_panel(n_donors=8, n_predictors=3, n_pre=6, noise=0.001, seed=1)
    >>> score = recovery(sc.fit(panel.frame, panel.spec), panel)
    >>> score["weight_l1"] < 0.02, abs(score["effect_error"]) < 0.02
    (True, True)
    """
    estimated = result.weights.reindex(list(panel.donors), fill_value=0.0).to_numpy()
    post = result.design.post_mask
    synthetic = result.path["synthetic"].to_numpy()
    return {
        "weight_l1": float(np.abs(estimated - panel.true_weights).sum()),
        "pre_rmspe": float(result.pre_rmspe),
        "counterfactual_rmse": float(np.sqrt(np.mean((synthetic[post] - panel.counterfactual[post]) ** 2))),
        "effect_error": float(result.average_effect - panel.effect),
    }
