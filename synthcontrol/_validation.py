"""Checks of public function arguments, shared by every entry point.

Each check returns the value in canonical form (a plain ``int``, ``float``, ``bool``
or :class:`~pathlib.Path`) or raises :class:`~synthcontrol.errors.ArgumentError`
naming the argument, what it allows and the value received, as scikit-learn's
parameter validation does. Public functions call them once, at their boundary;
everything below trusts its arguments.

Examples
--------
>>> check_int(3, "n_lags", minimum=1)
3
>>> check_int(0, "n_lags", minimum=1)
Traceback (most recent call last):
...
synthcontrol.errors.ArgumentError: n_lags=0 is not valid: expected an integer >= 1
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ArgumentError

__all__ = [
    "describe",
    "check_int",
    "check_number",
    "check_bool",
    "check_choice",
    "check_seed",
    "check_n_jobs",
    "check_progress",
    "check_directory",
    "check_mapping",
    "check_label",
    "is_integer",
    "listing",
]


def describe(value: object) -> str:
    """``value`` with its kind, for messages: "the text '340400'", "the integer 3".

    Examples
    --------
    >>> describe("340400"), describe(340400), describe(2.5)
    ("the text '340400'", 'the integer 340400', 'the number 2.5')
    """
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {bool(value)}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if is_integer(value):
        return f"the integer {int(value)}"
    if isinstance(value, (float, np.floating)):
        return f"the number {float(value)!r}"
    if isinstance(value, pd.Period):
        return f"the {_frequency_name(value)} period {value}"
    if isinstance(value, (pd.Timestamp, np.datetime64, _dt.datetime)):
        return f"the date-time {pd.Timestamp(value)}"
    if isinstance(value, _dt.date):
        return f"the date {value.isoformat()}"
    if value is None:
        return "None"
    return f"a {type(value).__name__} ({value!r:.60})"


def listing(items: Sequence, limit: int, render: Callable[[object], str] = repr) -> str:
    """The first ``limit`` of ``items``, rendered and joined, and how many more there are.

    Examples
    --------
    >>> listing(["a", "b", "c"], 2)
    "'a', 'b' and 1 more"
    """
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(map(render, items[:limit])) + more


def _frequency_name(period: pd.Period) -> str:
    """Readable frequency of a period: "monthly", "quarterly", ... (pandas' code otherwise)."""
    code = period.freqstr.split("-")[0]
    return {"Y": "annual", "A": "annual", "Q": "quarterly", "M": "monthly", "W": "weekly", "D": "daily"}.get(
        code, f"'{period.freqstr}'"
    )


def is_integer(value: object) -> bool:
    """True for a Python or numpy integer that is not a boolean."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _fail(name: str, value: object, expected: str) -> ArgumentError:
    shown = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else describe(value)
    return ArgumentError(f"{name}={shown} is not valid: expected {expected}")


def check_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` within ``[minimum, maximum]``; integral floats are refused
    (``n_grid=2.0`` is a typo more often than a number of points)."""
    bounds = " and ".join(
        part for part in (f">= {minimum}" if minimum is not None else "",
                          f"<= {maximum}" if maximum is not None else "") if part
    )
    expected = "an integer" + (f" {bounds}" if bounds else "")
    if not is_integer(value):
        raise _fail(name, value, expected)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(name, value, expected)
    return int(value)


def check_number(
    value: object,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high``
    (each end open or closed)."""
    left, right = ("(" if low_open else "["), (")" if high_open else "]")
    expected = f"a finite number in {left}{low:g}, {high:g}{right}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(name, value, expected)
    number = float(value)
    inside = (
        math.isfinite(number)
        and (number > low if low_open else number >= low)
        and (number < high if high_open else number <= high)
    )
    if not inside:
        raise _fail(name, value, expected)
    return number


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy booleans accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(name, value, "True or False")
    return bool(value)


def check_choice(value: object, name: str, allowed: tuple) -> object:
    """``value`` if it is one of ``allowed``.

    Examples
    --------
    >>> check_choice("HC3", "u_sigma", ("HC0", "HC1"))
    Traceback (most recent call last):
    ...
    synthcontrol.errors.ArgumentError: u_sigma='HC3' is not valid: expected one of 'HC0', 'HC1'
    """
    if not isinstance(value, (str, int, float, bool, type(None))) or value not in allowed:
        raise _fail(name, value, "one of " + ", ".join(map(repr, allowed)))
    return value


def check_seed(value: object, name: str = "seed") -> int:
    """A seed for :func:`numpy.random.default_rng`: a non-negative integer."""
    return check_int(value, name, minimum=0)


def check_n_jobs(value: object, name: str = "n_jobs") -> int | None:
    """Workers as joblib counts them: ``None``, a positive integer, or a negative one
    (-1: every core, -2: all but one, ...); 0 means nothing."""
    if value is None:
        return None
    if not is_integer(value) or value == 0:
        raise _fail(name, value, "None, a positive integer, or -1 for every core (-2 all but one, ...)")
    return int(value)


def check_progress(value: object, name: str = "progress") -> bool | Callable[[int, int], None] | None:
    """``None``, ``True``/``False``, or a callable taking ``(done, total)``."""
    if value is None or isinstance(value, (bool, np.bool_)) or callable(value):
        return value
    raise _fail(name, value, "None, True, False or a callable taking (done, total)")


def check_directory(value: object, name: str) -> Path | None:
    """A directory path (``None`` allowed): a ``str`` or path-like that, if it exists,
    is a directory; it is created later, by whoever writes into it."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise _fail(name, value, "None or a directory path (str or pathlib.Path)")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ArgumentError(
            f"{name}={str(path)!r} is a file, not a directory; give the path of a directory "
            "(it is created if missing)"
        )
    return path


def check_mapping(value: object, name: str) -> dict:
    """``value`` as a ``dict`` with text keys (``None``: empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(name, value, "a mapping (dict) from setting name to value")
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise ArgumentError(f"{name} has key {bad[0]!r} of type {type(bad[0]).__name__}; its keys must be text")
    return dict(value)


def check_label(value: object, name: str) -> Hashable:
    """A single column name or unit label: hashable, and not a collection."""
    if isinstance(value, (list, tuple, set, frozenset, dict, np.ndarray, pd.Index, pd.Series)) or not isinstance(
        value, Hashable
    ):
        raise ArgumentError(f"{name} must be a single name, got {describe(value)}")
    return value
