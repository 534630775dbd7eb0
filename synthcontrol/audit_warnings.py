"""Warnings when a fit relies on data the audit flagged.

A donor with weight, a placebo that outranks the treated unit, or the treated unit
before treatment may rest on a cell :func:`synthcontrol.audit` flags (a break, a
jump, an interpolated run). :func:`warn_flagged` names them with an
:class:`~synthcontrol.errors.AuditWarning`; :func:`synthcontrol.fit` and
:func:`synthcontrol.placebo_test` call it when given ``audit=``.
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._validation import listing
from .data_audit import audit as run_audit
from .data_audit import check_flags, flagged_cells
from .errors import AuditWarning, warn
from .panel import Panel
from .periods import coerce_period
from .spec import Design, Spec

__all__ = ["FLAGGED_WEIGHT", "audit_flags", "audit_windows", "flags_for_periods", "warn_flagged"]

#: Donors with at least this weight are checked against audit flags (a smaller weight
#: cannot move the synthetic control by much).
FLAGGED_WEIGHT = 1e-3


def audit_flags(
    audit: pd.DataFrame | bool | None, data: pd.DataFrame | Panel, spec: Spec, panel: Panel
) -> pd.DataFrame | None:
    """The flags ``sc.fit(..., audit=)`` checks: None, the audit of the columns ``spec``
    uses (``audit=True``), or the given frame, checked against ``data`` (validated as
    ``panel``): its periods converted to the type of the data's period column
    (:func:`flags_for_periods`), and an :class:`~synthcontrol.errors.AuditWarning` for
    flags whose unit, column or period is not in the data (they can match nothing)."""
    if audit is None or audit is False or audit is np.False_:
        return None
    if audit is True or audit is np.True_:
        return run_audit(data, unit=spec.unit, time=spec.time, columns=spec.variables)
    flags = check_flags(audit)
    columns = list(panel.values) if isinstance(data, Panel) else [*data.columns, *data.index.names]
    flags = flags_for_periods(flags, panel.periods, spec.time)
    _warn_unmatched(flags, {"unit": panel.units, "column": columns, "period": panel.periods})
    return flags


def flags_for_periods(flags: pd.DataFrame, periods: Sequence[Hashable], time: str) -> pd.DataFrame:
    """``flags`` (checked) with each ``period`` converted exactly to the type of
    ``periods``, the sorted periods of the data's column ``time`` ('2005' or 2005.0
    for a column of years), as :func:`~synthcontrol.periods.coerce_period` converts
    a period argument; a period that does not convert raises
    :class:`~synthcontrol.errors.TypeMismatchError`.

    Examples
    --------
    >>> import pandas as pd
    >>> flags = pd.DataFrame({"unit": ["A"], "period": ["2005"], "column": ["y"], "kind": ["jump"]})
    >>> flags_for_periods(flags, (2000, 2010), "time").period.tolist()
    [2005]
    """
    flags = check_flags(flags)
    argument = "a period in the audit flags' 'period' column"
    converted = {p: coerce_period(p, periods, argument=argument, column=time) for p in pd.unique(flags["period"])}
    return flags.assign(period=[converted[p] for p in flags["period"]])


def _warn_unmatched(flags: pd.DataFrame, known: Mapping[str, Sequence[Hashable]]) -> None:
    """Warn about flags that name a unit, column or period the data do not hold."""
    unmatched = np.zeros(len(flags), dtype=bool)
    parts = []
    for field, values in known.items():
        stray = ~flags[field].isin(list(values)).to_numpy()
        if stray.any():
            names = pd.Series(pd.unique(flags[field][stray])).tolist()
            parts.append(f"{field}(s) not in the data: {listing(names, 5)}")
            unmatched |= stray
    if parts:
        warn(f"{int(unmatched.sum())} of {len(flags)} audit flag(s) match no cell of the data and are ignored "
             f"({'; '.join(parts)}); pass the flags of this data (sc.audit on it) or correct their unit, column "
             "and period", AuditWarning)


def audit_windows(design: Design, *, post: bool = True) -> dict[str, list[tuple]]:
    """Column -> the inclusive period ranges a fit of ``design`` relies on: the
    outcome over the fit window (and the post-period if ``post``), each predictor
    variable over its window (the default outcome lags lie in the fit window)."""
    periods = np.array(design.periods, dtype=object)
    fit, after = periods[design.fit_mask], periods[design.post_mask]
    windows: dict[str, list[tuple]] = {design.spec.outcome: [(fit[0], fit[-1])]}
    if post:
        windows[design.spec.outcome].append((after[0], after[-1]))
    for predictor in design.spec.predictors:
        windows.setdefault(predictor.variable, []).append((predictor.start, predictor.end))
    return windows


def warn_flagged(
    flags: pd.DataFrame,
    design: Design,
    units: Mapping[Hashable, float],
    *,
    what: str = "donor(s) with weight in the synthetic control",
    label: str = "weight",
    check_treated: bool = True,
) -> pd.DataFrame:
    """Warn (:class:`~synthcontrol.errors.AuditWarning`) when one of ``units`` (unit ->
    its weight, or another number shown as ``label``), or the treated unit before
    treatment, has a flagged cell where ``design`` relies on it; return those flags.

    Examples
    --------
    >>> import warnings
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
    >>> df = sc.datasets.load_smoking()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     res = sc.fit(df, spec, audit=True)
    >>> "'Utah'" in str(caught[0].message)      # Utah's 1998 drop in cigarette sales
    True
    """
    found = flagged_cells(flags, list(units), audit_windows(design))
    treated = flagged_cells(flags, [design.treated], audit_windows(design, post=False)) if check_treated else found[:0]
    parts = []
    if len(found):
        parts.append(f"{found.unit.nunique()} {what} of {design.treated!r} have flagged data where the fit relies "
                     f"on it: {_describe(found, units, label)}")
    if len(treated):
        parts.append(f"the treated unit {design.treated!r} has flagged pre-treatment data: "
                     f"{_describe(treated, {}, label)}")
    if parts:
        warn("; ".join(parts) + ". Inspect them (sc.audit), repair the data or exclude those units.", AuditWarning)
    return pd.concat([treated, found])


def _describe(flags: pd.DataFrame, numbers: Mapping[Hashable, float], label: str, limit: int = 5) -> str:
    """'unit (weight 0.41): column period kind, ...', largest numbers first."""
    cells_of: dict[Hashable, list[str]] = {}
    for unit, column, period, kind in zip(flags.unit, flags.column, flags.period, flags.kind):
        cells_of.setdefault(unit, []).append(f"{column} {period} {kind}")
    order = sorted(cells_of, key=lambda u: -numbers.get(u, 0.0))
    texts = []
    for unit in order[:limit]:
        rows = cells_of[unit]
        number = f" ({label} {numbers[unit]:.3g})" if unit in numbers else ""
        texts.append(f"{unit!r}{number}: {listing(rows, limit, str)}")
    more_units = f"; and {len(order) - limit} more unit(s)" if len(order) > limit else ""
    return "; ".join(texts) + more_units
