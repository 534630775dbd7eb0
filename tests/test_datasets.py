"""Tests of the shipped datasets, their loaders, the export readers and the build."""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc
from synthcontrol import datasets
from synthcontrol.data_audit import AUDIT_COLUMNS, KINDS
from synthcontrol.errors import DataBuildError, MissingColumnError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the build script lives outside the package

from case_studies.data import build_datasets as build  # noqa: E402

RAW = ROOT.parent / "shared" / "data"
SHIPPED = ROOT / "synthcontrol" / "datasets" / "data"
needs_raw = pytest.mark.skipif(not (RAW / "cities").is_dir(), reason=f"raw data not found at {RAW}")

YRD_PROVINCES = {"Shanghai": 1, "Jiangsu": 13, "Zhejiang": 11, "Anhui": 16}
HUAINAN, CHUZHOU, SUZHOU_ANHUI = 340400, 341100, 341300


@pytest.fixture(scope="module")
def cities() -> pd.DataFrame:
    return datasets.load_china_cities()


# --------------------------------------------------------------------------- classic panels


@pytest.mark.parametrize(
    ("loader", "shape", "variables"),
    [
        (datasets.load_basque, (774, 16), ["gdpcap", "sec.agriculture", "school.illit", "popdens", "invest"]),
        (datasets.load_smoking, (1209, 7), ["cigsale", "lnincome", "beer", "age15to24", "retprice"]),
        (datasets.load_texas, (816, 11), ["bmprison", "wmprison", "alcohol", "aidscapita"]),
        (datasets.load_hongkong, (1525, 4), ["gdp_growth"]),
    ],
)
def test_classic_panels_are_tidy(loader, shape, variables):
    frame = loader()
    assert frame.shape == shape
    assert list(frame.columns[:2]) == ["unit", "time"]
    assert set(variables) <= set(frame.columns)
    assert not frame.duplicated(["unit", "time"]).any()


@needs_raw
def test_classic_panels_keep_full_precision():
    raw = pd.read_csv(RAW / "scm" / "basque.csv").drop(columns="unit_id")
    shipped = datasets.load_basque()
    merged = raw.merge(shipped, on=["unit", "time"], suffixes=("_raw", ""))
    np.testing.assert_array_equal(merged.gdpcap, merged.gdpcap_raw)
    np.testing.assert_array_equal(merged["school.illit"], merged["school.illit_raw"])


# --------------------------------------------------------------------------- city panel


def test_all_yrd_cities_present(cities):
    yrd = cities[cities.region == "YRD"].drop_duplicates("city_code")
    # Chaohu (abolished 2011) is a YRD row too, but not one of the 41 current cities.
    current = yrd[yrd.city_code != 341400]
    assert len(current) == 41
    assert current.province.value_counts().to_dict() == YRD_PROVINCES
    assert set(cities[cities.region == "neighbour"].province) == {"Henan", "Shandong", "Jiangxi", "Hubei"}


def test_city_names_are_unique(cities):
    names = cities.drop_duplicates("city_code")
    assert names.city_en.is_unique
    assert {"Suzhou (Anhui)", "Suzhou (Jiangsu)", "Huainan", "Chuzhou", "Shanghai"} <= set(names.city_en)
    assert not cities.duplicated(["city_code", "year"]).any()


@pytest.mark.parametrize("code", [HUAINAN, CHUZHOU, SUZHOU_ANHUI])
def test_assisted_cities_complete(cities, code):
    city = cities[cities.city_code == code]
    assert city.year.tolist() == list(range(2005, 2024))
    assert city.gdp_index.notna().all()
    assert city.loc[city.year == 2005, "gdp_index"].item() == 100


def test_real_index_has_no_2019_census_break(cities):
    index = cities.pivot(index="city_code", columns="year", values="gdp_index")
    growth = cities.pivot(index="city_code", columns="year", values="gdp_growth")
    ratio = (index[2019] / index[2018]).dropna()
    # Chuzhou: real growth 9.7 % while nominal GDP jumped by 61 %.
    assert ratio[CHUZHOU] == pytest.approx(1.097, abs=1e-4)
    assert ratio[CHUZHOU] == pytest.approx(1 + growth.loc[CHUZHOU, 2019] / 100, abs=1e-4)
    assert ratio.between(0.95, 1.15).all(), ratio[~ratio.between(0.95, 1.15)]


def test_index_is_chained_from_growth(cities):
    frame = cities.sort_values(["city_code", "year"])
    implied = frame.groupby("city_code").gdp_index.pct_change() * 100
    np.testing.assert_allclose(implied.dropna(), frame.gdp_growth[implied.notna()], atol=0.01)
    np.testing.assert_allclose(frame.log_gdp_index, np.log(frame.gdp_index), atol=1e-5)


def test_boundary_change_cities_flagged(cities):
    flagged = set(cities.loc[cities.boundary_change, "city_en"])
    expected = {"Hefei", "Wuhu", "Ma'anshan", "Lu'an", "Huainan", "Anqing", "Tongling", "Chaohu"}
    assert expected <= flagged
    assert not cities.loc[cities.city_code.isin([CHUZHOU, SUZHOU_ANHUI]), "boundary_change"].any()


def test_known_bad_values_corrected(cities):
    shaoxing = cities.query("city_en == 'Shaoxing' and year == 2021")
    assert shaoxing.gdp_growth.item() == pytest.approx(8.73)
    assert shaoxing.growth_source.item() == "csmar_corrected"
    # CSMAR's 2005 Anhui shares are shifted (Huainan got Suzhou's 24 %); the city database is used.
    huainan = cities.query("city_code == @HUAINAN and year == 2005")
    assert huainan.secondary_share.item() == pytest.approx(53.18)
    assert cities.gdp_growth.abs().max() < 40


def test_population_is_registered_only(cities):
    # CSMAR switches Anhui to resident population in 2021 (Huainan 390.8 -> 304).
    huainan = cities.query("city_code == @HUAINAN").set_index("year").population
    assert huainan[2021] > 380
    assert np.isnan(huainan[2023])  # no registered figure: left missing, not spliced


def test_city_panel_values_plausible(cities):
    assert cities[["secondary_share", "tertiary_share"]].stack().between(0, 100).all()
    for name in ("fiscal_revenue", "fiscal_expenditure", "loan_balance", "deposit_balance"):
        both = cities[[name, f"{name}_real"]].dropna()
        assert (both[f"{name}_real"] <= both[name] * 1.001).all(), name  # prices rose from 2005
        assert (both[name] > 0).all(), name
    assert (cities.gdp_pc_real.dropna() > 0).all()


def test_unused_outcomes_added(cities):
    # Urban-unit employment (CSMAR Eect05) ends in 2022; money amounts have real versions.
    assert cities.loc[cities.year == 2023, "employment"].isna().all()
    assert cities.loc[cities.year.between(2005, 2022), "employment"].notna().mean() > 0.98
    huainan = cities.query("city_code == @HUAINAN and year == 2010").iloc[0]
    assert huainan.employment == pytest.approx(32.70)
    assert huainan.fiscal_expenditure_real == pytest.approx(huainan.fiscal_expenditure / huainan.cpi_index * 100,
                                                            rel=1e-4)
    assert huainan.loan_balance_real == pytest.approx(huainan.loan_balance / huainan.cpi_index * 100, rel=1e-4)


# --------------------------------------------------------------------------- repairs and flags


@pytest.fixture(scope="module")
def flags() -> pd.DataFrame:
    return datasets.load_china_cities_flags()


def _flag(flags, code, year, column):
    return flags[(flags.unit == code) & (flags.period == year) & (flags.column == column)]


@pytest.mark.parametrize(
    ("code", "year", "column", "raw"),
    [
        (410800, 2020, "gdp_growth", -20.63),  # Jiaozuo: the write-down taken for real growth
        (411600, 2013, "population", 1130.80),  # Zhoukou: -8 % in 2013, back in 2014
        (320800, 2010, "loan_balance", 8426.3434),  # Huai'an: ten times its path
        (330100, 2010, "loan_balance", 4990.97),  # Hangzhou: a third of its path
        (420100, 2013, "fiscal_revenue", 1730.6543),  # Wuhan: 1.8 times its path, then back
        (341300, 2017, "employment", 380.4),  # Suzhou (Anhui): another series for 2015-17
    ],
)
def test_wrong_cells_are_emptied_and_logged(cities, flags, code, year, column, raw):
    cell = cities.query("city_code == @code and year == @year")
    assert np.isnan(cell[column].item())
    logged = _flag(flags, code, year, column)
    assert logged.action.tolist() == ["missing"] and logged.value.item() == pytest.approx(raw)


def test_emptied_growth_breaks_the_chain(cities):
    jiaozuo = cities.query("city_code == 410800").set_index("year")
    assert jiaozuo.loc[2019, "gdp_index"] > 0
    assert jiaozuo.loc[2020:, ["gdp_index", "log_gdp_index", "gdp_pc_real"]].isna().all().all()


def test_emptied_population_leaves_other_years(cities):
    zhoukou = cities.query("city_code == 411600").set_index("year")
    assert np.isnan(zhoukou.loc[2013, "gdp_pc_real"])
    assert zhoukou.loc[[2012, 2014], "gdp_pc_real"].notna().all()


def test_single_source_2023_break_flagged(cities, flags):
    # 2023 comes from the city database alone; Henan, Hubei and Jiangxi break in it.
    provinces = cities[(cities.year == 2023) & cities.province.isin(["Henan", "Hubei", "Jiangxi"])]
    for column in ("gdp_nominal", "secondary_share", "tertiary_share"):
        rows = flags[(flags.period == 2023) & (flags.column == column) & (flags.kind == "common_break")]
        assert set(provinces.city_code) <= set(rows[rows.action == "exclude"].unit), column
    note = _flag(flags, 411600, 2023, "secondary_share").note.iloc[0]
    assert "Henan 2023" in note and "of 17 cities report nominal GDP below" in note


def test_census_revision_of_shares_flagged(flags):
    breaks = flags[(flags.column == "secondary_share") & (flags.kind == "common_break") & (flags.action == "exclude")]
    per_year = breaks.groupby("period").unit.nunique()
    assert per_year[2019] >= 30
    assert per_year.drop([2019, 2023]).max() < per_year[2019]
    assert 340600 in set(breaks[breaks.period == 2019].unit)  # Huaibei -12.1 pp


def test_write_downs_flag_the_real_index(flags):
    # Shandong 2019: nominal GDP 0.67-0.89 of what real growth implies.
    revised = flags[(flags.column == "log_gdp_index") & (flags.period == 2019) & (flags.kind == "relation")]
    shandong = revised[(revised.unit // 10000 == 37) & (revised.action == "exclude")]
    assert 371600 in set(shandong.unit)  # Binzhou, the heaviest donor of Huainan's old control
    assert len(shandong) >= 10
    dongying = _flag(flags, 370500, 2019, "gdp_growth").query("kind == 'relation'")
    assert dongying.value.item() == pytest.approx(0.674, abs=0.002)


def test_interpolated_2017_growth_flagged(cities, flags):
    filled = cities[(cities.year == 2017) & (cities.growth_source == "citydb_interpolated")]
    assert set(filled.province) == {"Zhejiang", "Henan", "Shandong", "Hubei", "Jiangxi"}
    rows = flags[(flags.column == "gdp_growth") & (flags.period == 2017) & (flags.kind == "interpolation")]
    assert set(filled.city_code) <= set(rows[rows.action == "keep"].unit)


def test_source_disagreements_flagged(flags):
    chuzhou = _flag(flags, CHUZHOU, 2015, "secondary_share").query("kind == 'source'")
    assert chuzhou.action.item() == "exclude" and chuzhou.expected.item() == pytest.approx(53.22)
    anhui_2010 = flags[(flags.column == "gdp_growth") & (flags.period == 2010) & (flags.kind == "source")]
    excluded = set(anhui_2010[anhui_2010.action == "exclude"].unit)
    assert excluded == {340200, 341500, 341400}  # Wuhu, Lu'an, Chaohu: beyond 1.5 pp
    assert (anhui_2010[anhui_2010.action == "keep"].unit // 10000 == 34).all()


def test_flags_table_format(cities, flags):
    assert list(flags.columns) == [*AUDIT_COLUMNS, "action"]
    assert set(flags.kind) <= set(KINDS)
    assert set(flags.action) == {"repaired", "missing", "exclude", "keep"}
    assert set(flags.column) <= set(cities.columns)
    base = datasets.load_china_cities_flags(derived=False)
    assert not base.duplicated(["unit", "period", "column", "kind"]).any()
    assert not flags.duplicated(["unit", "period", "column", "kind", "note"]).any()  # gdp_pc_real: two sources
    keys = set(zip(cities.city_code, cities.year))
    assert all(key in keys for key in zip(flags.unit, flags.period))
    assert len(flags) > len(base) and not set(base.column) & {"log_gdp_index", "fiscal_revenue_real"}
    inherited = flags[(flags.column == "log_gdp_index")].merge(
        cities, left_on=["unit", "period"], right_on=["city_code", "year"])
    np.testing.assert_allclose(inherited.value, inherited.log_gdp_index)


def test_flags_feed_the_fit_warning(cities, flags):
    spec = sc.Spec(outcome="log_gdp_index", unit="city_code", time="year", treated=HUAINAN,
                   treatment_start=2022, donors=[371600, 370500, 320200, 330400], fit_window=(2006, 2021))
    with pytest.warns(sc.AuditWarning, match="371600"):
        sc.fit(cities, spec, audit=flags[flags.action == "exclude"])


def test_shipped_files_are_small():
    for path in SHIPPED.iterdir():
        assert path.stat().st_size < 512 * 1024, path


# --------------------------------------------------------------------------- readers


@needs_raw
def test_read_csmar_gdp_both_formats():
    folder = RAW / "cities" / "csmar"
    xlsx = datasets.read_csmar_gdp(folder / "CRE_Gdpct.xlsx")
    csv = datasets.read_csmar_gdp(folder / "csv_to_2021" / "CRE_Gdpct.csv")
    for frame in (xlsx, csv):
        assert {"year", "city_code", "city", "gdp_100m", "gdp_growth_pct", "secondary_share_pct"} <= set(frame.columns)
        assert frame.year.dtype.kind == "i" and frame.gdp_100m.dtype.kind == "f"
    key = ["city_code", "year"]
    both = xlsx.merge(csv, on=key, suffixes=("_x", "_c")).query("city_code == @CHUZHOU and year == 2019")
    assert both.gdp_100m_x.item() == pytest.approx(both.gdp_100m_c.item(), rel=1e-3)
    assert xlsx.query("city_code == @CHUZHOU and year == 2019").city.item() == "滁州市"


@needs_raw
def test_read_csmar_population_and_citydb():
    population = datasets.read_csmar_population(RAW / "cities" / "csmar" / "csv_to_2021" / "CRE_Eplwagct.csv")
    assert population.query("city_code == @HUAINAN and year == 2021").population_10k.item() == pytest.approx(304)
    citydb = datasets.read_citydb(RAW / "cities" / "citydb" / "china_city_panel_real.csv")
    assert citydb.query("city_code == @CHUZHOU and year == 2019").gdp_100m.item() == pytest.approx(2909)
    assert citydb.loc[citydb.year > 2016, "fai_100m"].isna().mean() > 0.9  # imputed values masked
    assert "house_price" not in citydb.columns


def _citydb_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": [2018, 2019],
            "province": ["安徽省"] * 2,
            "city": ["滁州市"] * 2,
            "city_code": [CHUZHOU] * 2,
            "gdp_100m": [1801.7, 2909.0],
            "secondary_share_pct": [51.6, 49.1],
            "tertiary_share_pct": [39.0, 41.0],
            "gdp_growth_pct": [9.1, 9.7],
            "hukou_pop_10k": [454.0, 455.0],
            "fiscal_revenue_100m": [140.0, 150.0],
        }
    )


def test_read_citydb_missing_column_names_it(tmp_path):
    path = tmp_path / "panel.csv"
    _citydb_rows().drop(columns="gdp_growth_pct").to_csv(path, index=False)
    with pytest.raises(MissingColumnError, match="gdp_growth_pct") as info:
        datasets.read_citydb(path)
    assert str(path) in str(info.value)


def test_read_citydb_non_numeric_is_a_build_error(tmp_path):
    path = tmp_path / "panel.csv"
    _citydb_rows().assign(gdp_100m=["1801.7", "29o9"]).to_csv(path, index=False)
    with pytest.raises(DataBuildError, match="gdp_100m"):
        datasets.read_citydb(path)


def test_read_csmar_xlsx_missing_column_names_it(tmp_path):
    pytest.importorskip("openpyxl")
    header = ["Sgnyea", "Ctnm", "Ctnm_id", "Gdpct01", "Gdpct03", "Gdpct04"]  # GDPYoY removed
    rows = [header, ["年度标识", "城市名称", "城市代码", "国内生产总值", "", ""], ["", "", "", "亿元", "", ""]]
    rows.append(["2019", "滁州市", "341100", "2909.06", "49.1", "41"])
    path = tmp_path / "CRE_Gdpct.xlsx"
    pd.DataFrame(rows).to_excel(path, header=False, index=False)
    with pytest.raises(MissingColumnError, match="GDPYoY") as info:
        datasets.read_csmar_gdp(path)
    assert "CRE_Gdpct.xlsx" in str(info.value)


def test_read_csmar_csv_export(tmp_path):
    path = tmp_path / "CRE_Gdpct.csv"
    path.write_text(
        '\ufeff"Sgnyea","Ctnm_en","Ctnm_id","Gdpct01","Gdpct03","Gdpct04","GDPYoY"\n'
        '"2019","Chuzhou(city)","341100","2909.0600","49.1","41.0","9.7"\n',
        encoding="utf-8",
    )
    row = datasets.read_csmar_gdp(path).iloc[0]
    assert (row.year, row.city_code, row.city, row.gdp_growth_pct) == (2019, CHUZHOU, "Chuzhou(city)", 9.7)


def test_missing_file_is_a_build_error(tmp_path):
    with pytest.raises(DataBuildError, match="not found"):
        datasets.read_csmar_population(tmp_path / "absent.xlsx")


# --------------------------------------------------------------------------- build


def test_build_fails_loudly_on_unexplained_contradiction():
    panel = pd.DataFrame(
        {
            "city": ["滁州市"],
            "city_code": [CHUZHOU],
            "year": [2016],
            "province_en": ["Anhui"],
            "gdp_100m": [1422.8],
            "gdp_100m_csmar": [1600.0],
        }
    )
    with pytest.raises(DataBuildError, match=r"滁州市 \(341100\) in 2016: CSMAR 1600 vs city database 1422.8"):
        build.cross_check_gdp(panel, build.CrossCheck())


def test_build_fails_on_unexplained_growth_gap():
    panel = pd.DataFrame(
        {
            "city": ["滁州市"] * 3,
            "city_code": [CHUZHOU] * 3,
            "year": [2015, 2016, 2017],
            "gdp_100m": [1305.7, 1422.8, 1604.4],
            "gdp_growth_pct": [10.1, 9.2, 9.0],
            "gdp_growth_pct_csmar": [10.1, 12.2, 9.0],
            "csmar_shifted": [False] * 3,
        }
    )
    with pytest.raises(DataBuildError, match=r"growth of 滁州市 \(341100\) in 2016: CSMAR 12.2 vs city database 9.2"):
        build.cross_check_growth(panel, build.CrossCheck())


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """A fresh build of every dataset from the raw files (about 10 s)."""
    if not (RAW / "cities").is_dir():
        pytest.skip(f"raw data not found at {RAW}")
    out = tmp_path_factory.mktemp("data")
    shapes, check, flags = build.build_all(RAW, out)
    return out, shapes, check, flags


def test_shipped_data_equal_fresh_rebuild(rebuilt):
    out, shapes, check, _ = rebuilt
    for name in shapes:
        assert filecmp.cmp(out / name, SHIPPED / name, shallow=False), name
    assert check.gdp["yrd_agree_0.5pct"] >= 720
    assert any("873" in line for line in check.corrections)


@pytest.fixture(scope="module")
def raw_sources():
    """The city database (eight provinces, 2005-2023) and the CSMAR GDP and labour tables."""
    if not (RAW / "cities").is_dir():
        pytest.skip(f"raw data not found at {RAW}")
    folder = RAW / "cities" / "csmar"
    return (build._citydb(RAW), datasets.read_csmar_gdp(folder / "CRE_Gdpct.xlsx"),
            datasets.read_csmar_population(folder / "CRE_Eplwagct.xlsx"))


def test_repairs_follow_the_raw_files(raw_sources):
    citydb, csmar, labour = (frame.set_index(["city_code", "year"]) for frame in raw_sources)
    # Jiaozuo 2020: both sources hold the same impossible "real" growth.
    assert citydb.at[(410800, 2020), "gdp_growth_pct"] == csmar.at[(410800, 2020), "gdp_growth_pct"] == -20.63
    # Zhoukou 2013: the registered population dips by 8 % for one year; the dip equals
    # CSMAR's year-end population, a different concept, so no correct value is in the files.
    zhoukou = citydb.loc[411600, "hukou_pop_10k"]
    assert zhoukou[2013] / zhoukou[2012] < 0.93 and zhoukou[2014] / zhoukou[2012] > 1.0
    assert labour.at[(411600, 2013), "population_10k"] == pytest.approx(zhoukou[2013], abs=0.05)
    # Henan 2023: nominal GDP below 2022 for 15 of 17 cities although real growth is positive.
    henan = citydb[citydb.province == "河南省"]
    nominal = henan.gdp_100m.unstack()
    assert int((nominal[2023] < nominal[2022]).sum()) == 15
    assert (henan.xs(2023, level="year").gdp_growth_pct > 0).all()


def test_audit_finds_the_known_problems_in_the_raw_panel(raw_sources):
    raw, csmar, _ = raw_sources
    reference = csmar[["city_code", "year", "secondary_share_pct"]]
    found = sc.audit(raw, unit="city_code", time="year", group="province",
                     columns=["gdp_growth_pct", "secondary_share_pct", "hukou_pop_10k", "loan_balance_100m"],
                     transform={"gdp_growth_pct": "level", "secondary_share_pct": "level"},
                     relations=[sc.implied_deflator("gdp_100m", "gdp_growth_pct")], reference=reference)

    def units(column, kind, year):
        return set(found[(found.column == column) & (found.kind == kind) & (found.period == year)].unit)

    assert len(units("secondary_share_pct", "common_break", 2019)) >= 30  # census revision
    assert {411600} <= units("hukou_pop_10k", "reversal", 2013)  # Zhoukou
    assert {320800, 330100, 330200} <= units("loan_balance_100m", "reversal", 2010)  # Huai'an, Hangzhou, Ningbo
    assert 410800 in units("gdp_growth_pct", "relation", 2020) | units("gdp_growth_pct", "reversal", 2020)
    shandong_2019 = {u for u in units("gdp_100m", "relation", 2019) if u // 10000 == 37}
    assert len(shandong_2019) >= 10
    henan_2023 = {u for u in units("secondary_share_pct", "common_break", 2023) if u // 10000 == 41}
    assert len(henan_2023) >= 5
    assert len(units("gdp_growth_pct", "interpolation", 2017)) >= 50
    assert CHUZHOU in units("secondary_share_pct", "source", 2015)
