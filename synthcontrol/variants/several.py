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
interval ``tau -/+ z_(1 - alpha/2) se`` and the p-value. Where synthdid returns NA
for the chosen one, :func:`fit_several` says so rather than return a NaN interval
silently: it refuses a choice the design rules out (placebo without more donors than
treated units, jackknife with one treated unit) and warns (``InferenceWarning``,
the standard error kept NaN as synthdid's NA) when the fit rules it out (jackknife
with a cohort's weights on one donor, common for ``"sc"``). The other standard error
is NaN where undefined, without a warning.

Every cohort takes the donors in one canonical order, sorted by their outcomes
(:func:`~synthcontrol.weights.canonical.canonical_columns`), not by their labels: the
fits, and the placebo draws of ``numpy``'s ``default_rng(seed)`` on that order, are
the same whatever the order of rows and donors or the names of the units. R's
random numbers differ, so placebo standard errors agree with synthdid's only up to
simulation noise.

Each cohort is fitted by :mod:`synthcontrol.variants.cohorts`, the standard errors
are computed by :mod:`synthcontrol.variants.several_errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Hashable, Literal, Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm

from .._arrays import frozen
from .._validation import check_choice, check_int, check_number, check_seed
from ..errors import ArgumentError, DonorPoolError, InferenceWarning, SpecError, warn
from ..estimators import _as_panel, prepare_designs
from ..panel import Panel
from ..periods import coerce_period
from ..results import Summary
from ..spec import Design, Spec, check_spec, require_treated_units
from ..weights.canonical import canonical_columns
from .cohorts import CohortFit, fit_cohort
from .several_errors import jackknife_estimates, jackknife_se, placebo_estimates

__all__ = ["fit_several", "SeveralTreatedResult", "CohortFit", "SEVERAL_ESTIMATORS"]

#: Estimators of :func:`fit_several` (synthdid's three).
SEVERAL_ESTIMATORS = ("sdid", "sc", "did")
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
        every other unit) and ``exclude`` give the never-treated pool, which must not
        list a treated unit (as ``sc.fit`` refuses a treated unit among its donors);
        the predictors are not used (every estimator here matches on outcomes).
    treatment_starts : mapping, optional
        Treatment start of each treated unit (staggered adoption), a period of the
        data (converted exactly to the type of the time column) with at least one
        period before it. Default: every treated unit starts at
        ``spec.treatment_start`` (a block).
    estimator : {"sdid", "sc", "did"}, default "sdid"
    standard_error : {"placebo", "jackknife"}, default "placebo"
        Which standard error gives the confidence interval and p-value (both are
        computed). ``"placebo"`` needs more never-treated donors than treated units,
        ``"jackknife"`` at least two treated units: otherwise an error says so
        (synthdid returns NA). The jackknife is also undefined when a cohort's unit
        weights sit on one donor; then its standard error is NaN, as synthdid's NA,
        with a warning.
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
        Bad arguments, a per-unit donor mapping, a treated unit among the donors,
        ``standard_error="placebo"`` with no more donors than treated units, cohorts
        whose units lack data in different periods, or too few pre-periods.
    TypeMismatchError
        A treatment start that does not convert exactly to a period of the data
        (``None``, a non-integer year, text that is not a date ...).
    ArgumentError
        ``standard_error="jackknife"`` with a single treated unit.

    Warns
    -----
    InferenceWarning
        The chosen standard error is NaN (jackknife with a cohort's unit weights on
        one donor) or zero: the confidence interval and p-value are not informative.

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
    _check_arguments(spec, estimator, standard_error, n_replications, alpha, seed)
    panel = _as_panel(data, spec)
    require_treated_units(panel, spec)
    starts = _starts(panel, spec, treatment_starts)
    blocks = _cohort_data(panel, spec, starts)
    if standard_error == "placebo":
        _require_placebo_donors(n_donors=len(blocks[0][2][0]), n_treated=len(starts))
    cohorts = [fit_cohort(estimator, *block) for block in blocks]
    weights = np.array([c.n_cells for c in cohorts], dtype=float)
    weights /= weights.sum()
    tau = float(weights @ [c.estimate.tau for c in cohorts])
    placebo = placebo_estimates(estimator, cohorts, weights, n_replications, seed)
    jackknife = jackknife_estimates(cohorts, weights)
    result = SeveralTreatedResult(
        estimator=estimator,
        average_effect=tau,
        cohorts=tuple(cohorts),
        cohort_weights=frozen(weights),
        se_placebo=float(np.std(placebo)) if placebo.size else float("nan"),
        se_jackknife=jackknife_se(jackknife),
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
    _warn_if_uninformative(result)
    return result


def _check_arguments(
    spec: Spec, estimator: str, standard_error: str, n_replications: int, alpha: float, seed: int
) -> None:
    check_spec(spec)
    check_choice(estimator, "estimator", SEVERAL_ESTIMATORS)
    check_choice(standard_error, "standard_error", ("placebo", "jackknife"))
    if standard_error == "jackknife" and len(spec.treated_units) < 2:
        raise ArgumentError(
            "standard_error='jackknife' is undefined with a single treated unit (leaving it out "
            "leaves no treated unit; synthdid returns NA): use standard_error='placebo'"
        )
    check_int(n_replications, "n_replications", minimum=2)
    check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    check_seed(seed)


def _starts(panel: Panel, spec: Spec, treatment_starts: Mapping[Hashable, Hashable] | None) -> dict:
    """Treatment start of every treated unit, checked against ``spec.treated`` and
    converted to the type of the data's periods (so that cohorts can be ordered)."""
    treated = spec.treated_units
    if treatment_starts is None:
        return {unit: _start(panel, spec, spec.treatment_start, "spec.treatment_start") for unit in treated}
    if not isinstance(treatment_starts, Mapping):
        raise SpecError("treatment_starts must map each treated unit to its treatment start")
    missing = [u for u in treated if u not in treatment_starts]
    unknown = [u for u in treatment_starts if u not in treated]
    if missing or unknown:
        raise SpecError(
            f"treatment_starts must give a start for exactly the treated units {list(treated)}: "
            f"missing {missing}, not treated {unknown}"
        )
    return {
        unit: _start(panel, spec, treatment_starts[unit], f"the treatment start of {unit!r} (treatment_starts[{unit!r}])")
        for unit in treated
    }


def _start(panel: Panel, spec: Spec, value: Hashable, argument: str) -> Hashable:
    """``value`` as a period of the data that leaves periods before and after it."""
    start = coerce_period(value, panel.periods, argument=argument, column=spec.time)
    first, last = panel.periods[0], panel.periods[-1]
    if not first < start <= last:
        raise SpecError(
            f"{argument} is {start!r}, outside the data's periods ({first} to {last}); it must "
            "leave at least one period before it and one from it on: give a start inside them"
        )
    return start


def _cohort_data(panel: Panel, spec: Spec, starts: dict) -> list[tuple]:
    """Per cohort (by start): its designs' shared donors, periods, masks and outcomes,
    the donors in one canonical order (by their data) shared by every cohort."""
    if isinstance(spec.donors, Mapping):
        raise DonorPoolError(
            "fit_several compares every treated unit with one pool of never-treated donors; "
            "give spec.donors as a list (or None), not a mapping per treated unit"
        )
    blocks = []
    for start in sorted(set(starts.values())):
        units = [u for u, s in starts.items() if s == start]
        designs = {unit: _design(panel, spec, unit, start) for unit in units}
        blocks.append((start, units, _shared(designs, start)))
    donors = blocks[0][2][0]
    if any(set(block[2][0]) != set(donors) for block in blocks):
        raise DonorPoolError(
            "the cohorts ended up with different donor pools (donors dropped for missing data "
            "in some periods only); fill the data or drop those donors from spec.donors"
        )
    blocks = [(start, units, _in_donor_order(shared, donors)) for start, units, shared in blocks]
    order, _ = canonical_columns(*(shared[5] for _, _, shared in blocks))
    return [(start, units, _in_donor_order(shared, [donors[j] for j in order])) for start, units, shared in blocks]


def _design(panel: Panel, spec: Spec, unit: Hashable, start: Hashable) -> Design:
    """The design of one treated unit against the never-treated pool: the spec for
    that unit alone, so that ``prepare`` refuses it in the donors as ``sc.fit`` does."""
    others = [u for u in spec.treated_units if u != unit]
    unit_spec = replace(spec, treated=unit, treatment_start=start,
                        exclude=tuple(dict.fromkeys([*spec.exclude, *others])))
    return prepare_designs(panel, unit_spec)[unit]


def _shared(designs: dict[Hashable, Design], start: Hashable) -> tuple:
    """``(donors, periods, pre, post, Y1, Y0)`` common to a cohort's designs."""
    first = next(iter(designs.values()))
    for unit, design in designs.items():
        if design.periods != first.periods or set(design.donors) != set(first.donors):
            raise SpecError(
                f"treated units {first.treated!r} and {unit!r} (cohort starting {start!r}) have "
                "outcomes in different periods or different donors; a block needs the same periods "
                "for all its units: fill the data or fit them separately"
            )
    Y1 = np.column_stack([d.outcome[:, 0] for d in designs.values()])
    return first.donors, first.periods, first.pre_mask, first.post_mask, Y1, first.outcome[:, 1:]


def _in_donor_order(shared: tuple, donors: list) -> tuple:
    """``shared`` with its donors (and their outcome columns) in the order ``donors``."""
    given, periods, pre, post, Y1, Y0 = shared
    position = {d: j for j, d in enumerate(given)}
    return tuple(donors), periods, pre, post, Y1, Y0[:, [position[d] for d in donors]]


def _require_placebo_donors(n_donors: int, n_treated: int) -> None:
    """Refuse the placebo standard error without more donors than treated units
    (synthdid returns NA; we say so rather than return a NaN interval)."""
    if n_donors <= n_treated:
        raise DonorPoolError(
            f"standard_error='placebo' needs more never-treated donors than treated units (it "
            f"draws {n_treated} pseudo-treated units among the donors and keeps the rest as "
            f"controls; synthdid returns NA), but the pool has {n_donors} donor(s) for {n_treated} "
            "treated unit(s): add donors to spec.donors or use standard_error='jackknife'"
        )


def _warn_if_uninformative(result: SeveralTreatedResult) -> None:
    """Warn when the chosen standard error leaves no usable interval or p-value."""
    se, chosen = result.se, result.standard_error
    if np.isfinite(se) and se > 0:
        return
    if se == 0:
        why = f"is 0 (every {chosen} estimate is the same): the confidence interval has zero width and the p-value is NaN"
    elif chosen == "jackknife" and any(np.count_nonzero(c.estimate.unit_weights) < 2 for c in result.cohorts):
        where = ", ".join(
            f"the cohort starting {c.start!r} on {c.donors[int(np.argmax(c.estimate.unit_weights))]!r}"
            for c in result.cohorts if np.count_nonzero(c.estimate.unit_weights) < 2
        )
        why = (f"is undefined, NaN as synthdid's NA: the unit weights sit on one donor ({where}), "
               "which the jackknife cannot leave out; the confidence interval and p-value are NaN")
    else:
        why = f"is {se} (some {chosen} estimates are not finite): the confidence interval and p-value are NaN"
    other = "placebo" if chosen == "jackknife" else "jackknife"
    warn(f"the {chosen} standard error {why}; try standard_error={other!r}", InferenceWarning)
