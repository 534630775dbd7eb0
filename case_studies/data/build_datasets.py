"""Build the datasets shipped in ``synthcontrol/datasets/data`` from the raw inputs.

    python case_studies/data/build_datasets.py [--raw DIR] [--out DIR]     # or: make data

The raw root (default ``../shared/data`` beside the repository) holds ``scm/`` (the
classic benchmark panels) and ``cities/`` (the China City Database panel and the
CSMAR exports); nothing raw is copied. The classic panels are re-written as
``unit, time, <variables>``. The Chinese city panel is derived: selected cities and
variables, cross-checked between the two sources, repaired where a correct value
follows from the raw files, emptied where none does, put on a comparable real basis,
and audited with :func:`synthcontrol.audit`. Every suspect cell that remains, and
every repair, is listed in ``china_cities_flags.csv`` with what a study should do
about it. ``synthcontrol/datasets/DATASHEET.md`` documents every rule applied here.

The build fails with :class:`~synthcontrol.errors.DataBuildError` when the two city
sources contradict each other beyond the documented tolerances and the difference is
neither explained by a documented rule nor listed in :data:`KNOWN_GDP_DIFFERENCES` /
:data:`KNOWN_GROWTH_DIFFERENCES`.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import synthcontrol as sc
from synthcontrol.datasets import read_citydb, read_csmar_cpi, read_csmar_gdp, read_csmar_population
from synthcontrol.errors import DataBuildError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RAW = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "synthcontrol" / "datasets" / "data"

FIRST_YEAR, LAST_YEAR = 2005, 2023

CLASSIC_PANELS = {
    "basque.csv": "basque.csv",
    "smoking.csv": "smoking.csv",
    "texas.csv": "texas.csv",
    "hongkong_growth.csv": "hongkong.csv",
}

# Chinese province name -> (English name, province code, region).
PROVINCES = {
    "上海市": ("Shanghai", 310000, "YRD"),
    "江苏省": ("Jiangsu", 320000, "YRD"),
    "浙江省": ("Zhejiang", 330000, "YRD"),
    "安徽省": ("Anhui", 340000, "YRD"),
    "江西省": ("Jiangxi", 360000, "neighbour"),
    "山东省": ("Shandong", 370000, "neighbour"),
    "河南省": ("Henan", 410000, "neighbour"),
    "湖北省": ("Hubei", 420000, "neighbour"),
}

# Pinyin names, made unique where two cities share one (Suzhou, Taizhou).
CITY_EN = {
    310000: "Shanghai",
    320100: "Nanjing", 320200: "Wuxi", 320300: "Xuzhou", 320400: "Changzhou",
    320500: "Suzhou (Jiangsu)", 320600: "Nantong", 320700: "Lianyungang",
    320800: "Huai'an", 320900: "Yancheng", 321000: "Yangzhou", 321100: "Zhenjiang",
    321200: "Taizhou (Jiangsu)", 321300: "Suqian",
    330100: "Hangzhou", 330200: "Ningbo", 330300: "Wenzhou", 330400: "Jiaxing",
    330500: "Huzhou", 330600: "Shaoxing", 330700: "Jinhua", 330800: "Quzhou",
    330900: "Zhoushan", 331000: "Taizhou (Zhejiang)", 331100: "Lishui",
    340100: "Hefei", 340200: "Wuhu", 340300: "Bengbu", 340400: "Huainan",
    340500: "Ma'anshan", 340600: "Huaibei", 340700: "Tongling", 340800: "Anqing",
    341000: "Huangshan", 341100: "Chuzhou", 341200: "Fuyang", 341300: "Suzhou (Anhui)",
    341400: "Chaohu", 341500: "Lu'an", 341600: "Bozhou", 341700: "Chizhou",
    341800: "Xuancheng",
    360100: "Nanchang", 360200: "Jingdezhen", 360300: "Pingxiang", 360400: "Jiujiang",
    360500: "Xinyu", 360600: "Yingtan", 360700: "Ganzhou", 360800: "Ji'an",
    360900: "Yichun", 361000: "Fuzhou (Jiangxi)", 361100: "Shangrao",
    370100: "Jinan", 370200: "Qingdao", 370300: "Zibo", 370400: "Zaozhuang",
    370500: "Dongying", 370600: "Yantai", 370700: "Weifang", 370800: "Jining",
    370900: "Tai'an", 371000: "Weihai", 371100: "Rizhao", 371200: "Laiwu",
    371300: "Linyi", 371400: "Dezhou", 371500: "Liaocheng", 371600: "Binzhou",
    371700: "Heze",
    410100: "Zhengzhou", 410200: "Kaifeng", 410300: "Luoyang", 410400: "Pingdingshan",
    410500: "Anyang", 410600: "Hebi", 410700: "Xinxiang", 410800: "Jiaozuo",
    410900: "Puyang", 411000: "Xuchang", 411100: "Luohe", 411200: "Sanmenxia",
    411300: "Nanyang", 411400: "Shangqiu", 411500: "Xinyang", 411600: "Zhoukou",
    411700: "Zhumadian",
    420100: "Wuhan", 420200: "Huangshi", 420300: "Shiyan", 420500: "Yichang",
    420600: "Xiangyang", 420700: "Ezhou", 420800: "Jingmen", 420900: "Xiaogan",
    421000: "Jingzhou", 421100: "Huanggang", 421200: "Xianning", 421300: "Suizhou",
}

# Cities whose territory changed: Chaohu abolished in 2011 (split among Hefei,
# Wuhu, Ma'anshan); Shou County Lu'an -> Huainan and Zongyang County
# Anqing -> Tongling in 2015; Laiwu merged into Jinan in 2019.
BOUNDARY_CHANGE = {340100, 340200, 340500, 341400, 341500, 340400, 340800, 340700, 370100, 371200}

# Years in which a boundary move shows in nominal GDP (city, year).
GDP_BOUNDARY_YEARS = {
    (340100, 2011), (340200, 2011), (340500, 2011),  # Chaohu split
    (340400, 2015), (341500, 2015), (340800, 2015), (340700, 2015),  # Shou and Zongyang counties
    (370100, 2019),  # Laiwu into Jinan
}

# Years in which a boundary move shows in the registered population (city, year).
POPULATION_BOUNDARY_YEARS = {
    (340100, 2011), (340200, 2011), (340500, 2011),  # Chaohu split
    (340400, 2015),  # Shou County to Huainan
    (341500, 2016), (340800, 2016), (340700, 2016),  # Lu'an, Anqing, Tongling register the moves in 2016
    (370100, 2019),  # Laiwu into Jinan
}

# Tolerances of the cross-check between CSMAR and the China City Database.
GDP_AGREE_REL = 0.005  # nominal GDP agrees within 0.5 %
GDP_TOLERATED_REL = 0.05  # up to 5 %: ordinary revision between releases
GROWTH_AGREE_PP = 0.5  # real growth agrees within 0.5 percentage points
GROWTH_TOLERATED_PP = 1.5  # up to 1.5 pp: ordinary revision between releases
RULE_MATCH_PP = 0.05  # a growth value "equals" a computed one within this

# Differences beyond the tolerances that were examined and are explained.
_SHANGHAI_REVISED = (
    "CSMAR holds Shanghai's GDP back series revised after the 2018 economic census; "
    "the city database holds the original releases"
)
KNOWN_GDP_DIFFERENCES = {
    **{(310000, year): _SHANGHAI_REVISED for year in range(2006, 2019)},
    (411000, 2019): "city database holds Xuchang's pre-census 2019 figure (2,831 = 2018 basis)",
}
KNOWN_GROWTH_DIFFERENCES = {
    (340200, 2010): "Anhui 2010 release difference (city database above CSMAR for 16 of 17 cities)",
    (341500, 2010): "Anhui 2010 release difference (city database above CSMAR for 16 of 17 cities)",
    (341400, 2010): "Chaohu 2010, last year before its abolition; release difference",
}

# CSMAR's 2005 Anhui industry shares and growth rates are shifted between cities.
CSMAR_SHIFTED = ("Anhui", 2005)

# ---- repairs and flags (DATASHEET.md, "Repairs" and "Flags")

#: Cells emptied because the raw value is wrong and no correct one follows from the raw files.
REMOVED = {
    (410800, 2020, "gdp_growth"): (
        "Jiaozuo's 2020 real growth is -20.63 % in both sources while Henan grew about 1 %: nominal GDP "
        "was written down from 2,761 to 2,124 (the 2019 figure is pre-revision) and the growth figure "
        "follows the write-down, not real output; no real rate for 2020 is in the raw files"
    ),
}
#: Level columns in which a reversal (cells off the unit's path, then back) is taken for
#: an error of the source and emptied, with the longest such run: counts of people do
#: not swing and return, money flows can (Hubei's revenue in 2020-22), so only a single
#: cell off their path is emptied.
REVERSAL_EMPTIED = {"population": 3, "employment": 3, "fiscal_revenue": 1, "fiscal_expenditure": 1,
                    "loan_balance": 1, "deposit_balance": 1}
#: Years that only the city database covers, and the provinces whose figures break in them.
SINGLE_SOURCE_YEAR, SINGLE_SOURCE_BREAK = 2023, ("Henan", "Hubei", "Jiangxi")
#: A deflator implied by nominal GDP and real growth this far (relative) from its year's
#: median means the real growth path and the nominal level disagree by more than a study
#: can ignore (a 10 % level gap over the 14 years to 2019 is 0.7 pp of growth a year).
REVISION_TOLERANCE = 0.10
#: Beyond these, a disagreement between the sources (absolute, in the column's unit) is
#: not an ordinary revision between releases.
SOURCE_TOLERANCE = {"gdp_growth": 1.5, "secondary_share": 2.0, "tertiary_share": 2.0}
#: Columns audited, with the scale their changes are judged on.
AUDITED = {
    "gdp_growth": "level", "gdp_nominal": "log", "secondary_share": "level", "tertiary_share": "level",
    "population": "log", "employment": "log", "fiscal_revenue": "log", "fiscal_expenditure": "log",
    "loan_balance": "log", "deposit_balance": "log",
}
FLAG_COLUMNS = ["unit", "period", "column", "kind", "value", "expected", "note", "action"]

ROUNDING = {
    "gdp_nominal": 2, "gdp_growth": 2, "gdp_index": 4, "log_gdp_index": 6, "gdp_pc_real": 1,
    "secondary_share": 2, "tertiary_share": 2, "cpi_index": 3, "population": 2, "employment": 4,
    **{f"{name}{suffix}": 4 for name in ("fiscal_revenue", "fiscal_expenditure", "loan_balance", "deposit_balance")
       for suffix in ("", "_real")},
}


@dataclass
class CrossCheck:
    """Counts of the agreement between the two city sources, and the corrections applied."""

    gdp: dict = field(default_factory=dict)
    growth: dict = field(default_factory=dict)
    shares: dict = field(default_factory=dict)
    population: dict = field(default_factory=dict)
    corrections: list = field(default_factory=list)


# --------------------------------------------------------------------------- classic panels


def build_classic(raw: Path, out: Path) -> dict[str, tuple[int, int]]:
    """Re-write the classic panels as ``unit, time, <variables>``, full precision.

    Parameters
    ----------
    raw
        Raw-data root holding ``scm/``.
    out
        Output folder.

    Returns
    -------
    dict
        Output file name -> shape.
    """
    shapes = {}
    for source, target in CLASSIC_PANELS.items():
        frame = pd.read_csv(raw / "scm" / source)
        frame = frame.drop(columns=["unit_id"], errors="ignore")
        variables = [c for c in frame.columns if c not in ("unit", "time")]
        frame = frame[["unit", "time", *variables]].sort_values(["unit", "time"], kind="stable")
        # repr-precision floats: the loader must give back the raw numbers exactly.
        frame.to_csv(out / target, index=False, float_format=None, lineterminator="\n")
        shapes[target] = frame.shape
    return shapes


# --------------------------------------------------------------------------- city sources


def _citydb(raw: Path) -> pd.DataFrame:
    frame = read_citydb(raw / "cities" / "citydb" / "china_city_panel_real.csv")
    frame = frame[frame.province.isin(PROVINCES) & frame.year.between(FIRST_YEAR, LAST_YEAR)]
    # Rows of abolished cities after abolition (Chaohu 2011-, Laiwu 2019-) are empty.
    return frame.dropna(subset=["gdp_100m"]).reset_index(drop=True)


def _csmar_gdp(raw: Path, codes) -> pd.DataFrame:
    frame = read_csmar_gdp(raw / "cities" / "csmar" / "CRE_Gdpct.xlsx")
    return frame[frame.city_code.isin(codes) & frame.year.between(FIRST_YEAR, LAST_YEAR)]


def _csmar_labour(raw: Path, codes) -> pd.DataFrame:
    frame = read_csmar_population(raw / "cities" / "csmar" / "CRE_Eplwagct.xlsx")
    frame = frame[frame.city_code.isin(codes) & frame.year.between(FIRST_YEAR, LAST_YEAR)]
    return frame[["city_code", "year", "population_10k", "employment_10k"]]


def _check_city_names(citydb: pd.DataFrame) -> None:
    unknown = sorted(set(citydb.city_code) - set(CITY_EN))
    if unknown:
        raise DataBuildError(f"city database: no English name for city codes {unknown}; add them to CITY_EN")


def _merge_sources(citydb: pd.DataFrame, csmar: pd.DataFrame, labour: pd.DataFrame) -> pd.DataFrame:
    left = citydb.assign(province_en=citydb.province.map(lambda p: PROVINCES[p][0]))
    right = csmar[["city_code", "year", "gdp_100m", "secondary_share_pct", "tertiary_share_pct", "gdp_growth_pct"]]
    merged = left.merge(right, on=["city_code", "year"], how="left", suffixes=("", "_csmar"))
    merged = merged.merge(labour, on=["city_code", "year"], how="left")
    return merged.sort_values(["city_code", "year"]).reset_index(drop=True)


# --------------------------------------------------------------------------- corrections


def _lost_decimal_point(panel: pd.DataFrame) -> pd.Series:
    """CSMAR growth rates 100 times the city-database value (Shaoxing 2021: 873 for 8.73)."""
    scaled = panel.gdp_growth_pct_csmar / 100
    return (panel.gdp_growth_pct_csmar.abs() > 100) & ((scaled - panel.gdp_growth_pct).abs() <= RULE_MATCH_PP)


def correct_csmar(panel: pd.DataFrame, check: CrossCheck) -> pd.DataFrame:
    """Fix CSMAR's known bad cells in place of the raw values.

    * growth rates with a lost decimal point are divided by 100;
    * Anhui's 2005 shares and growth, shifted between cities, are dropped so
      that the city database's values fill them.
    """
    panel = panel.copy()
    panel["growth_corrected"] = _lost_decimal_point(panel)
    for row in panel[panel.growth_corrected].itertuples():
        check.corrections.append(
            f"{row.city} ({row.city_code}) {row.year}: CSMAR real growth {row.gdp_growth_pct_csmar:g} -> "
            f"{row.gdp_growth_pct_csmar / 100:g} (decimal point lost; city database {row.gdp_growth_pct:g})"
        )
    panel.loc[panel.growth_corrected, "gdp_growth_pct_csmar"] /= 100
    shifted = (panel.province_en == CSMAR_SHIFTED[0]) & (panel.year == CSMAR_SHIFTED[1])
    panel["csmar_shifted"] = shifted
    check.corrections.append(
        f"Anhui {CSMAR_SHIFTED[1]}: CSMAR shares and growth of {int(shifted.sum())} cities are shifted "
        "between cities; city-database values used"
    )
    return panel


# --------------------------------------------------------------------------- cross-checks


def _contradiction(row, what: str, csmar: float, citydb: float) -> DataBuildError:
    return DataBuildError(
        f"{what} of {row.city} ({row.city_code}) in {row.year}: CSMAR {csmar:g} vs city database "
        f"{citydb:g}; beyond tolerance and not a known difference (see KNOWN_*_DIFFERENCES in build.py)"
    )


def cross_check_gdp(panel: pd.DataFrame, check: CrossCheck) -> None:
    """Compare nominal GDP; raise :class:`DataBuildError` on an unexplained gap > 5 %."""
    both = panel.dropna(subset=["gdp_100m", "gdp_100m_csmar"])
    rel = (both.gdp_100m_csmar / both.gdp_100m - 1).abs()
    known = [(c, y) in KNOWN_GDP_DIFFERENCES for c, y in zip(both.city_code, both.year)]
    bad = both[(rel > GDP_TOLERATED_REL) & ~np.array(known, dtype=bool)]
    if len(bad):
        row = next(bad.itertuples())
        raise _contradiction(row, "nominal GDP", row.gdp_100m_csmar, row.gdp_100m)
    yrd = both.province_en.isin(["Shanghai", "Jiangsu", "Zhejiang", "Anhui"])
    check.gdp = {
        "pairs": len(both),
        "agree_0.5pct": int((rel <= GDP_AGREE_REL).sum()),
        "within_5pct": int((rel <= GDP_TOLERATED_REL).sum()),
        "known_differences": int(sum(known)),
        "yrd_pairs": int(yrd.sum()),
        "yrd_agree_0.5pct": int((rel[yrd] <= GDP_AGREE_REL).sum()),
        "max_rel_diff_unlisted": float(rel[~np.array(known, dtype=bool)].max()),
    }


def _growth_explanations(panel: pd.DataFrame) -> pd.DataFrame:
    """Flag city-database growth values that are not real growth rates."""
    by_city = panel.groupby("city_code")
    nominal_growth = (panel.gdp_100m / by_city.gdp_100m.shift(1) - 1) * 100
    neighbours = (by_city.gdp_growth_pct.shift(1) + by_city.gdp_growth_pct.shift(-1)) / 2
    return panel.assign(
        citydb_nominal_as_real=(panel.gdp_growth_pct - nominal_growth).abs() <= RULE_MATCH_PP,
        citydb_interpolated=(panel.gdp_growth_pct - neighbours).abs() <= 0.011,
    )


def cross_check_growth(panel: pd.DataFrame, check: CrossCheck) -> pd.DataFrame:
    """Compare real growth; raise :class:`DataBuildError` on an unexplained gap > 1.5 pp."""
    panel = _growth_explanations(panel)
    both = panel.dropna(subset=["gdp_growth_pct", "gdp_growth_pct_csmar"])
    gap = (both.gdp_growth_pct_csmar - both.gdp_growth_pct).abs()
    known = np.array([(c, y) in KNOWN_GROWTH_DIFFERENCES for c, y in zip(both.city_code, both.year)], dtype=bool)
    explained = (both.citydb_nominal_as_real | both.citydb_interpolated | both.csmar_shifted).to_numpy() | known
    unexplained = both[(gap > GROWTH_TOLERATED_PP).to_numpy() & ~explained]
    if len(unexplained):
        row = next(unexplained.itertuples())
        raise _contradiction(row, "real GDP growth", row.gdp_growth_pct_csmar, row.gdp_growth_pct)
    large = (gap > GROWTH_AGREE_PP).to_numpy()
    check.growth = {
        "pairs": len(both),
        "agree_0.5pp": int((~large).sum()),
        "within_1.5pp": int((gap <= GROWTH_TOLERATED_PP).sum()),
        "beyond_0.5pp_citydb_nominal_as_real": int((large & both.citydb_nominal_as_real.to_numpy()).sum()),
        "beyond_0.5pp_citydb_interpolated": int((large & both.citydb_interpolated.to_numpy()).sum()),
        "beyond_0.5pp_csmar_anhui_2005_shift": int((large & both.csmar_shifted.to_numpy()).sum()),
        "beyond_1.5pp_known_list": int(((gap > GROWTH_TOLERATED_PP).to_numpy() & known).sum()),
    }
    return panel


def cross_check_shares(panel: pd.DataFrame, check: CrossCheck) -> None:
    """Record how far the secondary-industry shares of the two sources agree (no failure)."""
    usable = panel[~panel.csmar_shifted].dropna(subset=["secondary_share_pct", "secondary_share_pct_csmar"])
    gap = (usable.secondary_share_pct_csmar - usable.secondary_share_pct).abs()
    check.shares = {
        "pairs": len(usable),
        "agree_0.5pp": int((gap <= 0.5).sum()),
        "within_2pp": int((gap <= 2).sum()),
        "max_gap_pp": round(float(gap.max()), 2),
    }


def cross_check_population(panel: pd.DataFrame, check: CrossCheck) -> None:
    """Compare registered population with CSMAR's year-end population up to 2020 (no failure).

    From 2021 CSMAR reports Anhui's resident population, a different concept.
    """
    merged = panel[panel.year <= 2020].dropna(subset=["hukou_pop_10k", "population_10k"])
    rel = (merged.population_10k / merged.hukou_pop_10k - 1).abs()
    check.population = {
        "pairs": len(merged),
        "agree_1pct": int((rel <= 0.01).sum()),
        "within_5pct": int((rel <= 0.05).sum()),
    }


# --------------------------------------------------------------------------- combination


def _prefer_csmar(panel: pd.DataFrame, column: str, usable: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """CSMAR's value where usable and present, else the city database's; the source
    label; and the other source's value (for the audit's source check)."""
    take_csmar = usable & panel[f"{column}_csmar"].notna()
    values = panel[f"{column}_csmar"].where(take_csmar, panel[column])
    other = panel[column].where(take_csmar, panel[f"{column}_csmar"].where(usable))
    source = pd.Series(np.where(take_csmar, "csmar", "citydb"), index=panel.index)
    return values, source, other


def combine_growth(panel: pd.DataFrame) -> pd.DataFrame:
    """Real growth: CSMAR (corrected) first; the city database fills its gaps."""
    growth, source, other = _prefer_csmar(panel, "gdp_growth_pct", ~panel.csmar_shifted)
    source = source.mask(panel.growth_corrected, "csmar_corrected")
    interpolated = (source == "citydb") & panel.citydb_interpolated & (panel.year == 2017)
    source = source.mask(interpolated, "citydb_interpolated")
    return panel.assign(gdp_growth=growth, growth_source=source, gdp_growth_other=other)


def combine_shares(panel: pd.DataFrame) -> pd.DataFrame:
    """Industry shares: CSMAR first (not Anhui 2005); the city database fills gaps.

    The city database's 2017 shares are interpolated upstream, hence flagged.
    """
    usable = ~panel.csmar_shifted
    secondary, source, secondary_other = _prefer_csmar(panel, "secondary_share_pct", usable)
    tertiary, _, tertiary_other = _prefer_csmar(panel, "tertiary_share_pct", usable & panel.secondary_share_pct_csmar.notna())
    source = source.mask((source == "citydb") & (panel.year == 2017), "citydb_interpolated")
    return panel.assign(secondary_share=secondary, tertiary_share=tertiary, shares_source=source,
                        secondary_share_other=secondary_other, tertiary_share_other=tertiary_other)


def combine_gdp(panel: pd.DataFrame) -> pd.DataFrame:
    """Nominal GDP: CSMAR first (its Shanghai series is census-revised), city database fills."""
    gdp, _, other = _prefer_csmar(panel, "gdp_100m", pd.Series(True, index=panel.index))
    return panel.assign(gdp_nominal=gdp, gdp_nominal_other=other)


def combine_single_source(panel: pd.DataFrame) -> pd.DataFrame:
    """Columns that one source holds: registered population, public finance and bank
    balances (city database), employment in urban units (CSMAR ``Eect05``)."""
    return panel.assign(
        population=panel.hukou_pop_10k,
        fiscal_revenue=panel.fiscal_revenue_100m,
        fiscal_expenditure=panel.fiscal_expenditure_100m,
        loan_balance=panel.loan_balance_100m,
        deposit_balance=panel.deposit_balance_100m,
        employment=panel.employment_10k,
    )


# --------------------------------------------------------------------------- repairs


def _log_entry(row, column: str, kind: str, value: float, expected: float, note: str, action: str) -> dict:
    return {"unit": int(row.city_code), "period": int(row.year), "column": column, "kind": kind,
            "value": value, "expected": expected, "note": note, "action": action}


def record_corrections(panel: pd.DataFrame) -> list[dict]:
    """Log entries of the CSMAR corrections (decimal point, Anhui 2005 shift)."""
    entries = []
    for row in panel[panel.growth_corrected].itertuples():
        entries.append(_log_entry(row, "gdp_growth", "source", row.gdp_growth_pct_csmar * 100, row.gdp_growth_pct,
                                  "CSMAR growth lost its decimal point (city database agrees with value / 100)",
                                  "repaired"))
    note = ("CSMAR's 2005 Anhui shares and growth are shifted between cities (Huainan holds Suzhou's); "
            "the city database's value is used")
    for row in panel[panel.csmar_shifted].itertuples():
        for column, raw, used in (("gdp_growth", row.gdp_growth_pct_csmar, row.gdp_growth_pct),
                                  ("secondary_share", row.secondary_share_pct_csmar, row.secondary_share_pct),
                                  ("tertiary_share", row.tertiary_share_pct_csmar, row.tertiary_share_pct)):
            if pd.notna(raw) and pd.notna(used) and abs(raw - used) > 0.05:
                entries.append(_log_entry(row, column, "source", raw, used, note, "repaired"))
    return entries


def remove_known_errors(panel: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Empty the cells of :data:`REMOVED`, logging their raw values."""
    panel, entries = panel.copy(), []
    for (code, year, column), note in REMOVED.items():
        rows = panel.index[(panel.city_code == code) & (panel.year == year)]
        for i in rows:
            entries.append(_log_entry(panel.loc[i], column, "relation", float(panel.at[i, column]), np.nan, note,
                                      "missing"))
            panel.at[i, column] = np.nan
    return panel, entries


def remove_reversals(panel: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Empty the cells of :data:`REVERSAL_EMPTIED` columns that the audit finds off the
    unit's path and then back (a typing error, another series for a year or three)."""
    found = pd.concat([
        sc.audit(panel, unit="city_code", time="year", columns=[column], group="province",
                 transform=AUDITED[column], max_excursion=span)
        for column, span in REVERSAL_EMPTIED.items()
    ])
    found = found[found.kind == "reversal"]
    panel = panel.copy()
    keys = panel.set_index(["city_code", "year"]).index
    entries = []
    for row in found.itertuples():
        i = panel.index[keys.get_loc((row.unit, row.period))]
        panel.at[i, row.column] = np.nan
        entries.append({"unit": row.unit, "period": row.period, "column": row.column, "kind": "reversal",
                        "value": row.value, "expected": row.expected, "note": row.note, "action": "missing"})
    return panel, entries


# --------------------------------------------------------------------------- derived outcomes


def chain_index(panel: pd.DataFrame) -> pd.DataFrame:
    """Real GDP index, first year = 100, chained from real growth rates; missing from
    the first missing growth rate on (a chain cannot skip a link)."""
    factor = 1 + panel.gdp_growth / 100
    first = panel.year == panel.groupby("city_code").year.transform("min")
    factor = factor.mask(first, 1.0)
    broken = factor.isna().groupby(panel.city_code).cummax()
    index = (100 * factor.fillna(1.0).groupby(panel.city_code).cumprod()).mask(broken)
    return panel.assign(gdp_index=index, log_gdp_index=np.log(index))


def real_per_capita(panel: pd.DataFrame) -> pd.DataFrame:
    """Real GDP per registered resident in 2005 yuan.

    The first year's nominal GDP per registered resident, times the real GDP index,
    divided by the registered population relative to the first year. A boundary move
    (:data:`POPULATION_BOUNDARY_YEARS`) is taken out of the population: real growth is
    published on the new territory for both years, so the jump in population would
    count the moved county as a fall in output per head.
    """
    by_city = panel.groupby("city_code")
    moved = np.array([(c, y) in POPULATION_BOUNDARY_YEARS for c, y in zip(panel.city_code, panel.year)], bool)
    jump = (panel.population / by_city.population.shift(1)).where(moved, 1.0).fillna(1.0)
    territory = panel.population / jump.groupby(panel.city_code).cumprod()  # population on the first territory
    first = panel.year == by_city.year.transform("min")
    base = (1e4 * panel.gdp_nominal / panel.population).where(first)  # 100 million yuan / 10 thousand persons
    start = base.groupby(panel.city_code).transform("first")
    start_territory = territory.where(first).groupby(panel.city_code).transform("first")
    level = start * panel.gdp_index / 100 * start_territory / territory
    return panel.assign(gdp_pc_real=level)


def provincial_price_level(cpi: pd.DataFrame) -> pd.DataFrame:
    """Provincial consumer price level, first year = 100, from CPI (previous year = 100)."""
    cpi = cpi[cpi.year.between(FIRST_YEAR, LAST_YEAR)].sort_values(["province_code", "year"])
    factor = (cpi.cpi / 100).mask(cpi.year == FIRST_YEAR, 1.0)
    return cpi.assign(cpi_index=100 * factor.groupby(cpi.province_code).cumprod())[["province_code", "year", "cpi_index"]]


def deflate(panel: pd.DataFrame, price_level: pd.DataFrame) -> pd.DataFrame:
    """Public finance and bank balances in 2005 prices, deflated by the provincial CPI.

    Flows (revenue, expenditure) and year-end stocks (loans, deposits) alike: the
    annual-average price level stands in for the year-end one.
    """
    panel = panel.merge(price_level, on=["province_code", "year"], how="left")
    missing = panel[panel.cpi_index.isna()]
    if len(missing):
        row = missing.iloc[0]
        raise DataBuildError(f"CRE_Pi01: no CPI for province {row.province_en} ({row.province_code}) in {row.year}")
    money = ("fiscal_revenue", "fiscal_expenditure", "loan_balance", "deposit_balance")
    return panel.assign(**{f"{name}_real": panel[name] / panel.cpi_index * 100 for name in money})


# --------------------------------------------------------------------------- flags


def audit_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """:func:`synthcontrol.audit` of the audited columns, the nominal-real deflator and
    the other source's values, provinces as groups."""
    reference = panel[["city_code", "year"]].assign(
        **{c: panel[f"{c}_other"] for c in ("gdp_growth", "gdp_nominal", "secondary_share", "tertiary_share")}
    )
    return sc.audit(panel, unit="city_code", time="year", columns=list(AUDITED), group="province",
                    transform=AUDITED, relations=[sc.implied_deflator("gdp_nominal", "gdp_growth")],
                    reference=reference)


def _explained_source(flag, cell) -> str:
    """Why the sources differ in this cell by a documented rule, or ''."""
    if cell.csmar_shifted:
        return "the other source is CSMAR's shifted Anhui 2005 value"
    if flag.column == "gdp_growth" and cell.growth_source.startswith("csmar"):
        if cell.citydb_nominal_as_real:
            return "the city database holds nominal growth here, not real growth"
        if cell.citydb_interpolated:
            return "the city database's value is interpolated"
    if flag.column == "gdp_nominal" and (flag.unit, flag.period) in KNOWN_GDP_DIFFERENCES:
        return KNOWN_GDP_DIFFERENCES[flag.unit, flag.period]
    return ""


def _source_action(flag, cell) -> tuple[str, str]:
    reason = _explained_source(flag, cell)
    if reason:
        return "keep", f"explained: {reason}"
    gap = abs(flag.value - flag.expected)
    tolerance = SOURCE_TOLERANCE.get(flag.column, 0.05 * abs(flag.expected))
    if gap <= tolerance:
        return "keep", f"within {tolerance:.3g}: a revision between releases"
    return "exclude", f"beyond {tolerance:.3g} and unexplained: the value is uncertain"


def classify(flag, cell) -> tuple[str, str]:
    """What a study should do about one audit flag of the shipped panel (DATASHEET.md)."""
    if flag.kind == "interpolation":
        return "keep", "an approximation made upstream (its error: DATASHEET.md)"
    if flag.kind == "source":
        return _source_action(flag, cell)
    if flag.kind == "relation" and flag.column == "gdp_growth":
        off = abs(flag.value / flag.expected - 1)
        if off <= REVISION_TOLERANCE:
            return "keep", f"nominal and real disagree by {off:.1%}, within {REVISION_TOLERANCE:.0%}"
        return "exclude", f"nominal GDP revised {off:.1%} off real growth: the real path to here is doubtful"
    if flag.column == "gdp_growth" and flag.kind in ("common_break", "reversal"):
        return "keep", "a shared or transient swing of growth: an economic shock unless the deflator is flagged"
    return "exclude", "not comparable with the unit's earlier values"


def boundary_reason(flag) -> str:
    """Why a flag is explained by a boundary change, or ''."""
    if (flag.unit, flag.period) in GDP_BOUNDARY_YEARS or (flag.unit, flag.period) in POPULATION_BOUNDARY_YEARS:
        return "territory changed this year"
    return ""


def classify_with_boundaries(flag, cell) -> tuple[str, str]:
    """:func:`classify`, except that real growth is comparable across a boundary move
    (it is published on the new territory for both years) while levels are not."""
    reason = boundary_reason(flag)
    if reason and flag.column == "gdp_growth" and flag.kind in ("relation", "jump", "common_break"):
        return "keep", f"explained: {reason} (real growth is on the new territory)"
    action, why = classify(flag, cell)
    return action, f"{why}; {reason}" if reason and action == "exclude" else why


def interpolation_error(panel: pd.DataFrame, column: str, source: str) -> float:
    """RMS error of interpolating a year from its two neighbours, over CSMAR values of
    the calm years 2015-16 (the interpolated 2017 was a calm year)."""
    values = panel.pivot(index="year", columns="city_code", values=column)
    label = panel.pivot(index="year", columns="city_code", values=source)
    observed = (label == "csmar") & (label.shift(1) == "csmar") & (label.shift(-1) == "csmar")
    error = (values - (values.shift(1) + values.shift(-1)) / 2)[observed].loc[[2015, 2016]].stack()
    return float(np.sqrt((error**2).mean()))


def upstream_interpolation(panel: pd.DataFrame) -> list[dict]:
    """Flags of the values the city database interpolated upstream and the build uses
    where CSMAR has none (2017 growth and shares), with the measured error."""
    entries = []
    for source, columns in (("growth_source", ("gdp_growth",)), ("shares_source", ("secondary_share", "tertiary_share"))):
        rows = panel[panel[source] == "citydb_interpolated"]
        for column in columns:
            error = interpolation_error(panel, column, source)
            note = (f"the city database's value is the mean of its neighbours (CSMAR has none); interpolating a "
                    f"calm year errs by {error:.2f} (RMS, 2015-16)")
            entries += [_log_entry(row, column, "interpolation", getattr(row, column), np.nan, note, "keep")
                        for row in rows.itertuples()]
    return entries


def single_source_breaks(panel: pd.DataFrame) -> list[dict]:
    """Flags of the year only the city database covers, in the provinces whose figures
    break in it: nominal GDP and industry shares, with the province's evidence."""
    by_city = panel.groupby("city_code")
    nominal = panel.gdp_nominal / by_city.gdp_nominal.shift(1)
    deflator = nominal / (1 + panel.gdp_growth / 100) - 1
    drop = panel.secondary_share - by_city.secondary_share.shift(1)
    year = panel[(panel.year == SINGLE_SOURCE_YEAR) & panel.province.isin(SINGLE_SOURCE_BREAK)]
    entries = []
    for province, cities in year.groupby("province"):
        rows = cities.index
        evidence = (
            f"{province} {SINGLE_SOURCE_YEAR} (city database only): {int((nominal[rows] < 1).sum())} of {len(rows)} "
            f"cities report nominal GDP below the year before (median implied deflator {deflator[rows].median():+.1%}); "
            f"{int((drop[rows] < -3).sum())} lose more than 3 pp of secondary share (median {drop[rows].median():+.2f})"
        )
        for i in rows:
            for column in ("gdp_nominal", "secondary_share", "tertiary_share"):
                entries.append(_log_entry(panel.loc[i], column, "common_break", float(panel.at[i, column]), np.nan,
                                          evidence, "exclude"))
    return entries


def flag_cells(panel: pd.DataFrame, log: list[dict]) -> pd.DataFrame:
    """Every repair and every suspect cell of the shipped panel, with its action."""
    cells = panel.set_index(["city_code", "year"])
    found = audit_panel(panel)
    actions = [classify_with_boundaries(flag, cells.loc[(flag.unit, flag.period)]) for flag in found.itertuples()]
    found["action"] = [a for a, _ in actions]
    found["note"] = [f"{note}; {reason}" for note, (_, reason) in zip(found.note, actions)]
    explicit = pd.DataFrame(log + single_source_breaks(panel) + upstream_interpolation(panel), columns=FLAG_COLUMNS)
    flags = pd.concat([explicit, found[FLAG_COLUMNS]], ignore_index=True)
    flags = flags.drop_duplicates(["unit", "period", "column", "kind"], keep="first")
    order = {c: i for i, c in enumerate(PANEL_COLUMNS)}
    flags = flags.assign(_order=flags.column.map(order)).sort_values(["_order", "unit", "period", "kind"])
    return flags.drop(columns="_order").round({"value": 6, "expected": 6}).reset_index(drop=True)


# --------------------------------------------------------------------------- assembly

PANEL_COLUMNS = [
    "city_code", "city", "city_en", "province", "province_code", "region", "year",
    "gdp_index", "log_gdp_index", "gdp_growth", "gdp_pc_real", "gdp_nominal",
    "secondary_share", "tertiary_share", "fiscal_revenue", "fiscal_revenue_real",
    "fiscal_expenditure", "fiscal_expenditure_real", "loan_balance", "loan_balance_real",
    "deposit_balance", "deposit_balance_real", "employment", "cpi_index",
    "population", "boundary_change", "growth_source", "shares_source",
]


def _label(panel: pd.DataFrame) -> pd.DataFrame:
    province = panel.province.map(PROVINCES)
    return panel.assign(
        city_en=panel.city_code.map(CITY_EN),
        province=province.str[0],
        province_code=province.str[1],
        region=province.str[2],
        boundary_change=panel.city_code.isin(BOUNDARY_CHANGE),
    )


def _finish(panel: pd.DataFrame) -> pd.DataFrame:
    panel = panel[PANEL_COLUMNS].round(ROUNDING)
    return panel.sort_values(["city_code", "year"]).reset_index(drop=True)


def _sources(raw: Path, check: CrossCheck) -> pd.DataFrame:
    """Both sources merged, CSMAR corrected, cross-checked (raises on contradictions)."""
    citydb = _citydb(raw)
    _check_city_names(citydb)
    codes = set(citydb.city_code)
    panel = _merge_sources(citydb, _csmar_gdp(raw, codes), _csmar_labour(raw, codes))
    panel = correct_csmar(panel, check)
    cross_check_gdp(panel, check)
    panel = cross_check_growth(panel, check)
    cross_check_shares(panel, check)
    cross_check_population(panel, check)
    return panel


def build_china_cities(raw: Path) -> tuple[pd.DataFrame, pd.DataFrame, CrossCheck]:
    """Derive the Chinese city panel, its flags table and the cross-check record.

    Parameters
    ----------
    raw
        Raw-data root holding ``cities/``.

    Returns
    -------
    panel : pandas.DataFrame
        One row per city and year (columns :data:`PANEL_COLUMNS`).
    flags : pandas.DataFrame
        One row per repaired, emptied or suspect cell (columns :data:`FLAG_COLUMNS`;
        ``unit`` is the city code, ``period`` the year).
    check : CrossCheck
        Agreement counts and the corrections applied.

    Raises
    ------
    DataBuildError
        The sources contradict each other beyond the documented tolerances.
    """
    check = CrossCheck()
    panel = _sources(raw, check)
    log = record_corrections(panel)
    panel = _label(combine_single_source(combine_shares(combine_growth(combine_gdp(panel)))))
    panel, removed = remove_known_errors(panel)
    panel, reversals = remove_reversals(panel)
    panel = real_per_capita(chain_index(panel))
    price_level = provincial_price_level(read_csmar_cpi(raw / "cities" / "csmar" / "CRE_Pi01.xlsx"))
    panel = deflate(panel, price_level)
    flags = flag_cells(panel, log + removed + reversals)
    return _finish(panel), flags, check


def write_china_cities(panel: pd.DataFrame, flags: pd.DataFrame, out: Path) -> list[Path]:
    """Write the city panel and its flags as compact CSV; return the paths."""
    paths = [out / "china_cities.csv", out / "china_cities_flags.csv"]
    panel.to_csv(paths[0], index=False, lineterminator="\n")
    flags.to_csv(paths[1], index=False, lineterminator="\n")
    return paths


def build_all(raw: Path = DEFAULT_RAW, out: Path = DEFAULT_OUT) -> tuple[dict, CrossCheck, pd.DataFrame]:
    """Build every shipped dataset from ``raw`` into ``out``.

    Returns
    -------
    shapes : dict
        Output file name -> shape.
    check : CrossCheck
        The city-panel cross-check record.
    flags : pandas.DataFrame
        The city panel's flags table.
    """
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise DataBuildError(f"raw-data root {raw} not found; pass --raw DIR")
    out.mkdir(parents=True, exist_ok=True)
    shapes = build_classic(raw, out)
    panel, flags, check = build_china_cities(raw)
    write_china_cities(panel, flags, out)
    shapes["china_cities.csv"] = panel.shape
    shapes["china_cities_flags.csv"] = flags.shape
    logger.info("built %s", shapes)
    return shapes, check, flags


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build, then print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="raw-data root (default %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    shapes, check, flags = build_all(args.raw, args.out)
    for name, shape in shapes.items():
        print(f"{name}: {shape[0]} rows x {shape[1]} columns")
    for label in ("gdp", "growth", "shares", "population"):
        print(f"cross-check {label}: {getattr(check, label)}")
    for line in check.corrections:
        print(f"correction: {line}")
    print(flags.groupby(["column", "kind", "action"]).size().to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
