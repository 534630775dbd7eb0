"""The replications in case_studies/: published numbers, reached through the library API
with each script's own specification."""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import synthcontrol as sc
from synthcontrol.weights import is_admissible

CASE_STUDIES = Path(__file__).resolve().parents[1] / "case_studies"


def load_script(name: str):
    """Import ``case_studies/<name>.py`` as a module (its folder is not a package)."""
    if str(CASE_STUDIES) not in sys.path:
        sys.path.insert(0, str(CASE_STUDIES))  # for the scripts' shared ``_common``
    spec = importlib.util.spec_from_file_location(f"case_study_{name}", CASE_STUDIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def basque():
    module = load_script("basque")
    return module, sc.fit(sc.datasets.load_basque(), module.SPEC)


@pytest.fixture(scope="module")
def california():
    return sc.fit(sc.datasets.load_smoking(), load_script("california").SPEC)


@pytest.fixture(scope="module")
def texas():
    return sc.fit(sc.datasets.load_texas(), load_script("texas").SPEC)


# ------------------------------------------------------------------------------ Basque


def test_basque_beats_both_published_fits(basque):
    _, res = basque
    assert res.loss_v <= 0.004287  # MSCMT's 0.0042861, R Synth's 0.0088646
    assert res.solution.certified
    assert res.loss_v <= res.lower_bound * (1 + 1e-9)


def test_basque_published_weights_reproduce_on_our_data(basque):
    module, res = basque
    losses = module.published_losses(res)
    assert losses["R Synth"] == pytest.approx(0.0088645699, abs=1e-10)
    assert losses["MSCMT"] == pytest.approx(0.0042860809, abs=1e-10)
    assert losses["synthcontrol"] == res.loss_v
    assert losses["lower bound"] <= losses["synthcontrol"] * (1 + 1e-9) < losses["MSCMT"] < losses["R Synth"]


def test_basque_optimum_weights_mean_pre_period_gdp(basque):
    _, res = basque
    assert res.predictor_weights.idxmax() == "gdpcap(1960-1969)"
    assert is_admissible(res.predictor_weights.to_numpy(), 1e-8)


def test_basque_gap_is_negative_in_the_1980s_and_1990s(basque):
    _, res = basque
    path = res.path.loc[1980:1997]
    relative = path["gap"] / path["synthetic"]
    assert (path["gap"] < 0).all()
    assert -0.20 <= relative.mean() <= -0.05  # Abadie and Gardeazabal: about -10%
    assert "Spain (Espana)" not in res.donors and len(res.donors) == 16


# -------------------------------------------------------------------------- California


def test_california_matches_adh(california):
    res = california
    assert res.pre_rmspe <= 1.76
    assert res.weights[["Utah", "Nevada", "Montana", "Colorado", "Connecticut"]].sum() >= 0.9
    assert -30 <= res.path.loc[2000, "gap"] <= -22
    assert len(res.donors) == 38


# ------------------------------------------------------------------------------- Texas


def test_texas_sanity(texas):
    res = texas
    assert res.weights.sum() == pytest.approx(1.0, abs=1e-10)
    assert np.isfinite(res.pre_rmspe) and res.pre_rmspe > 0
    assert res.spec.treatment_start == 1994
    assert (res.effects.loc[1994:] > 0).all()  # more black male prisoners, as in the Mixtape
    assert res.average_effect > 0


# ----------------------------------------------------------------------------- scripts


def test_script_prints_tables_and_writes_figures(tmp_path, capsys):
    module = load_script("basque")
    res = module.main(["--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert res.summary().as_text() in printed
    assert "0.0088645699" in printed and "0.0042860809" in printed
    for name in ("path", "gap", "weights"):
        figure = tmp_path / f"{name}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------- configurations


def test_the_study_layer_knows_no_programme():
    """A new policy study is a configuration and a dataset: the programme (who is treated,
    who helps, which provinces pool) lives in case_studies/yrd_twinning.toml."""
    package = Path(sc.__file__).parent
    words = re.compile(r"yrd|programme|assisted|helper|boundary|province|territor", re.IGNORECASE)
    files = [p for folder in ("study", "report") for p in (package / folder).rglob("*") if p.suffix in (".py", ".j2")]
    assert files
    for path in files:
        assert not words.search(path.read_text(encoding="utf-8")), path
    assert not hasattr(sc.datasets, "load_programme")
    study = sc.load_config(CASE_STUDIES / "yrd_twinning.toml", quick=True)
    assert {"assisted", "helpers", "pairs"} <= {g.name for g in study.groups}


def test_the_yrd_study_runs_end_to_end_on_all_eight_cities(tmp_path):
    """The quick run of the YRD study (main analysis, headline outcome, first pool):
    every assisted city, a p-value on every row, the blocks, and a report that opens
    with the answer to the growth claim."""
    config = sc.load_config(CASE_STUDIES / "yrd_twinning.toml", quick=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sc.AuditWarning)  # the audit's warnings, recorded for the report
        study = sc.run_study(config, n_jobs=1)
    results = study.results
    assisted = {340400, 341500, 341600, 341100, 341200, 340600, 341300, 340300}
    units = results[results.scope == "unit"]
    assert set(units.treated_code) == assisted and results.p_value.notna().all()
    assert set(results[results.scope == "block"].treated) == {"eight assisted cities", "three pairs"}
    huainan = units.set_index("treated_code").loc[340400]
    assert huainan.n_audit_dropped > 0 and huainan.effect_pct == pytest.approx(np.expm1(huainan.effect) * 100)
    report = sc.write_report(study, tmp_path)["markdown"].read_text(encoding="utf-8")
    answer = report.split("## Figures")[0]
    assert "### Growth" in answer and "### Innovation" in answer and "Verdict" in answer
    assert "### Industrial structure" not in answer  # its outcomes are not fitted in a quick run
