"""Checks for the benchmark specs and peer adapters.

The peers are optional: tests that run one are skipped when it is not
importable, so CI (without ``.venv-bench``) only checks specs and the loss.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# `benchmarks` is a top-level folder, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import peers, specs  # noqa: E402

PEER_MODULES = {"pysyncon": "pysyncon", "scm": "SyntheticControlMethods", "scpi": "scpi_pkg"}

needs_data = pytest.mark.skipif(not specs.DATA_DIR.is_dir(), reason="shared SCM data not present")


@needs_data
@pytest.mark.parametrize("dataset", sorted(specs.SPECS))
def test_spec_matches_data(dataset: str) -> None:
    df, spec = specs.load(dataset)
    units = set(df[spec["unit"]])
    assert spec["treated"] in units
    assert spec["donors"] and set(spec["donors"]) <= units - {spec["treated"]}
    assert spec["treatment_start"] in set(df[spec["time"]])
    panel = df[df[spec["unit"]].isin([spec["treated"], *spec["donors"]])]
    fit = panel[panel[spec["time"]].between(*spec["fit_window"])]
    assert fit[spec["time"]].nunique() == spec["fit_window"][1] - spec["fit_window"][0] + 1
    assert fit[spec["outcome"]].notna().all()
    table = peers.predictor_table(df, spec, [spec["treated"], *spec["donors"]])
    # Every predictor is defined for every unit in its own periods.
    assert table.notna().all().all(), table.columns[table.isna().any()].tolist()


def test_basque_donors_drop_spain_and_treated() -> None:
    assert "Spain (Espana)" not in specs.BASQUE["donors"]
    assert specs.BASQUE["treated"] not in specs.BASQUE["donors"]
    assert len(specs.BASQUE["donors"]) == 16


@needs_data
def test_outcome_mspe_reproduces_published_basque_losses() -> None:
    df, spec = specs.load("basque")
    mscmt = {"Cataluna": 0.633, "Baleares (Islas)": 0.219, "Madrid (Comunidad De)": 0.148}
    r_synth = {"Cataluna": 0.8508, "Madrid (Comunidad De)": 0.1492}
    # Published to 3-4 digits, so the weights are rounded; losses 0.0042861 and 0.0088646.
    assert peers.outcome_mspe(df, spec, mscmt) == pytest.approx(0.0042861, rel=1e-3)
    assert peers.outcome_mspe(df, spec, r_synth) == pytest.approx(0.0088646, rel=1e-3)


def _toy_panel() -> pd.DataFrame:
    """Treated = 0.25 A + 0.75 B in every period and covariate; C is off."""
    rows = []
    for t in range(2000, 2006):
        a, b, c = float(t - 2000), float(10 - (t - 2000) ** 1.5), 50.0 + t % 3
        x_a, x_b, x_c = 1.0, 3.0, 9.0
        for unit, y, x in (("A", a, x_a), ("B", b, x_b), ("C", c, x_c),
                           ("T", 0.25 * a + 0.75 * b, 0.25 * x_a + 0.75 * x_b)):
            rows.append({"unit": unit, "time": t, "y": y, "x": x})
    return pd.DataFrame(rows)


TOY_SPEC = {
    "outcome": "y", "unit": "unit", "time": "time", "treated": "T",
    "treatment_start": 2004, "fit_window": (2000, 2003), "donors": None,
    "predictors": [{"var": "x", "op": "mean", "start": 2000, "end": 2003},
                   {"var": "y", "op": "at", "period": 2001},
                   {"var": "y", "op": "at", "period": 2003}],
}


def test_outcome_mspe_hand_computed() -> None:
    df = pd.DataFrame({
        "unit": ["T", "T", "T", "A", "A", "A", "B", "B", "B"],
        "time": [1, 2, 3] * 3,
        "y": [1.0, 2.0, 100.0, 0.0, 4.0, 0.0, 2.0, 0.0, 0.0],
    })
    spec = {"outcome": "y", "unit": "unit", "time": "time", "treated": "T", "fit_window": (1, 2)}
    # synthetic = 0.25 A + 0.75 B = (1.5, 1.0); gaps (-0.5, 1.0); period 3 is outside.
    assert peers.outcome_mspe(df, spec, {"A": 0.25, "B": 0.75}) == pytest.approx(0.625)
    # synthetic = B = (2, 0); gaps (-1, 2).
    assert peers.outcome_mspe(df, spec, {"A": 0.0, "B": 1.0}) == pytest.approx(2.5)


def test_outcome_mspe_zero_for_exact_combination() -> None:
    assert peers.outcome_mspe(_toy_panel(), TOY_SPEC, {"A": 0.25, "B": 0.75}) == pytest.approx(0.0)


def test_predictor_labels_and_split() -> None:
    labels = [peers.predictor_label(p) for p in TOY_SPEC["predictors"]]
    assert labels == ["x[2000-2003]", "y@2001", "y@2003"]
    lead, rest = peers._pysyncon_split(TOY_SPEC["predictors"])
    assert [p["var"] for p in lead] == ["x"] and len(rest) == 2


def test_failed_fit_is_recorded_not_raised() -> None:
    bad = {**TOY_SPEC, "outcome": "missing"}
    fit = peers.fit_scpi(_toy_panel(), bad)
    assert fit.error is not None and fit.weights == {}


@pytest.mark.parametrize("peer", sorted(PEER_MODULES))
def test_peer_recovers_exact_combination(peer: str) -> None:
    if importlib.util.find_spec(PEER_MODULES[peer]) is None:
        pytest.skip(f"{PEER_MODULES[peer]} not installed")
    df = _toy_panel()
    fit = peers.ADAPTERS[peer](df, TOY_SPEC)
    assert fit.error is None, fit.error
    assert sum(fit.weights.values()) == pytest.approx(1.0, abs=1e-6)
    assert fit.seconds > 0
    assert peers.outcome_mspe(df, TOY_SPEC, fit.weights) < 1e-3


def test_placebo_fits_drop_real_treated() -> None:
    if importlib.util.find_spec("scpi_pkg") is None:
        pytest.skip("scpi_pkg not installed")
    fits = peers.placebo_fits("scpi", _toy_panel(), TOY_SPEC, ["A"])
    assert set(fits) == {"A"}
    assert fits["A"].error is None, fits["A"].error
    assert set(fits["A"].weights) == {"B", "C"}
    assert np.isclose(sum(fits["A"].weights.values()), 1.0)
