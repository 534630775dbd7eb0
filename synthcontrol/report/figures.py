"""The report's PNG figures (matplotlib, Agg backend), drawn from the typed study model.

* ``effects.png``: every main estimate (one panel per outcome, one row per treated
  unit and block), in per cent for logged outcomes;
* ``paths_POOL.png`` (first pool) and ``gaps_POOL.png`` (every pool): the headline
  outcome of every treated unit against its synthetic control, and its gap among the
  placebo gaps, one panel each;
* ``speccurves.png``: the specification curves, one panel per treated unit and pool.

Every legend entry is drawn with the marks it names, and every axis has a title.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from ..study import Estimate, TaskResult
from .formats import p, slug
from .view import Figure, ReportView

__all__ = ["write_figures"]

_POOL_MARKERS = "os^Dv<>"
_ESTIMATOR_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def write_figures(view: ReportView, out: Path) -> tuple[Figure, ...]:
    """Draw every figure of the report into ``out``; returns them with their captions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for name, caption, draw in _plan(view):
        fig = draw(plt)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        figures.append(Figure(name, caption))
    return tuple(figures)


def _plan(view: ReportView) -> list[tuple[str, str, Callable]]:
    headline = view.config.headline
    plan: list[tuple[str, str, Callable]] = []
    if view.main:
        plan.append(("effects.png", "Average post-period effect of every main estimate (filled: placebo "
                     f"p <= {view.alpha}; grey: not identified or not tested; diamonds: treated units estimated "
                     "together, with their 95% interval)", lambda plt: _draw_effects(plt, view)))
    for number, tr in enumerate(view.headline_tasks):
        pool = tr.task.pool
        if number == 0:  # the paths of the first pool; the gaps of every pool
            plan.append((f"paths_{slug(pool)}.png", f"{headline.label}: observed and synthetic, {pool} pool",
                         lambda plt, tr=tr: _draw_grid(plt, tr, view, _draw_path)))
        if all(u.placebo is not None for u in tr.units):
            plan.append((f"gaps_{slug(pool)}.png", f"Gap in {headline.label} (black) among the placebo gaps of "
                         f"the donors (grey), {pool} pool", lambda plt, tr=tr: _draw_grid(plt, tr, view, _draw_gaps)))
    if view.study.curves:
        plan.append(("speccurves.png", f"Specification curves of {headline.label}: each fit's average effect, "
                     "sorted", lambda plt: _draw_curves(plt, view)))
    return plan


def _grid(plt, n: int, width: float = 3.6, height: float = 2.7):
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _draw_grid(plt, tr: TaskResult, view: ReportView, draw: Callable):
    fig, axes = _grid(plt, len(tr.units))
    for ax, unit in zip(axes, tr.units):
        draw(ax, unit, view)
        ax.set_title(view.config.unit_name(unit.treated), fontsize="medium")
        ax.axvline(tr.task.spec.treatment_start, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(view.config.data.time)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def _draw_path(ax, unit, view: ReportView) -> None:
    path = unit.fit.path
    ax.plot(path.index, path["treated"], color="black", label="observed")
    ax.plot(path.index, path["synthetic"], color="tab:blue", linestyle="--", label="synthetic")
    ax.set_ylabel(view.config.headline.column)


def _draw_gaps(ax, unit, view: ReportView) -> None:
    gaps = unit.placebo.gaps
    lines = ax.plot(gaps.index, gaps.iloc[:, 1:].to_numpy(), color="lightgrey", linewidth=0.8)
    ax.plot(gaps.index, gaps.iloc[:, 0], color="black", linewidth=1.8, label="treated unit")
    if lines:
        lines[0].set_label("placebos")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel(f"gap in {view.config.headline.column}")
    ax.text(0.02, 0.04, f"p = {p(unit.placebo.p_value)}", transform=ax.transAxes, fontsize="small")


def _value(view: ReportView, e: Estimate, value: float) -> float:
    """An effect on the scale of the figure: per cent for a log outcome."""
    return float(np.expm1(value) * 100) if view.config.outcome(e.outcome).log else value


def _draw_effects(plt, view: ReportView):
    estimates = (*view.main, *(b for b in view.study.block_estimates))
    outcomes = list(dict.fromkeys(e.outcome for e in estimates))
    rows = list(dict.fromkeys(e.treated for e in estimates))
    pools = list(dict.fromkeys(e.pool for e in view.main))
    markers = dict(zip(pools, _POOL_MARKERS))
    fig, axes = _grid(plt, len(outcomes), width=3.4, height=0.3 * len(rows) + 1.2)
    for ax, outcome in zip(axes, outcomes):
        for e in (e for e in estimates if e.outcome == outcome):
            _mark(ax, view, e, rows.index(e.treated) + 0.18 * pools.index(e.pool), markers.get(e.pool, "o"))
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_title(outcome, fontsize="small")
        out = view.config.outcome(outcome)
        ax.set_xlabel("effect, %" if out.log else f"effect{', ' + out.units if out.units else ''}", fontsize="small")
        ax.set_yticks(range(len(rows)), rows if ax in axes[::4] else [""] * len(rows), fontsize="small")
        ax.set_ylim(len(rows) - 0.5, -0.5)
    fig.legend(handles=_effect_legend(plt, markers, view.alpha), loc="lower center", ncol=4, frameon=False,
               fontsize="small")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _mark(ax, view: ReportView, e: Estimate, y: float, marker: str) -> None:
    x = _value(view, e, e.effect)
    if e.scope == "block":
        low, high = _value(view, e, e.ci_lower), _value(view, e, e.ci_upper)
        ax.errorbar(x, y, xerr=[[x - low], [high - x]], fmt="D", color="black", markersize=5, capsize=2)
        return
    colour = "lightgrey" if e.identified != "yes" else "tab:blue"
    filled = e.tested and e.p_value <= view.alpha
    ax.scatter(x, y, marker=marker, s=28, edgecolors=colour, facecolors=colour if filled else "none")


def _effect_legend(plt, markers: dict, alpha: float) -> list:
    line = plt.Line2D
    handles = [line([], [], marker=m, linestyle="", color="tab:blue", markerfacecolor="none", label=f"{pool} pool")
               for pool, m in markers.items()]
    handles += [
        line([], [], marker="o", linestyle="", color="tab:blue", label=f"placebo p <= {alpha}"),
        line([], [], marker="o", linestyle="", color="lightgrey", markerfacecolor="none",
             label="not identified / untested"),
        line([], [], marker="D", linestyle="-", color="black", label="block, 95% interval"),
    ]
    return handles


def _draw_curves(plt, view: ReportView):
    curves = view.study.curves
    fig, axes = _grid(plt, len(curves), width=3.4, height=2.6)
    estimators = list(dict.fromkeys(e for c in curves for e in c.curve.table["estimator"]))
    colours = dict(zip(estimators, _ESTIMATOR_COLOURS))
    log = view.config.headline.log
    for ax, c in zip(axes, curves):
        table = c.curve.table.sort_values("effect").reset_index(drop=True)
        effects = np.expm1(table["effect"]) * 100 if log else table["effect"]
        tested = table["p_value"].notna().to_numpy()
        small = tested & (table["p_value"] <= view.alpha).to_numpy()
        for name in estimators:
            mine = (table["estimator"] == name).to_numpy()
            ax.scatter(np.flatnonzero(mine) + 1, effects[mine], s=18, edgecolors=colours[name],
                       facecolors=np.where(small[mine], colours[name], "none"))
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"{view.config.unit_name(c.treated)}, {c.pool}", fontsize="small")
        ax.set_xlabel("specification (sorted by effect)", fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("average effect, %" if log else "average effect", fontsize="small")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[n], markerfacecolor="none", label=n)
               for n in estimators]
    if any(c.curve.table["p_value"].notna().any() for c in curves):
        handles.append(plt.Line2D([], [], marker="o", linestyle="", color="black", label=f"placebo p <= {view.alpha}"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
