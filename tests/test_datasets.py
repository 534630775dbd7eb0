"""Tests of the shipped datasets, their loaders, the export readers and the build."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthcontrol import datasets
from synthcontrol.datasets import build
from synthcontrol.errors import DataBuildError, MissingColumnError

RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data"
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
    assert (cities.fiscal_revenue_real <= cities.fiscal_revenue * 1.001).all()
    assert (cities.gdp_pc_real.dropna() > 0).all()


def test_shipped_files_are_small():
    folder = Path(build.__file__).parent / "data"
    for path in folder.iterdir():
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


@needs_raw
def test_shipped_data_equal_fresh_rebuild(tmp_path):
    shapes, check = build.build_all(RAW, tmp_path)
    shipped = Path(build.__file__).parent / "data"
    for name in shapes:
        assert filecmp.cmp(tmp_path / name, shipped / name, shallow=False), name
    assert check.gdp["yrd_agree_0.5pct"] >= 720
    assert any("873" in line for line in check.corrections)
