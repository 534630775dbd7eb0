"""Bad and degenerate input to ``sc.audit`` and to the ``audit=`` flags of ``sc.fit``
and ``sc.placebo_test``: a project error or warning that names what is at fault,
never a numpy traceback or a silently empty result."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol.errors import (
    ArgumentError,
    AuditWarning,
    MissingColumnError,
    MissingDataError,
    PanelError,
    TypeMismatchError,
)


@pytest.fixture(scope="module")
def smoking() -> pd.DataFrame:
    return sc.datasets.load_smoking()


def _audit_messages(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, AuditWarning)]


# --------------------------------------------------------------------------- degenerate sizes


def test_one_period_is_refused_with_the_number_needed(smoking):
    with pytest.raises(PanelError, match=r"single period \(1970\).*at least two"):
        sc.audit(smoking[smoking.time == 1970], columns=["cigsale"])
    with pytest.raises(PanelError, match="single period"):
        sc.audit(smoking[(smoking.time == 1970) & (smoking.unit == "Utah")], columns=["cigsale"])


@pytest.mark.parametrize("n_periods", [2, 5, 8])
def test_short_panel_warns_that_changes_were_not_judged(smoking, n_periods):
    short = smoking[smoking.time < 1970 + n_periods]
    with pytest.warns(AuditWarning, match=rf"'cigsale'.*{n_periods} periods.*jumps, common breaks and reversals"):
        found = sc.audit(short, columns=["cigsale"])
    assert list(found.columns) == sc.data_audit.AUDIT_COLUMNS


def test_nine_periods_are_enough_to_judge_changes(smoking):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AuditWarning)
        sc.audit(smoking[smoking.time < 1979], columns=["cigsale"])


def _trend_panel(n_units: int, n_periods: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame([{"unit": f"u{j}", "time": t, "y": 100 * 1.03 ** t * np.exp(0.005 * rng.normal())}
                         for j in range(n_units) for t in range(n_periods)])


def test_one_unit_warns_that_changes_were_not_judged():
    with pytest.warns(AuditWarning, match="'y': a single unit has changes"):
        sc.audit(_trend_panel(1), columns=["y"])


def test_two_units_find_a_break_in_one_of_them():
    frame = _trend_panel(2)
    frame.loc[(frame.unit == "u0") & (frame.time >= 12), "y"] *= 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", AuditWarning)
        found = sc.audit(frame, columns=["y"])
    assert ("u0", 12) in set(zip(found.unit, found.period))


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reference": "x"}, "reference must be None or a long DataFrame"),
        ({"reference": {"cigsale": 1}}, "reference must be None"),
        ({"relations": "x"}, "relations must be a list of Relation"),
        ({"relations": ["x"]}, r"relations\[0\] is the text 'x', not a Relation"),
        ({"columns": 3}, "columns must be a column name or a list"),
        ({"columns": ["time"]}, "'time', the time column"),
        ({"columns": ["cigsale", "unit"]}, "'unit', the unit column"),
        ({"columns": []}, "nothing to audit"),
        ({"group": ["unit"]}, "group must be a single name"),
        ({"group": "unit"}, "group='unit' is the unit column"),
        ({"unit": ["unit"]}, "unit must be a single name"),
        ({"transform": {"nope": "log"}}, r"transform names column 'nope'.*\['cigsale'\]"),
        ({"transform": {"cigsale": "ln"}}, r"transform\['cigsale'\]='ln' is not valid"),
        ({"transform": 3}, "transform=3 is not valid"),
        ({"jump_z": True}, "jump_z=True is not valid"),
        ({"break_z": "3"}, "break_z='3' is not valid"),
        ({"interpolation_share": 1.5}, "interpolation_share=1.5"),
        ({"min_break_units": True}, "min_break_units=True is not valid"),
        ({"max_excursion": 2.0}, "max_excursion=2.0 is not valid"),
    ],
)
def test_bad_arguments_raise_argument_errors_naming_them(smoking, options, message):
    options = {"columns": ["cigsale"], **options}
    with pytest.raises(ArgumentError, match=message):
        sc.audit(smoking, **options)


def test_single_relation_is_accepted(smoking):
    relation = sc.ratio("cigsale", "retprice")
    pd.testing.assert_frame_equal(sc.audit(smoking, columns=[], relations=relation),
                                  sc.audit(smoking, columns=[], relations=[relation]))


def test_no_numeric_column_to_audit_is_an_error(smoking):
    with pytest.raises(ArgumentError, match="no numeric column"):
        sc.audit(smoking[["unit", "time"]].assign(name="x"))


def test_column_without_values_is_an_error(smoking):
    with pytest.raises(MissingDataError, match=r"column 'z' \(audited\) has no values"):
        sc.audit(smoking.assign(z=np.nan), columns=["z"])
    with pytest.raises(MissingDataError, match=r"column 'z' \(used by relation .*\) has no values"):
        sc.audit(smoking.assign(z=np.nan), columns=["cigsale"], relations=[sc.ratio("cigsale", "z")])
    with pytest.raises(MissingDataError, match="'z'"):
        sc.audit(smoking.assign(z=np.nan))  # picked by default as a numeric column


def test_reference_that_shares_no_cell_is_an_error(smoking):
    reference = smoking[["unit", "time", "cigsale"]]
    with pytest.raises(PanelError, match="reference column 'cigsale' shares no cell.*'zzAlabama'"):
        sc.audit(smoking, columns=["cigsale"], reference=reference.assign(unit="zz" + reference.unit))
    with pytest.raises(PanelError, match="shares no cell"):
        sc.audit(smoking, columns=["cigsale"], reference=reference.assign(time=reference.time + 100))
    with pytest.raises(MissingColumnError, match="^reference: .*'time'"):
        sc.audit(smoking, columns=["cigsale"], reference=reference.rename(columns={"time": "year"}))
    # text years are parsed like the data's period column: the two sources agree
    assert len(sc.audit(smoking, columns=["cigsale"], reference=reference.assign(time=reference.time.astype(str)),
                        source_rtol=1e-9).query("kind == 'source'")) == 0


# --------------------------------------------------------------------------- audit= flags in fit and placebo_test


def _flags(**columns) -> pd.DataFrame:
    base = {"unit": ["D"], "period": [2005], "column": ["y"], "kind": ["jump"], "value": [1.0],
            "expected": [2.0], "note": [""]}
    return pd.DataFrame({**base, **columns})


def _fit_messages(panel, spec, flags) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc.fit(panel, spec, audit=flags)
    return _audit_messages(caught)


def test_flag_periods_are_converted_to_the_data_type(panel, spec):
    donor = sc.fit(panel, spec).weights.idxmax()
    expected = _fit_messages(panel, spec, _flags(unit=[donor]))
    assert len(expected) == 1 and f"{donor!r} (weight" in expected[0]
    for period in ("2005", 2005.0, " 2005"):
        assert _fit_messages(panel, spec, _flags(unit=[donor], period=[period])) == expected


def test_flag_periods_that_do_not_convert_name_the_flags_column(panel, spec):
    for period in ("x", 2005.5, pd.Timestamp("2005-01-01")):
        with pytest.raises(TypeMismatchError, match="audit flags' 'period' column"):
            sc.fit(panel, spec, audit=_flags(period=[period]))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("unit", "ZZ", "unit(s) not in the data: 'ZZ'"), ("column", "gdp", "column(s) not in the data: 'gdp'"),
     ("period", 1990, "period(s) not in the data: 1990")],
)
def test_flags_that_match_nothing_in_the_data_warn(panel, spec, field, value, message):
    flags = pd.concat([_flags(), _flags(**{field: [value]})], ignore_index=True)
    messages = _fit_messages(panel, spec, flags)
    [unmatched] = [m for m in messages if "match no cell" in m]
    assert unmatched.startswith("1 of 2 audit flag(s)") and message in unmatched


def test_placebo_test_converts_flag_periods_before_the_run(panel, spec):
    result = sc.fit(panel, spec)
    with pytest.raises(TypeMismatchError, match="audit flags' 'period' column"):
        sc.placebo_test(result, audit=_flags(period=["x"]))
    placebo = sc.placebo_test(result)
    ratio = placebo.table["ratio"]
    above = [u for u in ratio.index[1:] if ratio[u] >= ratio.iloc[0]]
    flags = pd.DataFrame({"unit": list(result.donors), "period": "2010", "column": "y", "kind": "jump"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc.placebo_test(result, audit=flags)
    messages = _audit_messages(caught)
    assert (len(messages) == 1 and all(f"{u!r} (post/pre ratio" in messages[0] for u in above)) if above \
        else messages == []
