"""Figures of inference results. Each function takes a result and an optional Axes,
draws on it and returns the Axes; nothing is shown or saved.

Like :mod:`synthcontrol.plots`, this module reads results only through their public
attributes and imports none of the modules that define them, so their ``plot``
methods call it without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..plots import new_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_placebo_gaps", "plot_ratios", "plot_leave_one_out", "plot_in_time", "plot_conformal"]


def plot_placebo_gaps(result: Any, ax: "Axes | None" = None, cutoff: float | None = None) -> "Axes":
    """Of a :class:`~synthcontrol.inference.PlaceboResult`: gap paths of every placebo in grey and of the treated unit in black
    ("spaghetti" plot); with ``cutoff``, placebos whose pre-MSPE exceeds ``cutoff``
    times the treated unit's are left out, as in ADH 2010's figures."""
    ax = new_axes(ax)
    gaps = result.gaps
    if cutoff is not None:
        keep = result.table["pre_mspe_ratio"] <= cutoff
        gaps = gaps.loc[:, keep.to_numpy() | (np.arange(len(keep)) == 0)]
    ax.plot(gaps.index, gaps.iloc[:, 1:].to_numpy(), color="lightgrey", linewidth=0.8)
    ax.plot(gaps.index, gaps.iloc[:, 0], color="black", linewidth=2, label=str(result.treated))
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.axvline(result.treatment_start, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(result.time)
    ax.set_ylabel(f"gap in {result.outcome}")
    ax.legend(frameon=False)
    return ax


def plot_ratios(result: Any, ax: "Axes | None" = None) -> "Axes":
    """Post/pre RMSPE ratio of every unit of a PlaceboResult, sorted, the treated unit
    highlighted."""
    ax = new_axes(ax, figsize=(6.0, max(4.0, 0.18 * len(result.units))))
    ratios = result.table["ratio"].sort_values()
    colours = ["black" if unit == result.treated else "lightgrey" for unit in ratios.index]
    ax.barh([str(u) for u in ratios.index], ratios.to_numpy(), color=colours)
    ax.set_xlabel("post/pre-period RMSPE ratio")
    return ax


def plot_leave_one_out(result: Any, ax: "Axes | None" = None) -> "Axes":
    """Treated outcome, original synthetic path and each leave-one-out path (a
    :class:`~synthcontrol.inference.LeaveOneOutResult`)."""
    ax = new_axes(ax)
    paths = result.paths
    ax.plot(paths.index, paths.iloc[:, 1:].to_numpy(), color="lightgrey", linewidth=0.8)
    ax.plot(paths.index, result.outcome_path, color="black", label=str(result.treated))
    ax.plot(paths.index, paths["original"], color="tab:blue", linestyle="--", label="synthetic")
    ax.axvline(result.treatment_start, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(result.time)
    ax.set_ylabel(result.outcome)
    ax.legend(frameon=False)
    return ax


def plot_in_time(result: Any, ax: "Axes | None" = None) -> "Axes":
    """Gap path of each fake start of an
    :class:`~synthcontrol.inference.InTimePlaceboResult`, fake and real starts marked."""
    ax = new_axes(ax)
    gaps = result.gaps
    for start in result.fake_starts:
        line = ax.plot(gaps.index, gaps[start], label=f"fake start {start}")[0]
        ax.axvline(start, color=line.get_color(), linestyle=":", linewidth=1)
    ax.axvline(result.treatment_start, color="grey", linestyle="--", linewidth=1)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(result.time)
    ax.set_ylabel(f"gap in {result.outcome}")
    ax.legend(frameon=False)
    return ax


def plot_conformal(result: Any, ax: "Axes | None" = None) -> "Axes":
    """Per-period effect estimates of a :class:`~synthcontrol.inference.ConformalResult`
    with their conformal confidence bands."""
    ax = new_axes(ax)
    table = result.table
    ax.fill_between(table.index, table["lower"], table["upper"], color="tab:blue", alpha=0.25,
                    label=f"{1 - result.alpha:.0%} conformal interval")
    ax.plot(table.index, table["estimate"], color="black", marker="o", label="estimate")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(result.time)
    ax.set_ylabel("effect")
    ax.legend(frameon=False)
    return ax
