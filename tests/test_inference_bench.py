"""Smoke run of the placebo benchmark (``benchmarks/bench_placebo.py --quick``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# `benchmarks` is a top-level folder, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_placebo  # noqa: E402


def test_quick_benchmark_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = bench_placebo.main(["--quick", "--json", str(out)])
    (run,) = report["runs"]
    assert run["n_fits"] == len(bench_placebo.QUICK_DONORS)
    assert run["p_value"] == run["rank"] / (len(bench_placebo.QUICK_DONORS) + 1)
    assert report["peer"] is None
    assert json.loads(out.read_text())["n_units"] == len(bench_placebo.QUICK_DONORS) + 1
    assert "p_value" in capsys.readouterr().out
