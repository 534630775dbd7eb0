"""Pooled placebo test for several units treated at the same time (Cavallo, Galiani,
Noy and Pantano 2013), with statistics that do not cancel.

Each unit's gaps are standardised by its pre-period RMSPE. A statistic combines one
number per treated unit (its *contribution*), per post period and over the whole
post-period (the ``"overall"`` row of :attr:`PooledResult.table`):

``"mean"`` (default; Cavallo et al.)
    the standardised gap, averaged over the treated units (overall: over units and
    periods). Signed: effects of opposite signs cancel, which suits a test of a
    claim with a direction (``p_negative``, ``p_positive``) but not a test of
    whether anything happened.
``"mean_abs"``
    the absolute standardised gap, averaged: does not cancel.
``"mean_squared"``
    the squared standardised gap, averaged; over the whole post-period a unit's
    contribution is its squared post/pre RMSPE ratio (the statistic of the
    in-space placebo test of Abadie, Diamond and Hainmueller 2010). Does not
    cancel, and weighs a few large gaps more than ``"mean_abs"``.
``"fisher"``
    Fisher's combination ``-2 sum_i log p_i`` of the units' own permutation
    p-values: per period the rank of the absolute standardised gap, overall the
    rank of the post/pre RMSPE ratio (each unit's placebo p-value), among that
    unit's placebos. Does not cancel, and does not let one unit with a large
    standardised gap dominate.

The null distribution combines one placebo per treated unit, drawn from that unit's
own in-space placebos (with its contribution computed as for the treated unit, the
treated unit among the placebo's comparison set): every combination when there are
at most ``max_combinations``, a seeded Monte Carlo sample of ``n_draws`` otherwise
(drawn with the treated units and their placebos in label order, so that neither
the order of the results nor that of the donors changes it).
The p-value counts the observed statistic as one member of the distribution,
``(1 + #{placebo statistics at least as extreme}) / (1 + number of draws)``, so it
lies in (0, 1]. "At least as extreme" is two-sided (absolute value) for ``"mean"``
and "at least as large" for the statistics that do not cancel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Hashable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from .._validation import check_bool, check_directory, check_int, check_n_jobs, check_progress, check_seed
from ..errors import ArgumentError, SpecError
from ..results import Summary, SynthResult
from ._common import Execution, check_result, conservative_rank, frozen, over_pre_rmspe, result_list, rmspe
from .placebo import ADH_CUTOFFS, PlaceboResult, shared_placebo_tests

__all__ = ["pooled_test", "PooledResult", "POOLED_STATISTICS"]

#: Statistics of :func:`pooled_test` (see the module notes).
POOLED_STATISTICS = ("mean", "mean_abs", "mean_squared", "fisher")
PooledStatistic = Literal["mean", "mean_abs", "mean_squared", "fisher"]


@dataclass(frozen=True, eq=False)
class PooledResult:
    """Pooled statistic of several treated units and its permutation test.

    Attributes
    ----------
    treated : tuple
    post_periods : tuple
    statistic : str
        One of :data:`POOLED_STATISTICS`.
    observed : ndarray, shape (T1,)
        The statistic of the treated units per post period.
    null : ndarray, shape (M, T1)
        The statistic of each placebo combination (one placebo per treated unit),
        per post period.
    overall : float
        The statistic over the whole post-period.
    null_overall : ndarray, shape (M,)
        The same for each placebo combination.
    method : str
        ``"exact"`` (every combination) or ``"monte carlo"``.
    n_combinations : int
        Number of possible placebo combinations.
    seed : int
        Seed of the Monte Carlo draws.
    standardised : ndarray, shape (T1, n_treated)
        Each treated unit's standardised gaps.
    placebos : tuple of PlaceboResult
    time : str
    """

    treated: tuple
    post_periods: tuple
    statistic: str
    observed: np.ndarray
    null: np.ndarray
    overall: float
    null_overall: np.ndarray
    method: str
    n_combinations: int
    seed: int
    standardised: np.ndarray
    placebos: tuple
    time: str

    def __repr__(self) -> str:
        return (
            f"<PooledResult: {len(self.treated)} treated units, statistic {self.statistic!r}, {self.method} over "
            f"{self.n_draws} placebo combinations, p = {self.p_value:.4g}>"
        )

    @property
    def n_draws(self) -> int:
        """Number of placebo combinations the p-values are computed from."""
        return int(self.null.shape[0])

    @property
    def signed(self) -> bool:
        """Whether the statistic has a sign (``"mean"``), so that effects can cancel."""
        return self.statistic == "mean"

    @property
    def average(self) -> float:
        """The statistic over the whole post-period (for ``"mean"``: the standardised
        effect averaged over treated units and post periods)."""
        return float(self.overall)

    @property
    def p_value(self) -> float:
        """P-value of the statistic over the whole post-period (two-sided for ``"mean"``)."""
        return float(self.table["p_value"].iloc[-1])

    @property
    def p_negative(self) -> float:
        """One-sided p-value for a negative effect (``"mean"`` only; NaN otherwise)."""
        return float(self.table["p_negative"].iloc[-1])

    @property
    def p_positive(self) -> float:
        """One-sided p-value for a positive effect (``"mean"`` only; NaN otherwise)."""
        return float(self.table["p_positive"].iloc[-1])

    @cached_property
    def table(self) -> pd.DataFrame:
        """Per post period and over the whole post-period (last row, ``"overall"``):
        the statistic and its p-values (``p_negative`` and ``p_positive`` only for
        the signed ``"mean"``)."""
        observed = np.append(self.observed, self.overall)
        null = np.column_stack([self.null, self.null_overall])
        denominator = 1 + null.shape[0]
        tol = 1e-10 * np.maximum(np.abs(observed), 1e-300)

        def p(extreme: np.ndarray) -> np.ndarray:
            return (1 + extreme.sum(axis=0)) / denominator

        if self.signed:
            two_sided = p(np.abs(null) >= np.abs(observed) - tol)
            negative, positive = p(null <= observed + tol), p(null >= observed - tol)
        else:
            two_sided = p(null >= observed - tol)
            negative = positive = np.full(observed.shape, np.nan)
        return pd.DataFrame(
            {"statistic": observed, "p_value": two_sided, "p_negative": negative, "p_positive": positive},
            index=pd.Index([*self.post_periods, "overall"], name=self.time, dtype=object),
        )

    @property
    def unit_effects(self) -> pd.DataFrame:
        """Standardised gaps (gap / pre RMSPE), post periods by treated unit."""
        return pd.DataFrame(
            self.standardised,
            index=pd.Index(self.post_periods, name=self.time),
            columns=pd.Index(self.treated, name="unit"),
        )

    def summary(self) -> Summary:
        """P-values and per-unit standardised effects (prints nothing)."""
        return Summary(
            "Pooled placebo test",
            {"P-values": self.table, "Standardised effects": self.unit_effects},
            (
                f"{len(self.treated)} treated units; statistic {self.statistic!r}; null distribution: {self.method}, "
                f"{self.n_draws} of {self.n_combinations} placebo combinations"
                + (f" (seed {self.seed})." if self.method == "monte carlo" else "."),
            ),
        )


def pooled_test(
    results: Sequence[SynthResult | PlaceboResult] | Mapping[Hashable, SynthResult],
    *,
    statistic: PooledStatistic = "mean",
    n_jobs: int | None = 1,
    max_combinations: int = 100_000,
    n_draws: int = 10_000,
    seed: int = 0,
    reuse_predictor_weights: bool = False,
    start_from_treated: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> PooledResult:
    """Pooled permutation test for several units treated at the same time.

    The placebo fits of all the treated units run as one parallel job; a placebo
    shared by several treated units (the same donor against the same other donors,
    with the same options) is fitted once.

    Parameters
    ----------
    results : sequence of SynthResult or PlaceboResult, or SynthResults
        One fit (or its finished placebo test) per treated unit, with the same
        post-period.
    statistic : {"mean", "mean_abs", "mean_squared", "fisher"}, default "mean"
        How the treated units are combined (see the module notes): ``"mean"`` is
        Cavallo et al.'s average standardised gap, whose one-sided p-values test a
        claim with a direction; the others do not cancel when units move in
        opposite directions, and test whether any unit was affected.
    n_jobs : int or None, default 1
        Workers for the placebo fits.
    max_combinations : int, default 100000
        Enumerate every placebo combination up to this many; sample above it
        (0: always sample).
    n_draws : int, default 10000
        Monte Carlo draws when sampling (at least 1).
    seed : int, default 0
        Seed of the Monte Carlo draws (a non-negative integer).
    reuse_predictor_weights, start_from_treated, checkpoint_dir, progress
        As in :func:`~synthcontrol.inference.placebo_test`.

    Returns
    -------
    PooledResult

    Notes
    -----
    Gaps are standardised with each placebo test's round-off floor (see
    :func:`~synthcontrol.inference.placebo_test`): an exact pre-period fit divides
    by the floor rather than by zero, and gaps within it count as zero. Ranks for
    ``"fisher"`` count ties against the unit, as the placebo p-values do.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> df = sc.datasets.load_smoking()
    >>> pool = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming"]
    >>> spec = sc.Spec(outcome="cigsale", treated=["California", "Georgia"], treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=pool)
    >>> pooled = sc.pooled_test(sc.fit(df, spec))
    >>> pooled.method, pooled.n_draws
    ('exact', 36)
    >>> 0 < pooled.p_value <= 1
    True
    >>> sc.pooled_test(pooled.placebos, statistic="fisher").statistic
    'fisher'
    """
    items = result_list(results, "SynthResult or PlaceboResult")
    statistic = _check_statistic(statistic)
    n_jobs, progress = check_n_jobs(n_jobs), check_progress(progress)
    max_combinations = check_int(max_combinations, "max_combinations", minimum=0)
    n_draws, seed = check_int(n_draws, "n_draws", minimum=1), check_seed(seed)
    reuse_predictor_weights = check_bool(reuse_predictor_weights, "reuse_predictor_weights")
    start_from_treated = check_bool(start_from_treated, "start_from_treated")
    checkpoint_dir = check_directory(checkpoint_dir, "checkpoint_dir")
    if len(items) < 2:
        raise SpecError(f"pooled_test needs at least two treated units, got {len(items)}")
    bad = [i for i, item in enumerate(items) if not isinstance(item, (SynthResult, PlaceboResult))]
    if bad:
        raise SpecError(f"pooled_test: item {bad[0]} is a {type(items[bad[0]]).__name__}, "
                        "not a SynthResult or PlaceboResult")
    placebos = _run_placebos(items, n_jobs, reuse_predictor_weights, start_from_treated, checkpoint_dir, progress)
    post_periods = _common_post_periods(placebos)
    contributions = [_contributions(p, statistic) for p in placebos]
    sizes = [c.shape[1] - 1 for c in contributions]
    n_combinations = int(np.prod(sizes, dtype=object))
    if n_combinations <= max_combinations:
        method, null = "exact", _enumerate(contributions)
    else:
        method, null = "monte carlo", _sample(_by_label(placebos, contributions), n_draws, seed)
    combine = 1.0 if statistic == "fisher" else 1.0 / len(contributions)  # Fisher's statistic is a sum
    observed = combine * np.sum([c[:, 0] for c in contributions], axis=0)
    return PooledResult(
        treated=tuple(p.treated for p in placebos),
        post_periods=post_periods,
        statistic=statistic,
        observed=frozen(observed[:-1]),
        null=frozen(combine * null[:, :-1]),
        overall=float(observed[-1]),
        null_overall=frozen(combine * null[:, -1]),
        method=method,
        n_combinations=n_combinations,
        seed=seed,
        standardised=frozen(np.column_stack([_standardised(p)[:, 0] for p in placebos])),
        placebos=placebos,
        time=placebos[0].time,
    )


def _check_statistic(statistic: object) -> str:
    if not isinstance(statistic, str) or statistic not in POOLED_STATISTICS:
        raise ArgumentError(f"statistic must be one of {', '.join(map(repr, POOLED_STATISTICS))}; got {statistic!r}")
    return statistic


def _run_placebos(items: list, n_jobs: int | None, reuse: bool, start_from_treated: bool,
                  checkpoint_dir: str | os.PathLike | None,
                  progress: bool | Callable[[int, int], None] | None) -> tuple[PlaceboResult, ...]:
    """Placebo tests of the fitted items; their distinct fits run as one job."""
    fits = [check_result(item, "pooled_test", min_donors=3) for item in items if isinstance(item, SynthResult)]
    if not fits:
        return tuple(items)
    tests = iter(shared_placebo_tests(
        fits, kind="pooled placebo", cutoffs=ADH_CUTOFFS, reuse_predictor_weights=reuse,
        start_from_treated=start_from_treated, execution=Execution(n_jobs, checkpoint_dir, progress),
        description="pooled placebo test",
    ))
    return tuple(next(tests) if isinstance(item, SynthResult) else item for item in items)


def _common_post_periods(placebos: Sequence[PlaceboResult]) -> tuple:
    treated = [p.treated for p in placebos]
    if len(set(treated)) < len(treated):
        raise SpecError(f"pooled_test got the same treated unit twice: {treated}")
    post = [tuple(np.array(p.periods, dtype=object)[p.post_mask].tolist()) for p in placebos]
    for p, periods in zip(placebos[1:], post[1:]):
        if periods != post[0]:
            first, other = placebos[0].treated, p.treated
            raise SpecError(
                f"treated units {first!r} and {other!r} have different post-periods: only {first!r} has "
                f"{[t for t in post[0] if t not in periods][:5]}, only {other!r} has "
                f"{[t for t in periods if t not in post[0]][:5]} (a period left out when the treated unit's "
                "outcome is missing in it); pooled_test needs units treated at the same time with the same periods"
            )
    return post[0]


def _standardised(placebo: PlaceboResult) -> np.ndarray:
    """Post-period gaps divided by each unit's pre RMSPE (column 0: the treated unit),
    with the placebo test's round-off floor."""
    pre = rmspe(placebo.gap_matrix, placebo.pre_mask)
    return over_pre_rmspe(placebo.gap_matrix[placebo.post_mask], pre[None, :], placebo.round_off)


def _contributions(placebo: PlaceboResult, statistic: str) -> np.ndarray:
    """Each unit's contribution to ``statistic`` (columns: the treated unit, then its
    placebos), per post period and, in the last row, over the whole post-period."""
    scaled = _standardised(placebo)
    if statistic == "mean":
        return np.vstack([scaled, scaled.mean(axis=0)])
    if statistic == "mean_abs":
        return np.vstack([np.abs(scaled), np.abs(scaled).mean(axis=0)])
    if statistic == "mean_squared":
        return np.vstack([scaled**2, (scaled**2).mean(axis=0)])
    pre = rmspe(placebo.gap_matrix, placebo.pre_mask)
    ratio = over_pre_rmspe(rmspe(placebo.gap_matrix, placebo.post_mask), pre, placebo.round_off)
    ranks = np.vstack([*(conservative_rank(np.abs(row)) for row in scaled), conservative_rank(ratio)])
    return -2.0 * np.log(ranks / scaled.shape[1])


def _enumerate(contributions: Sequence[np.ndarray]) -> np.ndarray:
    """Sum of the placebos' contributions over every combination, one placebo per unit."""
    total = np.zeros((1, contributions[0].shape[0]))
    for c in contributions:
        total = (total[:, None, :] + c[:, 1:].T[None, :, :]).reshape(-1, c.shape[0])
    return total


def _by_label(placebos: Sequence[PlaceboResult], contributions: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``contributions`` with the treated units, and each unit's placebos, sorted by
    label (by ``repr``, as the units of several studies need not be comparable), so
    that the Monte Carlo draws depend neither on the order of the results nor on
    that of the donors."""
    def by_label(labels: Sequence[Hashable]) -> list[int]:
        return sorted(range(len(labels)), key=lambda i: repr(labels[i]))

    return [contributions[i][:, [0, *(1 + j for j in by_label(placebos[i].units[1:]))]]
            for i in by_label([p.treated for p in placebos])]


def _sample(contributions: Sequence[np.ndarray], n_draws: int, seed: int) -> np.ndarray:
    """Sum of the placebos' contributions over ``n_draws`` seeded random combinations."""
    rng = np.random.default_rng(seed)
    total = np.zeros((n_draws, contributions[0].shape[0]))
    for c in contributions:
        total += c[:, 1 + rng.integers(0, c.shape[1] - 1, size=n_draws)].T
    return total
