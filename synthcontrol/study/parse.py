"""From a TOML file to the study model: data, unit sets, outcomes and analyses.

:func:`load_config` is the entry point: it reads the file, checks every key against
:mod:`~synthcontrol.study.schema`, loads the data, builds the model
(:mod:`~synthcontrol.study.model`), expands it into tasks
(:mod:`~synthcontrol.study.expand`) and checks every task against the data
(:mod:`~synthcontrol.study.validate`), so that a configuration it accepts does not
fail later for a reason it could have seen. Errors are
:class:`~synthcontrol.errors.ConfigError` naming the key at fault and the fix.

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

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .._validation import check_bool, describe
from ..errors import ArgumentError, ConfigError
from ..spec import Predictor, at, mean
from . import options as parse_options
from .data import DATASETS, check_column, load_data
from .expand import DonorRules, block_tasks, curve_tasks, tasks
from .flags import audit_rules
from .model import Analysis, Block, BlockOptions, Claim, Group, Outcome, Pool, StudyConfig, StudyData
from .schema import (check_table, choice, distinct, distinct_names, nonblank, nonempty, read_toml, unknown,
                     window)
from .validate import check_designs, probe_estimators, study_panel

__all__ = ["load_config", "DATASETS"]


def load_config(path: str | os.PathLike, *, quick: bool = False) -> StudyConfig:
    """Read and validate a study configuration.

    Parameters
    ----------
    path : str or Path
        The TOML file. A relative ``[data] path`` is read relative to it.
    quick : bool, default False
        Keep only the main analysis, the headline outcome, the first pool and the
        reference estimator (a smoke run of the whole pipeline).

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        A missing, mistyped or unknown key, an unreadable file, an unknown column,
        group, pool or unit, years outside the data, or a task the data cannot fit;
        the message names the key or task and the fix.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"path must be the path of a TOML file (str or pathlib.Path), got {describe(path)}")
    path, quick = Path(path), check_bool(quick, "quick")
    raw = read_toml(path)
    data = load_data(raw["data"], path)
    config = _build(raw, path, data)
    if quick:
        config = _quick(config)
    rules = _rules(raw, config)
    # The estimators' probe fits need the tasks; the tasks' plans need what the probe found.
    draft = replace(config, tasks=tasks(config, config.estimators, rules))
    panel = study_panel(draft)
    estimators = probe_estimators(draft, panel)
    config = replace(config, estimators=estimators, tasks=tasks(config, estimators, rules))
    config = replace(config, curves=curve_tasks(config), block_tasks=block_tasks(config))
    check_designs(config, panel)
    return config


# -- unit sets: groups and pools ------------------------------------------------------


def _groups(raw: Mapping[str, Any], data: StudyData) -> tuple[Group, ...]:
    groups: list[Group] = []
    for name, table in raw.get("groups", {}).items():
        where = f"groups.{name}"
        nonblank(name, f'groups."{name}"')
        units = _unit_set(table, where, "groups.*", data, {g.name: g.units for g in groups})
        groups.append(Group(name, units, table.get("description", "")))
    return tuple(groups)


def _pools(raw: Mapping[str, Any], data: StudyData, groups: Mapping[str, tuple]) -> tuple[Pool, ...]:
    """The named pools; one pool "all" of every unit without ``[pools]``."""
    tables = raw.get("pools", {})
    if not tables:
        return (Pool("all", tuple(pd.unique(data.frame[data.unit]).tolist()), "every unit of the data"),)
    return tuple(
        Pool(nonblank(name, f'pools."{name}"'), _unit_set(table, f"pools.{name}", "pools.*", data, groups),
             table.get("description", ""))
        for name, table in tables.items()
    )


def _unit_set(table: Any, where: str, schema: str, data: StudyData, groups: Mapping[str, tuple]) -> tuple:
    """Units listed (``units``) or selected by a column's values (``column`` + ``values``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"key {where!r} must be a table ([{where}])")
    check_table(table, schema, where)
    if ("units" in table) == ("column" in table) or ("column" in table) != ("values" in table):
        raise ConfigError(f"{where} needs either 'units', or 'column' with 'values'")
    if "units" in table:
        units = _resolve_units(nonempty(table["units"], f"{where}.units", "unit"), f"{where}.units", data, groups)
    else:
        column = table["column"]
        if column not in data.frame.columns:
            raise ConfigError(unknown(f"{where}.column", column, list(data.frame.columns), "column"))
        values = distinct(nonempty(table["values"], f"{where}.values", "value"), f"{where}.values", "value")
        frame = data.frame
        units = tuple(pd.unique(frame.loc[frame[column].isin(values), data.unit]).tolist())
        if not units:
            raise ConfigError(f"{where} holds no unit: no row of the data has {column!r} in {values!r}; "
                              "check the values")
    return units


def _resolve_units(values: list, key: str, data: StudyData, groups: Mapping[str, tuple]) -> tuple:
    """Unit identifiers and ``group:NAME`` references -> unit identifiers, checked."""
    units = set(pd.unique(data.frame[data.unit]).tolist())
    resolved = []
    for value in distinct(values, key, "unit"):
        if isinstance(value, str) and value.startswith("group:"):
            group = value.removeprefix("group:")
            if group not in groups:
                known = ", ".join("group:" + g for g in groups)
                raise ConfigError(f"key {key!r}: unknown group {value!r}; "
                                  + (f"known: {known}" if groups else "define it under [groups.NAME]"))
            resolved.extend(groups[group])
        elif isinstance(value, (list, dict)):
            raise ConfigError(f"key {key!r} lists {value!r}; list unit identifiers or \"group:NAME\" references, "
                              "one value each")
        elif value in units:
            resolved.append(value)
        else:
            raise ConfigError(_unknown_unit(key, value, units, data))
    return tuple(dict.fromkeys(resolved))  # groups may overlap, and each other or a unit listed


def _unknown_unit(key: str, value: Any, units: set, data: StudyData) -> str:
    by_name = [u for u, n in data.names.items() if str(n).lower() == str(value).lower()]
    if by_name:
        return f"key {key!r}: {value!r} is a unit name, not an identifier; write {by_name[0]!r}"
    same_text = [u for u in units if str(u) == str(value)]
    if same_text:
        return (f"key {key!r}: column {data.unit!r} holds {_kind(same_text[0])}; {value!r} is given as "
                f"{_kind(value)}: write {same_text[0]!r}")
    return unknown(key, value, sorted(units, key=str), "unit")


def _kind(value: Any) -> str:
    return "text" if isinstance(value, str) else "integers" if isinstance(value, int) else "numbers"


def _pool_names(values: list, key: str, pools: tuple[Pool, ...]) -> tuple[str, ...]:
    known = [p.name for p in pools]
    for name in distinct(nonempty(values, key, "pool"), key, "pool"):
        if name not in known:
            raise ConfigError(unknown(key, name, known, "pool") + "; define it under [pools]")
    return tuple(values)


# -- outcomes and predictors ------------------------------------------------------------


def _outcomes(items: list, data: StudyData) -> tuple[Outcome, ...]:
    outcomes = tuple(_outcome(item, i, data) for i, item in enumerate(nonempty(items, "outcomes", "outcome")))
    headlines = [o.column for o in outcomes if o.headline]
    if len(headlines) > 1:
        raise ConfigError(f"several outcomes have 'headline = true' ({headlines}); mark one")
    if not headlines:  # the first outcome is the headline one by default
        outcomes = (replace(outcomes[0], headline=True), *outcomes[1:])
    columns = [o.column for o in outcomes]
    if len(set(columns)) != len(columns):
        raise ConfigError(f"an outcome column is listed twice in [[outcomes]] ({columns}); list each once")
    distinct_names([o.label for o in outcomes], [f"outcomes[{i}].label" for i in range(len(outcomes))], "outcome")
    return outcomes


def _outcome(item: Any, index: int, data: StudyData) -> Outcome:
    where = f"outcomes[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a table ([[outcomes]]), got {item!r}")
    check_table(item, "outcomes", where)
    frame = data.frame
    column = item["column"]
    if column in (data.unit, data.time):
        role = "unit" if column == data.unit else "time"
        raise ConfigError(f"key '{where}.column' = {column!r} is the data's {role} column ([data]); choose the "
                          "column of an outcome variable")
    check_column(f"{where}.column", column, frame)
    predictors = tuple(
        _predictor(p, f"{where}.predictors[{j}]", frame) for j, p in enumerate(item.get("predictors", []))
    )
    distinct([p.label for p in predictors], f"{where}.predictors", "predictor")
    return Outcome(
        column=column,
        label=item.get("label", column),
        headline=item.get("headline", False),
        exclude_flagged=_exclude_flagged(item, where, data) or False,
        predictors=predictors,
        log=item.get("log", column in data.logs),
        units=item.get("units", ""),
        fit_window=window(item["fit_window"], f"{where}.fit_window") if "fit_window" in item else None,
    )


def _exclude_flagged(item: Mapping[str, Any], where: str, data: StudyData) -> bool | None:
    """The table's ``exclude_flagged`` (None: not given); true needs a flag column to read."""
    value = item.get("exclude_flagged")
    if value and not data.flag:
        raise ConfigError(f"key '{where}.exclude_flagged' = true excludes the units flagged in the data, but [data] "
                          "names no flag column; add 'flag' to [data] or remove the key")
    return value


def _predictor(item: Any, where: str, frame: pd.DataFrame) -> Predictor:
    if not isinstance(item, dict):
        raise ConfigError(
            f"{where} must be an inline table such as {{variable = \"x\", at = 2010}} or "
            f"{{variable = \"x\", mean = [2005, 2010]}}, got {item!r}"
        )
    check_table(item, "predictor", where)
    check_column(f"{where}.variable", item["variable"], frame)
    if ("at" in item) == ("mean" in item):
        raise ConfigError(f"{where} needs exactly one of 'at' (a period) or 'mean' ([start, end])")
    if "at" in item:
        return at(item["variable"], item["at"])
    return mean(item["variable"], *window(item["mean"], f"{where}.mean"))


# -- analyses ---------------------------------------------------------------------------


def _main_analysis(raw: Mapping[str, Any], outcomes: tuple[Outcome, ...], pools: tuple[str, ...],
                   data: StudyData, groups: Mapping[str, tuple]) -> Analysis:
    design = raw["design"]
    check_table(design, "design", "design")
    return Analysis(
        name="main",
        treated=_treated(design["treated"], "design.treated", data, groups),
        treatment_start=design["treatment_start"],
        fit_window=window(design["fit_window"], "design.fit_window") if "fit_window" in design else None,
        outcomes=tuple(o.column for o in outcomes),
        pools=pools,
        exclude_flagged=None,
    )


def _treated(values: list, key: str, data: StudyData, groups: Mapping[str, tuple]) -> tuple:
    return _resolve_units(nonempty(values, key, "treated unit"), key, data, groups)


def _sensitivity(item: Any, index: int, main: Analysis, outcomes: tuple[Outcome, ...], pools: tuple[Pool, ...],
                 data: StudyData, groups: Mapping[str, tuple]) -> Analysis:
    where = f"sensitivity[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a table ([[sensitivity]])")
    check_table(item, "sensitivity", where)
    if item["name"] == "main":
        raise ConfigError(f"key '{where}.name' = 'main' is reserved for the main analysis; rename it")
    start = item.get("treatment_start", main.treatment_start)
    fit_window = window(item["fit_window"], f"{where}.fit_window") if "fit_window" in item else None
    own_window = fit_window is not None
    if fit_window is None and main.fit_window is not None:
        fit_window = (main.fit_window[0], min(main.fit_window[1], start - 1))
    known = [o.column for o in outcomes]
    chosen = nonempty(item.get("outcomes", known), f"{where}.outcomes", "outcome")
    for column in distinct(chosen, f"{where}.outcomes", "outcome"):
        if column not in known:
            raise ConfigError(unknown(f"{where}.outcomes", column, known, "outcome") +
                              "; list outcomes declared under [[outcomes]]")
    return Analysis(
        name=item["name"],
        treated=_treated(item["treated"], f"{where}.treated", data, groups) if "treated" in item else main.treated,
        treatment_start=start,
        fit_window=fit_window,
        outcomes=tuple(item.get("outcomes", main.outcomes)),
        pools=_pool_names(item["pools"], f"{where}.pools", pools) if "pools" in item else main.pools,
        exclude_flagged=_exclude_flagged(item, where, data),
        description=item.get("description", ""),
        exclude=_resolve_units(item.get("exclude", []), f"{where}.exclude", data, groups),
        drop_audited=item.get("drop_audited", True),
        own_window=own_window,
    )


def _check_years(analysis: Analysis, outcomes: tuple[Outcome, ...], periods: list, key: str) -> None:
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
    by_column = {o.column: o for o in outcomes}
    for column in analysis.outcomes:
        own = by_column[column].fit_window
        if own is not None and not analysis.own_window and (
                own[0] < first or own[0] >= start or (analysis.is_main and own[1] >= start)):
            raise ConfigError(
                f"fit_window {list(own)} of outcome {column!r} must start within {first}-{start - 1} for "
                f"analysis {analysis.name!r} ('{key}.treatment_start' = {start}); move it or give the "
                "analysis its own fit_window"
            )
        # A predictor measured from the treatment start on is accepted, with the
        # PostTreatmentPredictorWarning of sc.fit, so that published specifications
        # (ADH 2015) can be written as published; one outside the data is refused.
        for predictor in by_column[column].predictors:
            if predictor.start < first or predictor.end > last:
                raise ConfigError(
                    f"predictor {predictor.label} of outcome {column!r} reaches outside the data's years "
                    f"{first}-{last} (analysis {analysis.name!r}); move its window into the data"
                )


def _analyses(raw: Mapping[str, Any], outcomes: tuple[Outcome, ...], pools: tuple[Pool, ...],
              data: StudyData, groups: Mapping[str, tuple]) -> tuple[Analysis, ...]:
    donors = raw.get("donors", {})
    names = _pool_names(donors.get("pools", [p.name for p in pools]), "donors.pools", pools)
    main = _main_analysis(raw, outcomes, names, data, groups)
    analyses = (main, *(_sensitivity(item, i, main, outcomes, pools, data, groups)
                        for i, item in enumerate(raw.get("sensitivity", []))))
    distinct_names([a.name for a in analyses[1:]], [f"sensitivity[{i}].name" for i in range(len(analyses) - 1)],
                   "sensitivity analysis")
    periods = data.periods
    for i, analysis in enumerate(analyses):
        _check_years(analysis, outcomes, periods, "design" if i == 0 else f"sensitivity[{i - 1}]")
    return analyses


# -- assembly -----------------------------------------------------------------------------


def _build(raw: dict, path: Path, data: StudyData) -> StudyConfig:
    study = raw["study"]
    check_table(study, "study", "study")
    check_table(raw.get("donors", {}), "donors", "donors")
    groups = _groups(raw, data)
    members = {g.name: g.units for g in groups}
    pools = _pools(raw, data, members)
    outcomes = _outcomes(raw["outcomes"], data)
    analyses = _analyses(raw, outcomes, pools, data, members)
    main_pools = analyses[0].pools
    estimators, scope = parse_options.estimators(raw.get("estimators", {}), main_pools)
    return StudyConfig(
        title=nonblank(study["title"], "study.title", "title"),
        description=study.get("description", ""),
        sources=tuple(str(s) for s in study.get("sources", [])),
        source=path,
        data=data,
        groups=groups,
        pools=pools,
        excluded_units=_resolve_units(raw.get("donors", {}).get("exclude", []), "donors.exclude", data, members),
        outcomes=outcomes,
        analyses=analyses,
        estimators=estimators,
        estimator_scope=scope,
        fit_options=parse_options.fit_options(raw.get("fit", {})),
        inference=parse_options.inference(raw.get("inference", {}), data.periods, analyses[0].treatment_start,
                                          tuple(e.name for e in estimators)),
        report=parse_options.report(raw.get("report", {})),
        speccurve=parse_options.speccurve(raw.get("speccurve"), main_pools, [p.name for p in pools]),
        output=Path(os.path.normpath(path.parent / study["output"])) if "output" in study else None,
        tasks=(),
        audit=audit_rules(raw["audit"], path, data.logs) if "audit" in raw else None,
        claims=_claims(raw.get("claims", []), outcomes),
        blocks=_blocks(raw["blocks"], analyses[0], data, members) if "blocks" in raw else None,
    )


def _claims(items: list, outcomes: tuple[Outcome, ...]) -> tuple[Claim, ...]:
    known = [o.column for o in outcomes]
    claims = []
    for i, item in enumerate(items):
        where = f"claims[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table ([[claims]]), got {item!r}")
        check_table(item, "claims", where)
        for column in distinct(item.get("outcomes", []), f"{where}.outcomes", "outcome"):
            if column not in known:
                raise ConfigError(unknown(f"{where}.outcomes", column, known, "outcome") +
                                  "; list outcomes declared under [[outcomes]], or none for a claim the data "
                                  "cannot measure")
        direction = choice(item["direction"], ("increase", "decrease"), f"{where}.direction") \
            if "direction" in item else None
        claims.append(Claim(item["name"], nonblank(item["statement"], f"{where}.statement", "statement"),
                            tuple(item.get("outcomes", [])), direction, item.get("note", "")))
    distinct_names([c.name for c in claims], [f"claims[{i}].name" for i in range(len(claims))], "claim")
    return tuple(claims)


def _blocks(table: Any, main: Analysis, data: StudyData, groups: Mapping[str, tuple]) -> BlockOptions:
    check_table(table, "blocks", "blocks")
    blocks = []
    for name, values in table["treated"].items():
        key = f"blocks.treated.{name}"
        nonblank(name, f'blocks.treated."{name}"')
        if not isinstance(values, list):
            raise ConfigError(f"key {key!r} must be a list of treated units or groups, got {values!r}")
        units = _resolve_units(nonempty(values, key, "unit"), key, data, groups)
        outside = [u for u in units if u not in main.treated]
        if outside or len(units) < 2:
            raise ConfigError(f"key {key!r}: a block holds at least two treated units of the main analysis "
                              f"({', '.join(map(str, main.treated))}); got {list(units)}")
        blocks.append(Block(name, units))
    return parse_options.block_options(table, tuple(blocks), main.pools)


def _rules(raw: Mapping[str, Any], config: StudyConfig) -> DonorRules:
    return DonorRules(
        unit=config.data.unit,
        time=config.data.time,
        pools={p.name: p.units for p in config.pools},
        excluded=config.excluded_units,
        flagged=config.data.flagged_units,
        drop_incomplete=raw.get("donors", {}).get("drop_incomplete", False),
        periods=tuple(config.data.periods),
        audit=config.audit,
    )


def _quick(config: StudyConfig) -> StudyConfig:
    """Only the main analysis, its headline outcome and first pool, the reference
    estimator, the blocks' first estimator on that pool, and no specification curves."""
    main = config.main
    analysis = replace(main, outcomes=(config.headline.column,), pools=main.pools[:1])
    blocks = None if config.blocks is None else replace(
        config.blocks, outcomes="headline", pools=main.pools[:1], estimators=config.blocks.estimators[:1])
    return replace(config, analyses=(analysis,), estimators=config.estimators[:1], speccurve=None, blocks=blocks)
