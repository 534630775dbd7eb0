"""The three standard synthetic-control specifications as neutral dicts.

Each spec is plain data so that every benchmarked package (synthcontrol and
its peers) is driven from the same definition.  Predictors are either
``{"var", "op": "mean", "start", "end"}`` (mean over the inclusive window,
missing values skipped) or ``{"var", "op": "at", "period"}`` (value in one
period).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "scm"

FILES = {"basque": "basque.csv", "california": "smoking.csv", "texas": "texas.csv"}


def _mean(var: str, start: int, end: int) -> dict[str, Any]:
    return {"var": var, "op": "mean", "start": start, "end": end}


def _at(var: str, period: int) -> dict[str, Any]:
    return {"var": var, "op": "at", "period": period}


BASQUE: dict[str, Any] = {
    "outcome": "gdpcap",
    "unit": "unit",
    "time": "time",
    "treated": "Basque Country (Pais Vasco)",
    "treatment_start": 1970,
    "fit_window": (1960, 1969),
    # R Synth's example: every region except Spain (unit_id 1) and the treated.
    "donors": [
        "Andalucia", "Aragon", "Principado De Asturias", "Baleares (Islas)",
        "Canarias", "Cantabria", "Castilla Y Leon", "Castilla-La Mancha",
        "Cataluna", "Comunidad Valenciana", "Extremadura", "Galicia",
        "Madrid (Comunidad De)", "Murcia (Region de)",
        "Navarra (Comunidad Foral De)", "Rioja (La)",
    ],
    "predictors": [
        *(_mean(v, 1964, 1969) for v in
          ("school.illit", "school.prim", "school.med", "school.high", "school.post.high")),
        _mean("invest", 1964, 1969),
        _mean("gdpcap", 1960, 1969),
        # sec.* exist only in odd years, so a NaN-skipping mean over 1961-1969
        # equals R Synth's special.predictors over seq(1961, 1969, 2).
        *(_mean(v, 1961, 1969) for v in
          ("sec.agriculture", "sec.energy", "sec.industry", "sec.construction",
           "sec.services.venta", "sec.services.nonventa")),
        _at("popdens", 1969),
    ],
}

CALIFORNIA: dict[str, Any] = {
    "outcome": "cigsale",
    "unit": "unit",
    "time": "time",
    "treated": "California",
    "treatment_start": 1989,
    "fit_window": (1970, 1988),
    "donors": None,
    "predictors": [
        _mean("lnincome", 1980, 1988),
        _mean("retprice", 1980, 1988),
        _mean("age15to24", 1980, 1988),
        _mean("beer", 1984, 1988),
        _at("cigsale", 1975),
        _at("cigsale", 1980),
        _at("cigsale", 1988),
    ],
}

TEXAS: dict[str, Any] = {
    "outcome": "bmprison",
    "unit": "unit",
    "time": "time",
    "treated": "Texas",
    "treatment_start": 1994,
    "fit_window": (1985, 1993),
    "donors": None,
    "predictors": [
        _at("bmprison", 1988),
        _at("bmprison", 1990),
        _at("bmprison", 1991),
        _at("bmprison", 1992),
        _at("alcohol", 1990),
        _at("aidscapita", 1990),
        _at("aidscapita", 1991),
        _mean("income", 1985, 1993),
        _mean("ur", 1985, 1993),
        _mean("poverty", 1985, 1993),
        _at("black", 1990),
        _at("black", 1991),
        _at("black", 1992),
        _at("perc1519", 1990),
    ],
}

SPECS: dict[str, dict[str, Any]] = {
    "basque": BASQUE, "california": CALIFORNIA, "texas": TEXAS,
}


def load(dataset: str, data_dir: Path | str = DATA_DIR) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a dataset and return it with its spec, donors resolved.

    Parameters
    ----------
    dataset : str
        One of ``"basque"``, ``"california"``, ``"texas"``.
    data_dir : Path or str
        Folder holding the CSV files.

    Returns
    -------
    df : pandas.DataFrame
        The long panel, with ``unit`` and ``time`` columns.
    spec : dict
        A copy of the spec with ``donors`` resolved to an explicit list.
    """
    df = pd.read_csv(Path(data_dir) / FILES[dataset])
    spec = dict(SPECS[dataset])
    spec["donors"] = donor_pool(df, spec)
    return df, spec


def donor_pool(df: pd.DataFrame, spec: dict[str, Any]) -> list[Any]:
    """Return the spec's donors, or every unit but the treated one if ``None``."""
    if spec["donors"] is not None:
        return list(spec["donors"])
    return [u for u in df[spec["unit"]].unique() if u != spec["treated"]]
