"""Figures from results. Each function takes a result and an optional Axes, draws on
it, and returns the Axes; nothing is shown or saved here (matplotlib is optional and
imported only when a figure is drawn).

This module imports nothing from the rest of the package: it reads a result only
through its public attributes (``path``, ``weights``, ``spec``, ``treated``), so the
result classes can offer ``res.plot_path()`` and the other conveniences by calling
these functions without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_path", "plot_gap", "plot_weights", "new_axes"]


def new_axes(ax: "Axes | None" = None, figsize: tuple[float, float] = (7.0, 4.0)) -> "Axes":
    """``ax``, or fresh Axes on a new figure (imports matplotlib only when needed)."""
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plots need matplotlib: pip install 'synthcontrol[plots]'"
        ) from error
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _mark_treatment(ax: "Axes", result: Any) -> None:
    ax.axvline(result.spec.treatment_start, color="grey", linestyle=":", linewidth=1)


def plot_path(result: Any, ax: "Axes | None" = None) -> "Axes":
    """Treated and synthetic outcome over time, of a :class:`~synthcontrol.results.SynthResult`."""
    ax = new_axes(ax)
    path = result.path
    ax.plot(path.index, path["treated"], color="black", label=str(result.treated))
    ax.plot(path.index, path["synthetic"], color="tab:blue", linestyle="--", label="synthetic")
    _mark_treatment(ax, result)
    ax.set_xlabel(result.spec.time)
    ax.set_ylabel(result.spec.outcome)
    ax.legend(frameon=False)
    return ax


def plot_gap(result: Any, ax: "Axes | None" = None) -> "Axes":
    """Gap between the treated unit and its synthetic control over time (a SynthResult's)."""
    ax = new_axes(ax)
    path = result.path
    ax.plot(path.index, path["gap"], color="black")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    _mark_treatment(ax, result)
    ax.set_xlabel(result.spec.time)
    ax.set_ylabel(f"gap in {result.spec.outcome}")
    return ax


def plot_weights(result: Any, ax: "Axes | None" = None, threshold: float = 1e-3) -> "Axes":
    """Donor weights of a SynthResult above ``threshold``, largest first."""
    ax = new_axes(ax)
    weights = result.weights
    weights = weights[weights.abs() > threshold].sort_values()
    ax.barh([str(u) for u in weights.index], weights.to_numpy(), color="tab:blue")
    ax.set_xlabel("donor weight")
    return ax
