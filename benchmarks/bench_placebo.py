"""Time the in-space placebo test of California (ADH 2010 specification).

Every placebo chooses its own predictor weights (39 nested fits in all). The run
is timed serially and with more workers, with and without the treated unit's
predictor weights as an extra start. When the peer environment ``.venv-bench``
(with pysyncon) exists, pysyncon refits a fixed random sample of the same placebo
units through ``benchmarks/peers.py`` and both sides' fit-window outcome MSPEs and
times are reported for those units.

    python benchmarks/bench_placebo.py              # full run
    python benchmarks/bench_placebo.py --quick      # seconds: a CI smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks.specs import CALIFORNIA  # noqa: E402
from synthcontrol.estimators import fit_design  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
QUICK_DONORS = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming"]


def to_spec(neutral: dict[str, Any], donors: list | None = None) -> sc.Spec:
    """A :class:`synthcontrol.Spec` from a neutral spec of ``benchmarks.specs``."""
    predictors = [
        sc.mean(p["var"], p["start"], p["end"]) if p["op"] == "mean" else sc.at(p["var"], p["period"])
        for p in neutral["predictors"]
    ]
    return sc.Spec(outcome=neutral["outcome"], unit=neutral["unit"], time=neutral["time"],
                   treated=neutral["treated"], treatment_start=neutral["treatment_start"],
                   predictors=predictors, fit_window=tuple(neutral["fit_window"]),
                   donors=donors if donors is not None else neutral["donors"])


def time_placebos(res: sc.SynthResult, n_jobs: int, start_from_treated: bool) -> dict[str, Any]:
    """One timed placebo run and what it found."""
    t0 = time.perf_counter()
    inf = sc.placebo_test(res, n_jobs=n_jobs, start_from_treated=start_from_treated)
    seconds = time.perf_counter() - t0
    return {
        "n_jobs": n_jobs,
        "start_from_treated": start_from_treated,
        "seconds": round(seconds, 3),
        "n_fits": inf.run.n_computed,
        "p_value": inf.p_value,
        "rank": inf.rank,
        "mean_placebo_loss": float(np.mean(inf.loss_v[1:])),
        "losses": dict(zip(map(str, inf.units[1:]), map(float, inf.loss_v[1:]))),
    }


def peer_comparison(res: sc.SynthResult, n_units: int, seed: int) -> dict[str, Any] | None:
    """pysyncon and synthcontrol on the same placebo units (None without the peer venv)."""
    if not PEER_PYTHON.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        subprocess.run([str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers.py"), "--dataset", "california",
                        "--peer", "pysyncon", "--placebo-units", str(n_units), "--seed", str(seed),
                        "--json", str(out)], check=True, cwd=ROOT)
        peer = json.loads(out.read_text())
    rows = {}
    for unit, fit in peer["placebos"].items():
        t0 = time.perf_counter()
        ours = fit_design(res.design.relabel(res.design.units.index(unit)), options=res.options)
        rows[unit] = {
            "ours_seconds": time.perf_counter() - t0,
            "ours_loss": ours.loss_v,
            "peer_seconds": fit["seconds"],
            "peer_loss": fit["outcome_mspe"],
            "peer_error": fit["error"],
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    return {
        "peer": "pysyncon",
        "version": peer["version"],
        "units": rows,
        "time_ratio_peer_over_ours": float(table["peer_seconds"].sum() / table["ours_seconds"].sum()),
        "ours_better_or_equal": int((table["ours_loss"] <= table["peer_loss"] * (1 + 1e-9)).sum()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="six donors, one run, no peer: a smoke test")
    ap.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--peer-units", type=int, default=8, help="placebo units refitted by pysyncon")
    ap.add_argument("--seed", type=int, default=0, help="seed of the peer's placebo sample")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    df = sc.datasets.load_smoking()
    spec = to_spec(CALIFORNIA, donors=QUICK_DONORS if args.quick else None)
    res = sc.fit(df, spec)
    runs = [time_placebos(res, n, False) for n in ([1] if args.quick else args.n_jobs)]
    if not args.quick:
        runs.append(time_placebos(res, 1, True))
    report = {
        "dataset": "california",
        "n_units": len(res.design.units),
        "runs": runs,
        "peer": None if args.quick else peer_comparison(res, args.peer_units, args.seed),
    }
    summary = pd.DataFrame(runs).drop(columns="losses")
    print(summary.to_string(index=False))
    if not args.quick:
        plain, started = runs[0]["losses"], runs[-1]["losses"]
        improved = {u: (plain[u], started[u]) for u in plain if started[u] < plain[u] * (1 - 1e-9)}
        print(f"extra start from the treated unit's v lowered {len(improved)} placebo loss(es): {improved}")
    if report["peer"] is not None:
        print(pd.DataFrame.from_dict(report["peer"]["units"], orient="index").to_string())
        print(f"pysyncon/synthcontrol time ratio: {report['peer']['time_ratio_peer_over_ours']:.3g}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
