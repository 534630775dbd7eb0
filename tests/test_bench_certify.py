"""Smoke checks of the certificate benchmark (``benchmarks/bench_certify.py``): problem
building, one certified random problem, the tables and the resumable checkpoint. Times are
never asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_certify  # noqa: E402

pytest.importorskip("pyscipopt")


def test_random_problems_are_seeded_and_shaped():
    a, b = bench_certify.random_problem(7, 20, 1), bench_certify.random_problem(7, 20, 1)
    assert a.X0.shape == (7, 20) and a.Z0.shape == (15, 20)
    assert np.array_equal(a.X0, b.X0) and np.array_equal(a.z1, b.z1)
    assert all(p.X0.shape[0] <= 10 and p.X0.shape[1] <= 40 for p in bench_certify.random_problems(quick=False))


def test_one_problem_summary_and_markdown():
    problem = bench_certify.random_problem(5, 20, 1)
    row = bench_certify.run_ours(problem, time_limit=60.0)
    assert row["status"] in ("certified", "improved and certified")
    assert row["loss"] <= row["search_loss"] * (1 + 1e-9)
    frame = pd.DataFrame([row])
    table = bench_certify.summary_table(frame)
    assert table.loc["random", "certified"] == 1 and table.loc["random", "fits"] == 1
    text = bench_certify.markdown(frame.assign(group="California (ADH)"), "not run", 60.0)
    assert "Certification rate and time" in text and row["name"] in text


def test_checkpoint_is_reused_only_for_the_same_time_limit(tmp_path):
    path = tmp_path / "records.json"
    record = {"group": "random", "name": "x", "status": "certified", "mscmt_loss": 1.0}
    path.write_text(json.dumps({"time_limit": 60.0, "records": [record]}))
    assert bench_certify._finished(path, 60.0) == {("random", "x"): {"group": "random", "name": "x",
                                                                     "status": "certified"}}
    assert bench_certify._finished(path, 30.0) == {}
    assert bench_certify._finished(tmp_path / "missing.json", 60.0) == {}
