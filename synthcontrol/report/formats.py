"""How numbers, periods and names are written in reports (also the templates' filters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["num", "signed", "p", "slug", "span", "Table"]


def num(x: float | None, digits: int = 3) -> str:
    """A number to ``digits`` significant digits; "-" when missing."""
    if x is None or not np.isfinite(x):
        return "-"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def signed(x: float | None, digits: int = 3) -> str:
    """A number as :func:`num` writes it, with "+" before a positive one.

    Examples
    --------
    >>> signed(0.0123), signed(-4.56, 2), signed(0.0)
    ('+0.0123', '-4.6', '0')
    """
    text = num(x, digits)
    return f"+{text}" if text != "-" and x is not None and x > 0 else text


def p(x: float | None) -> str:
    """A p-value to two decimals; "-" when missing."""
    return "-" if x is None or not np.isfinite(x) else f"{x:.2f}"


def slug(value: object) -> str:
    """A file- and anchor-safe name."""
    return "".join(c if c.isalnum() else "_" for c in str(value)).strip("_").lower()


def span(periods: Sequence) -> str:
    """``first-last``, or the one period."""
    return f"{periods[0]}" if len(periods) == 1 else f"{periods[0]}-{periods[-1]}"


@dataclass(frozen=True)
class Table:
    """A table of formatted cells, for the templates."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, rows: Sequence[dict]) -> "Table":
        """From dicts with the same keys (the columns, in order)."""
        columns = tuple(rows[0]) if rows else ()
        return cls(columns, tuple(tuple(str(row[c]) for c in columns) for row in rows))

    def __bool__(self) -> bool:
        return bool(self.rows)
