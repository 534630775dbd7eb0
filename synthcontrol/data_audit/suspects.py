"""The audit itself: :func:`audit` checks its arguments, runs every detector on every
column and relation, and returns the suspect cells as one tidy frame."""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import MissingColumnError, PanelError, SynthControlError
from ..panel import Panel
from .detectors import _detect_changes, _detect_interpolation, _detect_relation, _detect_source
from .flags import AUDIT_COLUMNS, KINDS
from .relations import Relation
from .scores import _Column, _Flags, _robust

__all__ = ["audit", "Transform"]

Transform = Literal["auto", "log", "level"]


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
