"""The numeric problem of one treated unit, built from a panel and a specification.

:func:`prepare` checks a single-treated :class:`~synthcontrol.spec.Spec` against a
:class:`~synthcontrol.panel.Panel` and returns a :class:`Design`: the unscaled
predictor matrix and the outcome matrix of the treated unit and its donors, which
the estimators and every placebo reuse (:meth:`Design.relabel`,
:meth:`Design.without_donors`, :meth:`Design.shift`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

from .._validation import describe
from ..errors import (
    DonorPoolError,
    DroppedDonorsWarning,
    MissingDataError,
    MissingOutcomeWarning,
    PostTreatmentPredictorWarning,
    PredictorError,
    ShortPrePeriodWarning,
    SpecError,
    TypeMismatchError,
    warn,
)
from ..panel import Panel
from ..periods import coerce_period
from ..weights.canonical import canonical_columns
from .specification import Predictor, Spec, _reject_repeated_labels, at, shift_spec

__all__ = ["Design", "prepare", "require_treated_units", "is_constant"]


@dataclass(frozen=True)
class Design:
    """The numeric problem of one treated unit: validated, unscaled, reusable.

    Column 0 of ``predictors`` and ``outcome`` is the treated unit, the others are the
    donors in ``units[1:]`` order.

    Attributes
    ----------
    spec : Spec
        The single-treated specification.
    units : tuple
        Treated unit first, then donors.
    periods : tuple
        Periods of the path (every period with the treated unit's outcome).
    predictor_labels : tuple of str
    predictors : ndarray, shape (K, N)
        Unscaled predictor values.
    outcome : ndarray, shape (T, N)
        Outcome over ``periods``.
    fit_mask, post_mask : ndarray of bool, shape (T,)
        Fit-window periods and post-treatment periods.
    dropped_donors : tuple
        Donors removed by ``drop_incomplete_donors``, with their reason.
    panel : Panel or None
        The panel the design was prepared from, restricted to its units and the
        variables of its spec (None for a design built by hand); :meth:`shift`
        rebuilds the design from it.
    """

    spec: Spec
    units: tuple
    periods: tuple
    predictor_labels: tuple
    predictors: np.ndarray
    outcome: np.ndarray
    fit_mask: np.ndarray
    post_mask: np.ndarray
    dropped_donors: tuple = field(default=())
    panel: Panel | None = field(default=None, repr=False, compare=False)

    @property
    def treated(self) -> Hashable:
        return self.units[0]

    @property
    def donors(self) -> tuple:
        return self.units[1:]

    @property
    def pre_mask(self) -> np.ndarray:
        """Fit-window periods before treatment (the pre-period of inference)."""
        return self.fit_mask & ~self.post_mask

    def scaled_predictors(self, columns: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Predictors of the given columns divided by their standard deviation across
        those units (R Synth's scaling); returns ``(scaled, standard_deviations)``.

        Units that are exact copies of another (same predictors and outcomes) count
        once, and the units are taken in a canonical order: neither a copied donor
        nor the order of the units can change the scaling, not even in its last bit.

        A predictor equal (up to round-off) for every unit of the fit carries no
        information: every donor weighting matches it exactly. Its scaled row is
        zero and its standard deviation reported as 0. This happens in placebo and
        leave-one-out refits, whose units are a subset of the treated fit's (a
        predictor that varies only because of the treated unit).

        Examples
        --------
        >>> design = Design(spec=None, units=("a", "b", "c"), periods=(1,),
        ...                 predictor_labels=("x", "c"), predictors=np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]),
        ...                 outcome=np.zeros((1, 3)), fit_mask=np.ones(1, bool), post_mask=np.zeros(1, bool))
        >>> design.scaled_predictors()[0]
        array([[1., 2., 3.],
               [0., 0., 0.]])
        """
        X = self.predictors[:, columns]
        # Distinct units in their canonical order: the sum runs in the same order
        # whatever the order of the units.
        order, first = canonical_columns(X, self.outcome[:, columns])
        distinct = X[:, order[first]]
        constant = np.array([is_constant(row) for row in distinct], dtype=bool)
        sd = np.where(constant, 0.0, distinct.std(axis=1, ddof=1) if distinct.shape[1] > 1 else 0.0)
        return X / np.where(constant, 1.0, sd)[:, None] * ~constant[:, None], sd

    def relabel(self, treated_position: int) -> "Design":
        """The design with the unit at ``treated_position`` as treated and the current
        treated unit removed: the problem of an in-space placebo."""
        order = [treated_position] + [
            i for i in range(1, len(self.units)) if i != treated_position
        ]
        spec = replace(self.spec, treated=self.units[treated_position], donors=tuple(self.units[i] for i in order[1:]))
        return replace(
            self,
            spec=spec,
            units=tuple(self.units[i] for i in order),
            predictors=self.predictors[:, order],
            outcome=self.outcome[:, order],
        )

    def shift(self, fake_start: Hashable) -> "Design":
        """The design with its treatment moved back to ``fake_start``: the problem of
        an in-time placebo, built by :func:`prepare` from the design's own panel.

        The specification moves as :func:`shift_spec` says; the donors stay the
        design's donors, and every rule of :func:`prepare` applies (default outcome
        lags follow the new fit window, periods constant across units are left out).

        Raises
        ------
        SpecError
            When ``fake_start`` is not before the treatment start, leaves no fit
            period or no predictor, or the design was not built by :func:`prepare`.

        Examples
        --------
        >>> import synthcontrol as sc
        >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
        ...                predictors=[sc.mean("retprice", 1980, 1988), sc.at("cigsale", 1975)],
        ...                donors=["Utah", "Nevada", "Montana"])
        >>> design = sc.fit(sc.datasets.load_smoking(), spec).design.shift(1985)
        >>> design.predictor_labels, design.spec.fit_window
        (('retprice(1980-1984)', 'cigsale(1975)'), (1970, 1984))
        """
        if self.panel is None:
            raise SpecError(
                "this design keeps no panel (it was not built by prepare or sc.fit), so it "
                "cannot be moved to another treatment start; prepare it from the data"
            )
        return prepare(self.panel, shift_spec(self.spec, fake_start, self.periods, self.donors))

    def without_donors(self, donors: Sequence[Hashable]) -> "Design":
        """The design with some donors removed (leave-one-out)."""
        keep = [0] + [i for i, u in enumerate(self.units) if i > 0 and u not in set(donors)]
        return replace(
            self,
            spec=replace(self.spec, donors=tuple(self.units[i] for i in keep[1:])),
            units=tuple(self.units[i] for i in keep),
            predictors=self.predictors[:, keep],
            outcome=self.outcome[:, keep],
        )


def prepare(panel: Panel, spec: Spec) -> Design:
    """Check ``spec`` against ``panel`` and build the numeric problem.

    ``spec`` must have a single treated unit (see :meth:`Spec.for_treated`).

    Raises
    ------
    SpecError, DonorPoolError, PredictorError, MissingDataError
        With the unit, period or predictor at fault and how to fix it.
    TypeMismatchError
        A period or unit of another type than its column, not convertible exactly.
    """
    spec = _with_panel_periods(panel, spec)
    treated = spec.treated_units[0]
    donors = _donor_pool(panel, spec, treated)
    fit_periods = _fit_periods(panel, spec)
    predictors = spec.predictors or tuple(at(spec.outcome, p) for p in fit_periods)
    _check_predictor_windows(panel, spec, predictors)

    values = {p.label: _predictor_values(panel, p, (treated, *donors)) for p in predictors}
    outcome = panel.values[spec.outcome]
    periods = tuple(p for p in panel.periods if np.isfinite(outcome.at[p, treated]))
    missing_fit = [p for p in fit_periods if p not in periods]
    if missing_fit:
        raise MissingDataError(
            f"outcome '{spec.outcome}' is missing for treated unit {treated!r} in fit-window "
            f"period(s) {missing_fit}; shorten fit_window or fill the data"
        )
    if not any(p >= spec.treatment_start for p in periods):
        raise MissingDataError(
            f"outcome '{spec.outcome}' of treated unit {treated!r} has no value from "
            f"treatment_start={spec.treatment_start!r} on; there is no post-period to evaluate"
        )
    _warn_short_or_missing(panel, spec, treated, donors, fit_periods, periods)
    donors, dropped = _screen_donors(panel, spec, treated, donors, values, periods)
    units = (treated, *donors)
    if not spec.predictors:
        # Default outcome lags: a period where every unit has the same value (the base
        # year of an index) carries no information, so it is left out, not an error.
        values = {label: s for label, s in values.items() if not is_constant(s[list(units)].to_numpy())}
    X = _predictor_matrix(values, units)
    _check_variation(X, list(values))
    time_index = np.array(periods, dtype=object)
    return Design(
        spec=replace(spec, treated=treated, donors=tuple(donors)),
        units=units,
        periods=periods,
        predictor_labels=tuple(values),
        predictors=X,
        outcome=panel.matrix(spec.outcome, periods, units),
        fit_mask=np.array([fit_periods[0] <= p <= fit_periods[-1] for p in time_index]),
        post_mask=np.array([p >= spec.treatment_start for p in time_index]),
        dropped_donors=tuple(dropped),
        panel=replace(panel, units=units, values={v: panel.values[v][list(units)] for v in spec.variables}),
    )


def _warn_short_or_missing(
    panel: Panel, spec: Spec, treated: Hashable, donors: list, fit_periods: list, periods: tuple
) -> None:
    """Warn of a one-period fit window, and of post-treatment periods without the
    treated unit's outcome where donors have one (they drop out of the gaps and
    effects; periods no unit has are simply past the end of the series)."""
    if len(fit_periods) == 1:
        warn(
            f"the fit window of treated unit {treated!r} is the single period {fit_periods[0]!r}: donor "
            "weights fitted to one number are exact or arbitrary, and pre-period RMSPE ratios "
            "(placebo p-values) mean little; widen fit_window or move treatment_start later",
            ShortPrePeriodWarning,
        )
    absent = [p for p in panel.periods if p >= spec.treatment_start and p not in periods]
    others_have = np.isfinite(panel.matrix(spec.outcome, absent, donors)).any(axis=1)
    missing = [p for p, held in zip(absent, others_have) if held]
    if missing:
        warn(
            f"outcome '{spec.outcome}' of treated unit {treated!r} is missing in post-treatment "
            f"period(s) {missing}: they are left out of the gaps and effects; fill them or ignore "
            "this warning",
            MissingOutcomeWarning,
        )


def _with_panel_periods(panel: Panel, spec: Spec) -> Spec:
    """``spec`` with every period (treatment start, fit window, predictor windows)
    converted to the type of ``panel``'s periods (see :mod:`synthcontrol.periods`)."""
    def convert(value: Hashable, argument: str) -> Hashable:
        return coerce_period(value, panel.periods, argument=argument, column=spec.time)

    window = spec.fit_window
    if window is not None:
        window = (convert(window[0], "fit_window[0]"), convert(window[1], "fit_window[1]"))
    predictors = tuple(
        replace(p, start=convert(p.start, f"the start of predictor {p.label}"),
                end=convert(p.end, f"the end of predictor {p.label}"))
        for p in spec.predictors
    )
    for p in predictors:
        if p.end < p.start:
            raise SpecError(f"predictor {p.label}: the window ends before it starts")
    _reject_repeated_labels(predictors)  # 2002 and 2002.0 are one period once converted
    return replace(spec, treatment_start=convert(spec.treatment_start, "treatment_start"),
                   fit_window=window, predictors=predictors)


def require_treated_units(panel: Panel, spec: Spec) -> None:
    """Refuse a treated unit absent from ``panel`` (before any one is prepared, so the
    message names it rather than another treated unit's exclusions)."""
    _require_units(panel, spec, spec.treated_units, "treated unit", SpecError)


def _donor_pool(panel: Panel, spec: Spec, treated: Hashable) -> list:
    _require_units(panel, spec, [treated], "treated unit", SpecError)
    _require_units(panel, spec, spec.exclude, "excluded unit", DonorPoolError)
    excluded = set(spec.exclude)
    if spec.donors is None:
        donors = [u for u in panel.units if u != treated and u not in excluded]
    else:
        donors = [d for d in spec.donors if d not in excluded]
        if treated in donors:
            raise DonorPoolError(
                f"treated unit {treated!r} is also in the donor pool; remove it from donors"
            )
        _require_units(panel, spec, donors, "donor", DonorPoolError)
        repeated = sorted({str(d) for d in donors if donors.count(d) > 1})
        if repeated:
            raise DonorPoolError(f"donor(s) {repeated} listed twice in donors; list each once")
    if len(donors) < 2:
        raise DonorPoolError(
            f"the donor pool of {treated!r} has {len(donors)} unit(s); a synthetic control "
            "needs at least two donors"
        )
    return donors


def _require_units(panel: Panel, spec: Spec, units: Sequence[Hashable], what: str, error: type) -> None:
    """Refuse units absent from the data, saying so when the type is the culprit
    ("column 'unit' holds integers; the treated unit was given as the text '340400'")."""
    present = panel.values[spec.outcome].columns
    unknown = [u for u in units if u not in present]
    if not unknown:
        return
    column_kind = _units_kind(panel.units)
    mismatched = [u for u in unknown if _units_kind((u,)) != column_kind]
    if mismatched:
        value = mismatched[0]
        as_column = [u for u in panel.units if str(u) == str(value).strip()]
        hint = f"give it as {as_column[0]!r}" if as_column else "check the value and its type"
        raise TypeMismatchError(
            f"column '{spec.unit}' holds {column_kind}; the {what} was given as {describe(value)}: {hint}"
        )
    sample = ", ".join(map(repr, panel.units[:8]))
    raise error(
        f"{what}(s) {unknown} not in column '{spec.unit}' of the data (units include {sample}, ...); "
        "check the spelling"
    )


def _units_kind(units: Sequence[Hashable]) -> str:
    if all(isinstance(u, str) for u in units):
        return "text"
    if all(isinstance(u, (int, np.integer)) and not isinstance(u, (bool, np.bool_)) for u in units):
        return "integers"
    if all(isinstance(u, (int, float, np.number)) and not isinstance(u, (bool, np.bool_)) for u in units):
        return "numbers"
    return "values of type " + type(units[0]).__name__


def _fit_periods(panel: Panel, spec: Spec) -> list:
    periods = list(panel.periods)
    start = spec.treatment_start
    if not periods[0] < start <= periods[-1]:
        raise SpecError(
            f"treatment_start={start!r} is outside the data's periods "
            f"({periods[0]!r} to {periods[-1]!r}); it must leave at least one period before "
            "and one from treatment on"
        )
    if spec.fit_window is None:
        return [p for p in periods if p < start]
    first, last = spec.fit_window
    if last < first:
        raise SpecError(f"fit_window={spec.fit_window!r} ends before it starts")
    if last >= start:
        raise SpecError(
            f"fit_window={spec.fit_window!r} reaches into the post-period "
            f"(treatment_start={start!r}); end it before {start!r}"
        )
    window = [p for p in periods if first <= p <= last]
    if not window:
        raise SpecError(
            f"fit_window={spec.fit_window!r} holds no period of the data "
            f"({periods[0]!r} to {periods[-1]!r})"
        )
    return window


def _check_predictor_windows(panel: Panel, spec: Spec, predictors: Sequence[Predictor]) -> None:
    for predictor in predictors:
        if predictor.variable not in panel.values:
            raise SpecError(f"predictor {predictor.label}: variable not loaded into the panel")
        if predictor.end >= spec.treatment_start:
            warn(
                f"predictor {predictor.label} uses periods from treatment_start="
                f"{spec.treatment_start!r} on, so the treated unit's value may already carry "
                "the effect; accepted (as R Synth does) so that published specifications can "
                "be reproduced, but prefer predictors measured before treatment",
                PostTreatmentPredictorWarning,
            )
        if not predictor.periods(panel.periods):
            raise SpecError(
                f"predictor {predictor.label} covers no period of the data "
                f"({panel.periods[0]!r} to {panel.periods[-1]!r})"
            )


def _predictor_values(panel: Panel, predictor: Predictor, units: Sequence[Hashable]) -> pd.Series:
    """Window mean per unit, skipping missing periods; NaN where a unit has none."""
    frame = panel.values[predictor.variable].loc[predictor.periods(panel.periods), list(units)]
    return frame.mean(axis=0, skipna=True)


def _predictor_matrix(values: dict, units: Sequence[Hashable]) -> np.ndarray:
    """Predictor values as a (K, len(units)) array, one row per predictor label."""
    if not values:
        return np.zeros((0, len(units)))
    return pd.DataFrame(values).loc[list(units)].to_numpy(dtype=float).T


def _screen_donors(
    panel: Panel,
    spec: Spec,
    treated: Hashable,
    donors: list,
    values: dict,
    periods: tuple,
) -> tuple[list, list]:
    """Check the data the spec needs; drop or reject donors lacking some of it."""
    for label, series in values.items():
        if not np.isfinite(series[treated]):
            raise MissingDataError(
                f"treated unit {treated!r} has no value of predictor {label}; choose another "
                "window or predictor"
            )
    labels = list(values)
    missing_x = ~np.isfinite(_predictor_matrix(values, donors))  # K x J
    missing_y = ~np.isfinite(panel.matrix(spec.outcome, periods, donors))  # T x J
    reasons = {}
    for j in np.flatnonzero(missing_x.any(axis=0) | missing_y.any(axis=0)):
        if missing_x[:, j].any():
            reasons[donors[j]] = f"no value of predictor(s) {[labels[k] for k in np.flatnonzero(missing_x[:, j])]}"
        else:
            periods_missing = [periods[t] for t in np.flatnonzero(missing_y[:, j])]
            reasons[donors[j]] = f"outcome '{spec.outcome}' missing in period(s) {periods_missing}"
    if reasons and not spec.drop_incomplete_donors:
        donor, reason = next(iter(reasons.items()))
        raise MissingDataError(
            f"donor {donor!r} has {reason} ({len(reasons)} donor(s) incomplete in all); "
            "fill the data, remove the donor, or set drop_incomplete_donors=True"
        )
    if reasons:
        warn(
            f"dropped {len(reasons)} incomplete donor(s) for {treated!r}: "
            + "; ".join(f"{d!r}: {r}" for d, r in reasons.items()),
            DroppedDonorsWarning,
        )
    kept = [d for d in donors if d not in reasons]
    if len(kept) < 2:
        raise DonorPoolError(
            f"only {len(kept)} donor(s) of {treated!r} have the data the specification needs; "
            "a synthetic control needs at least two"
        )
    return kept, [(d, r) for d, r in reasons.items()]


def is_constant(values: np.ndarray) -> bool:
    """Whether ``values`` are equal up to round-off (so they cannot be scaled)."""
    return bool(values.std() <= 1e-12 * max(float(np.abs(values).max()), 1e-300))


def _check_variation(X: np.ndarray, labels: list[str]) -> None:
    if not labels:
        raise PredictorError(
            "the outcome takes the same value for every unit in every fit-window period; "
            "there is nothing to match on: choose another fit_window or give predictors"
        )
    constant = [label for label, row in zip(labels, X) if is_constant(row)]
    if constant:
        raise PredictorError(
            f"predictor(s) {constant} take the same value for every unit, so they cannot be "
            "scaled or matched on; remove them from predictors"
        )
