"""Standard errors of :func:`~synthcontrol.variants.fit_several`, as synthdid's
``vcov`` defines them: placebo (Algorithm 4, pseudo-treated cohorts drawn from the
donors) and jackknife (Algorithm 3, fixed weights)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Iterator

import numpy as np

from .cohorts import CohortFit, cohort_estimate, contrast

__all__ = ["placebo_estimates", "jackknife_estimates", "jackknife_se"]


def placebo_estimates(
    estimator: str, cohorts: list[CohortFit], weights: np.ndarray, n_replications: int, seed: int
) -> np.ndarray:
    """Algorithm 4 on the stacked estimator: pseudo-treated cohorts drawn from the donors."""
    sizes = [len(c.treated) for c in cohorts]
    n_donors = len(cohorts[0].donors)
    if n_donors <= sum(sizes):
        return np.array([])  # synthdid: "must have more controls than treated units"
    estimates = []
    for controls, pseudo in _assignments(n_donors, sizes, n_replications, seed):
        taus = [
            cohort_estimate(estimator, c.donor_outcome[:, p].mean(axis=1), c.donor_outcome[:, controls],
                      c.pre_mask, c.post_mask, c.zeta_omega, c.zeta_lambda).tau
            for c, p in zip(cohorts, pseudo)
        ]
        estimates.append(weights @ taus)
    return np.array(estimates)


def _assignments(n_donors: int, sizes: list[int], n_replications: int, seed: int) -> Iterator[tuple]:
    """``(controls, pseudo-treated per cohort)`` index arrays of the placebo draws.

    When there are at most ``n_replications`` distinct assignments (a single
    treated unit: one per donor) each is used once, the exact limit of Algorithm 4
    as the number of draws grows; otherwise ``n_replications`` random shuffles.
    """
    n_controls = n_donors - sum(sizes)
    count = math.comb(n_donors, n_controls) * math.factorial(sum(sizes))
    count //= math.prod(math.factorial(size) for size in sizes)
    if count <= n_replications:
        yield from _every_assignment(tuple(range(n_donors)), sizes)
        return
    rng = np.random.default_rng(seed)
    for _ in range(n_replications):
        order = rng.permutation(n_donors)
        cuts = np.cumsum([n_controls, *sizes])
        yield order[:n_controls], [order[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def _every_assignment(pool: tuple, sizes: list[int]) -> Iterator[tuple]:
    """Every split of ``pool`` into controls and cohorts of the given sizes."""
    if not sizes:
        yield np.array(pool), []
        return
    for chosen in itertools.combinations(pool, sizes[0]):
        rest = tuple(i for i in pool if i not in chosen)
        for controls, others in _every_assignment(rest, sizes[1:]):
            yield controls, [np.array(chosen), *others]


def jackknife_estimates(cohorts: list[CohortFit], weights: np.ndarray) -> np.ndarray:
    """Algorithm 3 with fixed weights: the stacked estimate without each unit in turn.

    Empty when undefined: a single treated unit, or a cohort whose unit weights sit
    on one donor (synthdid returns NA in both cases).
    """
    n_treated = sum(len(c.treated) for c in cohorts)
    if n_treated < 2 or any(np.count_nonzero(c.estimate.unit_weights) < 2 for c in cohorts):
        return np.array([])
    estimates = [_stacked_without(cohorts, weights, donor=j) for j in range(len(cohorts[0].donors))]
    for k, cohort in enumerate(cohorts):
        estimates += [_stacked_without(cohorts, weights, treated=(k, i)) for i in range(len(cohort.treated))]
    return np.array(estimates)


def _stacked_without(
    cohorts: list[CohortFit], weights: np.ndarray, donor: int | None = None, treated: tuple | None = None
) -> float:
    """Fixed-weight stacked estimate with one donor or one treated unit left out."""
    taus, kept = [], []
    for k, (cohort, weight) in enumerate(zip(cohorts, weights)):
        Y1, Y0, est = cohort.treated_outcome, cohort.donor_outcome, cohort.estimate
        if treated is not None and treated[0] == k:
            if Y1.shape[1] == 1:
                continue  # the cohort loses its only treated unit and leaves the average
            Y1 = np.delete(Y1, treated[1], axis=1)
            weight = weight * Y1.shape[1] / cohort.treated_outcome.shape[1]
        if donor is not None:
            omega = np.delete(est.unit_weights, donor)
            Y0, est = np.delete(Y0, donor, axis=1), replace(est, unit_weights=omega / omega.sum())
        taus.append(contrast(Y1.mean(axis=1), Y0, est, cohort.pre_mask, cohort.post_mask))
        kept.append(weight)
    return float(np.dot(kept, taus) / np.sum(kept))


def jackknife_se(estimates: np.ndarray) -> float:
    n = estimates.size
    return float(np.sqrt((n - 1) / n * np.sum((estimates - estimates.mean()) ** 2))) if n else float("nan")
