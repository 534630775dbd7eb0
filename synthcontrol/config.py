"""Study configurations: a TOML file parsed into the :class:`~synthcontrol.spec.Spec`
objects the Python API uses.

A configuration names the data (a built-in dataset or a CSV file), the treated units,
the treatment start, the outcomes with their predictors, the donor pools and their
exclusions, the estimators, the inference to run and optional sensitivity analyses.
:func:`load_config` checks every key against the schema below and against the data,
and raises :class:`~synthcontrol.errors.ConfigError` naming the key at fault and the
fix (an unknown key comes with the closest known one). ``case_studies/*.toml`` are
complete, commented examples.

Tables and keys (``*`` required)::

    [study]        title*, description, output
    [data]         dataset | path (one of them)*, unit*, time*, label, programme,
                   flag, datasheet
    [design]       treated*, treatment_start*, fit_window
    [donors]       pools, exclude, drop_incomplete
    [pools.NAME]   units | column + values | column + programme_pool
    [[outcomes]]*  column*, label, headline, exclude_flagged, predictors
                   (predictors: inline tables {variable, at} or {variable, mean = [start, end]})
    [estimators]   names, outcomes ("headline" | "all"), options ({name = {option = value}})
    [fit]          seed, n_random_starts, n_polish, max_iterations, global_search
    [inference]    placebo, leave_one_out, in_time, conformal, refit_placebo_weights
                   ("all" | "headline" | "none"), in_time_start, conformal_alpha, pooled, n_jobs,
                   placebo_estimators (estimators whose fits get placebo tests; default all)
    [report]       fit_good, fit_fair
    [speccurve]    estimators, pools, placebo, n_lags, fit_windows  (headline outcome, main analysis)
    [[sensitivity]] name*, treated, treatment_start, fit_window, outcomes, pools,
                   exclude_flagged

Unit lists (``treated``, ``exclude``, ``units``) hold unit identifiers or programme
groups written ``"group:assisted"`` / ``"group:helpers"``.

Examples
--------
>>> import pathlib, tempfile
>>> text = '''
... [study]
... title = "Proposition 99"
... [data]
... dataset = "smoking"
... unit = "unit"
... time = "time"
... [design]
... treated = ["California"]
... treatment_start = 1989
... [[outcomes]]
... column = "cigsale"
... predictors = [{variable = "cigsale", at = 1975}, {variable = "cigsale", at = 1988}]
... '''
>>> path = pathlib.Path(tempfile.mkdtemp()) / "prop99.toml"
>>> _ = path.write_text(text)
>>> config = load_config(path)
>>> task = config.tasks[0]
>>> task.spec.treated_units, task.spec.treatment_start, task.pool
(('California',), 1989, 'all')
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping

import pandas as pd

from . import datasets
from .errors import ConfigError
from .estimators import ESTIMATORS
from .results import FitOptions
from .spec import Predictor, Spec, at, mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Outcome", "Analysis", "Task", "InferenceOptions", "SpecCurveOptions", "StudyConfig", "load_config"]

#: Built-in datasets a configuration may name in ``[data] dataset``.
DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "china_cities": datasets.load_china_cities,
    "smoking": datasets.load_smoking,
    "basque": datasets.load_basque,
    "texas": datasets.load_texas,
    "hongkong": datasets.load_hongkong,
}
#: Built-in programme definitions a configuration may name in ``[data] programme``.
PROGRAMMES: dict[str, Callable[[], datasets.Programme]] = {"yrd_twinning": datasets.load_programme}

SCOPES = ("all", "headline", "none")
_TABLE, _LIST = dict, list
# Schema: table -> {key: (accepted types, required)}.
_SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "": {
        "study": ((_TABLE,), True),
        "data": ((_TABLE,), True),
        "design": ((_TABLE,), True),
        "donors": ((_TABLE,), False),
        "pools": ((_TABLE,), False),
        "outcomes": ((_LIST,), True),
        "estimators": ((_TABLE,), False),
        "fit": ((_TABLE,), False),
        "inference": ((_TABLE,), False),
        "report": ((_TABLE,), False),
        "speccurve": ((_TABLE,), False),
        "sensitivity": ((_LIST,), False),
    },
    "study": {"title": ((str,), True), "description": ((str,), False), "output": ((str,), False)},
    "data": {
        "dataset": ((str,), False),
        "path": ((str,), False),
        "unit": ((str,), True),
        "time": ((str,), True),
        "label": ((str,), False),
        "programme": ((str,), False),
        "flag": ((str,), False),
        "datasheet": ((str,), False),
    },
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
    "pools.*": {
        "units": ((_LIST,), False),
        "column": ((str,), False),
        "values": ((_LIST,), False),
        "programme_pool": ((str,), False),
    },
    "outcomes": {
        "column": ((str,), True),
        "label": ((str,), False),
        "headline": ((bool,), False),
        "exclude_flagged": ((bool,), False),
        "predictors": ((_LIST,), False),
    },
    "predictor": {"variable": ((str,), True), "at": ((int,), False), "mean": ((_LIST,), False)},
    "estimators": {"names": ((_LIST,), False), "outcomes": ((str,), False), "options": ((_TABLE,), False)},
    "fit": {
        "seed": ((int,), False),
        "n_random_starts": ((int,), False),
        "n_polish": ((int,), False),
        "max_iterations": ((int,), False),
        "global_search": ((bool,), False),
    },
    "inference": {
        "placebo": ((str,), False),
        "leave_one_out": ((str,), False),
        "in_time": ((str,), False),
        "conformal": ((str,), False),
        "in_time_start": ((int,), False),
        "conformal_alpha": ((float,), False),
        "pooled": ((bool,), False),
        "n_jobs": ((int,), False),
        "refit_placebo_weights": ((str,), False),
        "placebo_estimators": ((_LIST,), False),
    },
    "report": {"fit_good": ((float, int), False), "fit_fair": ((float, int), False)},
    "speccurve": {
        "estimators": ((_LIST,), False),
        "pools": ((_LIST,), False),
        "placebo": ((bool,), False),
        "n_lags": ((int,), False),
        "fit_windows": ((_LIST,), False),
    },
    "sensitivity": {
        "name": ((str,), True),
        "treated": ((_LIST,), False),
        "treatment_start": ((int,), False),
        "fit_window": ((_LIST,), False),
        "outcomes": ((_LIST,), False),
        "pools": ((_LIST,), False),
        "exclude_flagged": ((bool,), False),
    },
}


@dataclass(frozen=True)
class Outcome:
    """One outcome of a study: its column, readable label and predictors."""

    column: str
    label: str
    headline: bool
    exclude_flagged: bool
    predictors: tuple[Predictor, ...]


@dataclass(frozen=True)
class Analysis:
    """The main analysis or a sensitivity analysis: who is treated, from when, on what."""

    name: str
    treated: tuple
    treatment_start: int
    fit_window: tuple[int, int] | None
    outcomes: tuple[str, ...]
    pools: tuple[str, ...]
    exclude_flagged: bool | None  # None: each outcome's own setting


@dataclass(frozen=True)
class Task:
    """One fit of a study: an analysis, outcome, donor pool and estimator, as a Spec."""

    analysis: str
    outcome: Outcome
    pool: str
    estimator: str
    spec: Spec
    estimator_options: tuple = ()  # (name, value) pairs, as in FitOptions

    @property
    def is_main(self) -> bool:
        return self.analysis == "main"

    @property
    def is_headline(self) -> bool:
        """Main analysis, headline outcome (any pool, any estimator)."""
        return self.is_main and self.outcome.headline


@dataclass(frozen=True)
class InferenceOptions:
    """Which inference runs on which tasks (scopes ``"all"``, ``"headline"``, ``"none"``)."""

    placebo: str = "all"
    leave_one_out: str = "headline"
    in_time: str = "headline"
    conformal: str = "headline"
    in_time_start: int | None = None
    conformal_alpha: float = 0.1
    pooled: bool = True
    n_jobs: int = -1
    refit_placebo_weights: str = "all"
    placebo_estimators: tuple[str, ...] | None = None

    def applies(self, method: str, task: Task) -> bool:
        """Whether ``method`` runs on ``task``.

        ``"all"``: every task for placebo tests (``placebo``) and for choosing each
        placebo's predictor weights anew (``refit_placebo_weights``; otherwise the
        placebos reuse the treated unit's), classic fits of the main analysis for the
        other methods. ``"headline"``: the same, restricted to the headline outcome,
        and for ``refit_placebo_weights`` to its classic fits in the main analysis.
        """
        scope = getattr(self, method)
        if scope == "none":
            return False
        if method == "placebo":
            if self.placebo_estimators is not None and task.estimator not in self.placebo_estimators:
                return False
            return scope == "all" or task.outcome.headline
        if method == "refit_placebo_weights":
            return scope == "all" or (task.is_headline and task.estimator == "classic")
        if not task.is_main or task.estimator != "classic":
            return False
        return scope == "all" or task.outcome.headline


@dataclass(frozen=True)
class SpecCurveOptions:
    """Specification curves of the headline outcome (see :mod:`synthcontrol.speccurve`)."""

    estimators: tuple[str, ...] = ("classic",)
    pools: tuple[str, ...] = ()
    placebo: bool = False
    n_lags: int = 3
    fit_windows: tuple = (None,)  # None: the main analysis' fit window


@dataclass(frozen=True)
class StudyConfig:
    """A parsed, validated study: data, programme, tasks and options.

    Attributes
    ----------
    title, description : str
    source : Path
        The configuration file.
    data : DataFrame
        The panel the tasks run on.
    data_name : str
        Where the data came from (built-in dataset or file path), in words.
    unit, time, label : str
        Unit, period and (optional) unit-name columns.
    datasheet : str
        Documentation of the data to cite in the report ("" if none).
    programme : Programme or None
    flag : str
        Boolean column flagging units with a territorial change ("" if none).
    flagged_units : tuple
        Units flagged in any period.
    excluded_units : tuple
        Units never used as donors, resolved from ``[donors] exclude``.
    pools : dict
        Pool name -> tuple of member units (before exclusions).
    analyses : tuple of Analysis
    estimators : tuple of str
    estimator_options : dict
        Estimator name -> its options (``estimator_options`` of :func:`synthcontrol.fit`).
    estimator_scope : str
    fit_options : FitOptions
    inference : InferenceOptions
    fit_thresholds : (good, fair)
        Upper bounds of the relative pre-period RMSPE for "good" and "fair" fits.
    speccurve : SpecCurveOptions or None
        None without a ``[speccurve]`` table.
    output : Path or None
    tasks : tuple of Task
        Every classic fit, then the extra estimators' fits.
    """

    title: str
    description: str
    source: Path
    data: pd.DataFrame = field(repr=False)
    data_name: str
    unit: str
    time: str
    label: str
    datasheet: str
    programme: datasets.Programme | None
    flag: str
    flagged_units: tuple
    excluded_units: tuple
    pools: dict
    analyses: tuple[Analysis, ...]
    estimators: tuple[str, ...]
    estimator_options: dict
    estimator_scope: str
    fit_options: FitOptions
    inference: InferenceOptions
    fit_thresholds: tuple[float, float]
    speccurve: SpecCurveOptions | None
    output: Path | None
    tasks: tuple[Task, ...]

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return {task.outcome.column: task.outcome for task in self.tasks}

    def unit_name(self, unit: Hashable) -> str:
        """Readable name of ``unit`` (its label column value, else the identifier)."""
        return self._names.get(unit, str(unit))

    @cached_property
    def _names(self) -> dict:
        if not self.label:
            return {}
        pairs = self.data[[self.unit, self.label]].drop_duplicates(self.unit)
        return dict(zip(pairs[self.unit].tolist(), pairs[self.label].astype(str)))


# -- entry point ------------------------------------------------------------------


def load_config(path: str | Path, *, quick: bool = False) -> StudyConfig:
    """Read and validate a study configuration.

    Parameters
    ----------
    path : str or Path
        The TOML file. A relative ``[data] path`` is read relative to it.
    quick : bool, default False
        Keep only the main analysis, the headline outcome, the first pool and the
        classic estimator (a smoke run of the whole pipeline).

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        A missing, mistyped or unknown key, an unknown outcome column, pool or unit,
        or years outside the data; the message names the key and the fix.
    """
    path = Path(path)
    raw = _read_toml(path)
    _check_table(raw, "", "")
    data, data_name = _load_data(raw["data"], path)
    return _build(raw, path, data, data_name, quick)


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"configuration file {path} not found; check the path")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error


# -- schema checks ----------------------------------------------------------------


def _check_table(table: Mapping[str, Any], schema: str, where: str) -> None:
    """Unknown keys (with the closest known one), missing keys, wrong types."""
    known = _SCHEMA[schema]
    for key, value in table.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown key {name!r}{hint}")
        types, _ = known[key]
        if not _is_type(value, types):
            raise ConfigError(
                f"key {name!r} must be {' or '.join(_type_name(t) for t in types)}, "
                f"got {_type_name(type(value))} {value!r}"
            )
    for key, (_, required) in known.items():
        if required and key not in table:
            name = f"{where}.{key}" if where else key
            raise ConfigError(f"required key {name!r} is missing; add it to the configuration")


def _is_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # True is an int to Python, never to a configuration
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, types)


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            dict: "a table", list: "a list"}.get(kind, kind.__name__)


def _choice(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"key {key!r} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


# -- data and programme ---------------------------------------------------------------


def _load_data(table: Mapping[str, Any], path: Path) -> tuple[pd.DataFrame, str]:
    _check_table(table, "data", "data")
    if ("dataset" in table) == ("path" in table):
        raise ConfigError(
            "[data] needs exactly one of 'dataset' (a built-in dataset: "
            f"{', '.join(DATASETS)}) or 'path' (a CSV file)"
        )
    if "dataset" in table:
        name = table["dataset"]
        if name not in DATASETS:
            raise ConfigError(_unknown("data.dataset", name, list(DATASETS)))
        frame = DATASETS[name]()
        name = f"built-in dataset '{name}' (synthcontrol.datasets.{DATASETS[name].__name__})"
    else:
        name = str((path.parent / table["path"]).resolve())
        if not Path(name).is_file():
            raise ConfigError(f"key 'data.path': file {name} not found; the path is relative to {path}")
        frame = pd.read_csv(name)
    for key in ("unit", "time", "label", "flag"):
        if key in table and table[key] not in frame.columns:
            raise ConfigError(_unknown(f"data.{key}", table[key], list(frame.columns), "column"))
    return frame, name


def _load_programme(table: Mapping[str, Any]) -> datasets.Programme | None:
    if "programme" not in table:
        return None
    name = table["programme"]
    if name not in PROGRAMMES:
        raise ConfigError(_unknown("data.programme", name, list(PROGRAMMES)))
    return PROGRAMMES[name]()


def _unknown(key: str, value: Any, known: list, what: str = "value") -> str:
    close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(map(str, known[:12]))}"
    more = ", ..." if not close and len(known) > 12 else ""
    return f"key {key!r}: unknown {what} {value!r}; {hint}{more}"


# -- units and groups -----------------------------------------------------------------


def _groups(programme: datasets.Programme | None) -> dict[str, tuple]:
    if programme is None:
        return {}
    return {"assisted": programme.treated_codes, "helpers": tuple(dict.fromkeys(programme.helper_codes))}


def _resolve_units(values: list, key: str, units: set, groups: Mapping[str, tuple], names: Mapping) -> tuple:
    """Unit identifiers and ``group:NAME`` references -> unit identifiers, checked."""
    resolved = []
    for value in values:
        if isinstance(value, str) and value.startswith("group:"):
            group = value.removeprefix("group:")
            if group not in groups:
                raise ConfigError(
                    f"key {key!r}: unknown group {value!r}; "
                    + (f"known: {', '.join('group:' + g for g in groups)}" if groups
                       else "groups need [data] programme")
                )
            resolved.extend(groups[group])
        elif value in units:
            resolved.append(value)
        else:
            raise ConfigError(_unknown_unit(key, value, units, names))
    return tuple(dict.fromkeys(resolved))


def _unknown_unit(key: str, value: Any, units: set, names: Mapping) -> str:
    by_name = [u for u, n in names.items() if str(n).lower() == str(value).lower()]
    if by_name:
        return f"key {key!r}: {value!r} is a unit name, not an identifier; write {by_name[0]!r}"
    return _unknown(key, value, sorted(units, key=str), "unit")


# -- outcomes and predictors ------------------------------------------------------------


def _outcomes(items: list, frame: pd.DataFrame) -> tuple[Outcome, ...]:
    if not items:
        raise ConfigError("key 'outcomes' is empty; add at least one [[outcomes]] table")
    outcomes = tuple(_outcome(item, i, frame) for i, item in enumerate(items))
    headlines = [o.column for o in outcomes if o.headline]
    if len(headlines) > 1:
        raise ConfigError(f"several outcomes have 'headline = true' ({headlines}); mark one")
    if not headlines:  # the first outcome is the headline one by default
        first = outcomes[0]
        outcomes = (Outcome(first.column, first.label, True, first.exclude_flagged, first.predictors),
                    *outcomes[1:])
    columns = [o.column for o in outcomes]
    if len(set(columns)) != len(columns):
        raise ConfigError(f"an outcome column is listed twice in [[outcomes]] ({columns}); list each once")
    return outcomes


def _outcome(item: Any, index: int, frame: pd.DataFrame) -> Outcome:
    where = f"outcomes[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a table ([[outcomes]]), got {item!r}")
    _check_table(item, "outcomes", where)
    column = item["column"]
    _check_column(f"{where}.column", column, frame)
    predictors = tuple(
        _predictor(p, f"{where}.predictors[{j}]", frame) for j, p in enumerate(item.get("predictors", []))
    )
    return Outcome(
        column=column,
        label=item.get("label", column),
        headline=item.get("headline", False),
        exclude_flagged=item.get("exclude_flagged", False),
        predictors=predictors,
    )


def _check_column(key: str, column: str, frame: pd.DataFrame) -> None:
    if column not in frame.columns:
        raise ConfigError(_unknown(key, column, list(frame.columns), "column"))
    if not pd.api.types.is_numeric_dtype(frame[column]):
        raise ConfigError(f"key {key!r}: column {column!r} is not numeric; choose a numeric column")


def _predictor(item: Any, where: str, frame: pd.DataFrame) -> Predictor:
    if not isinstance(item, dict):
        raise ConfigError(
            f"{where} must be an inline table such as {{variable = \"x\", at = 2010}} or "
            f"{{variable = \"x\", mean = [2005, 2010]}}, got {item!r}"
        )
    _check_table(item, "predictor", where)
    _check_column(f"{where}.variable", item["variable"], frame)
    if ("at" in item) == ("mean" in item):
        raise ConfigError(f"{where} needs exactly one of 'at' (a period) or 'mean' ([start, end])")
    if "at" in item:
        return at(item["variable"], item["at"])
    window = _window(item["mean"], f"{where}.mean")
    return mean(item["variable"], *window)


def _window(value: list, key: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2 or not all(_is_type(v, (int,)) for v in value):
        raise ConfigError(f"key {key!r} must be [start, end] (two integers), got {value!r}")
    if value[1] < value[0]:
        raise ConfigError(f"key {key!r} = {value!r} ends before it starts; swap the years")
    return int(value[0]), int(value[1])


# -- pools ----------------------------------------------------------------------------


def _pools(raw: Mapping[str, Any], frame: pd.DataFrame, unit: str, ctx: dict) -> dict[str, tuple]:
    """Pool name -> member units; ``{"all": every unit}`` without ``[pools]``."""
    tables = raw.get("pools", {})
    if not tables:
        return {"all": tuple(pd.unique(frame[unit]).tolist())}
    return {name: _pool(name, table, frame, unit, ctx) for name, table in tables.items()}


def _pool(name: str, table: Any, frame: pd.DataFrame, unit: str, ctx: dict) -> tuple:
    where = f"pools.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"key {where!r} must be a table ([pools.\"{name}\"])")
    _check_table(table, "pools.*", where)
    if "units" in table:
        return _resolve_units(table["units"], f"{where}.units", ctx["units"], ctx["groups"], ctx["names"])
    if "column" not in table:
        raise ConfigError(f"{where} needs 'units', or 'column' with 'values' or 'programme_pool'")
    column = table["column"]
    if column not in frame.columns:
        raise ConfigError(_unknown(f"{where}.column", column, list(frame.columns), "column"))
    values = _pool_values(table, where, ctx["programme"])
    return tuple(pd.unique(frame.loc[frame[column].isin(values), unit]).tolist())


def _pool_values(table: Mapping[str, Any], where: str, programme: datasets.Programme | None) -> list:
    if ("values" in table) == ("programme_pool" in table):
        raise ConfigError(f"{where} needs exactly one of 'values' or 'programme_pool'")
    if "values" in table:
        return table["values"]
    if programme is None:
        raise ConfigError(f"key '{where}.programme_pool' needs [data] programme")
    name = table["programme_pool"]
    if name not in programme.pools:
        raise ConfigError(_unknown(f"{where}.programme_pool", name, list(programme.pools), "pool"))
    return list(programme.pools[name])


def _pool_names(values: list, key: str, pools: Mapping[str, tuple]) -> tuple[str, ...]:
    for name in values:
        if name not in pools:
            raise ConfigError(_unknown(key, name, list(pools), "pool") + "; define it under [pools]")
    return tuple(values)


# -- analyses ---------------------------------------------------------------------------


def _check_years(analysis: Analysis, outcomes: Mapping[str, Outcome], periods: list, key: str) -> None:
    first, last = periods[0], periods[-1]
    start = analysis.treatment_start
    if not first < start <= last:
        raise ConfigError(
            f"key '{key}.treatment_start' = {start} is outside the data's years {first}-{last}; "
            "it must leave at least one year before it"
        )
    if analysis.fit_window is not None:
        lo, hi = analysis.fit_window
        if hi >= start or lo < first:
            raise ConfigError(
                f"key '{key}.fit_window' = [{lo}, {hi}] must lie within {first}-{start - 1} "
                f"(the data start, and the year before treatment_start = {start})"
            )
    for column in analysis.outcomes:
        for predictor in outcomes[column].predictors:
            if predictor.start < first or predictor.end >= start:
                raise ConfigError(
                    f"predictor {predictor.label} of outcome {column!r} must lie within "
                    f"{first}-{start - 1} for analysis {analysis.name!r} ('{key}.treatment_start' = {start}); "
                    "move it earlier or change the analysis' treatment_start"
                )


def _main_analysis(raw: Mapping[str, Any], outcomes: tuple[Outcome, ...], pools: tuple[str, ...], ctx: dict) -> Analysis:
    design = raw["design"]
    _check_table(design, "design", "design")
    return Analysis(
        name="main",
        treated=_treated(design["treated"], "design.treated", ctx),
        treatment_start=design["treatment_start"],
        fit_window=_window(design["fit_window"], "design.fit_window") if "fit_window" in design else None,
        outcomes=tuple(o.column for o in outcomes),
        pools=pools,
        exclude_flagged=None,
    )


def _treated(values: list, key: str, ctx: dict) -> tuple:
    treated = _resolve_units(values, key, ctx["units"], ctx["groups"], ctx["names"])
    if not treated:
        raise ConfigError(f"key {key!r} is empty; name at least one treated unit")
    return treated


def _sensitivity(item: Any, index: int, main: Analysis, outcomes: Mapping[str, Outcome], ctx: dict) -> Analysis:
    where = f"sensitivity[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a table ([[sensitivity]])")
    _check_table(item, "sensitivity", where)
    if item["name"] == "main":
        raise ConfigError(f"key '{where}.name' = 'main' is reserved for the main analysis; rename it")
    start = item.get("treatment_start", main.treatment_start)
    window = _window(item["fit_window"], f"{where}.fit_window") if "fit_window" in item else None
    if window is None and main.fit_window is not None:
        window = (main.fit_window[0], min(main.fit_window[1], start - 1))
    for column in item.get("outcomes", []):
        if column not in outcomes:
            raise ConfigError(_unknown(f"{where}.outcomes", column, list(outcomes), "outcome") +
                              "; list outcomes declared under [[outcomes]]")
    return Analysis(
        name=item["name"],
        treated=_treated(item["treated"], f"{where}.treated", ctx) if "treated" in item else main.treated,
        treatment_start=start,
        fit_window=window,
        outcomes=tuple(item.get("outcomes", main.outcomes)),
        pools=_pool_names(item["pools"], f"{where}.pools", ctx["pools"]) if "pools" in item else main.pools,
        exclude_flagged=item.get("exclude_flagged"),
    )


# -- tasks --------------------------------------------------------------------------------


def _task(analysis: Analysis, outcome: Outcome, pool: str, estimator: str, ctx: dict) -> Task:
    options = tuple(sorted(ctx["estimator_options"].get(estimator, {}).items()))
    flagged = analysis.exclude_flagged if analysis.exclude_flagged is not None else outcome.exclude_flagged
    excluded = set(ctx["excluded"]) | (set(ctx["flagged"]) if flagged else set())
    donors = tuple(u for u in ctx["pools"][pool] if u not in analysis.treated and u not in excluded)
    spec = Spec(
        outcome=outcome.column,
        unit=ctx["unit"],
        time=ctx["time"],
        treated=list(analysis.treated),
        treatment_start=analysis.treatment_start,
        predictors=outcome.predictors,
        fit_window=analysis.fit_window,
        donors=donors,
        exclude=tuple(ctx["excluded"]),
        drop_incomplete_donors=ctx["drop_incomplete"],
    )
    return Task(analysis=analysis.name, outcome=outcome, pool=pool, estimator=estimator, spec=spec,
                estimator_options=options)


def _tasks(analyses, outcomes: Mapping[str, Outcome], estimators, scope: str, ctx: dict) -> tuple[Task, ...]:
    tasks = [
        _task(a, outcomes[o], pool, "classic", ctx) for a in analyses for o in a.outcomes for pool in a.pools
    ]
    main = analyses[0]
    extra = [
        _task(main, outcomes[o], pool, name, ctx)
        for name in estimators if name != "classic"
        for o in main.outcomes if scope == "all" or outcomes[o].headline
        for pool in main.pools
    ]
    return tuple(tasks + extra)


# -- options ------------------------------------------------------------------------------


def _fit_options(table: Mapping[str, Any]) -> FitOptions:
    _check_table(table, "fit", "fit")
    return FitOptions(**table)


def _inference(table: Mapping[str, Any], periods: list) -> InferenceOptions:
    _check_table(table, "inference", "inference")
    if "in_time" not in table and "in_time_start" not in table:
        table = {**table, "in_time": "none"}  # no fake start given: nothing to run
    for key in ("placebo", "leave_one_out", "in_time", "conformal", "refit_placebo_weights"):
        if key in table:
            _choice(table[key], SCOPES, f"inference.{key}")
    if "in_time_start" in table and not periods[0] < table["in_time_start"] <= periods[-1]:
        raise ConfigError(
            f"key 'inference.in_time_start' = {table['in_time_start']} is outside the data's years "
            f"{periods[0]}-{periods[-1]}"
        )
    alpha = table.get("conformal_alpha", 0.1)
    if not 0 < alpha < 1:
        raise ConfigError(f"key 'inference.conformal_alpha' must lie in (0, 1), got {alpha}")
    if "placebo_estimators" in table:
        table = {**table, "placebo_estimators": _estimator_names(table["placebo_estimators"], "inference.placebo_estimators")}
    options = InferenceOptions(**table)
    if options.in_time != "none" and options.in_time_start is None:
        raise ConfigError("key 'inference.in_time_start' is missing; give the fake treatment year "
                          "or set in_time = \"none\"")
    return options


def _thresholds(table: Mapping[str, Any]) -> tuple[float, float]:
    _check_table(table, "report", "report")
    good, fair = float(table.get("fit_good", 0.25)), float(table.get("fit_fair", 0.5))
    if not 0 < good < fair:
        raise ConfigError(f"keys 'report.fit_good' ({good}) and 'report.fit_fair' ({fair}) need 0 < good < fair")
    return good, fair


def _estimator_names(values: list, key: str) -> tuple[str, ...]:
    for name in values:
        if name not in ESTIMATORS:
            raise ConfigError(_unknown(key, name, sorted(ESTIMATORS), "estimator"))
    return tuple(dict.fromkeys(values))


def _estimators(table: Mapping[str, Any]) -> tuple[tuple[str, ...], str, dict]:
    _check_table(table, "estimators", "estimators")
    names = _estimator_names(table.get("names", ["classic"]), "estimators.names")
    if "classic" not in names:
        raise ConfigError("key 'estimators.names' must include \"classic\" (the reference estimator)")
    options = table.get("options", {})
    for name, values in options.items():
        if name not in names:
            raise ConfigError(f"key 'estimators.options.{name}': {name!r} is not in estimators.names "
                              f"({', '.join(names)}); add it there or remove its options")
        if not isinstance(values, dict):
            raise ConfigError(f"key 'estimators.options.{name}' must be a table such as {{ se = false }}")
    scope = _choice(table.get("outcomes", "headline"), ("headline", "all"), "estimators.outcomes")
    return names, scope, options


def _speccurve(table: Mapping[str, Any] | None, pools: tuple[str, ...], known: Mapping[str, tuple]) -> SpecCurveOptions | None:
    if table is None:
        return None
    _check_table(table, "speccurve", "speccurve")
    n_lags = table.get("n_lags", 3)
    if n_lags < 1:
        raise ConfigError(f"key 'speccurve.n_lags' must be at least 1, got {n_lags}")
    windows = tuple(_window(w, f"speccurve.fit_windows[{i}]") for i, w in enumerate(table.get("fit_windows", [])))
    return SpecCurveOptions(
        estimators=_estimator_names(table.get("estimators", ["classic"]), "speccurve.estimators"),
        pools=_pool_names(table["pools"], "speccurve.pools", known) if "pools" in table else pools,
        placebo=table.get("placebo", False),
        n_lags=n_lags,
        fit_windows=windows or (None,),
    )



# -- assembly -------------------------------------------------------------------------------


def _context(raw: Mapping[str, Any], data: pd.DataFrame) -> dict:
    table = raw["data"]
    unit = table["unit"]
    programme = _load_programme(table)
    label = table.get("label", "")
    names = dict(zip(data[unit], data[label])) if label else {}
    ctx = {
        "unit": unit,
        "time": table["time"],
        "programme": programme,
        "groups": _groups(programme),
        "units": set(pd.unique(data[unit]).tolist()),
        "names": names,
    }
    flag = table.get("flag", "")
    ctx["flagged"] = tuple(pd.unique(data.loc[data[flag].astype(bool), unit]).tolist()) if flag else ()
    return ctx


def _build(raw: dict, path: Path, data: pd.DataFrame, data_name: str, quick: bool) -> StudyConfig:
    ctx = _context(raw, data)
    study = raw["study"]
    _check_table(study, "study", "study")
    donors = raw.get("donors", {})
    _check_table(donors, "donors", "donors")
    ctx["pools"] = _pools(raw, data, ctx["unit"], ctx)
    ctx["excluded"] = _resolve_units(donors.get("exclude", []), "donors.exclude", ctx["units"], ctx["groups"], ctx["names"])
    ctx["drop_incomplete"] = donors.get("drop_incomplete", False)
    outcomes = _outcomes(raw["outcomes"], data)
    pools = _pool_names(donors.get("pools", list(ctx["pools"])), "donors.pools", ctx["pools"])
    main = _main_analysis(raw, outcomes, pools, ctx)
    by_column = {o.column: o for o in outcomes}
    analyses = [main] + [
        _sensitivity(item, i, main, by_column, ctx) for i, item in enumerate(raw.get("sensitivity", []))
    ]
    periods = sorted(pd.unique(data[ctx["time"]]).tolist())
    for i, analysis in enumerate(analyses):
        _check_years(analysis, by_column, periods, "design" if i == 0 else f"sensitivity[{i - 1}]")
    estimators, scope, estimator_options = _estimators(raw.get("estimators", {}))
    ctx["estimator_options"] = estimator_options
    if quick:
        headline = next(o for o in outcomes if o.headline)
        analyses = [Analysis("main", main.treated, main.treatment_start, main.fit_window,
                             (headline.column,), main.pools[:1], None)]
        estimators = ("classic",)
    table = raw["data"]
    return StudyConfig(
        title=study["title"],
        description=study.get("description", ""),
        source=path,
        data=data,
        data_name=data_name,
        unit=ctx["unit"],
        time=ctx["time"],
        label=table.get("label", ""),
        datasheet=table.get("datasheet", ""),
        programme=ctx["programme"],
        flag=table.get("flag", ""),
        flagged_units=ctx["flagged"],
        excluded_units=ctx["excluded"],
        pools=ctx["pools"],
        analyses=tuple(analyses),
        estimators=estimators,
        estimator_options=estimator_options,
        estimator_scope=scope,
        fit_options=_fit_options(raw.get("fit", {})),
        inference=_inference(raw.get("inference", {}), periods),
        fit_thresholds=_thresholds(raw.get("report", {})),
        speccurve=None if quick else _speccurve(raw.get("speccurve"), main.pools, ctx["pools"]),
        output=Path(os.path.normpath(path.parent / study["output"])) if "output" in study else None,
        tasks=_tasks(analyses, by_column, estimators, scope, ctx),
    )
