"""The result of an in-space placebo test: every unit's gap path and the statistics
ranked on it (:func:`~synthcontrol.inference.placebo_test` computes it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

import numpy as np
import pandas as pd

from .._validation import check_number
from ..results import Summary, certificate_counts, certificate_counts_note
from ._common import conservative_rank, over_pre_rmspe, rmspe
from .plots import plot_placebo_gaps, plot_ratios
from .runner import RunLog

__all__ = ["PlaceboResult"]


@dataclass(frozen=True, eq=False)
class PlaceboResult:
    """In-space placebo gaps of the treated unit and every donor.

    Column 0 of every array is the treated unit, then the donors in design order.

    Attributes
    ----------
    units : tuple
        Treated unit, then donors.
    periods : tuple
        Periods of the gap paths.
    gap_matrix : ndarray, shape (T, N)
        Outcome minus synthetic outcome, per period and unit.
    pre_mask, post_mask : ndarray of bool, shape (T,)
        Pre-period (fit window before treatment) and post-period.
    weights : tuple of ndarray
        Donor weights of each unit's fit (the treated unit's own fit first).
    predictor_weights : ndarray, shape (N, K)
        Predictor weights of each fit.
    loss_v : ndarray, shape (N,)
        Fit-window outcome MSPE of each fit.
    cutoffs : tuple of float
        Pre-MSPE cut-offs reported in :attr:`cutoff_table`.
    time, outcome : str
        Column names, for labels.
    treatment_start : hashable
    reused_predictor_weights : bool
        True when the placebos used the treated unit's predictor weights.
    run : RunLog
        How many fits were computed and how many read back from a checkpoint.
    round_off : float
        Gaps up to this size are round-off (``ROUND_OFF`` times the largest absolute
        outcome of the design, see :mod:`synthcontrol.inference._common`): they
        count as zero in a numerator, and no pre-period RMSPE divides by less.
    certificates : tuple of str or None
        Certificate status of each fit (treated first; None: not requested or ``v``
        fixed), see :func:`synthcontrol.certify.certify_nested`.
    """

    units: tuple
    periods: tuple
    gap_matrix: np.ndarray
    pre_mask: np.ndarray
    post_mask: np.ndarray
    weights: tuple
    predictor_weights: np.ndarray
    loss_v: np.ndarray
    cutoffs: tuple
    time: str
    outcome: str
    treatment_start: Hashable
    reused_predictor_weights: bool
    run: RunLog
    round_off: float
    certificates: tuple = ()

    def __repr__(self) -> str:
        return (
            f"<PlaceboResult: {self.treated!r} ranks {self.rank} of {len(self.units)} "
            f"on post/pre RMSPE, p = {self.p_value:.4g}>"
        )

    @property
    def treated(self) -> Hashable:
        return self.units[0]

    @property
    def table(self) -> pd.DataFrame:
        """One row per unit (treated first): pre- and post-period RMSPE, their ratio
        and its rank (1 = largest, ties counted against the unit), the pre-MSPE
        relative to the treated unit's, the average post gap and the standardised
        effect (average post gap / pre RMSPE) with its ranks."""
        stats = _unit_statistics(self.gap_matrix, self.pre_mask, self.post_mask, self.round_off)
        stats["treated"] = np.arange(len(self.units)) == 0
        stats["loss_v"] = self.loss_v
        return pd.DataFrame(stats, index=pd.Index(self.units, name="unit"))

    @property
    def gaps(self) -> pd.DataFrame:
        """Gap paths, periods by units (treated unit first)."""
        return pd.DataFrame(
            self.gap_matrix, index=pd.Index(self.periods, name=self.time), columns=pd.Index(self.units, name="unit")
        )

    @property
    def rank(self) -> int:
        """Rank of the treated unit's post/pre RMSPE ratio (1 = largest)."""
        return int(self.table["rank"].iloc[0])

    @property
    def p_value(self) -> float:
        """Permutation p-value: rank of the treated unit's post/pre RMSPE ratio over
        the number of units (both directions of effect)."""
        return self.rank / len(self.units)

    @property
    def p_negative(self) -> float:
        """One-sided p-value for a negative effect: share of units whose standardised
        effect (average post gap / pre RMSPE) is at most the treated unit's."""
        return int(self.table["rank_negative"].iloc[0]) / len(self.units)

    @property
    def p_positive(self) -> float:
        """One-sided p-value for a positive effect: share of units whose standardised
        effect is at least the treated unit's."""
        return int(self.table["rank_positive"].iloc[0]) / len(self.units)

    @property
    def certificate_counts(self) -> pd.Series:
        """How many of the fits (treated and placebos) got each certificate status."""
        return certificate_counts(self.certificates)

    @property
    def cutoff_table(self) -> pd.DataFrame:
        """The p-values when placebos whose pre-period MSPE exceeds ``cutoff`` times
        the treated unit's are dropped (cut-off ``inf``: every unit kept)."""
        table = self.table
        rows = {}
        for cutoff in (*self.cutoffs, np.inf):
            kept = (table["pre_mspe_ratio"] <= cutoff).to_numpy(copy=True)
            kept[0] = True
            stats = _unit_statistics(self.gap_matrix[:, kept], self.pre_mask, self.post_mask, self.round_off)
            n = int(kept.sum())
            rows[cutoff] = {
                "n_units": n,
                "rank": int(stats["rank"][0]),
                "p_value": stats["rank"][0] / n,
                "p_negative": stats["rank_negative"][0] / n,
                "p_positive": stats["rank_positive"][0] / n,
            }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("cutoff")

    @property
    def period_p_values(self) -> pd.DataFrame:
        """Per post-period p-value: rank of the treated unit's absolute gap divided by
        its pre RMSPE among all units, over the number of units (with the round-off
        floor, see :attr:`round_off`)."""
        pre = rmspe(self.gap_matrix, self.pre_mask)
        scaled = over_pre_rmspe(np.abs(self.gap_matrix[self.post_mask]), pre, self.round_off)
        ranks = np.array([conservative_rank(row)[0] for row in scaled])
        index = pd.Index(np.array(self.periods, dtype=object)[self.post_mask], name=self.time)
        return pd.DataFrame(
            {"gap": self.gap_matrix[self.post_mask, 0], "rank": ranks, "p_value": ranks / len(self.units)},
            index=index,
        )

    def summary(self) -> Summary:
        """Unit table, cut-off p-values and per-period p-values (prints nothing)."""
        notes = (
            f"In-space placebo test for {self.treated!r}: {len(self.units) - 1} placebos, "
            f"outcome '{self.outcome}', treatment from {self.treatment_start}.",
            f"p-value (post/pre RMSPE ratio rank {self.rank} of {len(self.units)}): {self.p_value:.4g}; "
            f"one-sided (standardised average effect): negative {self.p_negative:.4g}, "
            f"positive {self.p_positive:.4g}.",
            "Placebo predictor weights: "
            + ("the treated unit's." if self.reused_predictor_weights else "chosen anew for each placebo."),
        )
        if any(status is not None for status in self.certificates):
            notes += (certificate_counts_note(self.certificates),)
        return Summary(
            f"Placebo test for {self.treated}",
            {
                "Units": self.table.sort_values("rank"),
                "Pre-MSPE cut-offs": self.cutoff_table,
                "Post periods": self.period_p_values,
            },
            notes,
        )

    def plot_gaps(self, ax=None, cutoff: float | None = None):
        """Placebo gaps with the treated unit highlighted; returns the Axes. With
        ``cutoff`` (a positive number), placebos whose pre-period MSPE exceeds
        ``cutoff`` times the treated unit's are left out."""
        cutoff = None if cutoff is None else check_number(cutoff, "cutoff", low=0.0, low_open=True)
        return plot_placebo_gaps(self, ax=ax, cutoff=cutoff)

    def plot_ratios(self, ax=None):
        """Post/pre RMSPE ratios, ranked; returns the Axes."""
        return plot_ratios(self, ax=ax)


def _unit_statistics(gaps: np.ndarray, pre: np.ndarray, post: np.ndarray, floor: float) -> dict[str, np.ndarray]:
    """Per-unit statistics of gap paths (column 0: the treated unit), with ``floor``
    the size below which a gap is round-off (never NaN: an exact pre-period fit has
    a ratio of post RMSPE over the floor, or 0 when the post-period fit is exact too)."""
    pre_rmspe, post_rmspe = rmspe(gaps, pre), rmspe(gaps, post)
    average = gaps[post].mean(axis=0)
    ratio = over_pre_rmspe(post_rmspe, pre_rmspe, floor)
    standardised = over_pre_rmspe(average, pre_rmspe, floor)
    floored_pre = np.maximum(pre_rmspe, floor)
    pre_mspe_ratio = (floored_pre / floored_pre[0]) ** 2
    return {
        "pre_rmspe": pre_rmspe,
        "post_rmspe": post_rmspe,
        "ratio": ratio,
        "rank": conservative_rank(ratio),
        "pre_mspe_ratio": pre_mspe_ratio,
        "average_effect": average,
        "standardised_effect": standardised,
        "rank_negative": conservative_rank(standardised, descending=False),
        "rank_positive": conservative_rank(standardised),
    }
