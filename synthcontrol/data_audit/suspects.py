"""The audit itself: :func:`audit` checks its arguments, runs every detector on every
column and relation, and returns the suspect cells as one tidy frame."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from .._validation import check_choice, check_int, check_label, check_number, describe, listing
from ..errors import ArgumentError, AuditWarning, MissingColumnError, MissingDataError, PanelError, warn
from ..panel import Panel
from .detectors import _detect_changes, _detect_interpolation, _detect_relation, _detect_source
from .flags import AUDIT_COLUMNS, KINDS
from .relations import Relation
from .scores import _MIN_HISTORY, _changes, _Column, _Flags, _robust

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
        and ``group``; text columns are skipped). Columns used only by
        ``relations`` need not be listed; ``unit``, ``time`` and ``group`` cannot be.
    relations : Relation or sequence of Relation
        Quantities implied by several columns (:func:`implied_deflator`,
        :func:`ratio`, :func:`accounting_identity` or your own :class:`Relation`).
    reference : DataFrame, optional
        A second source: long frame with the same ``unit`` and ``time`` columns
        and some of ``columns``; cells both hold are compared (each shared column
        must share at least one cell with the data).
    group : str, optional
        Column grouping the units (a province, a region), constant within a unit:
        level breaks are also sought within each group.
    transform : {"auto", "log", "level"} or mapping of column to one of them
        Scale on which changes are measured (a mapping names audited columns only;
        the columns it leaves out get "auto"). "auto" takes logarithms of a strictly
        positive column when its units' typical changes are more alike in logs than
        in levels (amounts, counts, indices), and levels otherwise (rates, shares).
    jump_z : float, default 5.0
        A jump is a change beyond ``jump_z`` robust SDs both of the unit's own
        changes (net of the period's median change) and of the period's changes
        (beyond twice ``jump_z`` of its own where the period has fewer than eight
        units).
    break_z : float, default 2.5
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
    ArgumentError
        An argument of the wrong type or value: a threshold, ``columns`` (or one
        naming the unit, time or group column), ``relations``, ``reference``,
        ``transform`` (or a key that is not an audited column), ``group``; or
        nothing to audit (no column and no relation).
    MissingColumnError, DuplicateRowError, NonNumericError, NonFiniteError
        From panel validation, naming the column, unit or period at fault.
    PanelError
        The data hold a single period; ``group`` varies within a unit; a
        reference column shares no cell with the data.
    MissingDataError
        An audited column (or one a relation uses) has no value at all.

    Warns
    -----
    AuditWarning
        For a column where no unit has eight changes between consecutive periods
        (a panel of fewer than nine periods, or a very gappy column), or only one
        unit has any: jumps, common breaks and reversals cannot be judged there, so an empty result
        for them means "not checked", not "clean".

    Notes
    -----
    On the four classic panels shipped with the package (smoking, basque, texas,
    hongkong; every variable, default thresholds) the audit flags the cells listed
    in ``DATASHEET.md``; it costs milliseconds per column.

    Small panels: two periods are the least the audit accepts (one change per
    unit); jumps, breaks and reversals need nine (see Warns) and two units (with
    two, a jump of one shows in both, as the audit cannot tell which moved; below
    eight units a jump must pass twice ``jump_z`` against the unit's history);
    interpolation needs three periods; common breaks need ``min_break_units`` units.

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
    relations = _checked_relations(relations)
    for key, name in ((unit, "unit"), (time, "time")):
        check_label(key, name)
    _check_group(group, unit, time)
    _check_thresholds(
        dict(jump_z=jump_z, break_z=break_z, break_alpha=break_alpha, relation_z=relation_z,
             interpolation_share=interpolation_share, interpolation_rtol=interpolation_rtol,
             source_rtol=source_rtol),
        dict(min_break_units=min_break_units, interpolation_run=interpolation_run, max_excursion=max_excursion),
    )
    columns = _audit_columns(data, unit, time, group, columns, relations)
    transforms = _checked_transforms(transform, columns)
    if reference is not None and not isinstance(reference, pd.DataFrame):
        raise ArgumentError(f"reference must be None or a long DataFrame with columns {unit!r}, {time!r} and some "
                            f"of the audited columns, got {describe(reference)}")
    relation_columns = [c for r in relations for c in r.columns]
    panel = Panel.from_frame(data, unit=unit, time=time, variables=[*columns, *relation_columns])
    _check_coverage(panel, columns, relations)
    groups = _unit_groups(data, unit, group, panel.units)
    references = _reference_frames(reference, unit, time, columns, panel)
    flags = []
    for name in columns:
        column = _Column(name, panel.values[name].to_numpy(dtype=float), _use_log(panel, name, transforms[name]))
        _warn_short_history(column, len(panel.periods))
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


def _check_thresholds(thresholds: Mapping[str, object], counts: Mapping[str, object]) -> None:
    shares = ("break_alpha", "interpolation_share")
    for name, value in thresholds.items():
        high = 1.0 if name in shares else math.inf
        check_number(value, name, low=0.0, high=high, low_open=True, high_open=name not in shares)
    for name, value in counts.items():
        check_int(value, name, minimum=1)


def _check_group(group: object, unit: str, time: str) -> None:
    if group is None:
        return
    check_label(group, "group")
    if group in (unit, time):
        role = "unit" if group == unit else "time"
        raise ArgumentError(f"group={group!r} is the {role} column; give the column that groups the units "
                            "(a province, a region), or None")


def _checked_relations(relations: object) -> list[Relation]:
    """``relations`` as a list (a single Relation accepted), each checked."""
    if isinstance(relations, Relation):
        return [relations]
    if isinstance(relations, (str, bytes, Mapping)) or not isinstance(relations, Iterable):
        raise ArgumentError(f"relations must be a list of Relation objects, got {describe(relations)}")
    relations = list(relations)
    for i, relation in enumerate(relations):
        if not isinstance(relation, Relation):
            raise ArgumentError(
                f"relations[{i}] is {describe(relation)}, not a Relation; build one with sc.implied_deflator, "
                "sc.ratio, sc.accounting_identity or sc.Relation"
            )
    return relations


def _audit_columns(data: pd.DataFrame, unit: str, time: str, group: str | None, columns: object,
                   relations: Sequence[Relation]) -> list[str]:
    """The columns to audit: those named (each once), or every numeric column but the keys."""
    if not isinstance(data, pd.DataFrame):
        raise PanelError(f"data must be a pandas DataFrame in long format, got {type(data).__name__}")
    keys = {unit: "unit", time: "time", **({group: "group"} if group is not None else {})}
    if columns is None:
        names = [c for c in data.columns if c not in keys and pd.api.types.is_numeric_dtype(data[c])
                 and not pd.api.types.is_bool_dtype(data[c])]
        if not names and not relations:
            raise ArgumentError(f"data have no numeric column besides {list(keys)} to audit; name the columns "
                                "to audit with columns=[...] (convert text columns with pd.to_numeric)")
        return names
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, Mapping) or not isinstance(columns, Iterable):
        raise ArgumentError(f"columns must be a column name or a list of column names, got {describe(columns)}")
    names = list(dict.fromkeys(check_label(c, "each of columns") for c in columns))
    for name in names:
        if name in keys:
            raise ArgumentError(f"columns names {name!r}, the {keys[name]} column; list only the variables to audit")
    if not names and not relations:
        raise ArgumentError("columns=[] and no relations: nothing to audit; name the columns to audit "
                            "(or leave columns=None for every numeric column)")
    return names


def _checked_transforms(transform: object, columns: Sequence[str]) -> dict[str, str]:
    """Column -> its transform choice ("auto" for columns a mapping leaves out)."""
    choices = ("auto", "log", "level")
    if not isinstance(transform, Mapping):
        check_choice(transform, "transform", choices)
        return {name: transform for name in columns}
    for key, choice in transform.items():
        if key not in columns:
            raise ArgumentError(f"transform names column {key!r}, which is not audited; its keys must be among "
                                f"the audited columns {list(columns)} (add {key!r} to columns or drop the key)")
        check_choice(choice, f"transform[{key!r}]", choices)
    return {name: transform.get(name, "auto") for name in columns}


def _check_coverage(panel: Panel, columns: Sequence[str], relations: Sequence[Relation]) -> None:
    """At least two periods, and values in every audited column (nothing silently unchecked)."""
    if len(panel.periods) < 2:
        raise PanelError(
            f"the data hold a single period ({panel.periods[0]!r}); the audit compares consecutive periods, so "
            f"give at least two (jumps, breaks and reversals need {_MIN_HISTORY + 1})"
        )
    users = {name: "audited" for name in columns}
    for relation in relations:
        for name in relation.columns:
            users.setdefault(name, f"used by relation {relation.name!r}")
    for name, use in users.items():
        if not np.isfinite(panel.values[name].to_numpy(dtype=float)).any():
            raise MissingDataError(
                f"column {name!r} ({use}) has no values: all its {panel.values[name].size} cells are missing; "
                "drop it from columns (or the relation) or fill it"
            )


def _warn_short_history(column: _Column, n_periods: int) -> None:
    """Warn when jumps, breaks and reversals cannot be judged: no unit has the history
    they are judged against, or a single unit has changes (they are measured net of
    the period's median change, which is then its own)."""
    counts = np.isfinite(_changes(column)).sum(axis=0)
    if (counts > 0).sum() < 2:
        reason = "a single unit has changes between consecutive periods, and changes are judged net of the " \
                 "period's median change across units (its own)"
    elif (counts < _MIN_HISTORY).all():
        reason = (f"no unit has {_MIN_HISTORY} changes between consecutive periods with values (the data hold "
                  f"{n_periods} periods; the longest history has {int(counts.max())} change(s))")
    else:
        return
    warn(f"column {column.name!r}: {reason}, so jumps, common breaks and reversals cannot be judged there; only "
         "interpolation (and relations and the reference, where given) was checked. Audit a longer panel, or "
         "more units, to find them.", AuditWarning)


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


def _use_log(panel: Panel, name: str, choice: str) -> bool:
    values = panel.values[name].to_numpy(dtype=float)
    positive = bool(np.all(values[np.isfinite(values)] > 0))
    if choice == "log" and not positive:
        raise ArgumentError(f"transform 'log' for column {name!r}, which holds values <= 0; use 'level'")
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
    try:
        other = Panel.from_frame(reference, unit=unit, time=time, variables=shared)
    except PanelError as error:
        raise type(error)(f"reference: {error}") from None
    aligned = {
        c: other.values[c].reindex(index=list(panel.periods), columns=list(panel.units)).to_numpy(dtype=float)
        for c in shared
    }
    for c in shared:
        if not (np.isfinite(aligned[c]) & np.isfinite(panel.values[c].to_numpy(dtype=float))).any():
            raise PanelError(
                f"reference column {c!r} shares no cell with the data: no unit and period hold a value in both "
                f"(data: units {listing(panel.units, 3)}, periods {panel.periods[0]!r} to {panel.periods[-1]!r}; "
                f"reference: units {listing(other.units, 3)}, periods {other.periods[0]!r} to "
                f"{other.periods[-1]!r}); name the reference's units and periods like the data's"
            )
    return aligned



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
