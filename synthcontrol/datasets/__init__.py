"""Datasets shipped with synthcontrol, and readers for users' own exports.

The shipped files in ``synthcontrol/datasets/data`` are derived by the build
script ``case_studies/data/build_datasets.py`` (``make data``) from raw inputs
that are not redistributed;
``DATASHEET.md`` next to this module documents every variable, source and
correction.

Loaders return long tidy frames, one row per unit and period:

* :func:`load_basque`, :func:`load_smoking`, :func:`load_texas`,
  :func:`load_hongkong` -- the classic benchmark panels (``unit``, ``time``,
  then the variables of the original data);
* :func:`load_china_cities` -- the derived Chinese prefecture-city panel, and
  :func:`load_china_cities_flags` -- its repaired, emptied and suspect cells.

Policy programmes (who is treated, who helps, which units make a donor pool) are not
data of the library: a study declares them in its configuration (for the YRD twinning
programme, ``case_studies/yrd_twinning.toml``).

Readers for data a user exports from a licensed database:
:func:`read_csmar_gdp`, :func:`read_csmar_population` and :func:`read_citydb`.

Examples
--------
>>> from synthcontrol.datasets import load_basque
>>> basque = load_basque()
>>> basque.columns[:4].tolist()
['unit', 'time', 'gdpcap', 'sec.agriculture']
"""

from __future__ import annotations

import os
import warnings
import zipfile
from importlib import resources
from pathlib import Path

import pandas as pd

from synthcontrol.errors import DataBuildError, MissingColumnError

__all__ = [
    "load_basque",
    "load_smoking",
    "load_texas",
    "load_hongkong",
    "load_china_cities",
    "load_china_cities_flags",
    "CITY_DERIVED_COLUMNS",
    "read_csmar_gdp",
    "read_csmar_population",
    "read_csmar_cpi",
    "read_citydb",
]

DATA_PACKAGE = "synthcontrol.datasets"

# CSMAR field codes -> normalised names. The xlsx export labels cities and
# provinces in Chinese (Ctnm, Prvcnm), the English CSV export in English (*_en).
_CSMAR_KEYS = {
    "Sgnyea": "year",
    "Ctnm_id": "city_code",
    "Ctnm": "city",
    "Ctnm_en": "city",
    "Prvcnm_id": "province_code",
    "Prvcnm": "province",
    "Prvcnm_en": "province",
}
_CSMAR_GDP_FIELDS = {
    "Gdpct01": "gdp_100m",
    "Gdpct02": "primary_share_pct",
    "Gdpct03": "secondary_share_pct",
    "Gdpct04": "tertiary_share_pct",
    "GDP_PerCapita": "gdp_per_capita",
    "GDPYoY": "gdp_growth_pct",
}
_CSMAR_GDP_REQUIRED = ("Gdpct01", "Gdpct03", "Gdpct04", "GDPYoY")
_CSMAR_POP_FIELDS = {"Eect01": "population_10k", "Eect05": "employment_10k"}
_CSMAR_POP_REQUIRED = ("Eect01",)

_CITYDB_KEYS = ("year", "province", "city", "city_code")
_CITYDB_FIELDS = (
    "gdp_100m",
    "primary_share_pct",
    "secondary_share_pct",
    "tertiary_share_pct",
    "gdp_per_capita",
    "gdp_growth_pct",
    "hukou_pop_10k",
    "resident_pop_10k",
    "fiscal_revenue_100m",
    "fiscal_expenditure_100m",
    "loan_balance_100m",
    "deposit_balance_100m",
    "fai_100m",
)
_CITYDB_REQUIRED = (
    "gdp_100m",
    "secondary_share_pct",
    "tertiary_share_pct",
    "gdp_growth_pct",
    "hukou_pop_10k",
    "fiscal_revenue_100m",
)


def _data_file(name: str):
    return resources.files(DATA_PACKAGE).joinpath("data", name)


def _load_panel(name: str) -> pd.DataFrame:
    with _data_file(name).open("rb") as handle:
        return pd.read_csv(handle)


def load_basque() -> pd.DataFrame:
    """Load the Basque Country panel (Abadie and Gardeazabal 2003).

    Returns
    -------
    pandas.DataFrame
        18 Spanish regions (``"Spain (Espana)"`` is the national total, not a
        donor) by 1955-1997: ``unit``, ``time``, ``gdpcap`` (real GDP per
        capita, thousands of 1986 USD), ``sec.*`` production shares,
        ``school.*`` education counts, ``popdens`` and ``invest``, at the full
        precision of R package Synth's ``basque`` data.

    Examples
    --------
    >>> load_basque().shape
    (774, 16)
    """
    return _load_panel("basque.csv")


def load_smoking() -> pd.DataFrame:
    """Load the California Proposition 99 panel (Abadie et al. 2010).

    Returns
    -------
    pandas.DataFrame
        39 US states by 1970-2000: ``unit``, ``time``, ``cigsale``,
        ``lnincome``, ``beer``, ``age15to24``, ``retprice``.

    Examples
    --------
    >>> load_smoking().query("unit == 'California' and time == 1988").cigsale.round(1).item()
    90.1
    """
    return _load_panel("smoking.csv")


def load_texas() -> pd.DataFrame:
    """Load the Texas prison-expansion panel (Cunningham, *The Mixtape*).

    Returns
    -------
    pandas.DataFrame
        50 states and DC by 1985-2000: ``unit``, ``time``, ``bmprison``,
        ``wmprison``, ``alcohol``, ``income``, ``ur``, ``poverty``, ``black``,
        ``perc1519``, ``aidscapita``.

    Examples
    --------
    >>> load_texas().unit.nunique()
    51
    """
    return _load_panel("texas.csv")


def load_hongkong() -> pd.DataFrame:
    """Load the Hong Kong growth panel (Hsiao, Ching and Wan 2012).

    Returns
    -------
    pandas.DataFrame
        Hong Kong and 24 economies by 61 quarters: ``unit``, ``time``
        (1 = 1993Q1 ... 61 = 2008Q1), ``quarter`` (label such as ``"1997Q3"``)
        and ``gdp_growth`` (real growth against the same quarter a year
        earlier, a fraction).

    Examples
    --------
    >>> int(load_hongkong().time.max())
    61
    """
    return _load_panel("hongkong.csv")


def load_china_cities() -> pd.DataFrame:
    """Load the derived Chinese prefecture-city panel, 2005-2023.

    The 41 Yangtze River Delta cities (``region == "YRD"``; plus Chaohu,
    2005-2010, abolished in 2011) and the prefecture cities of Henan, Shandong,
    Jiangxi and Hubei (``"neighbour"``; Laiwu 2005-2018, merged into Jinan). Outcomes are
    on a comparable real basis across the 2019 census revision; cells known to be
    wrong are empty and suspect ones are listed, with what a study should do, by
    :func:`load_china_cities_flags`; see ``DATASHEET.md`` for every column,
    source, repair and flag.

    Returns
    -------
    pandas.DataFrame
        One row per city and year, keyed by ``city_code`` (6-digit int) and
        ``year``.

    Examples
    --------
    >>> cities = load_china_cities()
    >>> int(cities.query("region == 'YRD' and year == 2023").city_code.nunique())
    41
    >>> cities.query("city_code == 341100 and year == 2005").gdp_index.item()
    100.0
    """
    frame = _load_panel("china_cities.csv")
    flags = ["boundary_change"]
    frame[flags] = frame[flags].astype(bool)
    return frame


#: Columns of the city panel computed from another one: a flag on the source column
#: holds for them too (the real index is chained from growth, per-capita GDP also
#: divides by population, real money amounts divide by the price level).
CITY_DERIVED_COLUMNS = {
    "gdp_growth": ("gdp_index", "log_gdp_index", "gdp_pc_real"),
    "population": ("gdp_pc_real",),
    "fiscal_revenue": ("fiscal_revenue_real",),
    "fiscal_expenditure": ("fiscal_expenditure_real",),
    "loan_balance": ("loan_balance_real",),
    "deposit_balance": ("deposit_balance_real",),
}


def load_china_cities_flags(*, derived: bool = True) -> pd.DataFrame:
    """Load the repaired, emptied and suspect cells of :func:`load_china_cities`.

    The build audits the city panel with :func:`synthcontrol.audit` and records
    every repair; ``DATASHEET.md`` gives the evidence for each class of flag.

    Parameters
    ----------
    derived : bool, default True
        Repeat each flag of a column on the columns derived from it
        (:data:`CITY_DERIVED_COLUMNS`; e.g. a flag on ``gdp_growth`` in 2019 is
        also one on ``log_gdp_index`` in 2019), with that column's value.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`synthcontrol.audit` (``unit`` is the city code,
        ``period`` the year) plus ``action``: ``"repaired"`` (the shipped value
        replaces a wrong raw one, given in ``value``), ``"missing"`` (the shipped
        cell is empty; the raw value is in ``value``), ``"exclude"`` (a suspect
        value kept in the panel: a study should not let a donor rely on it, so it
        drops the donor from that outcome, or shortens the window, when the cell
        lies in the fit window or post-period) or ``"keep"`` (usable: an
        interpolation, an explained difference, an economic shock). Pass the
        rows a study should heed to ``sc.fit(..., audit=...)`` to be warned.

    Examples
    --------
    >>> flags = load_china_cities_flags()
    >>> sorted(flags.action.unique())
    ['exclude', 'keep', 'missing', 'repaired']
    >>> flags.query("unit == 410800 and period == 2020 and column == 'gdp_growth'").action.tolist()
    ['missing']
    """
    flags = _load_panel("china_cities_flags.csv")
    if not derived:
        return flags
    panel = load_china_cities().set_index(["city_code", "year"])
    copies = [flags]
    for source, columns in CITY_DERIVED_COLUMNS.items():
        rows = flags[flags.column == source]
        for column in columns:
            values = panel[column].reindex(pd.MultiIndex.from_arrays([rows.unit, rows.period])).to_numpy()
            copies.append(rows.assign(column=column, value=values, expected=float("nan"),
                                      note=f"from {source}: " + rows.note))
    return pd.concat(copies, ignore_index=True)


def _read_table(path: Path) -> pd.DataFrame:
    """Read an export as strings; xlsx exports carry 2 label rows under the header."""
    path = _file_path(path)
    if not path.is_file():
        raise DataBuildError(f"{path}: {'is a directory, not a file' if path.is_dir() else 'file not found'}")
    try:
        if path.suffix.lower() in {".xlsx", ".xls"}:
            with warnings.catch_warnings():
                # CSMAR workbooks carry no default style; openpyxl warns on every read.
                warnings.filterwarnings("ignore", message="Workbook contains no default style")
                table = pd.read_excel(path, dtype=str)
            # Row 0 holds the Chinese labels, row 1 the units; data start at row 2.
            return table.iloc[2:].reset_index(drop=True)
        return pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    except (zipfile.BadZipFile, KeyError) as exc:  # a zip archive that is not a workbook
        raise DataBuildError(f"{path}: cannot read: not an Excel workbook ({exc!r})") from exc
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataBuildError(f"{path}: cannot read ({exc})") from exc


def _file_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise DataBuildError(f"path must be a file path (str or pathlib.Path), got {type(path).__name__}")
    return Path(path)


def _require(frame: pd.DataFrame, columns, path: Path) -> None:
    for column in columns:
        if column not in frame.columns:
            raise MissingColumnError(
                f"{path}: required column {column!r} is missing "
                f"(found {', '.join(map(str, frame.columns))})"
            )


def _require_one(frame: pd.DataFrame, options: tuple[str, ...], path: Path) -> str:
    for column in options:
        if column in frame.columns:
            return column
    raise MissingColumnError(f"{path}: required column {' or '.join(map(repr, options))} is missing")


def _to_numbers(frame: pd.DataFrame, columns, path: Path) -> pd.DataFrame:
    for column in columns:
        values = frame[column].str.strip()
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() & values.notna() & (values != "")
        if bad.any():
            raise DataBuildError(
                f"{path}: column {column!r} holds non-numeric value "
                f"{values[bad].iloc[0]!r} in data row {bad.idxmax()}"
            )
        frame[column] = numbers
    return frame


def _read_csmar(path: Path, fields: dict[str, str], required) -> pd.DataFrame:
    path = _file_path(path)
    raw = _read_table(path)
    _require(raw, ("Sgnyea", "Ctnm_id", *required), path)
    city = _require_one(raw, ("Ctnm", "Ctnm_en"), path)
    keys = ["Sgnyea", "Ctnm_id", city] + [c for c in ("Prvcnm_id",) if c in raw]
    province = [c for c in ("Prvcnm", "Prvcnm_en") if c in raw][:1]
    values = [c for c in fields if c in raw]
    frame = raw[keys + province + values].copy()
    frame[city] = frame[city].str.strip()
    frame = _to_numbers(frame, ["Sgnyea", "Ctnm_id"] + values, path)
    frame = frame.dropna(subset=["Sgnyea", "Ctnm_id"])
    frame = frame.rename(columns={**_CSMAR_KEYS, **fields})
    frame[["year", "city_code"]] = frame[["year", "city_code"]].astype(int)
    return frame.sort_values(["city_code", "year"]).reset_index(drop=True)


def read_csmar_gdp(path: str | Path) -> pd.DataFrame:
    """Read a CSMAR China Regional Economy city GDP table (CRE_Gdpct).

    Both export formats are accepted: the xlsx (header of field codes, then a
    row of Chinese labels and a row of units) and the English-label CSV.

    Parameters
    ----------
    path
        ``CRE_Gdpct.xlsx`` or ``CRE_Gdpct.csv``.

    Returns
    -------
    pandas.DataFrame
        ``year``, ``city_code``, ``city``, [``province_code``, ``province``],
        ``gdp_100m`` (nominal GDP, 100 million yuan), ``primary_share_pct``,
        ``secondary_share_pct``, ``tertiary_share_pct`` (% of GDP),
        ``gdp_per_capita`` (yuan), ``gdp_growth_pct`` (real growth, %), as
        exported: known errors (see ``DATASHEET.md``) are not corrected here.

    Raises
    ------
    MissingColumnError
        A required field (``Sgnyea``, ``Ctnm_id``, ``Ctnm``/``Ctnm_en``,
        ``Gdpct01``, ``Gdpct03``, ``Gdpct04``, ``GDPYoY``) is absent.
    DataBuildError
        The file is unreadable or a field holds text where a number belongs.
    """
    return _read_csmar(_file_path(path), _CSMAR_GDP_FIELDS, _CSMAR_GDP_REQUIRED)


def read_csmar_population(path: str | Path) -> pd.DataFrame:
    """Read a CSMAR city population and employment table (CRE_Eplwagct).

    Parameters
    ----------
    path
        ``CRE_Eplwagct.xlsx`` or ``CRE_Eplwagct.csv``.

    Returns
    -------
    pandas.DataFrame
        ``year``, ``city_code``, ``city``, [``province_code``, ``province``],
        ``population_10k`` (year-end population ``Eect01``, 10 thousand) and,
        where the export has it, ``employment_10k`` (employed persons in urban
        units ``Eect05``, 10 thousand). Beware: CSMAR switches Anhui cities from
        registered to resident population in 2021, so ``population_10k`` is not
        one concept throughout.

    Raises
    ------
    MissingColumnError
        ``Sgnyea``, ``Ctnm_id``, ``Ctnm``/``Ctnm_en`` or ``Eect01`` is absent.
    DataBuildError
        The file is unreadable or a field holds text where a number belongs.
    """
    return _read_csmar(_file_path(path), _CSMAR_POP_FIELDS, _CSMAR_POP_REQUIRED)


def read_csmar_cpi(path: str | Path) -> pd.DataFrame:
    """Read the CSMAR provincial price-index table (CRE_Pi01).

    Parameters
    ----------
    path
        ``CRE_Pi01.xlsx`` or ``CRE_Pi01.csv``.

    Returns
    -------
    pandas.DataFrame
        ``year``, ``province_code``, ``cpi`` (consumer price index, previous
        year = 100).

    Raises
    ------
    MissingColumnError
        ``Sgnyea``, ``Prvcnm_id`` or ``Pi0101`` is absent.
    """
    path = _file_path(path)
    raw = _read_table(path)
    _require(raw, ("Sgnyea", "Prvcnm_id", "Pi0101"), path)
    frame = _to_numbers(raw[["Sgnyea", "Prvcnm_id", "Pi0101"]].copy(), ["Sgnyea", "Prvcnm_id", "Pi0101"], path)
    frame = frame.dropna().rename(columns={"Sgnyea": "year", "Prvcnm_id": "province_code", "Pi0101": "cpi"})
    frame[["year", "province_code"]] = frame[["year", "province_code"]].astype(int)
    return frame.sort_values(["province_code", "year"]).reset_index(drop=True)


def read_citydb(path: str | Path) -> pd.DataFrame:
    """Read a China City Database panel in the ``china_city_panel_real.csv`` format.

    Parameters
    ----------
    path
        UTF-8 CSV, one row per city and year.

    Returns
    -------
    pandas.DataFrame
        ``year``, ``province``, ``city``, ``city_code`` and the variables among
        ``gdp_100m``, ``primary/secondary/tertiary_share_pct``,
        ``gdp_per_capita``, ``gdp_growth_pct``, ``hukou_pop_10k``,
        ``resident_pop_10k``, ``fiscal_revenue_100m``,
        ``fiscal_expenditure_100m``, ``loan_balance_100m``,
        ``deposit_balance_100m``, ``fai_100m`` that the file holds.
        ``fai_100m`` values flagged ``fai_imputed`` (2017 on, imputed from GDP
        upstream) are set to missing.

    Raises
    ------
    MissingColumnError
        A key or one of ``gdp_100m``, ``secondary_share_pct``,
        ``tertiary_share_pct``, ``gdp_growth_pct``, ``hukou_pop_10k``,
        ``fiscal_revenue_100m`` is absent.
    DataBuildError
        The file is unreadable or a field holds text where a number belongs.
    """
    path = _file_path(path)
    raw = _read_table(path)
    _require(raw, _CITYDB_KEYS + _CITYDB_REQUIRED, path)
    values = [c for c in _CITYDB_FIELDS if c in raw]
    frame = _to_numbers(raw[list(_CITYDB_KEYS) + values].copy(), ["year", "city_code"] + values, path)
    if "fai_100m" in frame and "fai_imputed" in raw:
        frame.loc[raw["fai_imputed"].str.lower().eq("true"), "fai_100m"] = float("nan")
    frame[["year", "city_code"]] = frame[["year", "city_code"]].astype(int)
    return frame.sort_values(["city_code", "year"]).reset_index(drop=True)
