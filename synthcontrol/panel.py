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

from .errors import DuplicateRowError, MissingColumnError, NonFiniteError, NonNumericError

__all__ = ["Panel"]


@dataclass(frozen=True)
class Panel:
    """A validated balanced-index panel: one wide (period x unit) frame per variable.

    Attributes
    ----------
    unit, time : str
        Names of the unit and period columns in the user's frame.
    units : tuple
        Units in order of first appearance.
    periods : tuple
        Sorted periods.
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
        DuplicateRowError
            A unit appears twice in one period.
        NonNumericError, NonFiniteError
            A variable holds text or infinite values.
        """
        if not isinstance(frame, pd.DataFrame):
            raise NonNumericError(
                f"data must be a pandas DataFrame in long format, got {type(frame).__name__}"
            )
        variables = list(dict.fromkeys(variables))
        _require_columns(frame, [unit, time, *variables])
        _reject_missing_keys(frame, unit, time)
        _reject_duplicates(frame, unit, time)
        numeric = {name: _numeric_column(frame, name, unit, time) for name in variables}
        # Plain Python scalars, so labels and messages read 1975 rather than np.int64(1975).
        units = tuple(pd.unique(frame[unit]).tolist())
        periods = tuple(sorted(pd.unique(frame[time]).tolist()))
        values = _pivot(frame, unit, time, units, periods, numeric)
        return cls(unit=unit, time=time, units=units, periods=periods, values=values)

    def matrix(self, variable: str, periods: Sequence[Hashable], units: Sequence[Hashable]) -> np.ndarray:
        """Values of ``variable`` as a (len(periods), len(units)) array."""
        return self.values[variable].loc[list(periods), list(units)].to_numpy(dtype=float)


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
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns[:20]))
        raise MissingColumnError(
            f"column(s) {missing} not found in the data; available columns: {available}. "
            "Fix the names in the specification or rename the columns."
        )


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
            row = frame.loc[bad].iloc[0] if bad.any() else frame.iloc[0]
            raise NonNumericError(
                f"column '{name}' is not numeric: unit {row[unit]!r}, period {row[time]!r} "
                f"holds {row[name]!r}; convert it with pd.to_numeric or drop the column"
            )
        column = converted
    values = column.to_numpy(dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        row = frame.iloc[int(np.flatnonzero(infinite)[0])]
        raise NonFiniteError(
            f"column '{name}' holds an infinite value for unit {row[unit]!r} in period "
            f"{row[time]!r}; replace it with a finite value or NaN (missing)"
        )
    return values
