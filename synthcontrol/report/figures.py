"""The report's PNG figures (matplotlib, Agg backend), drawn from the typed study model."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Hashable

from ..study import Estimate, TaskResult
from .formats import p, slug
from .view import ALPHA, Figure, ReportView

__all__ = ["write_figures"]


def write_figures(view: ReportView, out: Path) -> tuple[Figure, ...]:
    """Draw every figure of the report into ``out``; returns them with their captions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for name, caption, draw in _plan(view):
        fig = draw(plt)
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        figures.append(Figure(name, caption))
    return tuple(figures)


def _plan(view: ReportView) -> list[tuple[str, str, Callable]]:
    config = view.config
    headline = config.headline.column
    tasks = view.headline_tasks
    plan: list[tuple[str, str, Callable]] = []
    for treated in config.main.treated:
        name = config.unit_name(treated)
        plan.append((f"headline_{slug(treated)}.png",
                     f"{name}: observed and synthetic {headline}, and their gap, by donor pool",
                     lambda plt, t=treated: _draw_paths(plt, tasks, t, view)))
        if tasks and all(u.placebo is not None for tr in tasks for u in tr.units):
            plan.append((f"placebo_{slug(treated)}.png",
                         f"{name}: gap in {headline} (black) among the placebo gaps of the donors (grey)",
                         lambda plt, t=treated: _draw_placebos(plt, tasks, t, view)))
    if view.main:
        plan.append(("effects.png", "Average post-period effect of every main estimate; filled markers: "
                     f"placebo p <= {ALPHA}, crosses: poor pre-period fit",
                     lambda plt: _draw_effects(plt, view.main)))
    for c in view.study.curves:
        plan.append((f"speccurve_{slug(c.treated)}_{slug(c.pool)}.png",
                     f"{config.unit_name(c.treated)}, {c.pool} pool: specification curve of {headline}",
                     lambda plt, curve=c.curve: curve.plot(alpha=ALPHA).figure))
    return plan


def _unit(tr: TaskResult, treated: Hashable):
    return next(u for u in tr.units if u.treated == treated)


def _draw_paths(plt, tasks: tuple[TaskResult, ...], treated: Hashable, view: ReportView):
    name = view.config.unit_name(treated)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.2 * len(tasks)), squeeze=False)
    for row, tr in zip(axes, tasks):
        result = _unit(tr, treated).fit
        result.plot_path(ax=row[0])
        result.plot_gap(ax=row[1])
        row[0].legend([name, "synthetic"], frameon=False)
        row[0].set_title(f"{name} vs synthetic, {tr.task.pool} pool", fontsize="medium")
        row[1].set_title(f"gap, {tr.task.pool} pool", fontsize="medium")
    _integer_periods(fig)
    fig.tight_layout()
    return fig


def _integer_periods(fig) -> None:
    """Whole periods on every x axis (years, not 2007.5)."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _draw_placebos(plt, tasks: tuple[TaskResult, ...], treated: Hashable, view: ReportView):
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.4), squeeze=False)
    for ax, tr in zip(axes[0], tasks):
        placebo = _unit(tr, treated).placebo
        placebo.plot_gaps(ax=ax)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [view.config.unit_name(treated), *labels[1:]], frameon=False)
        ax.set_title(f"{tr.task.pool} pool: p = {p(placebo.p_value)}", fontsize="medium")
    _integer_periods(fig)
    fig.tight_layout()
    return fig


def _draw_effects(plt, main: tuple[Estimate, ...]):
    outcomes = list(dict.fromkeys(e.outcome for e in main))
    names = list(dict.fromkeys(e.treated for e in main))
    markers = dict(zip(dict.fromkeys(e.pool for e in main), "os^Dv"))
    fig, axes = plt.subplots(1, len(outcomes), figsize=(3.2 * len(outcomes), 0.5 * len(names) + 2.2), squeeze=False)
    for ax, outcome in zip(axes[0], outcomes):
        for e in (e for e in main if e.outcome == outcome):
            y = names.index(e.treated) + 0.15 * list(markers).index(e.pool)
            filled = e.tested and e.p_value <= ALPHA
            marker = "x" if e.fit_quality == "poor" else markers[e.pool]
            ax.scatter(e.effect, y, marker=marker, color="tab:blue",
                       facecolors="tab:blue" if filled or marker == "x" else "none")
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [""] * len(names))
        ax.set_title(outcome, fontsize="small")
    handles = [plt.Line2D([], [], marker=m, linestyle="", color="tab:blue", markerfacecolor="none", label=pool)
               for pool, m in markers.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
