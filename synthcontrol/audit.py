"""Data audit: the suspect cells of a long panel, found before any fit.

A synthetic control copies whatever its donors report, so a statistical revision,
a typing error or a gap filled upstream in one donor's series becomes a fake effect
(or a fake placebo). :func:`audit` looks for six kinds of suspect cells and returns
them as a tidy frame, one row per cell and reason:

``common_break``
    A level break shared by many units in one period (a statistical revision year):
    more units than chance allows (``break_alpha``), overall or within a ``group``,
    change by more than ``break_z`` robust standard deviations of their own history.
``jump``
    A single unit's change far outside both its own history and the cross-section
    of the same period (robust z-scores beyond ``jump_z``).
``reversal``
    A jump undone within ``max_excursion`` periods: one cell, or a few, off the
    unit's path (a typing error, another series spliced in for a few years).
``interpolation``
    Runs of points on a straight line (linear interpolation or a carried-forward
    value upstream): at least ``interpolation_run`` collinear interior points in a
    row, or a single one in a period where at least ``interpolation_share`` of the
    units are collinear.
``relation``
    A quantity implied by several columns (declared as a :class:`Relation`, such as
    the deflator implied by a nominal level and a real growth rate) that is far from
    the cross-section of the period, or breaks an identity.
``source``
    A value that differs from a second source (``reference``) by more than
    ``source_rtol``.

Robust z-scores use the median and the median absolute deviation (times 1.4826, so
that they match standard deviations on normal data). Changes are taken between
consecutive periods of the panel, on logarithms for amounts and on levels for rates
and shares (``transform``). A unit's own scale is floored at half the typical
unit's scale (and the cross-sectional scale at half its typical value), so that a
smooth series does not turn ordinary changes into outliers; a unit (or a period)
with fewer than eight changes gets no z-score at all (in a period with fewer than
eight units, a jump must pass twice ``jump_z`` against the unit's own history alone).

The audit says where to look, not what is wrong: a flagged cell may be a real event
(a crisis, a pandemic, the treatment itself). Pass the frame to
:func:`synthcontrol.fit` (``audit=``) or :func:`synthcontrol.placebo_test` to be
warned when a donor with weight, or a placebo that outranks the treated unit, relies
on a flagged cell.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Hashable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import MissingColumnError, PanelError, SynthControlError
from .panel import Panel

__all__ = [
    "audit",
    "Relation",
    "implied_deflator",
    "ratio",
    "accounting_identity",
    "flagged_cells",
    "check_flags",
    "AUDIT_COLUMNS",
    "KINDS",
]

#: Columns of the frame :func:`audit` returns.
AUDIT_COLUMNS = ["unit", "period", "column", "kind", "value", "expected", "note"]
#: Kinds of suspect cells, in the order the audit reports them.
KINDS = ("common_break", "jump", "reversal", "interpolation", "relation", "source")

_MAD_TO_SD = 1.4826
_SCALE_FLOOR = 0.5  # a unit's scale is at least this share of the typical unit's
_MIN_HISTORY = 8  # fewer changes than this: the unit's own scale is the typical one
_MIN_STEPS = 10  # collinearity is tested where the median change spans this many rounding steps

Transform = Literal["auto", "log", "level"]


# --------------------------------------------------------------------------- relations


@dataclass(frozen=True)
class Relation:
    """A quantity implied by several columns, audited cell by cell.

    Parameters
    ----------
    name : str
        Label used in the audit's notes, e.g. ``"deflator(gdp_nominal, gdp_growth)"``.
    columns : tuple of str
        Columns the quantity is computed from.
    implied : callable
        Called with one wide frame (periods x units) per column, in the order of
        ``columns``; returns the implied quantity as a frame of the same shape.
        Use ``.shift(1)`` for the previous period.
    flag : tuple of str, optional
        Columns whose cells are reported when the quantity is suspect (default:
        every column in ``columns``, since the audit cannot tell which is wrong).
    target : float, optional
        For an identity: the value the quantity must take (``tolerance`` absolute).
        Without a target the quantity is compared with the cross-section of its
        period (robust z-score beyond ``relation_z``).
    tolerance : float, optional
        Absolute tolerance of an identity (required with ``target``).

    Examples
    --------
    >>> shares_sum = accounting_identity(["primary", "secondary", "tertiary"], total=100, tolerance=0.5)
    >>> shares_sum.name
    'primary + secondary + tertiary = 100'
    """

    name: str
    columns: tuple[str, ...]
    implied: Callable[..., pd.DataFrame]
    flag: tuple[str, ...] = ()
    target: float | None = None
    tolerance: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "flag", tuple(self.flag) or self.columns)
        if not self.columns:
            raise SynthControlError(f"relation {self.name!r} names no columns")
        stray = [c for c in self.flag if c not in self.columns]
        if stray:
            raise SynthControlError(f"relation {self.name!r}: flag {stray} not among its columns {self.columns}")
        if (self.target is None) != (self.tolerance is None):
            raise SynthControlError(f"relation {self.name!r}: give target and tolerance together")
        if self.tolerance is not None and not self.tolerance >= 0:
            raise SynthControlError(f"relation {self.name!r}: tolerance must be >= 0, got {self.tolerance!r}")


def _deflator_from_growth(nominal: pd.DataFrame, growth: pd.DataFrame, *, per: float) -> pd.DataFrame:
    return nominal / nominal.shift(1) / (1 + growth / per)


def _deflator_from_level(nominal: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    return (nominal / nominal.shift(1)) / (real / real.shift(1))


def implied_deflator(
    nominal: str, real: str, *, real_is: Literal["growth", "level"] = "growth", growth_per: float = 100.0
) -> Relation:
    """The price change implied by a nominal level and real growth (or a real level).

    ``nominal(t) / nominal(t-1) / (1 + growth(t) / growth_per)``, or with a real level
    ``(nominal(t) / nominal(t-1)) / (real(t) / real(t-1))``: one plus the inflation of
    the unit's own prices. Across units of one economy it moves together, so a cell
    far from its period's cross-section means that the nominal level was revised,
    or that the "real" growth is not real.

    Parameters
    ----------
    nominal : str
        Nominal level column (current prices).
    real : str
        Real growth column (``real_is="growth"``, in units of ``growth_per``: 100 for
        per cent) or real level column (``real_is="level"``).

    Examples
    --------
    >>> implied_deflator("gdp_nominal", "gdp_growth").name
    'deflator(gdp_nominal, gdp_growth)'
    """
    if real_is == "growth":
        implied = functools.partial(_deflator_from_growth, per=float(growth_per))
    elif real_is == "level":
        implied = _deflator_from_level
    else:
        raise SynthControlError(f"real_is={real_is!r}: choose 'growth' or 'level'")
    return Relation(f"deflator({nominal}, {real})", (nominal, real), implied)


def _ratio(numerator: pd.DataFrame, denominator: pd.DataFrame) -> pd.DataFrame:
    return numerator / denominator


def ratio(numerator: str, denominator: str) -> Relation:
    """``numerator / denominator``, compared with its period's cross-section.

    For ratios that are similar across units (spending over revenue, a level per
    head); a cell far off flags both columns.

    Examples
    --------
    >>> ratio("fiscal_expenditure", "fiscal_revenue").columns
    ('fiscal_expenditure', 'fiscal_revenue')
    """
    return Relation(f"{numerator} / {denominator}", (numerator, denominator), _ratio)


def _sum_minus(*frames: pd.DataFrame, total: float | None) -> pd.DataFrame:
    if total is None:  # the last frame is the total column
        return sum(frames[:-1]) - frames[-1]
    return sum(frames) - total


def accounting_identity(parts: Sequence[str], *, total: str | float, tolerance: float) -> Relation:
    """Parts that must add up to a total column or constant (shares to 100).

    Examples
    --------
    >>> accounting_identity(["gdp_primary", "gdp_secondary", "gdp_tertiary"], total="gdp", tolerance=1).columns
    ('gdp_primary', 'gdp_secondary', 'gdp_tertiary', 'gdp')
    """
    parts = tuple(parts)
    if isinstance(total, str):
        implied = functools.partial(_sum_minus, total=None)
        return Relation(f"{' + '.join(parts)} = {total}", (*parts, total), implied, target=0.0, tolerance=tolerance)
    implied = functools.partial(_sum_minus, total=float(total))
    return Relation(f"{' + '.join(parts)} = {total:g}", parts, implied, target=0.0, tolerance=tolerance)


# --------------------------------------------------------------------------- robust statistics


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


# --------------------------------------------------------------------------- detectors


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
    """Cells where the implied quantity breaks its identity or leaves the cross-section."""
    q = np.asarray(relation.implied(*(frames[c] for c in relation.columns)), dtype=float)
    if q.shape != frames[relation.columns[0]].shape:
        raise SynthControlError(
            f"relation {relation.name!r} returned shape {q.shape}; it must return one value per period and unit "
            f"{frames[relation.columns[0]].shape}"
        )
    if relation.target is not None:
        centre = np.full(q.shape, float(relation.target))
        with np.errstate(invalid="ignore"):
            mask = np.abs(q - relation.target) > relation.tolerance
        test = f"should be {relation.target:g} within {relation.tolerance:g}"
    else:
        centre = np.broadcast_to(_nanmedian(q, 1)[:, None], q.shape)
        z = _pooled_cross_z(q)
        breaks, _ = _break_periods(z, groups, break_z, break_alpha, min_units)
        with np.errstate(invalid="ignore"):
            mask = (np.abs(z) > relation_z) | breaks
        test = "far from the period's median"

    def describe(t: int, j: int) -> str:
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


# --------------------------------------------------------------------------- public entry points


def audit(
    data: pd.DataFrame,
    *,
    unit: str = "unit",
    time: str = "time",
    columns: Sequence[str] | None = None,
    relations: Sequence[Relation] = (),
    reference: pd.DataFrame | None = None,
    group: str | None = None,
    transform: Transform | Mapping[str, Transform] = "auto",
    jump_z: float = 5.0,
    break_z: float = 2.5,
    break_alpha: float = 1e-4,
    min_break_units: int = 3,
    max_excursion: int = 3,
    interpolation_run: int = 2,
    interpolation_share: float = 0.25,
    interpolation_rtol: float = 1e-3,
    relation_z: float = 5.0,
    source_rtol: float = 0.05,
) -> pd.DataFrame:
    """Suspect cells of a long panel: breaks, jumps, interpolation, contradictions.

    Parameters
    ----------
    data : DataFrame
        Long panel, one row per unit and period.
    unit, time : str
        Unit and period columns.
    columns : sequence of str, optional
        Columns to audit (default: every numeric column except ``unit``, ``time``
        and ``group``). Columns used only by ``relations`` need not be listed.
    relations : sequence of Relation
        Quantities implied by several columns (:func:`implied_deflator`,
        :func:`ratio`, :func:`accounting_identity` or your own :class:`Relation`).
    reference : DataFrame, optional
        A second source: long frame with the same ``unit`` and ``time`` columns
        and some of ``columns``; cells both hold are compared.
    group : str, optional
        Column grouping the units (a province, a region), constant within a unit:
        level breaks are also sought within each group.
    transform : {"auto", "log", "level"} or mapping of column to one of them
        Scale on which changes are measured. "auto" takes logarithms of a strictly
        positive column when its units' typical changes are more alike in logs than
        in levels (amounts, counts, indices), and levels otherwise (rates, shares).
    jump_z : float, default 5.0
        A jump is a change beyond ``jump_z`` robust SDs both of the unit's own
        changes (net of the period's median change) and of the period's changes
        (beyond twice ``jump_z`` of its own where the period has fewer than eight
        units).
    break_z : float, default 3.0
        A unit breaks in a period when its change exceeds ``break_z`` robust SDs of
        its own history (net of the period's median change); for relations, when
        the implied quantity is beyond ``break_z`` typical cross-sectional SDs.
    break_alpha : float, default 1e-4
        A period is a common break when more units (overall, or within a group)
        break in it than chance allows at this level: the binomial tail of the
        count, at the rate at which the column's cells break over all periods
        (at least the normal rate), is below ``break_alpha`` ...
    min_break_units : int, default 3
        ... and at least this many units break.
    max_excursion : int, default 3
        A reversal is a run of at most this many cells that an outlying change
        (jump or break) leaves and an opposite one brings back to the unit's path.
    interpolation_run : int, default 2
        Collinear interior points in a row that make a run (2: four values on one line).
    interpolation_share : float, default 0.25
        A single collinear point is flagged when at least this share of the units
        (and ``min_break_units``) are collinear in the same period.
    interpolation_rtol : float, default 1e-3
        Collinearity tolerance relative to the unit's median absolute change; the
        rounding step of the data (0.01 for two decimals) is always allowed.
    relation_z : float, default 5.0
        An implied quantity is suspect beyond ``relation_z`` typical cross-sectional
        robust SDs from its period's median (identities use their own tolerance).
    source_rtol : float, default 0.05
        Two sources disagree when they differ by more than this share of the larger
        of the reference value and the column's median absolute value.

    Returns
    -------
    DataFrame
        Columns ``unit, period, column, kind, value, expected, note`` (see
        :data:`KINDS`), one row per suspect cell and reason, sorted by column,
        kind, unit and period; empty when nothing is suspect. ``expected`` is
        the value had the unit changed like its period and its own history
        (breaks, jumps), the mean of its neighbours (reversals), the reference
        value (sources), the cross-sectional median or target of the implied
        quantity (relations; ``value`` is then the implied quantity), or NaN
        (interpolation).

    Raises
    ------
    MissingColumnError, DuplicateRowError, NonNumericError, NonFiniteError
        From panel validation, naming the column, unit or period at fault.
    SynthControlError
        An invalid threshold, transform or group.

    Notes
    -----
    On the four classic panels shipped with the package (smoking, basque, texas,
    hongkong; every variable, default thresholds) the audit flags the cells listed
    in ``DATASHEET.md``; it costs milliseconds per column.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import synthcontrol as sc
    >>> rng = np.random.default_rng(0)
    >>> rows = [{"unit": u, "time": t, "y": 100 * 1.05 ** t * np.exp(0.01 * rng.normal())}
    ...         for u in "ABCDEFGH" for t in range(12)]
    >>> df = pd.DataFrame(rows)
    >>> df.loc[(df.unit == "C") & (df.time == 6), "y"] *= 1.5      # a typo in one cell
    >>> found = sc.audit(df, columns=["y"])
    >>> found[["unit", "period", "kind"]].values.tolist()
    [['C', 6, 'reversal']]
    """
    thresholds = dict(jump_z=jump_z, break_z=break_z, break_alpha=break_alpha, relation_z=relation_z,
                      interpolation_share=interpolation_share, interpolation_rtol=interpolation_rtol,
                      source_rtol=source_rtol)
    _check_thresholds(thresholds, min_break_units, interpolation_run, max_excursion)
    columns = _audit_columns(data, unit, time, group, columns)
    relation_columns = [c for r in relations for c in r.columns]
    panel = Panel.from_frame(data, unit=unit, time=time, variables=[*columns, *relation_columns])
    groups = _unit_groups(data, unit, group, panel.units)
    references = _reference_frames(reference, unit, time, columns, panel)
    flags = []
    for name in columns:
        column = _Column(name, panel.values[name].to_numpy(dtype=float), _use_log(panel, name, transform))
        flags += [(name, f) for f in _detect_changes(column, groups, jump_z=jump_z, break_z=break_z,
                                                    break_alpha=break_alpha, min_units=min_break_units,
                                                    max_excursion=max_excursion)]
        flags.append((name, _detect_interpolation(column, panel.periods, min_run=interpolation_run,
                                                  share=interpolation_share, min_units=min_break_units,
                                                  rtol=interpolation_rtol)))
        if name in references:
            flags.append((name, _detect_source(column, references[name], source_rtol)))
    for relation in relations:
        found = _detect_relation(relation, panel.values, groups, relation_z=relation_z, break_z=break_z,
                                 break_alpha=break_alpha, min_units=min_break_units)
        flags += [(name, found) for name in relation.flag]
    return _tidy(flags, panel)


def _check_thresholds(thresholds: Mapping[str, float], *counts: int) -> None:
    for name, value in thresholds.items():
        if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value) and value > 0):
            raise SynthControlError(f"{name}={value!r} must be a positive finite number")
    for name in ("break_alpha", "interpolation_share"):
        if thresholds[name] > 1:
            raise SynthControlError(f"{name}={thresholds[name]!r} is a share of units: give a number in (0, 1]")
    for name, value in zip(("min_break_units", "interpolation_run", "max_excursion"), counts):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise SynthControlError(f"{name}={value!r} must be a positive integer")


def _audit_columns(data: pd.DataFrame, unit: str, time: str, group: str | None, columns) -> list[str]:
    if not isinstance(data, pd.DataFrame):
        raise PanelError(f"data must be a pandas DataFrame in long format, got {type(data).__name__}")
    if isinstance(columns, str):
        columns = [columns]
    if columns is None:
        skip = {unit, time, group}
        columns = [c for c in data.columns if c not in skip and pd.api.types.is_numeric_dtype(data[c])
                   and not pd.api.types.is_bool_dtype(data[c])]
    return list(dict.fromkeys(columns))


def _unit_groups(data: pd.DataFrame, unit: str, group: str | None, units: tuple) -> np.ndarray:
    if group is None:
        return np.full(len(units), None, dtype=object)
    if group not in data.columns:
        raise MissingColumnError(f"group column {group!r} not found in the data; available: {list(data.columns)[:20]}")
    per_unit = data.groupby(unit, sort=False)[group].nunique(dropna=True)
    varying = per_unit[per_unit > 1]
    if len(varying):
        raise PanelError(
            f"group column {group!r} takes {int(varying.iloc[0])} values for unit {varying.index[0]!r}; "
            "a group must be constant within a unit"
        )
    first = data.groupby(unit, sort=False)[group].first()
    return np.array([first.get(u) if pd.notna(first.get(u)) else None for u in units], dtype=object)


def _use_log(panel: Panel, name: str, transform: Transform | Mapping[str, Transform]) -> bool:
    choice = transform.get(name, "auto") if isinstance(transform, Mapping) else transform
    if choice not in ("auto", "log", "level"):
        raise SynthControlError(f"transform for column {name!r} is {choice!r}; choose 'auto', 'log' or 'level'")
    values = panel.values[name].to_numpy(dtype=float)
    positive = bool(np.all(values[np.isfinite(values)] > 0))
    if choice == "log" and not positive:
        raise SynthControlError(f"transform 'log' for column {name!r}, which holds values <= 0; use 'level'")
    return choice == "log" or (choice == "auto" and positive and _changes_alike_in_logs(values))


def _changes_alike_in_logs(values: np.ndarray) -> bool:
    """Whether the units' typical changes are more alike in logs than in levels.

    True for amounts, counts and indices (a big unit moves by more in levels), false
    for rates and shares (units move by similar points whatever their level).
    """
    spreads = []
    for x in (values, np.log(values)):
        scale = _robust(np.diff(x, axis=0), 0)[1]
        scale = np.log(scale[np.isfinite(scale) & (scale > 0)])
        if scale.size < 3:
            return False
        spreads.append(_robust(scale, 0)[1])
    return bool(spreads[1] < spreads[0])


def _reference_frames(reference: pd.DataFrame | None, unit: str, time: str, columns, panel: Panel) -> dict:
    """The second source's columns, aligned on the panel's periods and units."""
    if reference is None:
        return {}
    shared = [c for c in columns if c in reference.columns]
    if not shared:
        raise MissingColumnError(
            f"reference holds none of the audited columns {list(columns)}; name its columns like the data's"
        )
    other = Panel.from_frame(reference, unit=unit, time=time, variables=shared)
    return {
        c: other.values[c].reindex(index=list(panel.periods), columns=list(panel.units)).to_numpy(dtype=float)
        for c in shared
    }


def _tidy(flags: list[tuple[str, _Flags]], panel: Panel) -> pd.DataFrame:
    """One row per flagged cell and reason, sorted by column, kind, unit and period."""
    rows = []
    column_order = {name: i for i, name in enumerate(dict.fromkeys(name for name, _ in flags))}
    for name, found in flags:
        values = panel.values[name].to_numpy(dtype=float) if found.values is None else found.values
        for t, j in zip(*np.nonzero(found.mask)):
            rows.append((column_order[name], KINDS.index(found.kind), j, t, {
                "unit": panel.units[j], "period": panel.periods[t], "column": name, "kind": found.kind,
                "value": float(values[t, j]), "expected": float(found.expected[t, j]), "note": found.note(t, j),
            }))
    rows.sort(key=lambda row: row[:4])
    frame = pd.DataFrame([row[4] for row in rows], columns=AUDIT_COLUMNS)
    return frame.astype({"value": float, "expected": float})


def check_flags(flags: object) -> pd.DataFrame:
    """``flags`` if it is a frame with the ``unit``, ``period``, ``column`` and ``kind``
    columns of :func:`audit`, else a clear error.

    Raises
    ------
    PanelError
        ``flags`` is not a DataFrame.
    MissingColumnError
        A required column is absent.
    """
    if not isinstance(flags, pd.DataFrame):
        raise PanelError(f"audit flags must be a DataFrame from sc.audit, got {type(flags).__name__}")
    missing = [c for c in ("unit", "period", "column", "kind") if c not in flags.columns]
    if missing:
        raise MissingColumnError(f"audit flags lack column(s) {missing}; pass the frame sc.audit returns")
    return flags


def flagged_cells(
    flags: pd.DataFrame, units: Sequence[Hashable], windows: Mapping[str, Sequence[tuple[Hashable, Hashable]]]
) -> pd.DataFrame:
    """The rows of an audit frame on ``units`` whose column and period fall in ``windows``.

    Parameters
    ----------
    flags : DataFrame
        From :func:`audit`, or any frame with ``unit``, ``period``, ``column`` and
        ``kind`` columns (a dataset's shipped flags table).
    units : sequence
        Units of interest.
    windows : mapping of str to sequence of (first, last)
        For each column, the inclusive period ranges that matter.

    Returns
    -------
    DataFrame
        The matching rows, in the order of ``flags``.

    Raises
    ------
    MissingColumnError
        ``flags`` lacks one of the four required columns.

    Examples
    --------
    >>> import pandas as pd
    >>> flags = pd.DataFrame({"unit": ["A", "B"], "period": [2001, 2010], "column": ["y", "y"],
    ...                       "kind": ["jump", "jump"]})
    >>> flagged_cells(flags, ["A", "B"], {"y": [(2000, 2005)]}).unit.tolist()
    ['A']
    """
    check_flags(flags)
    keep = np.zeros(len(flags), dtype=bool)
    on_units = flags["unit"].isin(list(units)).to_numpy()
    for column, ranges in windows.items():
        rows = on_units & (flags["column"] == column).to_numpy()
        if not rows.any():
            continue
        periods = flags["period"].to_numpy()
        for first, last in ranges:
            keep |= rows & np.array([_within(p, first, last) for p in periods])
    return flags[keep]


def _within(period: Hashable, first: Hashable, last: Hashable) -> bool:
    try:
        return bool(first <= period <= last)
    except TypeError:  # a flag of another period type cannot fall in the window
        return False
