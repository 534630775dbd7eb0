"""Warnings when a fit relies on data the audit flagged.

A donor with weight, a placebo that outranks the treated unit, or the treated unit
before treatment may rest on a cell :func:`synthcontrol.audit` flags (a break, a
jump, an interpolated run). :func:`warn_flagged` names them with an
:class:`~synthcontrol.errors.AuditWarning`; :func:`synthcontrol.fit` and
:func:`synthcontrol.placebo_test` call it when given ``audit=``.
"""

from __future__ import annotations

import warnings
from typing import Hashable, Mapping

import numpy as np
import pandas as pd

from .data_audit import audit as run_audit
from .data_audit import check_flags, flagged_cells
from .errors import AuditWarning, warn
from .spec import Design, Spec

__all__ = ["FLAGGED_WEIGHT", "audit_flags", "audit_windows", "warn_flagged"]

#: Donors with at least this weight are checked against audit flags (a smaller weight
#: cannot move the synthetic control by much).
FLAGGED_WEIGHT = 1e-3


def audit_flags(audit: pd.DataFrame | bool | None, data: pd.DataFrame, spec: Spec) -> pd.DataFrame | None:
    """The flags ``sc.fit(..., audit=)`` checks: None, the audit of the columns ``spec``
    uses (``audit=True``), or the given frame, checked."""
    if audit is None or audit is False:
        return None
    if audit is True:
        return run_audit(data, unit=spec.unit, time=spec.time, columns=spec.variables)
    return check_flags(audit)


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
        cells = ", ".join(rows[:limit])
        more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
        number = f" ({label} {numbers[unit]:.3g})" if unit in numbers else ""
        texts.append(f"{unit!r}{number}: {cells}{more}")
    more_units = f"; and {len(order) - limit} more unit(s)" if len(order) > limit else ""
    return "; ".join(texts) + more_units
