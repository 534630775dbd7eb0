"""Parallel scaling of the placebo run: the runner's own choice, threads, processes, Dask.

One synthetic panel with a known answer (``benchmarks/synthetic.py``) is fitted,
then its full in-space placebo run (``sc.placebo_test``, one nested fit per donor)
is timed as the runner chooses by itself (``auto``: serial, threads or processes
by the measured size of the work, see :mod:`synthcontrol.inference.runner`) at each
``--workers`` count; forced onto threads and onto loky processes with two workers
(the runner's size thresholds overridden); and on a loopback Dask
``LocalCluster`` of two single-threaded worker processes through
``joblib.parallel_config(backend="dask")``. Each backend is
warmed up first on a tiny placebo run (worker start-up and imports are not
timed; the cluster's start-up is reported on its own). Times are medians of
``--repeats`` runs; efficiency is speed-up over the serial run divided by the
workers. Every run must give the same placebo losses and p-value.

    python benchmarks/parallel.py                  # default problem (under a minute)
    python benchmarks/parallel.py --quick          # seconds: a CI smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks.peers import _Clock  # noqa: E402
from benchmarks.synthetic import make_panel  # noqa: E402
from synthcontrol.inference import runner  # noqa: E402

PROBLEM = {"n_donors": 30, "n_predictors": 5, "n_pre": 40}
QUICK_PROBLEM = {"n_donors": 6, "n_predictors": 3, "n_pre": 8}
DASK_WORKERS = 2


@contextlib.contextmanager
def dask_backend(n_workers: int) -> Iterator[float]:
    """A loopback LocalCluster as joblib's backend; yields its start-up seconds."""
    import joblib
    from distributed import Client, LocalCluster

    with _Clock() as clock:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    try:
        with joblib.parallel_config(backend="dask"):
            yield clock.wall
    finally:
        client.close()
        cluster.close()


def fitted(problem: dict[str, int], seed: int) -> sc.SynthResult:
    panel = make_panel(**problem, seed=seed)
    return sc.fit(panel.frame, panel.spec)


@contextlib.contextmanager
def forced(mode: str) -> Iterator[None]:
    """The runner forced onto ``"threads"`` or ``"processes"`` whatever the work's size."""
    saved = runner.SERIAL_BELOW, runner.PROCESSES_ABOVE
    runner.SERIAL_BELOW, runner.PROCESSES_ABOVE = 0.0, (float("inf") if mode == "threads" else 0.0)
    try:
        yield
    finally:
        runner.SERIAL_BELOW, runner.PROCESSES_ABOVE = saved


def time_runs(result: sc.SynthResult, n_jobs: int, repeats: int, warm: sc.SynthResult) -> dict[str, Any]:
    """Median wall time of ``repeats`` placebo runs after one untimed run on ``warm``."""
    sc.placebo_test(warm, n_jobs=n_jobs)
    seconds, inference = [], None
    for _ in range(repeats):
        with _Clock() as clock:
            inference = sc.placebo_test(result, n_jobs=n_jobs)
        seconds.append(clock.wall)
    return {"seconds": statistics.median(seconds), "runs_s": seconds, "p_value": inference.p_value,
            "loss_v": inference.loss_v.tolist()}


def efficiency(runs: list[dict[str, Any]]) -> None:
    """Add speed-up over the serial run and efficiency (speed-up per worker) in place."""
    serial = next(r["seconds"] for r in runs if r["backend"] == "auto" and r["workers"] == 1)
    for run in runs:
        run["speedup"] = serial / run["seconds"]
        run["efficiency"] = run["speedup"] / run["workers"]


def markdown(report: dict[str, Any]) -> str:
    """Markdown table fragment of the runs."""
    p = report["problem"]
    lines = [f"Placebo run of a synthetic panel, J = {p['n_donors']}, K = {p['n_predictors']}, "
             f"T0 = {p['n_pre']} ({p['n_donors']} nested fits), medians of {report['repeats']} run(s):", "",
             "| backend | workers | seconds | speed-up | efficiency |", "|---|---|---|---|---|"]
    for r in report["runs"]:
        lines.append(f"| {r['backend']} | {r['workers']} | {r['seconds']:.3g} | {r['speedup']:.3g} | "
                     f"{r['efficiency']:.3g} |")
    if report["dask_startup_s"] is not None:
        lines.append(f"\nDask LocalCluster start-up (not in the times): {report['dask_startup_s']:.3g} s.")
    lines.append(f"Identical placebo losses and p-value in every run: {report['identical']}.")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="six donors, one run each: a smoke test")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local (loky) worker counts; 1 always runs")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per backend (1 in --quick)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the raw results here")
    ap.add_argument("--markdown", type=Path, help="write the Markdown table fragment here")
    return ap.parse_args(argv)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every timed run, and whether they agree."""
    problem = QUICK_PROBLEM if args.quick else PROBLEM
    repeats = 1 if args.quick else args.repeats
    result, warm = fitted(problem, args.seed), fitted(QUICK_PROBLEM, args.seed + 1)
    runs = [{"backend": "auto", "workers": n} | time_runs(result, n, repeats, warm) for n in sorted({1, *args.workers})]
    for mode in ("threads", "processes"):
        with forced(mode):
            runs.append({"backend": mode, "workers": DASK_WORKERS} | time_runs(result, DASK_WORKERS, repeats, warm))
    startup = None
    if not args.no_dask:
        with dask_backend(DASK_WORKERS) as startup:
            runs.append({"backend": "dask", "workers": DASK_WORKERS} | time_runs(result, DASK_WORKERS, repeats, warm))
    efficiency(runs)
    identical = all(r["p_value"] == runs[0]["p_value"] and np.array_equal(r["loss_v"], runs[0]["loss_v"])
                    for r in runs)
    return {"problem": problem, "repeats": repeats, "runs": runs, "dask_startup_s": startup, "identical": identical}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    with warnings.catch_warnings():
        # Placebo searches that stop at the iteration limit cost the same whatever the
        # backend; benchmarks/scaling.py counts them, they are not repeated here.
        warnings.simplefilter("ignore", sc.ConvergenceWarning)
        report = run_all(args)
    text = markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.markdown:
        args.markdown.write_text(text)
    return report


if __name__ == "__main__":
    main()
