"""The data of a study (``[data]``): a built-in dataset or a CSV file, checked, with
the natural logarithms the configuration asks for (``logs``)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ..datasets import load_china_cities, load_smoking, load_basque, load_texas, load_hongkong
from ..errors import ConfigError
from .model import StudyData
from .schema import check_table, distinct, read_text, unknown

__all__ = ["DATASETS", "load_data", "check_column"]

#: Built-in datasets a configuration may name in ``[data] dataset``.
DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "china_cities": load_china_cities,
    "smoking": load_smoking,
    "basque": load_basque,
    "texas": load_texas,
    "hongkong": load_hongkong,
}


def load_data(table: Mapping[str, Any], path: Path) -> StudyData:
    check_table(table, "data", "data")
    if ("dataset" in table) == ("path" in table):
        raise ConfigError(
            "[data] needs exactly one of 'dataset' (a built-in dataset: "
            f"{', '.join(DATASETS)}) or 'path' (a CSV file)"
        )
    if "dataset" in table:
        name = table["dataset"]
        if name not in DATASETS:
            raise ConfigError(unknown("data.dataset", name, list(DATASETS)))
        frame = DATASETS[name]()
        source = f"built-in dataset '{name}' (synthcontrol.datasets.{DATASETS[name].__name__})"
    else:
        file = Path(os.path.normpath(path.parent / table["path"])).resolve()
        frame, source = _read_csv(file, path), str(file)
    for key in ("unit", "time", "label", "flag"):
        if key in table and table[key] not in frame.columns:
            raise ConfigError(unknown(f"data.{key}", table[key], list(frame.columns), "column"))
    _check_periods(frame, table["time"])
    if "flag" in table:
        _check_flag(frame, table["flag"])
    frame, logs = _add_logs(frame, table.get("logs", []))
    unit, label, flag = table["unit"], table.get("label", ""), table.get("flag", "")
    return StudyData(
        frame=frame,
        source=source,
        unit=unit,
        time=table["time"],
        label=label,
        flag=flag,
        flag_note=table.get("flag_note", ""),
        datasheet=table.get("datasheet", ""),
        flagged_units=tuple(pd.unique(frame.loc[frame[flag].astype(bool), unit]).tolist()) if flag else (),
        names=_names(frame, unit, label),
        logs=logs,
    )


def _add_logs(frame: pd.DataFrame, columns: list) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` with the natural log of each of ``columns`` as ``log_NAME``; and the
    derived column -> source column."""
    logs: dict[str, str] = {}
    for column in distinct(columns, "data.logs", "column"):
        key = f"data.logs ({column!r})"
        if not isinstance(column, str):
            raise ConfigError(f"key 'data.logs' lists column names; got {column!r}")
        check_column(key, column, frame)
        derived = f"log_{column}"
        if derived in frame.columns:
            raise ConfigError(f"key {key!r}: the data already have a column {derived!r}; use it as it is")
        values = frame[column]
        if (values <= 0).any():
            row = frame.loc[values <= 0].iloc[0]
            raise ConfigError(f"key {key!r}: {column!r} has a value {row[column]!r} <= 0 (row {row.name}); "
                              "only positive values have a logarithm")
        logs[derived] = column
    if not logs:
        return frame, logs
    return frame.assign(**{d: np.log(frame[c]) for d, c in logs.items()}), logs


def _check_periods(frame: pd.DataFrame, time: str) -> None:
    """A configuration's periods are numbers (years), as its treatment_start and windows are."""
    periods = frame[time]
    if periods.isna().any():
        row = int(periods.isna().to_numpy().argmax())
        raise ConfigError(f"key 'data.time': column {time!r} has a missing period (first at row {row}); "
                          "every row needs one")
    if not pd.api.types.is_numeric_dtype(periods) or pd.api.types.is_bool_dtype(periods):
        raise ConfigError(f"key 'data.time': column {time!r} holds {periods.dtype} values such as "
                          f"{periods.iloc[0]!r}; a configuration's periods are integers such as years: "
                          "convert the column")


def _check_flag(frame: pd.DataFrame, flag: str) -> None:
    """A flag column marks rows true or false (1 or 0): any other value, or a missing
    one, would flag a unit by accident."""
    values = frame[flag]
    if pd.api.types.is_bool_dtype(values):
        return
    bad = ~values.isin([0, 1]) if pd.api.types.is_numeric_dtype(values) else pd.Series(True, index=values.index)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise ConfigError(f"key 'data.flag': column {flag!r} holds {values.iloc[row]!r} (row {row}); a flag column "
                          "holds true/false or 1/0 in every row: convert it, or choose another column")


def _names(frame: pd.DataFrame, unit: str, label: str) -> dict:
    """Unit -> its label (the first one, should a unit's label change over time)."""
    if not label:
        return {}
    pairs = frame[[unit, label]].drop_duplicates(unit)
    return dict(zip(pairs[unit].tolist(), pairs[label].astype(str)))


def _read_csv(file: Path, config: Path) -> pd.DataFrame:
    if not file.exists():
        raise ConfigError(f"key 'data.path': file {file} not found; the path is relative to {config}")
    text = read_text(file, "key 'data.path': data file")
    header = next(csv.reader(io.StringIO(text)), [])
    repeated = [name for i, name in enumerate(header) if name in header[:i]]
    if repeated:  # pandas would rename the second one 'NAME.1' and read the first
        raise ConfigError(f"key 'data.path': {file} has two columns named {repeated[0]!r}; rename or drop one")
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ConfigError(f"key 'data.path': {file} is not a readable CSV file: {error}") from error
    if frame.empty:
        raise ConfigError(f"key 'data.path': {file} has a header but no rows of data")
    return frame




def check_column(key: str, column: str, frame: pd.DataFrame) -> None:
    """A numeric column of ``frame``, or an error naming ``key``."""
    if column not in frame.columns:
        raise ConfigError(unknown(key, column, list(frame.columns), "column"))
    if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
        raise ConfigError(f"key {key!r}: column {column!r} is not numeric; choose a numeric column")
