"""How synthcontrol scales: donors J, predictors K, pre-periods T0, and the national pool.

Every cell of the J x K x T0 grid draws a panel with a known answer
(``benchmarks/synthetic.py``) and records, per fit:

* ``prepare_s`` and ``fit_s``: wall time of the two calls :func:`synthcontrol.fit`
  makes, ``prepare_designs`` (validating the long frame into a design) and
  ``fit_design`` (scaling plus the nested choice of predictor and donor weights,
  the "nested fit"), medians over ``--repeats`` timed runs (one from J = 300 on,
  ``fit_runs_s`` lists them); ``sc_fit_s`` is their
  sum, what a user waits for in ``sc.fit``. ``fit_cpu_s`` is the CPU time of the
  same nested fits (on a busy machine the wall time waits for cores);
* ``peak_prepare_mib`` / ``peak_fit_mib``: tracemalloc peak of each call (Python
  and numpy allocations) in one extra untimed run, only in cells whose timed
  prepare + fit took under ``--trace-max-s`` (tracing slows a call about threefold);
* ``weight_l1``, ``pre_rmspe``, ``counterfactual_rmse``, ``effect_error``: the
  fit against the truth (:func:`benchmarks.synthetic.recovery`);
* ``placebo_s``: the full in-space placebo run (``sc.placebo_test``, serial) where
  J <= ``--placebo-max-donors``; for larger J, ``--placebo-sample`` placebo refits
  are timed and multiplied by J (``placebo_method = "extrapolated"``), on cells
  whose nested fit took under ``--placebo-budget`` seconds (else not timed);
* ``convergence_warnings``: searches (main fit or placebos) stopped at the iteration limit.

The national pool runs first, then the headline cells (J = 1000, K = 20), then the
rest by J, K, T0; with ``--budget`` no cell is started once that many seconds have
passed, and the cells left out are listed.

The national pool fits Huainan against every Chinese prefecture city with a
complete real-growth record (China City Database, real GDP growth chained to an
index with ``chain_index`` of ``case_studies/data/build_datasets.py``).

    python benchmarks/scaling.py                       # the full grid (minutes)
    python benchmarks/scaling.py --quick               # seconds: a CI smoke run
    python benchmarks/scaling.py --json out.json --markdown out.md
    python benchmarks/scaling.py --donors 100 1000 --predictors 20 --pre 40 --no-national
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks.peers import _Clock  # noqa: E402
from benchmarks.synthetic import SyntheticPanel, make_panel, recovery  # noqa: E402
from synthcontrol.datasets import read_citydb  # noqa: E402
from case_studies.data.build_datasets import DEFAULT_RAW, FIRST_YEAR, LAST_YEAR, chain_index  # noqa: E402
from synthcontrol.estimators import fit_design, prepare_designs  # noqa: E402

GRID = {"n_donors": (10, 30, 100, 300, 1000, 3000), "n_predictors": (5, 20, 50), "n_pre": (10, 40, 200)}
QUICK_GRID = {"n_donors": (5, 12), "n_predictors": (3,), "n_pre": (8,)}
#: Cells with at least this many donors are timed once (their fits take seconds).
LARGE_DONORS = 300
HEADLINE = {"n_donors": 1000, "n_predictors": 20}
CITY_PANEL = DEFAULT_RAW / "cities" / "citydb" / "china_city_panel_real.csv"
YRD_STUDY = Path(__file__).resolve().parent.parent / "case_studies" / "yrd_twinning.toml"
HUAINAN = 340400
MIB = 2.0**20


def timed(function: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU seconds of ``repeats`` calls, and the last call's value."""
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        with _Clock() as clock:
            value = function()
        walls.append(clock.wall)
        cpus.append(clock.cpu)
    return walls, cpus, value


def traced_peak(function: Callable[[], Any]) -> tuple[float, Any]:
    """tracemalloc peak (MiB) of one call above the memory held before it, and its value."""
    tracemalloc.start()
    try:
        value = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB, value


def fit_cell(panel: SyntheticPanel, repeats: int, trace_max_s: float) -> tuple[dict[str, Any], sc.SynthResult]:
    """Timed runs of preparing and fitting ``panel``, then one traced run of each for
    memory where the timed ones took under ``trace_max_s`` (tracemalloc slows them
    about threefold)."""
    prepare_walls, _, designs = timed(lambda: prepare_designs(panel.frame, panel.spec), repeats)
    design = designs[panel.spec.treated]
    fit_walls, fit_cpus, result = timed(lambda: fit_design(design), repeats)
    prepare_s, fit_s = statistics.median(prepare_walls), statistics.median(fit_walls)
    peak_prepare = peak_fit = None
    if prepare_s + fit_s < trace_max_s:
        peak_prepare, _ = traced_peak(lambda: prepare_designs(panel.frame, panel.spec))
        peak_fit, _ = traced_peak(lambda: fit_design(design))
    row = {
        "repeats": repeats,
        "prepare_s": prepare_s,
        "fit_s": fit_s,
        "fit_cpu_s": statistics.median(fit_cpus),
        "sc_fit_s": prepare_s + fit_s,
        "fit_runs_s": fit_walls,
        "peak_prepare_mib": peak_prepare,
        "peak_fit_mib": peak_fit,
        "certified": bool(result.solution.certified),
        "n_evaluations": int(result.solution.n_evaluations),
    }
    return row, result


def warm_up() -> None:
    """One exact-match fit, so that lazy imports (cvxpy, in the tie-breaking rule) and
    first-call set-up are neither timed nor traced in the first cell."""
    panel = make_panel(8, 3, 6, noise=0.0)
    sc.fit(panel.frame, panel.spec)


def placebo_timing(result: sc.SynthResult, max_donors: int, sample: int, seed: int) -> dict[str, Any]:
    """The full serial placebo run for small pools, else ``sample`` placebo refits times J."""
    n_donors = len(result.donors)
    if n_donors <= max_donors:
        with _Clock() as clock:
            sc.placebo_test(result, n_jobs=1)
        return {"placebo_s": clock.wall, "placebo_method": "full", "placebo_units": n_donors}
    positions = np.random.default_rng(seed).choice(np.arange(1, n_donors + 1), size=sample, replace=False)
    with _Clock() as clock:
        for position in positions:
            fit_design(result.design.relabel(int(position)), options=result.options)
    return {"placebo_s": clock.wall / sample * n_donors, "placebo_method": "extrapolated",
            "placebo_units": sample}


def run_cell(n_donors: int, n_predictors: int, n_pre: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of one grid cell."""
    panel = make_panel(n_donors, n_predictors, n_pre, noise=args.noise, seed=args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sc.ConvergenceWarning)
        row, result = fit_cell(panel, args.repeats if n_donors < LARGE_DONORS else 1, args.trace_max_s)
        row = {"n_donors": n_donors, "n_predictors": n_predictors, "n_pre": n_pre, **row, **recovery(result, panel)}
        cheap = n_donors <= args.placebo_max_donors or (args.placebo_sample and row["fit_s"] < args.placebo_budget)
        if cheap:
            row |= placebo_timing(result, args.placebo_max_donors, args.placebo_sample, args.seed)
        else:
            row |= {"placebo_s": None, "placebo_method": "not timed", "placebo_units": 0}
    # Searches stopped at the iteration limit (main fit or placebos): counted, not printed.
    return row | {"convergence_warnings": sum(issubclass(w.category, sc.ConvergenceWarning) for w in caught)}


def loglog_slopes(cells: pd.DataFrame) -> dict[str, Any]:
    """Slope of log(fit_s) on log(J): per (K, T0) and pooled with a level per (K, T0)."""
    frame = cells.assign(log_j=np.log(cells.n_donors), log_t=np.log(cells.fit_s))
    groups = frame.groupby(["n_predictors", "n_pre"])
    per_group = {
        f"K={k}, T0={t}": float(np.polyfit(g.log_j, g.log_t, 1)[0])
        for (k, t), g in groups if g.n_donors.nunique() > 1
    }
    x = frame.log_j - groups.log_j.transform("mean")
    y = frame.log_t - groups.log_t.transform("mean")
    pooled = float((x @ y) / (x @ x)) if float(x @ x) > 0 else float("nan")
    return {"pooled": pooled, "per_group": per_group}


# --------------------------------------------------------------------------- national pool


def national_panel(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """City panel 2005-2023 with ``log_gdp_index``; cities with a gap in real growth dropped.

    The index is chained from the city database's real growth rates; a missing
    rate would silently skip a year of growth, so such cities are left out.
    """
    frame = read_citydb(path)
    frame = frame[frame.year.between(FIRST_YEAR, LAST_YEAR)].rename(columns={"gdp_growth_pct": "gdp_growth"})
    later = frame[frame.year > FIRST_YEAR]
    counts = later.groupby("city_code").gdp_growth.count()
    complete = counts.index[counts == LAST_YEAR - FIRST_YEAR]
    dropped = sorted(set(frame.city_code) - set(complete))
    frame = frame[frame.city_code.isin(complete)].sort_values(["city_code", "year"]).reset_index(drop=True)
    return chain_index(frame), dropped


def national_spec(frame: pd.DataFrame) -> sc.Spec:
    """Huainan against every other city outside the programme (the YRD study's headline spec,
    without per-capita GDP, which needs the CSMAR population cross-check)."""
    study = sc.load_config(YRD_STUDY)  # the programme's assisted and helper cities are never donors
    exclude = [c for c in study.excluded_units if c != HUAINAN]
    start = study.main.treatment_start
    return sc.Spec(
        outcome="log_gdp_index", unit="city_code", time="year", treated=HUAINAN,
        treatment_start=start, fit_window=(FIRST_YEAR, start - 1),
        predictors=[*(sc.at("log_gdp_index", y) for y in (2008, 2011, 2014, 2017, 2020)),
                    sc.mean("secondary_share_pct", FIRST_YEAR, 2020)],
        exclude=exclude, drop_incomplete_donors=True,
    )


def national_pool(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Huainan with every prefecture city as a donor: fit times, memory, placebo run."""
    if not path.is_file():
        return {"skipped": f"raw national city panel not found at {path}; pass --city-panel PATH"}
    frame, dropped = national_panel(path)
    spec = national_spec(frame)
    sc_fit_walls, _, result = timed(lambda: sc.fit(frame, spec), args.repeats)
    peak_fit, _ = traced_peak(lambda: fit_design(result.design))
    fit_walls, fit_cpus, _ = timed(lambda: fit_design(result.design), args.repeats)
    row = {
        "treated": "Huainan", "n_donors": len(result.donors), "n_predictors": len(spec.predictors),
        "n_pre": int(result.design.fit_mask.sum()), "cities_without_complete_growth": dropped,
        "repeats": args.repeats, "sc_fit_s": statistics.median(sc_fit_walls),
        "fit_s": statistics.median(fit_walls), "fit_cpu_s": statistics.median(fit_cpus),
        "peak_fit_mib": peak_fit, "pre_rmspe": result.pre_rmspe, "average_effect": result.average_effect,
        "certified": bool(result.solution.certified),
        "top_donors": {str(k): round(float(v), 4) for k, v in result.weights.nlargest(5).items()},
    }
    return row | placebo_timing(result, args.national_placebo_max, args.national_placebo_sample, args.seed)


# --------------------------------------------------------------------------- report


def headline(cells: pd.DataFrame) -> list[dict[str, Any]]:
    """The J = 1000, K = 20 cells: sc.fit and the nested fit alone, against 1 second."""
    rows = cells[(cells.n_donors == HEADLINE["n_donors"]) & (cells.n_predictors == HEADLINE["n_predictors"])]
    return [
        {"n_pre": int(r.n_pre), "sc_fit_s": r.sc_fit_s, "fit_s": r.fit_s, "sc_fit_under_1s": bool(r.sc_fit_s < 1),
         "fit_under_1s": bool(r.fit_s < 1)}
        for r in rows.itertuples()
    ]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    """Markdown fragment: the grid table, the slopes, the headline, the national pool."""
    columns = ["n_donors", "n_predictors", "n_pre", "repeats", "fit_s", "fit_cpu_s", "n_evaluations", "sc_fit_s",
               "peak_fit_mib", "peak_prepare_mib", "weight_l1", "pre_rmspe", "counterfactual_rmse", "placebo_s",
               "placebo_method"]
    head = ["J", "K", "T0", "repeats", "nested fit s", "fit CPU s", "inner solves", "sc.fit s", "fit peak MiB",
            "prepare peak MiB", "weight L1", "pre-RMSPE", "counterfactual RMSE", "placebo s", "placebo run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in report["cells"]:
        lines.append("| " + " | ".join(_fmt(cell[c]) for c in columns) + " |")
    if report["skipped_cells"]:
        lines += ["", f"Not run within the {report['budget_s']:.0f} s budget (J, K, T0): "
                  + ", ".join(map(str, report["skipped_cells"])) + "."]
    slopes = report["loglog_slope"]
    lines += ["", f"Log-log slope of nested-fit time in J (pooled, a level per K and T0): {slopes['pooled']:.3g}; "
              + ", ".join(f"{g}: {s:.3g}" for g, s in slopes["per_group"].items()) + "."]
    for h in report["headline"]:
        lines.append(f"J = 1000, K = 20, T0 = {h['n_pre']}: sc.fit {h['sc_fit_s']:.3g} s, "
                     f"nested fit {h['fit_s']:.3g} s.")
    nat = report["national"]
    if nat is None or "skipped" in nat:
        lines.append("" if nat is None else f"National pool: skipped ({nat['skipped']}).")
    else:
        lines.append(f"National pool (Huainan, {nat['n_donors']} donor cities, K = {nat['n_predictors']}, "
                     f"T0 = {nat['n_pre']}): sc.fit {nat['sc_fit_s']:.3g} s, nested fit {nat['fit_s']:.3g} s, "
                     f"placebo run {nat['placebo_s']:.3g} s ({nat['placebo_method']}, "
                     f"{nat['placebo_units']} placebo fits timed).")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny grid, no national pool: a smoke test")
    ap.add_argument("--donors", type=int, nargs="+", help=f"J values (default {GRID['n_donors']})")
    ap.add_argument("--predictors", type=int, nargs="+", help=f"K values (default {GRID['n_predictors']})")
    ap.add_argument("--pre", type=int, nargs="+", help=f"T0 values (default {GRID['n_pre']})")
    ap.add_argument("--no-national", action="store_true", help="skip the national pool")
    ap.add_argument("--repeats", type=int, default=3,
                    help=f"timed runs per cell (1 from J = {LARGE_DONORS} on, 1 in --quick)")
    ap.add_argument("--noise", type=float, default=0.1, help="treated unit's noise (sd of donor idiosyncrasy = 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--placebo-max-donors", type=int, default=10, help="full placebo run up to this J")
    ap.add_argument("--placebo-sample", type=int, default=2, help="placebo refits timed above it (0: none)")
    ap.add_argument("--placebo-budget", type=float, default=1.0,
                    help="sample placebos only where the nested fit took under this many seconds")
    ap.add_argument("--trace-max-s", type=float, default=2.0,
                    help="trace memory only in cells whose timed prepare + fit took under this many seconds")
    ap.add_argument("--city-panel", type=Path, default=CITY_PANEL, help="raw China City Database panel")
    ap.add_argument("--national-placebo-max", type=int, default=0,
                    help="full national placebo run if the pool is at most this large (else sampled)")
    ap.add_argument("--national-placebo-sample", type=int, default=8, help="national placebo refits timed")
    ap.add_argument("--budget", type=float,
                    help="start no grid cell after this many seconds (the largest cells are last)")
    ap.add_argument("--json", type=Path, help="write the raw results here")
    ap.add_argument("--markdown", type=Path, help="write the Markdown table fragment here")
    return ap.parse_args(argv)


def cell_order(grid: dict[str, tuple[int, ...]]) -> list[tuple[int, int, int]]:
    """The headline cells (J = 1000, K = 20) first, then by J, K, T0: under a budget
    the cells left out are the largest."""
    cells = list(itertools.product(*grid.values()))
    return sorted(cells, key=lambda c: (c[:2] != tuple(HEADLINE.values()), c))


def run_grid(grid: dict[str, tuple[int, ...]], args: argparse.Namespace) -> tuple[list[dict], list[tuple]]:
    """Measured cells, and the cells not started because ``--budget`` was spent."""
    cells, skipped, start = [], [], time.perf_counter()
    for n_donors, n_predictors, n_pre in cell_order(grid):
        if args.budget is not None and time.perf_counter() - start > args.budget:
            skipped.append((n_donors, n_predictors, n_pre))
            continue
        cells.append(run_cell(n_donors, n_predictors, n_pre, args))
        row = pd.DataFrame(cells[-1:]).drop(columns="fit_runs_s")
        print(row.to_string(index=False, header=len(cells) == 1), flush=True)
    cells.sort(key=lambda c: (c["n_donors"], c["n_predictors"], c["n_pre"]))
    return cells, skipped


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    grid = dict(QUICK_GRID if args.quick else GRID)
    for key, values in (("n_donors", args.donors), ("n_predictors", args.predictors), ("n_pre", args.pre)):
        grid[key] = tuple(values) if values else grid[key]
    if args.quick:
        args.repeats = 1
    warm_up()
    national = None if args.quick or args.no_national else national_pool(args.city_panel, args)
    cells, skipped = run_grid(grid, args)
    table = pd.DataFrame(cells)
    report = {
        "grid": grid, "noise": args.noise, "seed": args.seed, "repeats": args.repeats, "budget_s": args.budget,
        "memory": f"tracemalloc peak of one extra untimed call (Python and numpy allocations), in cells whose "
                  f"timed prepare + fit took under {args.trace_max_s} s",
        "cells": cells, "skipped_cells": skipped, "loglog_slope": loglog_slopes(table), "headline": headline(table),
        "national": national,
    }
    text = markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(text)
    return report


if __name__ == "__main__":
    main()
