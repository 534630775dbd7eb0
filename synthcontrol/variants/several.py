"""Several treated units at once: a block treated together, or staggered adoption.

The estimators follow the R package synthdid 0.0.9 (Arkhangelsky, Athey, Hirshberg,
Imbens and Wager 2021), for ``N1`` treated units with ``T1`` post-periods and
``N0`` donors, on the *average* treated unit ``y1 = mean of the treated outcomes``:

* ``"sdid"`` (``synthdid_estimate``): unit weights with intercept and ridge
  ``zeta_omega = (N1 T1)^(1/4) sigma``, time weights with ``zeta_lambda = 1e-6 sigma``,
  ``sigma`` the standard deviation of the donors' pre-period first differences; the
  estimate is the weighted difference in differences (see :mod:`.sdid`);
* ``"sc"`` (``sc_estimate``): unit weights without intercept and with
  ``zeta_omega = 1e-6 sigma``, no time weights: the mean post-period gap;
* ``"did"`` (``did_estimate``): uniform unit and time weights.

Staggered adoption, in the simple stacked form (augsynth's ``multisynth`` in its
unpooled limit with time cohorts): the treated units are grouped into cohorts by
treatment start; each cohort is fitted as a block against the never-treated donors
(units treated at any time are never donors), and the cohort estimates
``tau_c`` are averaged with weights proportional to their treated unit-periods,
``N1_c T1_c``, so that each treated unit-period counts once (the average effect on
the treated cells). A single cohort is the block case.

Standard errors, as synthdid's ``vcov(method=...)`` defines them:

* ``"placebo"`` (Algorithm 4): in each of ``n_replications`` draws the never-treated
  donors are shuffled; the last ``N1_c`` of them (cohort by cohort) become pseudo-
  treated cohorts and the others their donors; every cohort is refitted (weights
  solved anew, its ``zeta`` kept, as synthdid passes its options on) and averaged
  with the same cohort weights; the standard error is
  ``sqrt((B - 1) / B) * sd(estimates)``. Needs more donors than treated units.
  When there are no more distinct assignments than draws (one treated unit: one
  per donor) each is used once instead, the exact limit of the algorithm, so that
  one treated unit gives the standard error of ``sc.fit(..., estimator="sdid")``.
* ``"jackknife"`` (Algorithm 3, fixed weights): each unit, donor or treated, is left
  out in turn; the unit weights are renormalised over the remaining donors, the time
  weights kept; a cohort that loses its last treated unit leaves the average (the
  cohort weights renormalised); ``se = sqrt((n - 1) / n * sum (tau_(i) - mean)^2)``.
  Undefined (NaN, as synthdid's NA) with a single treated unit, or when a cohort's
  unit weights sit on one donor. Arkhangelsky et al. advise against it for ``"sc"``.

Both are always computed; ``standard_error`` chooses the one behind the confidence
interval ``tau -/+ z_(1 - alpha/2) se``. The placebo draws use ``numpy``'s
``default_rng(seed)`` on the donors in a canonical (sorted) order, so the result
does not depend on row or donor order; R's random numbers differ, so placebo
standard errors agree with synthdid's only up to simulation noise.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Hashable, Iterator, Literal, Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import DonorPoolError, SpecError
from ..estimators import prepare_designs
from .._arrays import frozen
from ..results import Summary
from ..spec import Design, Spec
from .sdid import SDIDEstimate, ZETA_LAMBDA_FACTOR, noise_level, ridge_simplex, sdid_estimate

__all__ = ["fit_several", "SeveralTreatedResult", "CohortFit", "SEVERAL_ESTIMATORS"]

#: Estimators of :func:`fit_several` (synthdid's three).
SEVERAL_ESTIMATORS = ("sdid", "sc", "did")
#: synthdid's ``sc_estimate`` ridge, relative to the noise level.
SC_ETA_OMEGA = 1e-6


@dataclass(frozen=True, eq=False)
class CohortFit:
    """One cohort (units sharing a treatment start) fitted as a block.

    Attributes
    ----------
    start : hashable
        The cohort's treatment start.
    treated, donors, periods : tuple
    treated_outcome : ndarray, shape (T, N1)
    donor_outcome : ndarray, shape (T, N0)
    pre_mask, post_mask : ndarray of bool, shape (T,)
    estimate : SDIDEstimate
        Unit weights (over ``donors``), time weights (over the pre-periods), intercept, tau.
    zeta_omega, zeta_lambda, noise_level : float
    """

    start: Hashable
    treated: tuple
    donors: tuple
    periods: tuple
    treated_outcome: np.ndarray
    donor_outcome: np.ndarray
    pre_mask: np.ndarray
    post_mask: np.ndarray
    estimate: SDIDEstimate
    zeta_omega: float
    zeta_lambda: float
    noise_level: float

    @property
    def n_cells(self) -> int:
        """Treated unit-periods, ``N1 * T1``."""
        return len(self.treated) * int(self.post_mask.sum())

    def unit_effect(self, column: int) -> float:
        """The estimate for one treated unit with the cohort's weights."""
        return _contrast(self.treated_outcome[:, column], self.donor_outcome, self.estimate, self.pre_mask, self.post_mask)

    def effect_curve(self) -> np.ndarray:
        """Per post-period effect of the average treated unit (synthdid_effect_curve)."""
        gap = self.treated_outcome.mean(axis=1) - self.donor_outcome @ self.estimate.unit_weights
        return gap[self.post_mask] - self.estimate.time_weights @ gap[self.pre_mask]


@dataclass(frozen=True, eq=False)
class SeveralTreatedResult:
    """Average effect on several treated units, with synthdid's standard errors.

    Attributes
    ----------
    estimator : str
    average_effect : float
        ``sum_c N1_c T1_c tau_c / sum_c N1_c T1_c`` over the cohorts.
    cohorts : tuple of CohortFit
        In order of treatment start.
    cohort_weights : ndarray
        Weight of each cohort in the average.
    se_placebo, se_jackknife : float
        NaN where undefined.
    placebo_estimates, jackknife_estimates : ndarray
    standard_error : {"placebo", "jackknife"}
        The one behind :attr:`se` and the confidence interval.
    alpha : float
    n_replications, seed : int
    unit, time, outcome : str
        Column names.
    """

    estimator: str
    average_effect: float
    cohorts: tuple
    cohort_weights: np.ndarray
    se_placebo: float
    se_jackknife: float
    placebo_estimates: np.ndarray
    jackknife_estimates: np.ndarray
    standard_error: str
    alpha: float
    n_replications: int
    seed: int
    unit: str
    time: str
    outcome: str

    def __repr__(self) -> str:
        low, high = self.confidence_interval
        return (
            f"<SeveralTreatedResult {self.estimator}: {self.n_treated} treated in {len(self.cohorts)} "
            f"cohort(s), average effect {self.average_effect:.4g}, se {self.se:.4g} "
            f"({self.standard_error}), {1 - self.alpha:.0%} CI [{low:.4g}, {high:.4g}]>"
        )

    @property
    def n_treated(self) -> int:
        return sum(len(c.treated) for c in self.cohorts)

    @property
    def se(self) -> float:
        """The standard error chosen by ``standard_error``."""
        return self.se_placebo if self.standard_error == "placebo" else self.se_jackknife

    @property
    def confidence_interval(self) -> tuple[float, float]:
        """``average_effect -/+ z_(1 - alpha / 2) * se`` (NaN when ``se`` is)."""
        half = norm.ppf(1 - self.alpha / 2) * self.se
        return (self.average_effect - half, self.average_effect + half)

    @property
    def p_value(self) -> float:
        """Two-sided p-value of no average effect, normal approximation with ``se``."""
        return float(2 * norm.sf(abs(self.average_effect / self.se))) if self.se > 0 else float("nan")

    @property
    def table(self) -> pd.DataFrame:
        """One row per cohort: treated units, post-periods, weight, estimate, regularisation."""
        rows = [
            {
                "n_treated": len(c.treated),
                "n_post": int(c.post_mask.sum()),
                "weight": w,
                "effect": c.estimate.tau,
                "zeta_omega": c.zeta_omega,
                "treated": ", ".join(map(str, c.treated)),
            }
            for c, w in zip(self.cohorts, self.cohort_weights)
        ]
        return pd.DataFrame(rows, index=pd.Index([c.start for c in self.cohorts], name="treatment_start"))

    @property
    def unit_effects(self) -> pd.DataFrame:
        """One row per treated unit: its cohort's start and its effect with the cohort's
        weights (their mean within a cohort is the cohort's estimate)."""
        rows = {
            unit: {"treatment_start": c.start, "effect": c.unit_effect(i)}
            for c in self.cohorts
            for i, unit in enumerate(c.treated)
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis(self.unit)

    @property
    def effects(self) -> pd.DataFrame:
        """Long frame of per-period effects: cohort start, period, event time, effect."""
        frames = []
        for c in self.cohorts:
            periods = np.array(c.periods, dtype=object)[c.post_mask]
            frames.append(pd.DataFrame({
                "treatment_start": c.start,
                self.time: periods,
                "event_time": np.arange(periods.size),
                "effect": c.effect_curve(),
            }))
        return pd.concat(frames, ignore_index=True)

    @property
    def unit_weights(self) -> pd.DataFrame:
        """Donor weights, one column per cohort (by treatment start)."""
        return pd.DataFrame(
            {c.start: c.estimate.unit_weights for c in self.cohorts},
            index=pd.Index(self.cohorts[0].donors, name=self.unit),
        )

    def summary(self) -> Summary:
        """Average effect, standard errors and cohorts (prints nothing)."""
        low, high = self.confidence_interval
        overall = pd.DataFrame(
            {"value": [self.average_effect, self.se_placebo, self.se_jackknife, low, high, self.p_value]},
            index=["average_effect", "se_placebo", "se_jackknife", "ci_lower", "ci_upper", "p_value"],
        )
        notes = (
            f"Estimator: {self.estimator} (synthdid definitions) on outcome '{self.outcome}'; "
            f"{self.n_treated} treated unit(s) in {len(self.cohorts)} cohort(s), "
            f"{len(self.cohorts[0].donors)} never-treated donors.",
            f"{1 - self.alpha:.0%} confidence interval from the {self.standard_error} standard error "
            f"(placebo: {self.placebo_estimates.size} assignments, seed {self.seed}); p-value by normal "
            "approximation.",
            "Cohorts are weighted by their treated unit-periods (N1 x T1).",
        )
        return Summary(
            "Several treated units",
            {"Average effect": overall, "Cohorts": self.table, "Treated units": self.unit_effects},
            notes,
        )


def fit_several(
    data: pd.DataFrame,
    spec: Spec,
    *,
    treatment_starts: Mapping[Hashable, Hashable] | None = None,
    estimator: Literal["sdid", "sc", "did"] = "sdid",
    standard_error: Literal["placebo", "jackknife"] = "placebo",
    n_replications: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> SeveralTreatedResult:
    """Average effect on several treated units (synthdid estimators, stacked cohorts).

    Parameters
    ----------
    data : DataFrame
        Long panel with the columns ``spec`` names.
    spec : Spec
        ``treated`` lists the treated units; ``donors`` (a shared list, or None for
        every other unit) and ``exclude`` give the never-treated pool; the
        predictors are not used (every estimator here matches on outcomes).
    treatment_starts : mapping, optional
        Treatment start of each treated unit (staggered adoption). Default: every
        treated unit starts at ``spec.treatment_start`` (a block).
    estimator : {"sdid", "sc", "did"}, default "sdid"
    standard_error : {"placebo", "jackknife"}, default "placebo"
        Which standard error gives the confidence interval (both are computed).
    n_replications : int, default 200
        Placebo draws (synthdid's default).
    alpha : float, default 0.05
    seed : int, default 0
        Seed of the placebo draws.

    Returns
    -------
    SeveralTreatedResult

    Raises
    ------
    SpecError, DonorPoolError
        Bad arguments, a per-unit donor mapping, cohorts whose units lack data in
        different periods, or too few pre-periods.

    Examples
    --------
    A block of two states treated in 1989, then the same states adopting in 1989 and
    1995 (each cohort against the 37 never-treated states):

    >>> import synthcontrol as sc
    >>> df = sc.datasets.load_smoking()
    >>> spec = sc.Spec(outcome="cigsale", treated=["California", "Utah"], treatment_start=1989)
    >>> block = sc.fit_several(df, spec)
    >>> round(block.average_effect, 2), round(block.se_jackknife, 2)
    (-4.29, 18.19)
    >>> staggered = sc.fit_several(df, spec, treatment_starts={"California": 1989, "Utah": 1995})
    >>> staggered.table[["n_treated", "n_post", "weight"]].round(3).values.tolist()
    [[1.0, 12.0, 0.667], [1.0, 6.0, 0.333]]
    >>> low, high = staggered.confidence_interval
    >>> bool(low < staggered.average_effect < high)
    True
    """
    _check_arguments(estimator, standard_error, n_replications, alpha, seed)
    starts = _starts(spec, treatment_starts)
    cohorts = [_fit_cohort(estimator, *block) for block in _cohort_data(data, spec, starts)]
    weights = np.array([c.n_cells for c in cohorts], dtype=float)
    weights /= weights.sum()
    tau = float(weights @ [c.estimate.tau for c in cohorts])
    placebo = _placebo_estimates(estimator, cohorts, weights, n_replications, seed)
    jackknife = _jackknife_estimates(cohorts, weights)
    return SeveralTreatedResult(
        estimator=estimator,
        average_effect=tau,
        cohorts=tuple(cohorts),
        cohort_weights=frozen(weights),
        se_placebo=float(np.std(placebo)) if placebo.size else float("nan"),
        se_jackknife=_jackknife_se(jackknife),
        placebo_estimates=frozen(placebo),
        jackknife_estimates=frozen(jackknife),
        standard_error=standard_error,
        alpha=float(alpha),
        n_replications=int(n_replications),
        seed=int(seed),
        unit=spec.unit,
        time=spec.time,
        outcome=spec.outcome,
    )


def _check_arguments(estimator: str, standard_error: str, n_replications: int, alpha: float, seed: int) -> None:
    checks = {
        "estimator": (estimator, estimator in SEVERAL_ESTIMATORS, f"one of {SEVERAL_ESTIMATORS}"),
        "standard_error": (standard_error, standard_error in ("placebo", "jackknife"), "'placebo' or 'jackknife'"),
        "n_replications": (n_replications, _is_int(n_replications) and n_replications >= 2, "an integer >= 2"),
        "alpha": (alpha, isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 < alpha < 1,
                  "a number strictly between 0 and 1"),
        "seed": (seed, _is_int(seed) and seed >= 0, "an integer >= 0"),
    }
    for name, (value, ok, allowed) in checks.items():
        if not ok:
            raise SpecError(f"{name}={value!r} is not valid; use {allowed}")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _starts(spec: Spec, treatment_starts: Mapping[Hashable, Hashable] | None) -> dict:
    """Treatment start of every treated unit, checked against ``spec.treated``."""
    treated = spec.treated_units
    if len(set(treated)) != len(treated):
        raise SpecError(f"spec.treated lists a unit twice: {list(treated)}; list each once")
    if treatment_starts is None:
        return {unit: spec.treatment_start for unit in treated}
    if not isinstance(treatment_starts, Mapping):
        raise SpecError("treatment_starts must map each treated unit to its treatment start")
    missing = [u for u in treated if u not in treatment_starts]
    unknown = [u for u in treatment_starts if u not in treated]
    if missing or unknown:
        raise SpecError(
            f"treatment_starts must give a start for exactly the treated units {list(treated)}: "
            f"missing {missing}, not treated {unknown}"
        )
    return {unit: treatment_starts[unit] for unit in treated}


def _cohort_data(data: pd.DataFrame, spec: Spec, starts: dict) -> list[tuple]:
    """Per cohort (by start): its designs' shared donors, periods, masks and outcomes."""
    if isinstance(spec.donors, Mapping):
        raise DonorPoolError(
            "fit_several compares every treated unit with one pool of never-treated donors; "
            "give spec.donors as a list (or None), not a mapping per treated unit"
        )
    blocks = []
    for start in sorted(set(starts.values())):
        units = [u for u, s in starts.items() if s == start]
        others = [u for u in starts if u not in units]
        cohort_spec = replace(spec, treated=tuple(units), treatment_start=start,
                              exclude=tuple(dict.fromkeys([*spec.exclude, *others])))
        designs = prepare_designs(data, cohort_spec)
        blocks.append((start, units, _shared(designs, start)))
    donors = {frozenset(block[2][0]) for block in blocks}
    if len(donors) > 1:
        raise DonorPoolError(
            "the cohorts ended up with different donor pools (donors dropped for missing data "
            "in some periods only); fill the data or drop those donors from spec.donors"
        )
    return blocks


def _shared(designs: dict[Hashable, Design], start: Hashable) -> tuple:
    """``(donors, periods, pre, post, Y1, Y0)`` common to a cohort's designs, donors in
    canonical order."""
    first = next(iter(designs.values()))
    for unit, design in designs.items():
        if design.periods != first.periods or set(design.donors) != set(first.donors):
            raise SpecError(
                f"treated units {first.treated!r} and {unit!r} (cohort starting {start!r}) have "
                "outcomes in different periods or different donors; a block needs the same periods "
                "for all its units: fill the data or fit them separately"
            )
    donors = tuple(sorted(first.donors, key=lambda u: (type(u).__name__, str(u))))
    order = [first.donors.index(d) + 1 for d in donors]
    Y1 = np.column_stack([d.outcome[:, 0] for d in designs.values()])
    return donors, first.periods, first.pre_mask, first.post_mask, Y1, first.outcome[:, order]


def _fit_cohort(estimator: str, start: Hashable, units: list, shared: tuple) -> CohortFit:
    donors, periods, pre, post, Y1, Y0 = shared
    if pre.sum() < 2:
        raise SpecError(
            f"the cohort starting {start!r} has {int(pre.sum())} pre-treatment period(s) in the fit "
            "window; the noise level of the regularisation needs at least two: widen fit_window"
        )
    sigma = noise_level(Y0[pre])
    zeta_omega, zeta_lambda = _zetas(estimator, sigma, len(units), int(post.sum()))
    estimate = _estimate(estimator, Y1.mean(axis=1), Y0, pre, post, zeta_omega, zeta_lambda)
    estimate = replace(estimate, unit_weights=frozen(estimate.unit_weights), time_weights=frozen(estimate.time_weights))
    for mask in (pre, post):
        mask.setflags(write=False)  # fresh arrays of the design, now owned by the result
    return CohortFit(
        start=start, treated=tuple(units), donors=donors, periods=periods,
        treated_outcome=frozen(Y1), donor_outcome=frozen(Y0),
        pre_mask=pre, post_mask=post, estimate=estimate,
        zeta_omega=zeta_omega, zeta_lambda=zeta_lambda, noise_level=sigma,
    )


def _zetas(estimator: str, sigma: float, n_treated: int, n_post: int) -> tuple[float, float]:
    """synthdid's default ``(zeta_omega, zeta_lambda)``."""
    if estimator == "sdid":
        return (n_treated * n_post) ** 0.25 * sigma, ZETA_LAMBDA_FACTOR * sigma
    if estimator == "sc":
        return SC_ETA_OMEGA * sigma, 0.0
    return 0.0, 0.0


def _estimate(
    estimator: str, y1: np.ndarray, Y0: np.ndarray, pre: np.ndarray, post: np.ndarray,
    zeta_omega: float, zeta_lambda: float,
) -> SDIDEstimate:
    """One block estimate of the average treated unit ``y1``."""
    if estimator != "sc":
        return sdid_estimate(y1, Y0, pre, post, zeta_omega=zeta_omega, zeta_lambda=zeta_lambda,
                             uniform=estimator == "did")
    omega = ridge_simplex(Y0[pre], y1[pre], zeta_omega, intercept=False)
    estimate = SDIDEstimate(0.0, omega, np.zeros(int(pre.sum())), 0.0)
    return replace(estimate, tau=_contrast(y1, Y0, estimate, pre, post))


def _contrast(y1: np.ndarray, Y0: np.ndarray, estimate: SDIDEstimate, pre: np.ndarray, post: np.ndarray) -> float:
    """The weighted difference in differences with fixed weights."""
    gap = y1 - Y0 @ estimate.unit_weights
    return float(gap[post].mean() - estimate.time_weights @ gap[pre])


def _placebo_estimates(
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
            _estimate(estimator, c.donor_outcome[:, p].mean(axis=1), c.donor_outcome[:, controls],
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


def _jackknife_estimates(cohorts: list[CohortFit], weights: np.ndarray) -> np.ndarray:
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
        taus.append(_contrast(Y1.mean(axis=1), Y0, est, cohort.pre_mask, cohort.post_mask))
        kept.append(weight)
    return float(np.dot(kept, taus) / np.sum(kept))


def _jackknife_se(estimates: np.ndarray) -> float:
    n = estimates.size
    return float(np.sqrt((n - 1) / n * np.sum((estimates - estimates.mean()) ** 2))) if n else float("nan")

