"""Specifications: what to match on, over which periods, against which donors.

A :class:`Spec` is declared by the user and checked when built (types, windows,
repeated labels); :func:`~synthcontrol.spec.design.prepare` checks it against the
data. Predictors follow R Synth: a variable at one period (:func:`at`) or averaged
over a window (:func:`mean`), skipping missing periods inside the window as Synth
does. :func:`shift_spec` moves a specification to an earlier, fake treatment start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Hashable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from .._validation import check_bool, check_label, describe
from ..errors import DonorPoolError, SpecError

__all__ = ["Predictor", "at", "mean", "Spec", "check_spec", "shift_spec"]


@dataclass(frozen=True)
class Predictor:
    """A variable at one period, or its mean over a window of periods.

    Build with :func:`at` or :func:`mean` rather than directly.
    """

    variable: str
    start: Hashable
    end: Hashable
    op: Literal["at", "mean"] = "mean"

    @property
    def label(self) -> str:
        """A readable, unique name such as ``cigsale(1975)`` or ``beer(1984-1988)``."""
        if self.op == "at":
            return f"{self.variable}({self.start})"
        return f"{self.variable}({self.start}-{self.end})"

    def periods(self, available: Sequence[Hashable]) -> list:
        """The panel periods this predictor averages over."""
        return [p for p in available if self.start <= p <= self.end]


def at(variable: str, period: Hashable) -> Predictor:
    """``variable`` in one period.

    Examples
    --------
    >>> at("cigsale", 1975).label
    'cigsale(1975)'
    """
    check_label(variable, "the variable of at()")
    check_label(period, f"the period of at({variable!r}, ...)")
    return Predictor(variable, period, period, "at")


def mean(variable: str, start: Hashable, end: Hashable) -> Predictor:
    """``variable`` averaged over the periods ``start`` to ``end`` (inclusive).

    Missing periods inside the window are skipped, as R Synth does; a unit with no
    value at all in the window is an error. Periods given as text are compared once
    converted to the period column's type (when the spec is checked against data).

    Examples
    --------
    >>> mean("lnincome", 1980, 1988).label
    'lnincome(1980-1988)'
    """
    check_label(variable, "the variable of mean()")
    for period in (start, end):
        check_label(period, f"each period of mean({variable!r}, ...)")
    _check_window(f"mean({variable!r}, {start!r}, {end!r})", start, end)
    return Predictor(variable, start, end, "mean")


def _check_window(name: str, start: Hashable, end: Hashable) -> None:
    """Refuse a window that ends before it starts; text is left to be parsed with the
    data (as text, '2020-10' < '2020-7')."""
    if isinstance(start, str) or isinstance(end, str):
        return
    try:
        reversed_window = bool(end < start)
    except TypeError:
        raise SpecError(
            f"{name}: start and end are of different types ({describe(start)}, {describe(end)}); "
            "give both as the period column's type"
        ) from None
    if reversed_window:
        raise SpecError(f"{name}: the window ends before it starts")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A synthetic control specification.

    Parameters
    ----------
    outcome : str
        Outcome column.
    unit, time : str
        Unit and period columns of the long data frame.
    treated : hashable or sequence of hashable
        The treated unit, or several (each is fitted against its own pool; listed
        once each).
    treatment_start : hashable
        First period under treatment; the post-period starts here. Periods (here,
        in ``fit_window`` and in predictors) are converted to the type of the
        period column when the conversion is exact (``"2008"`` for a column of
        integers); otherwise :class:`~synthcontrol.errors.TypeMismatchError`.
    predictors : sequence of Predictor, optional
        What to match on. Empty (the default): the outcome in every fit-window period.
    fit_window : (start, end), optional
        Periods over which the outcome MSPE chooses the predictor weights. Default:
        every period before ``treatment_start``.
    donors : sequence, mapping or None
        Donor pool: ``None`` for every other unit; a sequence shared by all treated
        units (each treated unit is removed from the others' pools); or a mapping
        from treated unit to its own pool.
    exclude : sequence, optional
        Units never used as donors (e.g. units touched by the policy in other ways).
    drop_incomplete_donors : bool, default False
        Drop donors lacking a value the specification needs (reported, with a
        warning) instead of raising :class:`~synthcontrol.errors.MissingDataError`.

    Examples
    --------
    >>> spec = Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...             predictors=[mean("lnincome", 1980, 1988), at("cigsale", 1975)],
    ...             fit_window=(1970, 1988))
    >>> [p.label for p in spec.predictors]
    ['lnincome(1980-1988)', 'cigsale(1975)']
    """

    outcome: str
    unit: str = "unit"
    time: str = "time"
    treated: Hashable | Sequence[Hashable]
    treatment_start: Hashable
    predictors: Sequence[Predictor] = ()
    fit_window: tuple[Hashable, Hashable] | None = None
    donors: Sequence[Hashable] | Mapping[Hashable, Sequence[Hashable]] | None = None
    exclude: Sequence[Hashable] = ()
    drop_incomplete_donors: bool = False

    def __post_init__(self) -> None:
        for name in ("outcome", "unit", "time", "treatment_start"):
            check_label(getattr(self, name), name)
        object.__setattr__(self, "treated", _checked_treated(self.treated))
        object.__setattr__(self, "predictors", _as_tuple(self.predictors, "predictors"))
        object.__setattr__(self, "exclude", _as_tuple(self.exclude, "exclude"))
        check_bool(self.drop_incomplete_donors, "drop_incomplete_donors")
        bad = [p for p in self.predictors if not isinstance(p, Predictor)]
        if bad:
            raise SpecError(
                f"predictors must be built with sc.at(...) or sc.mean(...); got {bad[0]!r}"
            )
        _reject_repeated_labels(self.predictors)
        if self.fit_window is not None:
            object.__setattr__(self, "fit_window", _checked_window(self.fit_window))
        _check_donors(self.donors, self.treated_units)

    @property
    def treated_units(self) -> tuple:
        """The treated units as a tuple (one element for a single treated unit)."""
        if isinstance(self.treated, tuple):
            return self.treated
        return (self.treated,)

    def for_treated(self, treated: Hashable) -> "Spec":
        """This specification for one of its treated units, with that unit's pool."""
        if treated not in self.treated_units:
            raise SpecError(f"{treated!r} is not among the treated units {self.treated_units}")
        others = [t for t in self.treated_units if t != treated]
        if isinstance(self.donors, Mapping):
            if treated not in self.donors:
                raise DonorPoolError(f"donors has no pool for treated unit {treated!r}")
            donors = self.donors[treated]
        elif self.donors is None:
            donors = None
        elif len(self.treated_units) > 1:
            # A pool shared by several treated units may list them all; none is a donor.
            donors = [d for d in self.donors if d not in self.treated_units]
        else:
            donors = list(self.donors)
        return replace(
            self,
            treated=treated,
            donors=None if donors is None else tuple(donors),
            exclude=tuple(dict.fromkeys([*self.exclude, *others])),
        )

    @property
    def variables(self) -> list[str]:
        """Every data column the specification reads besides unit and time."""
        return list(dict.fromkeys([self.outcome, *(p.variable for p in self.predictors)]))


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, range, pd.Index, pd.Series, np.ndarray))


def _as_tuple(values: object, name: str) -> tuple:
    """A list of units or predictors as a tuple (sets sorted, so order is fixed)."""
    if not _is_sequence(values):
        raise SpecError(f"{name} must be a list, got {describe(values)}")
    if isinstance(values, (pd.Index, pd.Series, np.ndarray)):
        values = np.asarray(values).ravel().tolist()
    if isinstance(values, (set, frozenset)):
        try:
            values = sorted(values)
        except TypeError:
            raise SpecError(f"{name} is a set of values that cannot be ordered; give a list") from None
    return tuple(values)


def _checked_treated(treated: object) -> Hashable | tuple:
    """One treated unit as given, or several as a tuple listed once each."""
    if treated is None:
        raise SpecError("treated is None; name the treated unit (or a list of treated units)")
    if not _is_sequence(treated):
        return check_label(treated, "treated")
    units = _as_tuple(treated, "treated")
    if not units:
        raise SpecError("treated is empty; name at least one treated unit")
    for unit in units:
        check_label(unit, "each treated unit")
    repeated = sorted({str(u) for u in units if units.count(u) > 1})
    if repeated:
        raise SpecError(f"treated lists {repeated} more than once; list each treated unit once")
    return units


def _checked_window(window: object) -> tuple:
    if not isinstance(window, (list, tuple, np.ndarray, pd.Index)) or len(window) != 2:
        raise SpecError(f"fit_window must be (start, end), got {window!r}")
    window = tuple(np.asarray(window, dtype=object).tolist()) if not isinstance(window, (list, tuple)) else tuple(window)
    _check_window(f"fit_window={window!r}", *window)
    return window


def _check_donors(donors: object, treated_units: tuple) -> None:
    if isinstance(donors, Mapping):
        stray = [t for t in donors if t not in treated_units]
        if stray:
            raise DonorPoolError(
                f"donors has pool(s) for {stray}, which are not treated units {list(treated_units)}; "
                "key the mapping by treated unit"
            )
    pools = donors.items() if isinstance(donors, Mapping) else [(None, donors)]
    for treated, pool in pools:
        where = "donors" if treated is None else f"donors[{treated!r}]"
        if pool is not None and not _is_sequence(pool):
            raise DonorPoolError(f"{where} must be a list of units (or None for every other unit), got {describe(pool)}")


def _reject_repeated_labels(predictors: Sequence[Predictor]) -> None:
    labels = [p.label for p in predictors]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise SpecError(f"predictor(s) {repeated} declared twice; remove the duplicates")


def check_spec(value: object) -> Spec:
    """``value`` if it is a :class:`Spec`; otherwise a SpecError naming its type."""
    if not isinstance(value, Spec):
        raise SpecError(f"spec must be a synthcontrol.Spec, got {type(value).__name__}")
    return value


def shift_spec(spec: Spec, fake_start: Hashable, periods: Sequence[Hashable], donors: Sequence[Hashable]) -> Spec:
    """``spec`` with its treatment moved back to ``fake_start`` (an in-time placebo).

    The fit window keeps its first period and ends at the last of ``periods`` before
    ``fake_start``; a predictor window reaching ``fake_start`` or later is clipped to
    end there, a predictor starting at ``fake_start`` or later is dropped; the donors
    are ``donors`` (already net of the exclusions, which are therefore dropped).

    Examples
    --------
    >>> spec = Spec(outcome="y", treated="A", treatment_start=1989, fit_window=(1970, 1988),
    ...             predictors=[mean("x", 1980, 1988), at("y", 1975), at("y", 1988)])
    >>> moved = shift_spec(spec, 1985, range(1970, 2001), ["B", "C"])
    >>> [p.label for p in moved.predictors], moved.fit_window
    (['x(1980-1984)', 'y(1975)'], (1970, 1984))
    """
    periods = list(periods)
    start = spec.treatment_start
    if not fake_start < start:
        raise SpecError(f"fake_start={fake_start!r} must come before the treatment start {start!r}")
    before = [p for p in periods if p < fake_start]
    first = spec.fit_window[0] if spec.fit_window is not None else periods[0]
    window = [p for p in before if p >= first]
    if not window:
        raise SpecError(
            f"fake_start={fake_start!r} leaves no fit-window period before it (the fit window "
            f"starts at {first!r}); choose a later fake_start"
        )
    predictors = _clip_predictors(spec.predictors, fake_start, window[-1])
    return replace(spec, treatment_start=fake_start, fit_window=(window[0], window[-1]),
                   predictors=predictors, donors=tuple(donors), exclude=())


def _clip_predictors(predictors: Sequence[Predictor], fake_start: Hashable, last: Hashable) -> tuple:
    kept = tuple(
        p if p.end < fake_start else replace(p, end=last)
        for p in predictors
        if p.start < fake_start
    )
    if predictors and not kept:
        raise SpecError(
            f"every predictor is measured at or after fake_start={fake_start!r}; choose a "
            "later fake_start or predictors measured earlier"
        )
    return kept
