"""sc.fit_several at its boundary: treatment starts, donor pools and standard errors
that cannot be computed get a project error or warning, and the placebo standard
error depends on the data only (not on unit names, row order or donor order)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthcontrol as sc
from synthcontrol.errors import (
    ArgumentError, DonorPoolError, InferenceWarning, SpecError, SynthControlError, TypeMismatchError,
)

PAIR = sc.Spec(outcome="cigsale", treated=["California", "Utah"], treatment_start=1989)


# ------------------------------------------------------------------ treatment starts


@pytest.mark.parametrize(
    ("start", "error", "shown"),
    [
        (None, TypeMismatchError, "None"),
        (float("nan"), TypeMismatchError, "nan"),
        (1995.5, TypeMismatchError, "1995.5"),
        ("late", TypeMismatchError, "'late'"),
        ([1995], TypeMismatchError, "[1995]"),
        (pd.Timestamp("1995-01-01"), TypeMismatchError, "1995-01-01"),
        (2050, SpecError, "2050"),
        (1970, SpecError, "1970"),  # no period before it
    ],
)
def test_a_bad_treatment_start_names_the_unit_and_value(smoking, start, error, shown):
    with pytest.raises(error) as raised:
        sc.fit_several(smoking, PAIR, treatment_starts={"California": 1989, "Utah": start})
    message = str(raised.value)
    assert "treatment_starts['Utah']" in message and shown in message and "give a" in message


def test_a_bad_spec_treatment_start_is_named_as_such(smoking):
    with pytest.raises(SpecError, match=r"spec.treatment_start is 2040, outside"):
        sc.fit_several(smoking, dataclasses.replace(PAIR, treatment_start=2040))


def test_treatment_starts_convert_to_the_period_type(smoking):
    as_text = sc.fit_several(smoking, PAIR, treatment_starts={"California": "1989", "Utah": 1995.0},
                             n_replications=10)
    as_int = sc.fit_several(smoking, PAIR, treatment_starts={"California": 1989, "Utah": 1995},
                            n_replications=10)
    assert list(as_text.table.index) == [1989, 1995]
    assert as_text.average_effect == as_int.average_effect and as_text.se == as_int.se


def test_spec_must_be_a_spec(smoking):
    with pytest.raises(SpecError, match="spec must be a synthcontrol.Spec"):
        sc.fit_several(smoking, {"outcome": "cigsale"})


# ------------------------------------------------------------------- donor pool


@pytest.mark.parametrize("starts", [None, {"California": 1989, "Utah": 1995}])
def test_a_treated_unit_among_the_donors_is_refused(smoking, starts):
    spec = dataclasses.replace(PAIR, donors=["Nevada", "Utah", "Montana", "Idaho"])
    with pytest.raises(DonorPoolError, match=r"treated unit 'Utah' is also in the donor pool; remove it"):
        sc.fit_several(smoking, spec, treatment_starts=starts)
    with pytest.raises(DonorPoolError, match=r"treated unit 'California' is also in the donor pool"):
        sc.fit_several(smoking, dataclasses.replace(spec, donors=["California", "Nevada", "Montana"]))


# ------------------------------------------------------------- standard errors


def test_placebo_without_more_donors_than_treated_units_is_refused(smoking):
    two = dataclasses.replace(PAIR, donors=["Nevada", "Montana"])
    with pytest.raises(DonorPoolError, match=r"more never-treated donors.*2 donor\(s\) for 2 treated.*jackknife"):
        sc.fit_several(smoking, two)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InferenceWarning)
        jackknife = sc.fit_several(smoking, two, standard_error="jackknife")
    assert np.isfinite(jackknife.se) and np.isnan(jackknife.se_placebo)  # the other one: NaN as in synthdid
    low, high = jackknife.confidence_interval
    assert low < jackknife.average_effect < high and 0 < jackknife.p_value < 1


def test_jackknife_with_one_treated_unit_is_refused(smoking):
    california = dataclasses.replace(PAIR, treated="California")
    with pytest.raises(ArgumentError, match=r"standard_error='jackknife'.*single treated unit.*'placebo'"):
        sc.fit_several(smoking, california, standard_error="jackknife")
    with pytest.raises(ArgumentError, match="single treated unit"):
        sc.fit_several(smoking, dataclasses.replace(california, donors=["Nevada"]), standard_error="jackknife")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InferenceWarning)
        placebo = sc.fit_several(smoking, california)  # the jackknife is not asked for: no warning
    assert np.isfinite(placebo.se) and np.isnan(placebo.se_jackknife)


def test_jackknife_on_one_donor_warns_and_keeps_synthdid_na(smoking):
    with pytest.warns(InferenceWarning, match=r"jackknife.*one donor \(the cohort starting 1989 on 'New Mexico'\).*'placebo'"):
        res = sc.fit_several(smoking, PAIR, estimator="sc", standard_error="jackknife", n_replications=10)
    assert np.isnan(res.se) and np.isnan(res.p_value) and np.isnan(res.confidence_interval).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InferenceWarning)
        placebo = sc.fit_several(smoking, PAIR, estimator="sc", n_replications=10)
    assert np.isfinite(placebo.se) and placebo.se > 0


def test_a_zero_standard_error_warns():
    # Donors parallel to each other: every placebo DiD estimate is exactly zero.
    rows = [(u, t, float(t + i + (3 if u in "AB" and t >= 4 else 0))) for i, u in enumerate("ABCDEFGH") for t in range(6)]
    df = pd.DataFrame(rows, columns=["unit", "time", "y"])
    with pytest.warns(InferenceWarning, match=r"placebo standard error is 0.*zero width"):
        res = sc.fit_several(df, sc.Spec(outcome="y", treated=["A", "B"], treatment_start=4), estimator="did")
    assert res.average_effect == pytest.approx(3.0) and res.se == 0


def test_errors_are_project_errors(smoking):
    calls = [
        lambda: sc.fit_several(smoking, PAIR, treatment_starts={"California": 1989, "Utah": None}),
        lambda: sc.fit_several(smoking, dataclasses.replace(PAIR, donors=["Nevada", "Montana"])),
        lambda: sc.fit_several(smoking, dataclasses.replace(PAIR, treated="California"), standard_error="jackknife"),
    ]
    for call in calls:
        with pytest.raises(SynthControlError):
            call()


# ------------------------------------------------------------------- invariance


def _reversed_names(units):
    return {u: "x" + str(u)[::-1] for u in units}


def _reversed_order(units):
    """Names whose sort order is the reverse of the original names'."""
    ranked = sorted(units)
    return {u: f"u{len(ranked) - k:03d}" for k, u in enumerate(ranked)}


def _relabelled(data, spec, mapping, donors_reversed=False):
    donors = spec.donors if spec.donors is None else [mapping[d] for d in spec.donors][:: -1 if donors_reversed else 1]
    spec = dataclasses.replace(spec, treated=[mapping[u] for u in spec.treated_units], donors=donors)
    return data.assign(unit=data.unit.map(mapping)), spec


@pytest.mark.parametrize("starts", [None, {"California": 1989, "Utah": 1995}])
@pytest.mark.parametrize("change", ["reversed names", "reversed sort order", "shuffled rows", "reversed donors"])
def test_placebo_se_depends_on_the_data_only(smoking, starts, change):
    pool = [u for u in smoking.unit.unique() if u not in PAIR.treated_units]
    spec = dataclasses.replace(PAIR, donors=pool) if change == "reversed donors" else PAIR
    kwargs = {"n_replications": 25, "seed": 7}
    base = sc.fit_several(smoking, spec, **kwargs, treatment_starts=starts)
    mapping = {u: u for u in smoking.unit.unique()}
    data = smoking
    if change == "reversed names":
        mapping = _reversed_names(smoking.unit.unique())
    elif change == "reversed sort order":
        mapping = _reversed_order(smoking.unit.unique())
    elif change == "shuffled rows":
        data = smoking.sample(frac=1.0, random_state=11).reset_index(drop=True)
    data, other_spec = _relabelled(data, spec, mapping, donors_reversed=change == "reversed donors")
    other_starts = None if starts is None else {mapping[u]: s for u, s in starts.items()}
    other = sc.fit_several(data, other_spec, **kwargs, treatment_starts=other_starts)
    assert other.se_placebo == base.se_placebo and other.p_value == base.p_value
    assert other.average_effect == base.average_effect and other.se_jackknife == base.se_jackknife
    np.testing.assert_array_equal(other.placebo_estimates, base.placebo_estimates)
    weights = other.unit_weights.rename(index={v: k for k, v in mapping.items()}).sort_index()
    np.testing.assert_array_equal(weights.to_numpy(), base.unit_weights.sort_index().to_numpy())


def test_placebo_se_scales_with_the_units_of_the_data(smoking):
    base = sc.fit_several(smoking, PAIR, n_replications=25)
    scaled = sc.fit_several(smoking.assign(cigsale=smoking.cigsale * 1000.0), PAIR, n_replications=25)
    assert scaled.se_placebo == pytest.approx(1000.0 * base.se_placebo, rel=1e-6)
    assert scaled.p_value == pytest.approx(base.p_value, rel=1e-6)


@st.composite
def _panels(draw):
    """A small panel (T0 = 2 to 4) with ties and duplicate donors, two treated units."""
    n_units, n_periods = draw(st.integers(5, 8)), draw(st.integers(4, 6))
    values = draw(st.lists(st.integers(0, 4), min_size=n_units * n_periods, max_size=n_units * n_periods))
    Y = np.array(values, dtype=float).reshape(n_units, n_periods)
    Y[:, 0] += np.arange(n_units)  # some variation across units (prepare refuses none)
    if draw(st.booleans()):
        Y[-1] = Y[-2]  # a duplicate donor
    names = [f"unit{k}" for k in range(n_units)]
    frame = pd.DataFrame([(names[i], 2000 + t, Y[i, t]) for i in range(n_units) for t in range(n_periods)],
                         columns=["unit", "time", "y"])
    start = 2000 + draw(st.integers(3, n_periods - 1))
    return frame, sc.Spec(outcome="y", time="time", treated=names[:2], treatment_start=start), draw(st.randoms())


@settings(max_examples=15, deadline=None)
@given(_panels(), st.sampled_from(["sdid", "did"]))
def test_several_is_invariant_on_small_degenerate_panels(case, estimator):
    frame, spec, random = case
    units = list(frame.unit.unique())
    shuffled = units[:]
    random.shuffle(shuffled)
    mapping = dict(zip(units, [f"z{name}" for name in shuffled]))
    rows = frame.sample(frac=1.0, random_state=random.randrange(1000))
    other_data, other_spec = _relabelled(rows, spec, mapping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)  # zero standard errors happen on such data
        base = sc.fit_several(frame, spec, estimator=estimator, n_replications=12, seed=3)
        other = sc.fit_several(other_data, other_spec, estimator=estimator, n_replications=12, seed=3)
    assert other.average_effect == base.average_effect
    np.testing.assert_array_equal(other.placebo_estimates, base.placebo_estimates)
    np.testing.assert_array_equal(other.jackknife_estimates, base.jackknife_estimates)
