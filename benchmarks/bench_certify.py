"""Certified global optima (issue 14): rate and time, next to MSCMT-style search.

Two problem sets: the 39 California fits of the ADH (2010) specification (the treated
unit and its 38 in-space placebos, each against the other donors) and seeded random
nested problems with ``K <= 10`` predictors and ``J <= 40`` donors. On each, the
default search (``synthcontrol.weights.nested_fit``) runs, then
``synthcontrol.certify.certify_nested`` (SCIP, ratio floor ``1e-8``). mlsynth's
``mscmt`` backend (log-scaled differential evolution as in R's MSCMT, floor ``1e-8``,
seed 0) runs on the same arrays in its own environment (``make mlsynth-env``,
``benchmarks/mlsynth_mscmt.py``); the loss its ``V`` attains is recomputed with the
exact inner solve of the certificate, because the loss mlsynth reports comes from its
own big-M inner solve. Each loss is compared with the certified optimum::

    .venv/bin/python benchmarks/bench_certify.py --markdown /tmp/certify.md --json /tmp/certify.json
    .venv/bin/python benchmarks/bench_certify.py --quick --markdown /tmp/certify.md   # a minute

Times are wall-clock on whatever machine runs it, one problem at a time; compare them
within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import compare, specs  # noqa: E402
from benchmarks.bench_placebo import to_spec  # noqa: E402
from synthcontrol.certify import DEFAULT_TIME_LIMIT, certify_nested, check_predictor_weights  # noqa: E402
from synthcontrol.estimators import prepare_designs  # noqa: E402
from synthcontrol.results import FitOptions  # noqa: E402
from synthcontrol.weights import nested_fit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MLSYNTH_PYTHON = ROOT / ".venv-mlsynth" / "bin" / "python"
#: Random problem shapes (K predictors, J donors); two seeds each.
RANDOM_SHAPES = ((3, 10), (5, 20), (7, 20), (7, 40), (10, 20), (10, 40))
RANDOM_SEEDS = (1, 2)
#: A loss more than this above the certified optimum (relative) is a miss.
MISS = 1e-3


@dataclass(frozen=True)
class Problem:
    group: str
    name: str
    x1: np.ndarray
    X0: np.ndarray
    z1: np.ndarray
    Z0: np.ndarray


def california_problems(n_placebos: int | None = None) -> list[Problem]:
    """The treated fit and the in-space placebos of the ADH (2010) specification."""
    frame, neutral = specs.load("california")
    design = next(iter(prepare_designs(frame, to_spec(neutral)).values()))
    positions = range(len(design.units)) if n_placebos is None else range(n_placebos + 1)
    problems = []
    for position in positions:
        fitted = design if position == 0 else design.relabel(position)
        X, _ = fitted.scaled_predictors()
        Z = fitted.outcome[fitted.fit_mask]
        problems.append(Problem("California (ADH)", str(fitted.treated), X[:, 0], X[:, 1:], Z[:, 0], Z[:, 1:]))
    return problems


def random_problem(K: int, J: int, seed: int, T0: int = 15) -> Problem:
    """Outcomes driven by the predictors plus noise; the treated unit near, usually
    outside, the donors' hull (so that the predictor weights matter)."""
    rng = np.random.default_rng(seed * 1000 + K * 50 + J)
    X0 = rng.normal(size=(K, J))
    loadings = rng.normal(size=(T0, K))
    x1 = X0 @ rng.dirichlet(np.ones(J)) + rng.normal(scale=0.8, size=K)
    Z0 = loadings @ X0 + 0.5 * rng.normal(size=(T0, J))
    z1 = loadings @ x1 + 0.5 * rng.normal(size=T0)
    return Problem("random", f"K={K} J={J} seed={seed}", x1, X0, z1, Z0)


def random_problems(quick: bool) -> list[Problem]:
    shapes = RANDOM_SHAPES[:3] if quick else RANDOM_SHAPES
    seeds = RANDOM_SEEDS[:1] if quick else RANDOM_SEEDS
    return [random_problem(K, J, seed) for K, J in shapes for seed in seeds]


def run_ours(problem: Problem, time_limit: float) -> dict[str, Any]:
    """The default search, then the certificate, each timed."""
    start = time.perf_counter()
    search = nested_fit(problem.x1, problem.X0, problem.z1, problem.Z0, **FitOptions().search_options())
    search_seconds = time.perf_counter() - start
    cpu = time.process_time()
    cert = certify_nested(
        problem.x1, problem.X0, problem.z1, problem.Z0,
        predictor_weights=search.predictor_weights, weights=search.weights, time_limit=time_limit,
    )
    cpu = time.process_time() - cpu
    return {
        "group": problem.group, "name": problem.name, "K": problem.X0.shape[0], "J": problem.X0.shape[1],
        "search_loss": search.loss, "search_seconds": search_seconds, "status": cert.status,
        "loss": cert.loss, "dual_bound": cert.dual_bound, "gap": cert.gap,
        "certify_seconds": cert.seconds, "certify_cpu": cpu, "nodes": cert.n_nodes, "screened": cert.n_donors_screened,
    }


def run_mscmt(problems: list[Problem], cap: float) -> tuple[dict[str, dict[str, Any]], str]:
    """mlsynth's mscmt on every problem (one subprocess, capped); name -> record."""
    if not MLSYNTH_PYTHON.exists():
        return {}, "mlsynth's environment is missing (make mlsynth-env)"
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "problems.npz", Path(tmp) / "mscmt.json"
        arrays = {"names": np.array([f"{p.group}/{p.name}" for p in problems])}
        for i, p in enumerate(problems):
            arrays |= {f"x1_{i}": p.x1, f"X0_{i}": p.X0, f"z1_{i}": p.z1, f"Z0_{i}": p.Z0}
        np.savez(source, **arrays)
        command = [str(MLSYNTH_PYTHON), str(ROOT / "benchmarks" / "mlsynth_mscmt.py"), str(source), str(target)]
        try:
            subprocess.run(command, timeout=cap, capture_output=True, check=True)
            detail = "ok"
        except subprocess.TimeoutExpired:
            detail = f"stopped after {cap:.0f} s"
        except subprocess.CalledProcessError as error:
            last = (error.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            detail = f"failed: {last[-300:]}"
        records = json.loads(target.read_text()) if target.exists() else []
    return {r["name"]: r for r in records}, detail


def attach_mscmt(rows: list[dict[str, Any]], problems: list[Problem], mscmt: dict[str, dict[str, Any]]) -> None:
    """mlsynth's seconds and the loss its ``V`` attains (exact inner solve), per row."""
    for row, problem in zip(rows, problems):
        record = mscmt.get(f"{problem.group}/{problem.name}")
        if record is None:
            continue
        _, attained, _ = check_predictor_weights(problem.x1, problem.X0, problem.z1, problem.Z0,
                                                 np.asarray(record["V"], float))
        row.update(mscmt_cpu=record["cpu"], mscmt_loss=attained, mscmt_reported=record["reported_loss"])


def excess(loss: pd.Series, optimum: pd.Series) -> pd.Series:
    """Relative excess of a loss over the certified optimum."""
    return (loss - optimum) / optimum.abs().clip(lower=1e-300)


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per problem set: certification rate and time, misses of each search."""
    rows = {}
    for group, part in frame.groupby("group", sort=False):
        certified = part["status"].isin(["certified", "improved and certified"])
        proven = part[certified]
        row = {
            "fits": len(part),
            "certified": int(certified.sum()),
            "improved": int((part["status"] == "improved and certified").sum()),
            "bounded": int((part["status"] == "bounded").sum()),
            "ill-posed": int((part["status"] == "ill-posed").sum()),
            "certify CPU s (median)": part["certify_cpu"].median(),
            "certify CPU s (max)": part["certify_cpu"].max(),
            "search misses": int((excess(proven["search_loss"], proven["loss"]) > MISS).sum()),
            "search worst excess": excess(proven["search_loss"], proven["loss"]).max(),
        }
        if "mscmt_loss" in part and part["mscmt_loss"].notna().any():
            mscmt = excess(proven["mscmt_loss"], proven["loss"])
            row |= {"MSCMT runs": int(part["mscmt_loss"].notna().sum()),
                    "MSCMT misses": int((mscmt > MISS).sum()), "MSCMT worst excess": mscmt.max(),
                    "MSCMT CPU s (median)": part["mscmt_cpu"].median()}
        rows[group] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("problems")


def markdown(frame: pd.DataFrame, mscmt_detail: str, time_limit: float) -> str:
    """The results section for RESULTS.md (tables rendered by :func:`benchmarks.compare.markdown`)."""
    california = frame[frame["group"].str.startswith("California")].set_index("name")
    columns = [c for c in ("status", "search_loss", "loss", "dual_bound", "certify_cpu", "mscmt_loss",
                           "mscmt_reported", "mscmt_cpu") if c in california]
    digits = california[columns].map(lambda v: f"{v:.7g}" if isinstance(v, float) and not np.isnan(v) else v)
    notes = (
        f"Certificate: SCIP on the exact MIQP (ratio floor 1e-8, {time_limit:.0f} s per fit) after the default "
        f"search. A miss is a loss more than {MISS:.1%} above the certified optimum (certified fits only).",
        f"MSCMT: mlsynth's `mscmt` backend (differential evolution over log10 v, floor 1e-8, seed 0); its loss "
        f"is recomputed at its v with the exact inner solve, `mscmt_reported` is its own figure "
        f"({mscmt_detail}).",
        "Times are CPU seconds, one problem at a time (the solver's time limit counts CPU time too), so a "
        "busy machine inflates them less than wall time.",
    )
    return compare.markdown(
        "Certified global optima (`benchmarks/bench_certify.py`)",
        {"Certification rate and time": summary_table(frame), "California, fit by fit": digits},
        notes,
    )


def _finished(path: Path | None, time_limit: float) -> dict[tuple[str, str], dict[str, Any]]:
    """Our records already in ``path`` from a run with the same time limit, by problem."""
    if path is None or not path.exists():
        return {}
    stored = json.loads(path.read_text())
    if stored.get("time_limit") != time_limit:
        return {}
    return {(r["group"], r["name"]): {k: v for k, v in r.items() if not k.startswith("mscmt")}
            for r in stored["records"]}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="write the results section here")
    parser.add_argument("--json", type=Path, help="raw records; also a checkpoint that a rerun resumes from")
    parser.add_argument("--quick", action="store_true", help="3 California placebos, 3 random problems")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, help="seconds per certification")
    parser.add_argument("--mscmt-cap", type=float, default=1200.0, help="seconds for all mlsynth runs")
    parser.add_argument("--budget", type=float, help="stop starting our fits after this many seconds")
    args = parser.parse_args(argv)
    problems = california_problems(3 if args.quick else None) + random_problems(args.quick)
    done = _finished(args.json, args.time_limit)
    rows, start = [], time.perf_counter()
    for i, problem in enumerate(problems):
        if args.budget is not None and time.perf_counter() - start > args.budget:
            print(f"budget spent: {len(problems) - i} problems not run", file=sys.stderr)
            problems = problems[:i]
            break
        rows.append(done.get((problem.group, problem.name)) or run_ours(problem, args.time_limit))
        print(f"ours {problem.group}/{problem.name}: {rows[-1]['status']} in {rows[-1]['certify_cpu']:.1f} CPU s",
              file=sys.stderr, flush=True)
        if args.json:  # a checkpoint: an interrupted run given the same file resumes here
            args.json.write_text(json.dumps({"time_limit": args.time_limit, "records": rows}, indent=1))
    mscmt, detail = run_mscmt(problems, args.mscmt_cap)
    attach_mscmt(rows, problems, mscmt)
    frame = pd.DataFrame(rows)
    if args.json:
        args.json.write_text(json.dumps({"time_limit": args.time_limit, "records": rows}, indent=1, default=float))
    text = markdown(frame, detail, args.time_limit)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    else:
        print(text)
    return frame


if __name__ == "__main__":
    main()
