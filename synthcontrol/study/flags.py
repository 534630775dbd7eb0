"""The data's audit flags in a study (``[audit]``): reading the flags table, the
donors it drops from each outcome, and the flags given to the fits to warn about.

A flags table has the columns of :func:`synthcontrol.audit` (``unit, period, column,
kind``) and optionally ``action`` (as a dataset's shipped flags table has it, e.g.
:func:`synthcontrol.datasets.load_china_cities_flags`). The rules are those of
:class:`~synthcontrol.study.model.AuditRules`; a column the study derives as a
logarithm (``[data] logs``) inherits the flags of its source column.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping

import pandas as pd

from ..datasets import load_china_cities_flags
from ..data_audit.flags import check_flags
from ..errors import SynthControlError, ConfigError
from .model import AuditRules
from .schema import check_table, distinct, read_text, unknown

__all__ = ["FLAGS", "audit_rules", "dropped_donors", "flag_words"]

#: Built-in flags tables a configuration may name in ``[audit] flags``.
FLAGS: dict[str, Callable[[], pd.DataFrame]] = {"china_cities": load_china_cities_flags}


def audit_rules(table: Mapping[str, Any], config: Path, logs: Mapping[str, str]) -> AuditRules:
    """The ``[audit]`` table as :class:`AuditRules`; ``logs`` maps each column the study
    derived as a logarithm to its source column."""
    check_table(table, "audit", "audit")
    if ("flags" in table) == ("path" in table):
        raise ConfigError(f"[audit] needs exactly one of 'flags' (a built-in flags table: {', '.join(FLAGS)}) "
                          "or 'path' (a CSV file with the columns unit, period, column, kind[, action])")
    if "flags" in table:
        if table["flags"] not in FLAGS:
            raise ConfigError(unknown("audit.flags", table["flags"], list(FLAGS), "flags table"))
        flags = FLAGS[table["flags"]]()
        source = f"built-in flags '{table['flags']}' (synthcontrol.datasets.{FLAGS[table['flags']].__name__})"
    else:
        file = Path(os.path.normpath(config.parent / table["path"])).resolve()
        flags, source = _read_flags(file), str(file)
    try:
        flags = check_flags(flags)
    except SynthControlError as error:
        raise ConfigError(f"[audit] {source}: {error}") from error
    flags = _with_logs(flags, logs)
    actions = sorted(flags["action"].dropna().unique().tolist()) if "action" in flags.columns else []
    kinds = sorted(flags["kind"].dropna().unique().tolist())
    return AuditRules(
        flags=flags, source=source,
        drop=_names(table, "drop", ("exclude",), actions, "action"),
        warn=_names(table, "warn", ("exclude",), actions, "action"),
        breaks=_names(table, "breaks", ("common_break", "jump", "relation"), kinds, "kind", strict=False),
    )


def _read_flags(file: Path) -> pd.DataFrame:
    text = read_text(file, "key 'audit.path': flags file")
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ConfigError(f"key 'audit.path': {file} is not a readable CSV file: {error}") from error


def _names(table: Mapping[str, Any], key: str, default: tuple, known: list, what: str,
           strict: bool = True) -> tuple[str, ...]:
    """A list of actions or kinds; with ``strict``, each must occur in the flags
    (a typing error would silently drop nothing)."""
    values = table.get(key, list(default))
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"key 'audit.{key}' must be a list of {what}s (strings), got {values!r}")
    for value in distinct(values, f"audit.{key}", what):
        if strict and known and value not in known:
            raise ConfigError(unknown(f"audit.{key}", value, known, what) + " (no flag has it)")
    return tuple(values)


def _with_logs(flags: pd.DataFrame, logs: Mapping[str, str]) -> pd.DataFrame:
    """The flags, with those of each logged source column repeated on its log column."""
    copies = [flags[flags["column"] == source].assign(column=derived) for derived, source in logs.items()]
    return pd.concat([flags, *copies], ignore_index=True) if copies else flags


def dropped_donors(rules: AuditRules, column: str, window: tuple, post_start: Hashable,
                   candidates: Iterable[Hashable]) -> tuple[tuple[Hashable, str], ...]:
    """The candidates the rules drop from ``column``: each with a flag of a ``drop``
    action in the fit ``window`` (a change flagged at its first period excepted) or
    from ``post_start`` on; returned as (unit, its flagged cells in words).

    Examples
    --------
    >>> flags = pd.DataFrame({"unit": ["A", "B", "C"], "period": [2010, 2019, 2023],
    ...                       "column": "y", "kind": ["jump", "common_break", "jump"],
    ...                       "action": "exclude"})
    >>> rules = AuditRules(flags, "example")
    >>> dropped_donors(rules, "y", (2019, 2021), 2022, ["A", "B", "C", "D"])
    (('C', 'y 2023 jump'),)
    """
    flags = rules.with_actions(rules.drop)
    flags = flags[flags["column"] == column]
    start, end = window
    period = flags["period"]
    in_window = (period >= start) & (period <= end) & ~((period == start) & flags["kind"].isin(rules.breaks))
    relevant = flags[in_window | (period >= post_start)]
    found = []
    for unit in candidates:
        rows = relevant[relevant["unit"] == unit]
        if len(rows):
            found.append((unit, flag_words(rows)))
    return tuple(found)


def flag_words(rows: pd.DataFrame) -> str:
    """Flagged cells in words: ``column period kind, ...`` in period order."""
    rows = rows.sort_values(["column", "period"])
    return ", ".join(f"{r.column} {r.period} {r.kind}" for r in rows.itertuples())
