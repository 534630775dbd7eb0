"""Pooled placebo test for several units treated at the same time (Cavallo, Galiani,
Noy and Pantano 2013).

Each unit's gaps are standardised by its pre-period RMSPE and averaged across the
treated units. The null distribution averages one placebo per treated unit, drawn
from that unit's own in-space placebos: every combination when there are at most
``max_combinations``, a seeded Monte Carlo sample of ``n_draws`` otherwise. The
p-value counts the observed average as one member of the distribution,
``(1 + #{placebo averages at least as extreme}) / (1 + number of averages)``, so it
lies in (0, 1].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .._validation import check_bool, check_directory, check_int, check_n_jobs, check_progress, check_seed
from ..errors import ArgumentError, SpecError
from ..results import Summary, SynthResult
from ._common import Execution, check_result, frozen, over_pre_rmspe, rmspe
from .placebo import ADH_CUTOFFS, PlaceboResult, shared_placebo_tests

__all__ = ["pooled_test", "PooledResult"]


@dataclass(frozen=True, eq=False)
class PooledResult:
    """Pooled standardised effect of several treated units and its permutation test.

    Attributes
    ----------
    treated : tuple
    post_periods : tuple
    observed : ndarray, shape (T1,)
        Average standardised gap of the treated units per post period.
    null : ndarray, shape (M, T1)
        Placebo averages (one placebo per treated unit), per post period.
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
    observed: np.ndarray
    null: np.ndarray
    method: str
    n_combinations: int
    seed: int
    standardised: np.ndarray
    placebos: tuple
    time: str

    def __repr__(self) -> str:
        return (
            f"<PooledResult: {len(self.treated)} treated units, {self.method} over "
            f"{self.n_draws} placebo averages, p = {self.p_value:.4g}>"
        )

    @property
    def n_draws(self) -> int:
        """Number of placebo averages the p-values are computed from."""
        return int(self.null.shape[0])

    @property
    def average(self) -> float:
        """Observed standardised effect averaged over treated units and post periods."""
        return float(self.observed.mean())

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the average standardised effect."""
        return float(self.table["p_value"].iloc[-1])

    @property
    def table(self) -> pd.DataFrame:
        """Per post period and for the average (last row, ``"average"``): the
        statistic and its two-sided and one-sided p-values."""
        observed = np.append(self.observed, self.observed.mean())
        null = np.column_stack([self.null, self.null.mean(axis=1)])
        denominator = 1 + null.shape[0]
        tol = 1e-10 * np.maximum(np.abs(observed), 1e-300)
        return pd.DataFrame(
            {
                "statistic": observed,
                "p_value": (1 + (np.abs(null) >= np.abs(observed) - tol).sum(axis=0)) / denominator,
                "p_negative": (1 + (null <= observed + tol).sum(axis=0)) / denominator,
                "p_positive": (1 + (null >= observed - tol).sum(axis=0)) / denominator,
            },
            index=pd.Index([*self.post_periods, "average"], name=self.time, dtype=object),
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
                f"{len(self.treated)} treated units; null distribution: {self.method}, "
                f"{self.n_draws} of {self.n_combinations} placebo combinations"
                + (f" (seed {self.seed})." if self.method == "monte carlo" else "."),
            ),
        )


def pooled_test(
    results: Sequence[SynthResult | PlaceboResult] | Mapping[Hashable, SynthResult],
    *,
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
    by the floor rather than by zero, and gaps within it count as zero.

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
    """
    items = _items(results)
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
    scaled = [_standardised(p) for p in placebos]
    sizes = [s.shape[1] - 1 for s in scaled]
    n_combinations = int(np.prod(sizes, dtype=object))
    if n_combinations <= max_combinations:
        method, null = "exact", _enumerate(scaled)
    else:
        method, null = "monte carlo", _sample(scaled, n_draws, seed)
    return PooledResult(
        treated=tuple(p.treated for p in placebos),
        post_periods=post_periods,
        observed=frozen(np.mean([s[:, 0] for s in scaled], axis=0)),
        null=frozen(null / len(scaled)),
        method=method,
        n_combinations=n_combinations,
        seed=seed,
        standardised=frozen(np.column_stack([s[:, 0] for s in scaled])),
        placebos=placebos,
        time=placebos[0].time,
    )


def _items(results: object) -> list:
    if isinstance(results, Mapping):
        return list(results.values())
    if isinstance(results, (SynthResult, PlaceboResult, str)) or not isinstance(results, Sequence):
        raise ArgumentError(
            "results must be a list of SynthResult or PlaceboResult (one per treated unit) or the "
            f"SynthResults of a fit with several treated units; got {type(results).__name__}"
        )
    return list(results)


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
            raise SpecError(
                f"treated units {placebos[0].treated!r} and {p.treated!r} have different post-periods "
                f"({post[0][:1]}...{post[0][-1:]} vs {periods[:1]}...{periods[-1:]}); pooled_test needs "
                "units treated at the same time with the same periods"
            )
    return post[0]


def _standardised(placebo: PlaceboResult) -> np.ndarray:
    """Post-period gaps divided by each unit's pre RMSPE (column 0: the treated unit),
    with the placebo test's round-off floor."""
    pre = rmspe(placebo.gap_matrix, placebo.pre_mask)
    return over_pre_rmspe(placebo.gap_matrix[placebo.post_mask], pre[None, :], placebo.round_off)


def _enumerate(scaled: Sequence[np.ndarray]) -> np.ndarray:
    """Sum of standardised placebo gaps over every combination, one placebo per unit."""
    total = np.zeros((1, scaled[0].shape[0]))
    for s in scaled:
        total = (total[:, None, :] + s[:, 1:].T[None, :, :]).reshape(-1, s.shape[0])
    return total


def _sample(scaled: Sequence[np.ndarray], n_draws: int, seed: int) -> np.ndarray:
    """Sum of standardised placebo gaps over ``n_draws`` seeded random combinations."""
    rng = np.random.default_rng(seed)
    total = np.zeros((n_draws, scaled[0].shape[0]))
    for s in scaled:
        total += s[:, 1 + rng.integers(0, s.shape[1] - 1, size=n_draws)].T
    return total
