"""The detectors of the audit: common breaks, jumps and reversals, interpolation
runs, relations and disagreements with a second source (see
:mod:`synthcontrol.data_audit`). Each returns the cells it flags as ``_Flags``."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .relations import Relation
from ..errors import SynthControlError
from .scores import _MIN_HISTORY, _Column, _Flags, _change_scores, _nanmedian, _robust

__all__ = []

_MIN_STEPS = 10  # collinearity is tested where the median change spans this many rounding steps


def _break_periods(
    z: np.ndarray, groups: np.ndarray, break_z: float, alpha: float, min_units: int
) -> tuple[np.ndarray, dict]:
    """Cells of a level break shared by many units in one period, and their notes.

    Two tests, each at level ``alpha``: more units than chance allows beyond
    ``break_z`` in one direction, overall or within a group (:func:`_burst`); and a
    group whose median z moves beyond what its own history allows
    (:func:`_group_shift`).
    """
    mask = np.zeros(z.shape, dtype=bool)
    notes: dict = {}
    members = [(None, np.ones(groups.shape, bool))] + [(g, groups == g) for g in pd.unique(groups) if g is not None]
    for test in (_burst, _group_shift):
        for label, member in members:
            for t, cells, note in test(z, member, break_z=break_z, alpha=alpha, min_units=min_units):
                where = "units" if label is None else f"units of group {label!r}"
                for j in np.flatnonzero(cells & ~mask[t]):
                    notes[t, j] = note.format(where=where)
                mask[t] |= cells
    return mask, notes


def _burst(z: np.ndarray, member: np.ndarray, *, break_z: float, alpha: float, min_units: int):
    """Periods where more members than chance allows are beyond ``break_z`` in one
    direction: the binomial tail at the rate of the whole column (at least the normal
    rate), so a heavy-tailed column needs more simultaneous breaks."""
    finite = np.isfinite(z)
    for sign, direction in ((1, "up"), (-1, "down")):
        beyond = sign * np.where(finite, z, 0.0) > break_z
        rate = max(beyond.sum() / max(finite.sum(), 1), stats.norm.sf(break_z))
        counts = beyond[:, member].sum(axis=1)
        sizes = finite[:, member].sum(axis=1)
        chance = stats.binom.sf(counts - 1, np.maximum(sizes, 1), rate)
        for t in np.flatnonzero((counts >= min_units) & (chance < alpha)):
            yield t, beyond[t] & member, (f"{counts[t]} of {sizes[t]} {{where}} break {direction} together "
                                          f"(chance {chance[t]:.1e})")


def _group_shift(z: np.ndarray, member: np.ndarray, *, break_z: float, alpha: float, min_units: int):
    """Periods where a group's median z leaves the range of its own history (two-sided
    level ``alpha`` of Student's t, as the history's spread is estimated); flags the
    members that moved with it by more than one robust SD. The all-units median is
    not tested (its excess change is zero)."""
    history = np.isfinite(_nanmedian(z[:, member], 1)).sum() if member.any() else 0
    if member.all() or member.sum() < min_units or history < _MIN_HISTORY:
        return
    median = _nanmedian(z[:, member], 1)
    centre, spread = _robust(median, 0)
    scale = max(spread, 1.2533 / np.sqrt(member.sum()))  # at least the median's SD under the null
    shift = (median - centre) / scale
    for t in np.flatnonzero(np.abs(np.nan_to_num(shift)) > stats.t.isf(alpha / 2, history - 1)):
        with np.errstate(invalid="ignore"):
            moved = member & (np.sign(shift[t]) * z[t] > 1)
        yield t, moved, f"the {{where}} move together (median z {median[t]:+.1f}, {shift[t]:+.1f} SDs off its history)"


def _detect_changes(
    column: _Column, groups: np.ndarray, *, jump_z: float, break_z: float, break_alpha: float,
    min_units: int, max_excursion: int,
) -> list[_Flags]:
    """Common breaks, single-unit jumps and reversals of one column."""
    change, z_own, z_cross = _change_scores(column)
    x = column.transformed()
    previous = np.vstack([np.full(x.shape[1], np.nan), x[:-1]])
    common = _nanmedian(change, 1)[:, None]
    typical = common + _nanmedian(change - common, 0)[None, :]  # the period's and the unit's usual change
    breaks, break_notes = _break_periods(z_own, groups, break_z, break_alpha, min_units)
    with np.errstate(invalid="ignore"):  # too few units for a cross-sectional z: twice the bar alone
        agrees = (np.abs(z_cross) > jump_z) & (np.sign(z_own) == np.sign(z_cross))
        jump = (np.abs(z_own) > jump_z) & agrees | (np.abs(z_own) > 2 * jump_z) & np.isnan(z_cross)
    reversal, closing, path, span = _excursions(x, change - typical, jump | breaks, typical, max_excursion)
    breaks &= ~reversal & ~closing
    jump &= ~breaks & ~reversal & ~closing
    what = "log change" if column.log else "change"

    def describe(t: int, j: int) -> str:
        return f"{what} {change[t, j]:+.4g} (robust z {z_own[t, j]:+.1f} own history, {z_cross[t, j]:+.1f} cross-section)"

    return [
        _Flags("common_break", breaks, column.untransform(previous + typical),
               lambda t, j: f"{break_notes[t, j]}; {describe(t, j)}"),
        _Flags("jump", jump, column.untransform(previous + typical), describe),
        _Flags("reversal", reversal, column.untransform(path),
               lambda t, j: f"off the unit's path for {span[t, j]} period(s), then back"),
    ]


def _excursions(
    x: np.ndarray, excess: np.ndarray, outlier: np.ndarray, typical: np.ndarray, max_span: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of at most ``max_span`` cells that an outlying change leaves and an
    opposite outlying change brings back to within half the jump of the unit's path.

    Returns the cells of the runs, the closing changes, the path through the runs
    (usual changes spread on the line between the values before and after) and the
    run length of each cell.
    """
    inside = np.zeros(x.shape, dtype=bool)
    closing = np.zeros(x.shape, dtype=bool)
    path = np.full(x.shape, np.nan)
    span = np.zeros(x.shape, dtype=int)
    for t, j in zip(*np.nonzero(outlier)):
        if inside[t, j] or closing[t, j]:
            continue
        for k in range(1, max_span + 1):
            end = t + k
            if end >= x.shape[0] or not outlier[end, j] or np.sign(excess[end, j]) != -np.sign(excess[t, j]):
                continue
            drift = typical[t:end + 1, j]
            gap = x[end, j] - x[t - 1, j] - drift.sum()
            if abs(gap) <= 0.5 * abs(excess[t, j]):
                steps = np.cumsum(drift)[:-1] + gap * np.arange(1, k + 1) / (k + 1)
                inside[t:end, j], closing[end, j] = True, True
                path[t:end, j], span[t:end, j] = x[t - 1, j] + steps, k
                break
    return inside, closing, path, span


def _decimal_step(values: np.ndarray) -> float:
    """Typical rounding step of the values (0.01 for figures with two decimals)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 0.0
    decimals = np.zeros(finite.size)
    for k in range(7):  # a value with k decimals is k-rounded up to float noise
        undecided = decimals == 0
        exact = np.abs(finite * 10.0**k - np.round(finite * 10.0**k)) <= 1e-6 * np.maximum(finite * 10.0**k, 1)
        decimals[undecided & exact] = k + 1
    decimals[decimals == 0] = 8
    return float(10.0 ** -(np.median(decimals) - 1))


def _collinear(values: np.ndarray, rtol: float) -> np.ndarray:
    """Interior points on the line through their two neighbours, within rounding.

    Units whose typical change spans fewer than ``_MIN_STEPS`` rounding steps are
    not tested: at that resolution rounding alone puts points on a line.
    """
    second = np.full_like(values, np.nan)
    second[1:-1] = values[2:] - 2 * values[1:-1] + values[:-2]
    typical = _nanmedian(np.abs(np.diff(values, axis=0)), 0)
    rounding = _decimal_step(values)
    tolerance = np.maximum(rtol * typical, rounding)
    testable = typical >= _MIN_STEPS * rounding
    with np.errstate(invalid="ignore"):
        return (np.abs(second) <= tolerance[None, :] * (1 + 1e-9)) & testable[None, :]


def _runs(mask: np.ndarray) -> np.ndarray:
    """Length of the run of True each True cell belongs to (per column)."""
    lengths = np.zeros(mask.shape, dtype=int)
    for j in range(mask.shape[1]):
        t = 0
        while t < mask.shape[0]:
            if not mask[t, j]:
                t += 1
                continue
            end = t
            while end < mask.shape[0] and mask[end, j]:
                end += 1
            lengths[t:end, j] = end - t
            t = end
    return lengths


def _detect_interpolation(
    column: _Column, periods: Sequence, *, min_run: int, share: float, min_units: int, rtol: float
) -> _Flags:
    """Runs of collinear points, and collinear points in periods where many units have one."""
    collinear = _collinear(column.values, rtol)
    lengths = _runs(collinear)
    available = np.isfinite(column.values).sum(axis=1)
    counts = collinear.sum(axis=1)
    common = (counts >= min_units) & (counts >= share * np.maximum(available, 1))
    mask = (lengths >= min_run) | (collinear & common[:, None])

    def describe(t: int, j: int) -> str:
        where = f"; {counts[t]} of {available[t]} units collinear in {periods[t]!r}" if common[t] else ""
        return f"on the line through its neighbours (interpolated or repeated), run of {lengths[t, j]}{where}"

    return _Flags("interpolation", mask, np.full(mask.shape, np.nan), describe)


def _detect_relation(
    relation: Relation, frames: Mapping[str, pd.DataFrame], groups: np.ndarray,
    *, relation_z: float, break_z: float, break_alpha: float, min_units: int
) -> _Flags:
    """Cells where the implied quantity breaks its identity or leaves the cross-section,
    or is infinite (a division by zero: undefined, whatever its neighbours)."""
    try:
        q = np.asarray(relation.implied(*(frames[c] for c in relation.columns)), dtype=float)
    except Exception as error:  # the user's function: say which relation failed, not only how
        raise SynthControlError(f"relation {relation.name!r}: its implied function failed on the data "
                                f"({type(error).__name__}: {error}); it is called with one wide frame (periods x "
                                f"units) per column of {list(relation.columns)}") from error
    if q.shape != frames[relation.columns[0]].shape:
        raise SynthControlError(
            f"relation {relation.name!r} returned shape {q.shape}; it must return one value per period and unit "
            f"{frames[relation.columns[0]].shape}"
        )
    undefined = np.isinf(q)
    finite = np.where(undefined, np.nan, q)
    if relation.target is not None:
        centre = np.full(q.shape, float(relation.target))
        with np.errstate(invalid="ignore"):
            mask = np.abs(finite - relation.target) > relation.tolerance
        test = f"should be {relation.target:g} within {relation.tolerance:g}"
    else:
        centre = np.broadcast_to(_nanmedian(finite, 1)[:, None], q.shape)
        z = _pooled_cross_z(finite)
        breaks, _ = _break_periods(z, groups, break_z, break_alpha, min_units)
        with np.errstate(invalid="ignore"):
            mask = (np.abs(z) > relation_z) | breaks
        test = "far from the period's median"
    mask = mask | undefined

    def describe(t: int, j: int) -> str:
        if undefined[t, j]:
            return f"{relation.name} = {q[t, j]:.4g}, undefined (a division by zero in its columns)"
        return f"{relation.name} = {q[t, j]:.4g}, {test} ({centre[t, j]:.4g})"

    return _Flags("relation", mask, np.asarray(centre, dtype=float), describe, values=q)


def _pooled_cross_z(q: np.ndarray) -> np.ndarray:
    """z against the period's median, scaled by the typical cross-sectional spread, so
    that a period in which many units leave the relation still stands out."""
    centre, spread = _robust(q, 1)
    typical = _nanmedian(spread, 0)
    if not np.isfinite(typical) or typical <= 0:
        typical = np.inf
    with np.errstate(invalid="ignore"):
        return (q - centre[:, None]) / typical


def _detect_source(column: _Column, reference: np.ndarray, rtol: float) -> _Flags:
    """Cells that differ from the second source beyond ``rtol`` of the larger of the
    reference value and the column's typical magnitude."""
    typical = _nanmedian(np.abs(column.values).ravel(), 0)
    with np.errstate(invalid="ignore"):
        mask = np.abs(column.values - reference) > rtol * np.maximum(np.abs(reference), typical)

    def describe(t: int, j: int) -> str:
        return f"reference source holds {reference[t, j]:.6g} (tolerance {rtol:g} relative)"

    return _Flags("source", mask, reference, describe)
