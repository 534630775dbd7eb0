"""Shared fixtures: a small synthetic panel and its specification, and the smoking data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthcontrol as sc

UNITS = ("T", "A", "B", "C", "D", "E")
PERIODS = tuple(range(2000, 2012))
TREATMENT_START = 2008


def make_panel(seed: int = 1) -> pd.DataFrame:
    """Long panel: six units over 2000-2011, outcome ``y`` and predictor ``x``.

    ``T`` is treated from 2008 and gets an effect of -2 from then on. With the default
    seed the nested fit is certified at once (a quick fixture for behaviour tests).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i, unit in enumerate(UNITS):
        level, slope = 10.0 + 2.0 * rng.normal(), 0.5 + 0.2 * rng.normal()
        for t in PERIODS:
            y = level + slope * (t - 2000) + 0.3 * rng.normal()
            if unit == "T" and t >= TREATMENT_START:
                y -= 2.0
            rows.append({"unit": unit, "time": t, "y": y, "x": level + rng.normal()})
    return pd.DataFrame(rows)


@pytest.fixture
def panel() -> pd.DataFrame:
    """A fresh copy of the small panel (tests may modify it)."""
    return make_panel()


@pytest.fixture
def spec() -> sc.Spec:
    return sc.Spec(
        outcome="y",
        treated="T",
        treatment_start=TREATMENT_START,
        predictors=[sc.mean("x", 2000, 2007), sc.at("y", 2002), sc.at("y", 2007)],
        fit_window=(2000, 2007),
    )


@pytest.fixture(scope="session")
def smoking() -> pd.DataFrame:
    return sc.datasets.load_smoking()
