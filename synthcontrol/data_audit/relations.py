"""Relations: quantities implied by several columns, audited cell by cell
(:class:`Relation`; :func:`implied_deflator`, :func:`ratio`, :func:`accounting_identity`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import pandas as pd

from .._validation import check_label, check_number, describe
from ..errors import ArgumentError, SynthControlError

__all__ = ["Relation", "implied_deflator", "ratio", "accounting_identity"]


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
        if not isinstance(self.name, str):
            raise ArgumentError(f"name must be text, got {describe(self.name)}")
        for key in ("columns", "flag"):
            if isinstance(getattr(self, key), str):  # tuple("gdp") would be three columns
                raise ArgumentError(f"relation {self.name!r}: {key} must be a sequence of column names, such as "
                                    f"({getattr(self, key)!r},), got {describe(getattr(self, key))}")
        columns = tuple(check_label(c, f"relation {self.name!r} column") for c in self.columns)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "flag", tuple(self.flag) or self.columns)
        if not self.columns:
            raise SynthControlError(f"relation {self.name!r} names no columns")
        if not callable(self.implied):
            raise ArgumentError(f"relation {self.name!r}: implied must be a function of one frame per column, "
                                f"got {describe(self.implied)}")
        stray = [c for c in self.flag if c not in self.columns]
        if stray:
            raise SynthControlError(f"relation {self.name!r}: flag {stray} not among its columns {self.columns}")
        if (self.target is None) != (self.tolerance is None):
            raise SynthControlError(f"relation {self.name!r}: give target and tolerance together")
        if self.target is not None:
            object.__setattr__(self, "target", check_number(self.target, f"relation {self.name!r}: target"))
            object.__setattr__(self, "tolerance", check_number(self.tolerance, f"relation {self.name!r}: tolerance",
                                                               low=0))


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
        per = check_number(growth_per, "growth_per", low=0, low_open=True)
        implied = functools.partial(_deflator_from_growth, per=per)
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
    if isinstance(parts, str):  # tuple("gdp") would be three columns
        raise ArgumentError(f"parts must be a sequence of column names, such as [{parts!r}], got {describe(parts)}")
    parts = tuple(parts)
    if isinstance(total, str):
        implied = functools.partial(_sum_minus, total=None)
        return Relation(f"{' + '.join(parts)} = {total}", (*parts, total), implied, target=0.0, tolerance=tolerance)
    total = check_number(total, "total")  # a column name is text
    implied = functools.partial(_sum_minus, total=total)
    return Relation(f"{' + '.join(parts)} = {total:g}", parts, implied, target=0.0, tolerance=tolerance)
