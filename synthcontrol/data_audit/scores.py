"""Robust statistics of the audit: medians, MAD-based scales with floors, robust
z-scores of changes, and the column and flag types the detectors share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = []

_MAD_TO_SD = 1.4826
_SCALE_FLOOR = 0.5  # a unit's scale is at least this share of the typical unit's
_MIN_HISTORY = 8  # fewer changes than this: the unit's own scale is the typical one


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    """Median along ``axis`` skipping NaN (NaN where all are missing); a sort, since
    ``np.nanmedian`` is slow on small arrays and warns on all-missing lines."""
    lines = np.sort(np.moveaxis(np.asarray(values, dtype=float), axis, -1), axis=-1)  # NaN sort last
    count = np.sum(~np.isnan(lines), axis=-1)
    low = np.take_along_axis(lines, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(lines, np.maximum(count // 2, 0)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _robust(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD-based standard deviation along ``axis`` (NaN skipped)."""
    centre = _nanmedian(values, axis)
    spread = _MAD_TO_SD * _nanmedian(np.abs(values - np.expand_dims(centre, axis)), axis)
    return centre, spread


def _floored(scale: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Scales floored at half the typical one; NaN where fewer than ``_MIN_HISTORY``
    values estimate them (too few to judge an outlier)."""
    enough = counts >= _MIN_HISTORY
    typical = _nanmedian(np.where(enough, scale, np.nan), 0)
    if not np.isfinite(typical) or typical <= 0:
        return np.full_like(scale, np.nan if not enough.any() else np.inf)  # nothing varies: no outlier
    return np.where(enough, np.maximum(scale, _SCALE_FLOOR * typical), np.nan)


def _robust_z(values: np.ndarray, axis: int) -> np.ndarray:
    """Robust z-scores of ``values`` along ``axis`` (0: own history, 1: cross-section);
    NaN along lines with fewer than ``_MIN_HISTORY`` values."""
    centre, spread = _robust(values, axis)
    counts = np.sum(np.isfinite(values), axis=axis)
    scale = _floored(spread, counts)
    with np.errstate(invalid="ignore"):
        return (values - np.expand_dims(centre, axis)) / np.expand_dims(scale, axis)


@dataclass(frozen=True)
class _Column:
    """One column as a (periods x units) array, with its transform."""

    name: str
    values: np.ndarray
    log: bool

    def transformed(self) -> np.ndarray:
        if not self.log:
            return self.values
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(self.values)

    def untransform(self, values: np.ndarray) -> np.ndarray:
        return np.exp(values) if self.log else values


def _changes(column: _Column) -> np.ndarray:
    """Change from the previous period (row 0 is NaN)."""
    x = column.transformed()
    out = np.full_like(x, np.nan)
    out[1:] = x[1:] - x[:-1]
    return out


@dataclass(frozen=True)
class _Flags:
    """Cells flagged by one detector: a boolean mask, the expected values, the note
    of a cell ``note(t, j)``, and the reported values where they are not the
    column's own (a relation reports its implied quantity)."""

    kind: str
    mask: np.ndarray
    expected: np.ndarray
    note: Callable[[int, int], str]
    values: np.ndarray | None = None


def _change_scores(column: _Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Changes, their z against the unit's own history (after removing the period's
    cross-sectional median) and against the period's cross-section."""
    change = _changes(column)
    common = _nanmedian(change, 1)
    excess = change - common[:, None]
    return change, _robust_z(excess, 0), _robust_z(change, 1)
