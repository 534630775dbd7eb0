"""Smoke runs of the issue-13 benchmarks (speed against the baseline commit, search
quality against the reference losses) on small problems. Times are never asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks import baseline, misses, quality, reference, specs, speed  # noqa: E402


def test_baseline_package_runs_beside_the_current_one():
    base = baseline.load()
    assert base.__name__ == "synthcontrol_baseline" and base is not sc
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)], donors=["Utah", "Nevada", "Idaho"])
    df = sc.datasets.load_smoking()
    theirs = base.fit(df, baseline.spec(base, spec))
    ours = sc.fit(df, spec)
    assert ours.loss_v <= theirs.loss_v * (1 + 1e-9)


def test_speed_pieces_on_small_panels():
    j = speed.j1000((0,), n_donors=30)
    assert j["ratio"] > 0 and j["rows"][0]["current_loss"] <= j["rows"][0]["baseline_loss"] * (1 + 1e-6)
    slopes = speed.slope((30, 60), 8, seeds=(0,))
    assert set(slopes) == {"inside", "outside"} and all(np.isfinite(s["slope"]) for s in slopes.values())
    assert all(t["certified"] for t in slopes["inside"]["times"])  # an exact combination attains the bound
    memory = speed.memory(60, 8)
    assert all(m["peak_mib"] >= m["before_mib"] > 0 for m in memory.values())
    report = {"placebo": {"ratio": 12.0, "runs": {"current, n_jobs=1": 0.1}, "repeats": 1, "fits_lower_or_equal": 39,
                          "fits": 39, "mean_loss": {"current": 1.0, "baseline": 1.1}},
              "j1000": j, "slope": slopes, "memory": memory, "memory_donors": 60,
              "compile": {"compile_s": 1.0, "empty cache": {"first_fit_s": 2.0, "second_fit_s": 1.0},
                          "cache written": {"first_fit_s": 1.0}}}
    text = speed.markdown(report)
    assert text.count("| yes |") + text.count("| no |") == 6


@pytest.mark.skipif(not specs.DATA_DIR.is_dir(), reason="shared SCM data not present")
def test_quality_compares_default_fits_with_the_reference(tmp_path):
    stored = json.loads(reference.REFERENCE.read_text())
    keys = ["california/California", "california/Utah"]
    small = {"problems": {k: stored["problems"][k] for k in keys}}
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(small))
    report = quality.main(["--only", "california", "--reference", str(path)])
    assert [r["problem"] for r in report["rows"]] == ["California", "Utah"]
    assert report["summary"]["california"]["fits"] == 2
    for row in report["rows"]:
        assert row["excess"] == pytest.approx(row["loss"] / row["reference"] - 1)


@pytest.mark.skipif(not specs.DATA_DIR.is_dir(), reason="shared SCM data not present")
def test_misses_diagnosis_on_one_missed_fit():
    stored = json.loads(reference.REFERENCE.read_text())["problems"]
    design = dict(reference.SETS["california"]())["South Carolina"]
    row = misses.diagnose("South Carolina", reference.nested_problem(design), stored["california/South Carolina"])
    assert row is not None, "South Carolina now reaches its reference: update the diagnosis in benchmarks/README.md"
    assert row["excess"] > quality.TARGETS["california"]
    # The default's end point is the optimum of its own convex QP (to cvxpy's tolerance).
    assert row["own_qp_excess"] == pytest.approx(row["excess"], rel=1e-3)
    assert row["reference_exact"] == [0, 5]
    assert row["face_search_excess"] < quality.TARGETS["california"]
