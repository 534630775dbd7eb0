"""The audit's tidy flags frame: its columns and kinds, the check of a frame given by
a user (or a dataset's flags table), and the look-up of the cells a fit relies on."""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import MissingColumnError, PanelError

__all__ = ["AUDIT_COLUMNS", "KINDS", "check_flags", "flagged_cells"]

#: Columns of the frame :func:`~synthcontrol.audit` returns.
AUDIT_COLUMNS = ["unit", "period", "column", "kind", "value", "expected", "note"]
#: Kinds of suspect cells, in the order the audit reports them.
KINDS = ("common_break", "jump", "reversal", "interpolation", "relation", "source")


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
        candidates = np.flatnonzero(rows)
        periods = flags["period"].to_numpy()[candidates]
        for first, last in ranges:
            keep[candidates[[_within(p, first, last) for p in periods]]] = True
    return flags[keep]


def _within(period: Hashable, first: Hashable, last: Hashable) -> bool:
    try:
        return bool(first <= period <= last)
    except TypeError:  # a flag of another period type cannot fall in the window
        return False
