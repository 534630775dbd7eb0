"""Period types: reading a period column as ordered values, and converting period
arguments to the column's type.

A period column holds numbers (years: ``int``), date-times (:class:`pandas.Timestamp`)
or pandas periods of one frequency (:class:`pandas.Period`). Text is parsed once, at
the boundary, so that periods are never compared as text (``'2020-10'`` would sort
before ``'2020-7'``):

* text holding whole numbers (``'2008'``) becomes integers;
* other text is parsed as pandas periods (``'2020-7'``, ``'2020Q3'``, ``'2020-07-15'``),
  which must share one frequency;
* anything else is refused with :class:`~synthcontrol.errors.PeriodColumnError`.

A period given as an argument (``treatment_start``, ``fit_window``, a predictor's
window, a fake start) is converted to the column's type when the conversion is exact
(``'2008'`` or ``2008.0`` for an integer column, a date at the first instant of a
month for a monthly column); otherwise
:class:`~synthcontrol.errors.TypeMismatchError` says which type the column holds.

Examples
--------
>>> import pandas as pd
>>> parse_period_column(pd.Series(["2020-7", "2020-10"]), "time").tolist()
[Period('2020-07', 'M'), Period('2020-10', 'M')]
>>> periods = (pd.Period("2020-07", "M"), pd.Period("2020-10", "M"))
>>> coerce_period("2020-08", periods, argument="treatment_start", column="time")
Period('2020-08', 'M')
>>> coerce_period(2008.0, (2000, 2010), argument="treatment_start", column="time")
2008
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from ._validation import describe, is_integer
from .errors import PeriodColumnError, TypeMismatchError

__all__ = ["parse_period_column", "sorted_periods", "coerce_period", "kind_of"]

_WHOLE_NUMBER = re.compile(r"^\s*[+-]?\d+\s*$")


def parse_period_column(column: pd.Series, name: str) -> pd.Series:
    """``column`` with ordered values: numbers, date-times and pandas periods as they
    are, text and Python dates parsed (see the module notes)."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise PeriodColumnError(
            f"column '{name}' holds True/False values, not periods; use years, dates or pandas periods"
        )
    if (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    ):
        return column
    values = column.astype(object) if isinstance(dtype, pd.CategoricalDtype) else column
    unique = pd.unique(values.to_numpy(dtype=object))
    kinds = {_value_kind(v) for v in unique}
    if len(kinds) > 1:
        examples = {kind: next(v for v in unique if _value_kind(v) == kind) for kind in sorted(kinds)}
        shown = ", ".join(f"{kind} ({value!r})" for kind, value in examples.items())
        raise PeriodColumnError(
            f"column '{name}' mixes kinds of periods: {shown}; give every row the same kind "
            "(years as integers, dates, or pandas periods)"
        )
    mapping = _parse_unique(unique, kinds.pop() if kinds else "integer", name)
    return values.map(mapping)


def _value_kind(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if is_integer(value) or (isinstance(value, str) and _WHOLE_NUMBER.match(value)):
        return "integer"
    if isinstance(value, (float, np.floating)):
        return "number"
    if isinstance(value, pd.Period):
        return "period"
    if isinstance(value, (_dt.date, np.datetime64)):  # datetime, Timestamp and date
        return "date"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def _parse_unique(unique: np.ndarray, kind: str, name: str) -> dict:
    """Parsed value of each distinct value of a column of one kind."""
    if kind == "integer":
        return {v: int(v) for v in unique}
    if kind == "number":
        return {v: float(v) for v in unique}
    if kind == "date":
        return {v: pd.Timestamp(v) for v in unique}
    if kind == "period":
        parsed = {v: v for v in unique}
    elif kind == "text":
        parsed = {v: _parse_text(v, name) for v in unique}
    else:
        raise PeriodColumnError(
            f"column '{name}' holds {kind} values ({unique[0]!r}), not periods; use years, "
            "dates or pandas periods"
        )
    frequencies = {p.freqstr: p for p in parsed.values()}
    if len(frequencies) > 1:
        shown = " and ".join(describe(p) for p in list(frequencies.values())[:2])
        raise PeriodColumnError(
            f"column '{name}' mixes period frequencies: {shown}; write every period in one format"
        )
    return parsed


def _parse_text(text: str, name: str) -> pd.Period:
    try:
        return pd.Period(text.strip())
    except (ValueError, TypeError):
        raise PeriodColumnError(
            f"column '{name}' holds the text {text!r}, which is not a date or period; periods "
            "must be years (2008), dates ('2020-07-15') or pandas periods ('2020-07', '2020Q3'): "
            "convert the column, e.g. with pd.to_datetime"
        ) from None


def sorted_periods(column: pd.Series, name: str) -> tuple:
    """The distinct values of a parsed period column, sorted, as plain Python scalars,
    :class:`pandas.Timestamp` or :class:`pandas.Period` objects."""
    index = pd.Index(pd.unique(column))
    try:
        return tuple(index.sort_values().tolist())
    except TypeError:  # object columns of values that cannot be ordered
        raise PeriodColumnError(
            f"column '{name}' holds values that cannot be ordered ({index[0]!r}, ...); use "
            "years, dates or pandas periods"
        ) from None


def kind_of(periods: Sequence[Hashable]) -> str:
    """What a sorted tuple of periods holds, in words: "integers", "monthly periods", ..."""
    first = periods[0]
    if isinstance(first, pd.Period):
        return describe(first).split(" period ")[0].removeprefix("the ") + " periods"
    if isinstance(first, (pd.Timestamp, _dt.date)):
        zone = pd.Timestamp(first).tzinfo
        return "dates" + (f" in time zone {zone}" if zone is not None else " without time zone")
    if is_integer(first):
        return "integers"
    return "numbers"


def coerce_period(value: object, periods: Sequence[Hashable], *, argument: str, column: str) -> Hashable:
    """``value`` converted exactly to the type of ``periods`` (the sorted periods of
    ``column``), or :class:`~synthcontrol.errors.TypeMismatchError`."""
    first = periods[0]
    if isinstance(first, pd.Period):
        converted = _to_period(value, first)
    elif isinstance(first, (pd.Timestamp, _dt.date)):
        converted = _to_timestamp(value, first)
    else:
        converted = _to_number(value, integers=all(is_integer(p) for p in (first, periods[-1])))
    if converted is None:
        raise TypeMismatchError(
            f"column '{column}' holds {kind_of(periods)} ({_shown(periods[0])} to {_shown(periods[-1])}); "
            f"{argument} was given as {describe(value)}, which does not convert exactly to one of "
            f"them: give a value like {_shown(periods[0])}"
        )
    return converted


def _shown(period: Hashable) -> str:
    if isinstance(period, pd.Timestamp) and period == period.normalize():
        return str(period.date())
    return str(period)


def _to_number(value: object, integers: bool) -> int | float | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE_NUMBER.match(text):
            return int(text)
        try:
            value = float(text)
        except ValueError:
            return None
    if is_integer(value):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        if integers:
            return int(value) if float(value).is_integer() else None
        return float(value)
    return None


def _to_timestamp(value: object, first: pd.Timestamp) -> pd.Timestamp | None:
    if isinstance(value, pd.Period) or isinstance(value, (bool, np.bool_)) or is_integer(value):
        return None
    stamp = _as_timestamp(value)
    if stamp is None or (stamp.tzinfo is None) != (pd.Timestamp(first).tzinfo is None):
        return None
    return stamp


def _as_timestamp(value: object) -> pd.Timestamp | None:
    """``value`` as a Timestamp when it is a text, a date or a numpy date that parses."""
    if not isinstance(value, (str, _dt.date, np.datetime64)):
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        return None


def _to_period(value: object, first: pd.Period) -> pd.Period | None:
    if isinstance(value, pd.Period):
        return value if value.freqstr == first.freqstr else None
    if is_integer(value) and first.freqstr.startswith(("Y", "A")):
        return pd.Period(year=int(value), freq=first.freq)
    if isinstance(value, str):
        try:
            parsed = pd.Period(value.strip())
        except (ValueError, TypeError):
            return None
        if parsed.freqstr == first.freqstr:
            return parsed
        if parsed.freqstr.startswith(("Y", "A", "Q", "M", "W")):
            return None  # a year is not a month, whichever month it starts with
    stamp = _as_timestamp(value)
    if stamp is None:
        return None
    period = pd.Period(stamp, freq=first.freq)
    # A date converts only when it is where the period begins (2020-07-01 for July).
    return period if period.start_time == stamp else None
