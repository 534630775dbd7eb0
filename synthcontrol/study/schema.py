"""The configuration schema: tables, keys and their types, and the messages that name
a key at fault and its fix.

Tables and keys (``*`` required)::

    [study]         title*, description, output, sources
    [data]          dataset | path (one of them)*, unit*, time*, label, flag, flag_note,
                    datasheet, logs (columns whose natural log the study adds as log_NAME)
    [audit]         flags (a built-in dataset's flags table) | path (a CSV file), drop, warn,
                    breaks (see synthcontrol.study.model.AuditRules)
    [groups.NAME]   units | column + values, description
    [design]        treated*, treatment_start*, fit_window
    [donors]        pools, exclude, drop_incomplete
    [pools.NAME]    units | column + values, description
    [[outcomes]]*   column*, label, headline, exclude_flagged, log, units, fit_window, predictors
                    (predictors: inline tables {variable, at} or {variable, mean = [start, end]})
    [[claims]]      name*, statement*, outcomes, direction ("increase" | "decrease"), note
    [estimators]    names, outcomes ("headline" | "all"), options ({name = {option = value}}),
                    pools ({name = [pool, ...]})
    [blocks]        treated* ({block name = [units]}), estimators (of sc.fit_several), outcomes
                    ("headline" | "all"), pools, standard_error, n_replications
    [fit]           the search settings of sc.fit: seed, n_random_starts, n_local, n_polish,
                    max_iterations, min_predictor_weight, global_search
    [inference]     placebo, leave_one_out, in_time, conformal, refit_placebo_weights
                    ("all" | "headline" | "none"), in_time_start, conformal_alpha, pooled,
                    pooled_statistic, n_jobs, placebo_estimators
    [report]        fit_good, fit_fair, identified_ratio, unit_words ([singular, plural]: what a unit is called)
    [speccurve]     estimators, pools, placebo, n_lags, fit_windows
    [[sensitivity]] name*, description, treated, treatment_start, fit_window, outcomes, pools,
                    exclude, exclude_flagged, drop_audited

Unit lists (``treated``, ``exclude``, ``units``) hold unit identifiers and group
references ``"group:NAME"``. No list holds a value twice, and names that label rows,
tables or headings (the study's title; the names of groups, pools, blocks, claims and
sensitivity analyses; outcome labels) are not blank and, where several name things of
one kind (sensitivity analyses, claims, outcome labels), distinct.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..options import FitOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["SCHEMA", "SCOPES", "read_text", "read_toml", "check_table", "is_type", "choice", "window",
           "unknown", "nonempty", "distinct", "nonblank", "distinct_names", "in_toml_terms"]

SCOPES = ("all", "headline", "none")
_TABLE, _LIST = dict, list
_UNIT_SET = {
    "units": ((_LIST,), False),
    "column": ((str,), False),
    "values": ((_LIST,), False),
    "description": ((str,), False),
}
# The search settings of sc.fit, as FitOptions holds them (the estimator is chosen in
# [estimators]); a value's type is the type of its default.
_FIT = {f.name: ((type(f.default),), False) for f in fields(FitOptions)
        if f.name not in ("estimator", "estimator_options")}

#: Table -> {key: (accepted types, required)}.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "": {
        "study": ((_TABLE,), True),
        "data": ((_TABLE,), True),
        "audit": ((_TABLE,), False),
        "groups": ((_TABLE,), False),
        "design": ((_TABLE,), True),
        "donors": ((_TABLE,), False),
        "pools": ((_TABLE,), False),
        "outcomes": ((_LIST,), True),
        "claims": ((_LIST,), False),
        "estimators": ((_TABLE,), False),
        "blocks": ((_TABLE,), False),
        "fit": ((_TABLE,), False),
        "inference": ((_TABLE,), False),
        "report": ((_TABLE,), False),
        "speccurve": ((_TABLE,), False),
        "sensitivity": ((_LIST,), False),
    },
    "study": {"title": ((str,), True), "description": ((str,), False), "output": ((str,), False),
              "sources": ((_LIST,), False)},
    "data": {
        "dataset": ((str,), False),
        "path": ((str,), False),
        "unit": ((str,), True),
        "time": ((str,), True),
        "label": ((str,), False),
        "flag": ((str,), False),
        "flag_note": ((str,), False),
        "datasheet": ((str,), False),
        "logs": ((_LIST,), False),
    },
    "audit": {
        "flags": ((str,), False),
        "path": ((str,), False),
        "drop": ((_LIST,), False),
        "warn": ((_LIST,), False),
        "breaks": ((_LIST,), False),
    },
    "groups.*": _UNIT_SET,
    "design": {
        "treated": ((_LIST,), True),
        "treatment_start": ((int,), True),
        "fit_window": ((_LIST,), False),
    },
    "donors": {
        "pools": ((_LIST,), False),
        "exclude": ((_LIST,), False),
        "drop_incomplete": ((bool,), False),
    },
    "pools.*": _UNIT_SET,
    "outcomes": {
        "column": ((str,), True),
        "label": ((str,), False),
        "headline": ((bool,), False),
        "exclude_flagged": ((bool,), False),
        "log": ((bool,), False),
        "units": ((str,), False),
        "fit_window": ((_LIST,), False),
        "predictors": ((_LIST,), False),
    },
    "claims": {
        "name": ((str,), True),
        "statement": ((str,), True),
        "outcomes": ((_LIST,), False),
        "direction": ((str,), False),
        "note": ((str,), False),
    },
    "predictor": {"variable": ((str,), True), "at": ((int,), False), "mean": ((_LIST,), False)},
    "estimators": {"names": ((_LIST,), False), "outcomes": ((str,), False), "options": ((_TABLE,), False),
                   "pools": ((_TABLE,), False)},
    "blocks": {
        "treated": ((_TABLE,), True),
        "estimators": ((_LIST,), False),
        "outcomes": ((str,), False),
        "pools": ((_LIST,), False),
        "standard_error": ((str,), False),
        "n_replications": ((int,), False),
    },
    "fit": _FIT,
    "inference": {
        "placebo": ((str,), False),
        "leave_one_out": ((str,), False),
        "in_time": ((str,), False),
        "conformal": ((str,), False),
        "in_time_start": ((int,), False),
        "conformal_alpha": ((float,), False),
        "pooled": ((bool,), False),
        "pooled_statistic": ((str,), False),
        "n_jobs": ((int,), False),
        "refit_placebo_weights": ((str,), False),
        "placebo_estimators": ((_LIST,), False),
    },
    "report": {"fit_good": ((float, int), False), "fit_fair": ((float, int), False),
               "identified_ratio": ((float, int), False), "unit_words": ((_LIST,), False)},
    "speccurve": {
        "estimators": ((_LIST,), False),
        "pools": ((_LIST,), False),
        "placebo": ((bool,), False),
        "n_lags": ((int,), False),
        "fit_windows": ((_LIST,), False),
    },
    "sensitivity": {
        "name": ((str,), True),
        "description": ((str,), False),
        "treated": ((_LIST,), False),
        "treatment_start": ((int,), False),
        "fit_window": ((_LIST,), False),
        "outcomes": ((_LIST,), False),
        "pools": ((_LIST,), False),
        "exclude": ((_LIST,), False),
        "exclude_flagged": ((bool,), False),
        "drop_audited": ((bool,), False),
    },
}


def read_text(path: Path, what: str) -> str:
    """The text of a UTF-8 file, or a ConfigError saying why it cannot be read:
    missing, a folder, empty, binary or not UTF-8."""
    if not path.exists():
        raise ConfigError(f"{what} {path} not found; check the path")
    if not path.is_file():
        raise ConfigError(f"{what} {path} is not a file; give the path of a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{what} {path} cannot be read: {error.strerror or error}") from error
    if not raw.strip():
        raise ConfigError(f"{what} {path} is empty")
    if b"\x00" in raw:
        raise ConfigError(f"{what} {path} is a binary file, not text; give a UTF-8 text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {raw[error.start]:#04x} on line {line}); "
            "save it as UTF-8"
        ) from error


def read_toml(path: Path) -> dict:
    """The configuration file as a table, checked against the top-level schema."""
    text = read_text(path, "configuration file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    check_table(raw, "", "")
    return raw


def check_table(table: Mapping[str, Any], schema: str, where: str) -> None:
    """Unknown keys (with the closest known one), wrong types, missing keys."""
    known = SCHEMA[schema]
    for key, value in table.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown key {name!r}{hint}")
        types, _ = known[key]
        if not is_type(value, types):
            raise ConfigError(
                f"key {name!r} must be {' or '.join(_type_name(t) for t in types)}, "
                f"got {_type_name(type(value))} {value!r}"
            )
    for key, (_, required) in known.items():
        if required and key not in table:
            name = f"{where}.{key}" if where else key
            raise ConfigError(f"required key {name!r} is missing; add it to the configuration")


def is_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # True is an int to Python, never to a configuration
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, types)


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            dict: "a table", list: "a list"}.get(kind, kind.__name__)


def choice(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"key {key!r} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def nonempty(values: list, key: str, what: str) -> list:
    """``values`` if it holds something, else an error asking for at least one."""
    if not values:
        raise ConfigError(f"key {key!r} is an empty list; name at least one {what}")
    return values


def distinct(values: list, key: str, what: str) -> list:
    """``values`` if none is listed twice, else an error naming the first repeat.

    Examples
    --------
    >>> distinct(["T", "A", "A"], "blocks.treated.b", "unit")
    Traceback (most recent call last):
    ...
    synthcontrol.errors.ConfigError: key 'blocks.treated.b' lists unit 'A' twice; list each unit once
    """
    seen: list = []
    for value in values:
        if value in seen:
            raise ConfigError(f"key {key!r} lists {what} {value!r} twice; list each {what} once")
        seen.append(value)
    return values


def nonblank(value: str, key: str, what: str = "name") -> str:
    """``value`` if it is not blank: a name that labels a row, table or heading (or
    another text the report prints, ``what``)."""
    if not value.strip():
        raise ConfigError(f"key {key!r} = {value!r} is blank; give it a {what} that is not blank")
    return value


def distinct_names(values: list[str], keys: list[str], what: str) -> None:
    """Names of things of one kind (``values``, at ``keys``): each not blank, and no
    two alike, which would give rows and headings nothing to tell them apart by."""
    for i, (value, key) in enumerate(zip(values, keys)):
        nonblank(value, key)
        if value in values[:i]:
            first = keys[values.index(value)]
            raise ConfigError(f"key {key!r} = {value!r} names another {what} too ({first!r}); give each {what} "
                              "its own name")


#: Arguments of sc.Spec and sc.fit that a study sets in its configuration, for messages
#: raised below the study that name the argument as Python code gives it.
_ARGUMENT_KEYS = {"drop_incomplete_donors": "donors.drop_incomplete"}


def in_toml_terms(message: str) -> str:
    """``message`` with each argument of sc.Spec or sc.fit that a configuration key
    sets (``drop_incomplete_donors=True``) written as that key (``drop_incomplete =
    true`` in ``[donors]``).

    Examples
    --------
    >>> in_toml_terms("fill the data, or set drop_incomplete_donors=True")
    'fill the data, or set drop_incomplete = true in [donors]'
    """
    def key(match: re.Match) -> str:
        table, _, option = _ARGUMENT_KEYS[match[1]].rpartition(".")
        return f"{option} = {match[2].lower()} in [{table}]"

    pattern = rf"\b({'|'.join(_ARGUMENT_KEYS)})=(True|False)\b"
    return re.sub(pattern, key, message)


def window(value: Any, key: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2 or not all(is_type(v, (int,)) for v in value):
        raise ConfigError(f"key {key!r} must be [start, end] (two integers), got {value!r}")
    if value[1] < value[0]:
        raise ConfigError(f"key {key!r} = {value!r} ends before it starts; swap the years")
    return int(value[0]), int(value[1])


def unknown(key: str, value: Any, known: list, what: str = "value") -> str:
    """Message for a value that is not among ``known``, with the closest one."""
    close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(map(str, known[:12]))}"
    more = ", ..." if not close and len(known) > 12 else ""
    return f"key {key!r}: unknown {what} {value!r}; {hint}{more}"
