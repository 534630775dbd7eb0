"""Validation of a long (unit, period, variables) frame into a panel, once, at the boundary.

After :meth:`Panel.from_frame` every later step can trust the data: columns exist,
unit-period pairs are unique, variables are finite numbers (missing allowed, and
checked where a specification needs a value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from ._validation import check_label, describe
from .errors import (
    ArgumentError, DuplicateRowError, MissingColumnError, NonFiniteError, NonNumericError, NotFoundError, PanelError,
)
from .periods import parse_period_column, sorted_periods

__all__ = ["Panel"]


@dataclass(frozen=True)
class Panel:
    """A validated balanced-index panel: one wide (period x unit) frame per variable.

    Attributes
    ----------
    unit, time : str
        Names of the unit and period columns in the user's frame (or of its index
        levels: a frame indexed by unit and period is read as if reset).
    units : tuple
        Units, sorted, so that the order of the rows never matters.
    periods : tuple
        Sorted periods: numbers, :class:`pandas.Timestamp` or :class:`pandas.Period`
        (text periods are parsed, see :mod:`synthcontrol.periods`).
    values : dict of str to DataFrame
        For each variable, a period x unit frame (NaN where the input had no value).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"unit": ["a", "a", "b", "b"], "time": [1, 2, 1, 2],
    ...                    "y": [1.0, 2.0, 3.0, 4.0]})
    >>> panel = Panel.from_frame(df, unit="unit", time="time", variables=["y"])
    >>> panel.units, panel.periods
    (('a', 'b'), (1, 2))
    """

    unit: str
    time: str
    units: tuple
    periods: tuple
    values: dict

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, unit: str, time: str, variables: Iterable[str]
    ) -> "Panel":
        """Validate ``frame`` and pivot the named variables to period x unit frames.

        Raises
        ------
        MissingColumnError
            A named column is absent.
        PanelError
            The frame is empty or names a column twice.
        PeriodColumnError
            The period column holds values that are not ordered periods.
        DuplicateRowError
            A unit appears twice in one period.
        NonNumericError, NonFiniteError
            A variable holds text, infinite values or magnitudes beyond 1e150 (or
            none above 1e-150); unit identifiers are containers (tuples, lists).
        """
        if not isinstance(frame, pd.DataFrame):
            raise NonNumericError(
                f"data must be a pandas DataFrame in long format, got {type(frame).__name__}"
            )
        for key, name in ((unit, "unit"), (time, "time")):
            check_label(key, name)
        variables = _column_names(variables)
        frame = _keys_as_columns(frame, unit, time)
        _require_columns(frame, [unit, time, *variables])
        _reject_missing_keys(frame, unit, time)
        frame = _with_parsed_periods(frame, time)
        _reject_duplicates(frame, unit, time)
        numeric = {name: _numeric_column(frame, name, unit, time) for name in variables}
        units = _sorted_units(frame[unit], unit)
        periods = sorted_periods(frame[time], time)
        values = _pivot(frame, unit, time, units, periods, numeric)
        return cls(unit=unit, time=time, units=units, periods=periods, values=values)

    def matrix(self, variable: str, periods: Sequence[Hashable], units: Sequence[Hashable]) -> np.ndarray:
        """Values of ``variable`` as a (len(periods), len(units)) array."""
        if variable not in self.values:
            raise MissingColumnError(f"the panel holds no variable {variable!r}; it holds {sorted(self.values)}")
        frame = self.values[variable]
        try:
            return frame.loc[list(periods), list(units)].to_numpy(dtype=float)
        except KeyError:  # named only on failure: every fit builds its design through here
            for name, wanted, held in (("period", periods, frame.index), ("unit", units, frame.columns)):
                absent = [key for key in wanted if key not in held]
                if absent:
                    raise NotFoundError(f"the panel holds no {name} {absent[:5]} (of {len(absent)} asked for)") from None
            raise


def _column_names(variables: object) -> list:
    """The variable names, each once, or an ArgumentError (text would be read letter by letter)."""
    if isinstance(variables, (str, bytes)) or not isinstance(variables, Iterable):
        raise ArgumentError(f"variables must be a list of column names, got {describe(variables)}")
    names = list(variables)
    for name in names:
        check_label(name, "each of variables")
    return list(dict.fromkeys(names))


def _keys_as_columns(frame: pd.DataFrame, unit: str, time: str) -> pd.DataFrame:
    """``frame`` with the unit and period index levels moved to columns, when the keys
    are index levels rather than columns (``df.set_index([unit, time])``)."""
    in_index = [key for key in (unit, time) if key not in frame.columns and key in frame.index.names]
    return frame.reset_index(level=in_index) if in_index else frame


def _pivot(
    frame: pd.DataFrame, unit: str, time: str, units: tuple, periods: tuple, numeric: dict[str, np.ndarray]
) -> dict[str, pd.DataFrame]:
    """Period x unit frames of every variable from one factorisation of the keys: each
    row's (period, unit) position is found once and shared by all variables."""
    rows = pd.Index(periods, name=time).get_indexer(frame[time])
    cols = pd.Index(units, name=unit).get_indexer(frame[unit])
    index, columns = pd.Index(periods, name=time), pd.Index(units, name=unit)
    values = {}
    for name, column in numeric.items():
        matrix = np.full((len(periods), len(units)), np.nan)
        matrix[rows, cols] = column
        values[name] = pd.DataFrame(matrix, index=index, columns=columns)
    return values


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    if frame.empty:
        raise PanelError(f"data has no rows (shape {frame.shape}); give the long panel, one row per unit and period")
    if columns[0] == columns[1]:
        raise PanelError(f"unit and time both name column {columns[0]!r}; they must be two different columns")
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns[:20]))
        raise MissingColumnError(
            f"column(s) {missing} not found in the data; available columns: {available}. "
            "Fix the names in the specification or rename the columns."
        )
    repeated = [c for c in dict.fromkeys(columns) if int((frame.columns == c).sum()) > 1]
    if repeated:
        raise PanelError(
            f"column(s) {repeated} appear more than once in the data; rename or drop the copies, "
            "e.g. with df.loc[:, ~df.columns.duplicated()]"
        )


def _with_parsed_periods(frame: pd.DataFrame, time: str) -> pd.DataFrame:
    """``frame`` with its period column parsed to ordered values (text periods would
    otherwise compare as text: '2020-10' < '2020-7')."""
    parsed = parse_period_column(frame[time], time)
    return frame if parsed is frame[time] else frame.assign(**{time: parsed})


def _sorted_units(column: pd.Series, unit: str) -> tuple:
    """Distinct units, sorted, as plain Python scalars (labels read 'A', 1975, not
    np.int64(1975))."""
    units = pd.unique(column).tolist()
    kinds = {}
    for value in units:
        kinds.setdefault(_unit_kind(value), value)
    for kind, value in kinds.items():
        if isinstance(value, (tuple, list, set, frozenset, dict)):  # pandas reads tuples as index levels
            raise NonNumericError(
                f"column '{unit}' holds unit identifiers of type {kind} ({value!r}); use text or numbers, "
                f"e.g. df['{unit}'] = df['{unit}'].map(str)"
            )
    if len(kinds) > 1:
        shown = " and ".join(describe(value) for value in list(kinds.values())[:2])
        raise NonNumericError(
            f"column '{unit}' mixes kinds of unit identifiers: {shown}; make them one type, "
            f"e.g. df['{unit}'] = df['{unit}'].astype(str)"
        )
    try:
        return tuple(sorted(units))
    except TypeError:
        raise NonNumericError(
            f"column '{unit}' holds unit identifiers that cannot be ordered ({describe(units[0])}); "
            "use text or integer identifiers"
        ) from None


def _unit_kind(value: object) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return "number"
    return type(value).__name__


def _reject_missing_keys(frame: pd.DataFrame, unit: str, time: str) -> None:
    for key in (unit, time):
        if frame[key].isna().any():
            row = int(np.flatnonzero(frame[key].isna().to_numpy())[0])
            raise NonNumericError(
                f"column '{key}' has a missing value (first at row {row}); every row needs a unit and a period"
            )


def _reject_duplicates(frame: pd.DataFrame, unit: str, time: str) -> None:
    duplicated = frame.duplicated([unit, time], keep=False)
    if duplicated.any():
        first = frame.loc[duplicated, [unit, time]].iloc[0]
        count = int(duplicated.sum())
        raise DuplicateRowError(
            f"unit {first[unit]!r} appears more than once in period {first[time]!r} "
            f"({count} duplicated rows in all); keep one row per unit and period, "
            "e.g. with df.drop_duplicates([unit, time])"
        )


def _numeric_column(frame: pd.DataFrame, name: str, unit: str, time: str) -> np.ndarray:
    column = frame[name]
    if column.dtype == bool or not (
        pd.api.types.is_numeric_dtype(column) or column.isna().all()
    ):
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna()
        if bad.any() or column.dtype == bool:
            row = _row(frame, int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0)
            raise NonNumericError(
                f"column '{name}' is not numeric: unit {row[unit]!r}, period {row[time]!r} "
                f"holds {row[name]!r}; convert it with pd.to_numeric or drop the column"
            )
        column = converted
    values = column.to_numpy(dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        row = _row(frame, int(np.flatnonzero(infinite)[0]))
        raise NonFiniteError(
            f"column '{name}' holds an infinite value for unit {row[unit]!r} in period "
            f"{row[time]!r}; replace it with a finite value or NaN (missing)"
        )
    _check_magnitude(values, frame, name, unit, time)
    return values


def _row(frame: pd.DataFrame, position: int) -> pd.Series:
    """Row ``position`` of ``frame`` with plain Python values (messages read 2003, not np.int64(2003))."""
    return frame.iloc[position].map(lambda value: value.item() if isinstance(value, np.generic) else value)


#: Magnitudes a variable may reach: squares and sums of squares of the data (losses,
#: variances) must stay within double precision, and differences above its underflow.
LARGEST_MAGNITUDE, SMALLEST_MAGNITUDE = 1e150, 1e-150


def _check_magnitude(values: np.ndarray, frame: pd.DataFrame, name: str, unit: str, time: str) -> None:
    magnitude = np.abs(values)
    if not np.any(magnitude > 0):  # all zero or missing: nothing to scale
        return
    largest = int(np.nanargmax(magnitude))
    row = _row(frame, largest)
    if magnitude[largest] > LARGEST_MAGNITUDE:
        raise NonFiniteError(
            f"column '{name}' holds {values[largest]:.3g} for unit {row[unit]!r} in period {row[time]!r}: "
            f"squares of values above {LARGEST_MAGNITUDE:g} overflow double precision; rescale the column "
            f"(e.g. df['{name}'] / 1e100)"
        )
    if magnitude[largest] < SMALLEST_MAGNITUDE:
        raise NonFiniteError(
            f"column '{name}' holds no value larger than {magnitude[largest]:.3g} in magnitude: differences "
            f"of values below {SMALLEST_MAGNITUDE:g} underflow double precision; rescale the column "
            f"(e.g. df['{name}'] * 1e150)"
        )
