"""Checks for the benchmark driver: spec conversion, peer checks, tables, the quick run.

No peer is run here (CI has no ``.venv-bench``): the quick run points at a
missing peer interpreter and must say so in its output, and the time limit on
peer calls is checked with a stand-in interpreter.
"""

from __future__ import annotations

import json
import math
import stat
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# `benchmarks` is a top-level folder, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import compare, peers, run_all, specs  # noqa: E402
from synthcontrol.estimators import prepare_designs  # noqa: E402

needs_data = pytest.mark.skipif(not specs.DATA_DIR.is_dir(), reason="shared SCM data not present")


@needs_data
@pytest.mark.parametrize("dataset", sorted(specs.SPECS))
def test_converted_spec_has_the_neutral_predictors(dataset: str) -> None:
    df, spec = specs.load(dataset)
    design = next(iter(prepare_designs(df, compare.to_spec(spec)).values()))
    assert design.units[0] == spec["treated"]
    assert sorted(design.units[1:]) == sorted(spec["donors"])
    # Every predictor of every unit equals the spec's own definition computed by pandas.
    expected = peers.predictor_table(df, spec, list(design.units))
    np.testing.assert_allclose(design.predictors, expected.to_numpy().T, rtol=1e-12)
    fit_periods = [t for t, m in zip(design.periods, design.fit_mask) if m]
    assert fit_periods == list(range(spec["fit_window"][0], spec["fit_window"][1] + 1))


def test_fit_status_flags_wrong_answers() -> None:
    donors = ["A", "B", "C"]
    status, detail = compare.fit_status(
        {"error": None, "weights": {"A": 1.2, "B": -0.2, "Z": 0.1}, "outcome_mspe": 1.0}, donors)
    assert status == "wrong answer"
    assert "negative weights: B" in detail and "sum to 1.1" in detail
    assert "outside the donor pool: Z" in detail
    status, detail = compare.fit_status(
        {"error": None, "weights": {"A": 1.0}, "outcome_mspe": math.nan}, donors)
    assert (status, detail) == ("wrong answer", "outcome MSPE is not finite")
    assert compare.fit_status({"error": None, "weights": {"A": 0.4, "C": 0.6}, "outcome_mspe": 0.5},
                              donors) == ("ok", "")


def _peer(seconds: float, loss: float, status: str = "ok") -> dict:
    fit = {"seconds": seconds, "outcome_mspe": loss, "weights": {"A": 1.0}, "error": None}
    return {"status": status, "detail": "", "cap_s": 100.0, "runs": [fit] if status == "ok" else []}


def test_tables_and_criteria_from_records() -> None:
    ours = {"california": {"seconds": [0.5, 0.4, 0.6], "loss": 3.0, "weights": {"A": 1.0}}}
    peer_recs = {"california": {"pysyncon": _peer(12.0, 3.5), "scm": _peer(0, 0, "did not finish")}}
    fits = compare.fit_table(ours, peer_recs).set_index("package")
    assert fits.loc["pysyncon", "time_ratio"] == pytest.approx(24.0)
    assert fits.loc["pysyncon", "loss_ratio"] == pytest.approx(3.5 / 3.0)
    assert math.isnan(fits.loc["scm", "seconds"]) and fits.loc["scm", "cap_s"] == 100.0

    placebo = compare.placebo_table(
        {"X": {"seconds": [0.1], "loss": 1.0}, "Y": {"seconds": [0.3], "loss": 2.0},
         "Z": {"seconds": [0.2], "loss": 1.0}},
        {"X": {"seconds": 20.0, "outcome_mspe": 1.0, "error": None},
         "Y": {"seconds": 40.0, "outcome_mspe": 1.5, "error": None}})
    assert placebo["no_worse"].tolist() == ["yes", "no", "-"]
    assert placebo.loc["Z", "peer_status"] == "did not finish"
    assert compare.extrapolated_full_placebo(placebo, 39) == pytest.approx(30.0 * 39)

    crit = compare.criteria(fits.reset_index(), placebo, [{"n_jobs": 1, "seconds": [3.0, 3.9]}],
                            39, total_seconds=600)
    met = dict(zip(crit["criterion"], crit["met"]))
    assert [met[c] for c in crit["criterion"]] == ["yes", "yes", "no", "yes", "no", "yes", "yes"]
    assert crit["measured"].iloc[2] == pytest.approx((12.0 + 30 * 39) / (0.5 + 3.45))  # all 40 fits
    assert crit["measured"].iloc[3] == pytest.approx(60 / 0.4)  # (20 + 40) / (0.1 + 0.3)
    assert crit["measured"].iloc[5] == pytest.approx(30 * 39 / 3.45)


def test_criteria_without_peers_are_not_measured() -> None:
    ours = {"california": {"seconds": [0.5], "loss": 3.0, "weights": {"A": 1.0}}}
    fits = compare.fit_table(ours, {})
    placebo = compare.placebo_table({"X": {"seconds": [0.1], "loss": 1.0}}, {}, missing="not run")
    crit = compare.criteria(fits, placebo, [{"n_jobs": 1, "seconds": [3.0]}], 39, total_seconds=1400)
    assert crit["met"].tolist() == ["not measured"] * 6 + ["no"]


def _fake_interpreter(tmp_path: Path, body: str) -> Path:
    """An executable standing in for the peer venv's python; gets peers.py's arguments."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_peer_call_cap_keeps_what_finished(tmp_path: Path) -> None:
    # Writes a finished fit, then hangs like a slow placebo: the call is cut at the cap.
    fit = {"seconds": 1.5, "outcome_mspe": 2.0, "weights": {"A": 1.0}, "error": None}
    record = json.dumps({"version": "9.9", "fit": fit, "placebos": {}})
    fake = _fake_interpreter(tmp_path, f"""
while [ "$1" != "--json" ]; do shift; done
echo '{record}' > "$2"
sleep 30
""")
    call = run_all.peer_call(fake, "basque", "pysyncon", cap=1.0)
    assert call["timed_out"] and call["fit"] == fit and call["version"] == "9.9"
    assert call["wall_s"] < 20


def test_peer_call_reports_a_crash(tmp_path: Path) -> None:
    fake = _fake_interpreter(tmp_path, "echo 'ImportError: no pysyncon' >&2\nexit 1\n")
    call = run_all.peer_call(fake, "basque", "pysyncon", cap=30.0)
    assert call["fit"] is None and not call["timed_out"]
    assert "ImportError: no pysyncon" in call["stderr"]


def test_missing_extra_script_is_skipped_with_a_note() -> None:
    rec = run_all.run_extra("no_such_benchmark", cap=5.0)
    assert rec["status"] == "skipped" and "not present" in rec["detail"]


@needs_data
def test_quick_run_writes_results_without_peer_env(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run_all.README_START}\nold\n{run_all.README_END}\nrest\n")
    out = tmp_path / "RESULTS.md"
    results = run_all.main(["--quick", "--out", str(out), "--readme", str(readme),
                            "--peer-python", str(tmp_path / "absent" / "python"), "--no-extras"])
    text = out.read_text()
    assert "--quick smoke run" in text and "Peers not run: no peer environment" in text
    assert "| basque | synthcontrol | ok |" in text and "cores" in text
    for png in ("fit_times", "loss_ratios", "placebo"):
        assert (tmp_path / "results" / f"{png}.png").stat().st_size > 0
    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert saved["ours"]["basque"]["loss_matches_loss_v"]
    assert results["placebo"]["n_fits"] == len(specs.BASQUE["donors"])
    updated = readme.read_text()
    assert "old" not in updated and updated.startswith("intro\n") and updated.endswith("rest\n")
    assert "Acceptance criteria" in updated
    assert pd.notna(saved["ours"]["basque"]["loss"])
