"""Run every benchmark and write ``benchmarks/RESULTS.md`` (issue 5).

synthcontrol is timed in this process; each peer (pysyncon,
SyntheticControlMethods, scpi_pkg) runs through ``benchmarks/peers.py`` in its
own environment ``.venv-bench`` (``make bench-env``), one subprocess per call,
each with a hard time limit, and a call that runs out of time is recorded as
not finished. All peer calls share one overall budget so that the whole run
stays within 21 minutes on 2 cores::

    make bench                                   # = the command below, after setup
    .venv/bin/python benchmarks/run_all.py --out benchmarks/RESULTS.md --readme benchmarks/README.md
    .venv/bin/python benchmarks/run_all.py --quick --out /tmp/RESULTS.md   # a minute: a smoke run

Progress goes to stderr. Besides the Markdown, the run leaves its raw records
in ``results/results.json`` and its plots in ``results/*.png`` next to the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks import compare, peers, specs  # noqa: E402
from synthcontrol.estimators import fit_design  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
OUR_DISTS = ("synthcontrol", "numpy", "scipy", "pandas", "cvxpy", "joblib")
PEER_VENV_DISTS = (*peers.PEER_DISTS.values(), "numpy", "scipy", "pandas", "cvxpy")
DATASETS = ("basque", "california", "texas")
# Order of the peer calls: the cheap ones (seconds each), then the acceptance
# criteria (pysyncon on California with its placebo sample, minutes), then the calls
# known to be slow (whole minutes each), so that an exhausted budget cuts those.
PEER_ORDER = (("scpi", "basque"), ("scpi", "california"), ("scpi", "texas"),
              ("pysyncon", "basque"), ("pysyncon", "california"), ("scm", "basque"),
              ("scm", "california"), ("pysyncon", "texas"), ("scm", "texas"))
FIT_CAPS = {"pysyncon": 120.0, "scm": 90.0, "scpi": 60.0}
PLACEBO_CAP = 100.0  # per sampled placebo unit, on top of the peer's main fit
PEER_BUDGET = 480.0  # all peer calls together
MIN_CALL = 15.0  # a call is not started with less budget than this
REPEAT_BELOW = 10.0  # peer fits faster than this are repeated (new process each)
# The scaling helper's scripts: time limit and arguments (besides --markdown).
EXTRAS: dict[str, tuple[float, tuple[str, ...]]] = {
    "speed": (480.0, ()), "quality": (150.0, ()), "scaling": (150.0, ("--budget", "100")), "parallel": (150.0, ()),
    "bench_variants": (300.0, ()), "bench_certify": (900.0, ("--budget", "600", "--mscmt-cap", "300"))}
RUN_BUDGET = 2700.0  # the whole run; the extras, run last, get at most what is left


@dataclass
class Settings:
    """What a run covers; ``--quick`` shrinks every part (about a minute in all)."""

    datasets: tuple[str, ...] = DATASETS
    peer_order: tuple[tuple[str, str], ...] = PEER_ORDER
    placebo_dataset: str = "california"
    placebo_units: int = 3
    seed: int = 0
    our_repeats: int = 5
    peer_repeats: int = 3
    placebo_jobs: tuple[int, ...] = (1, 2)
    placebo_repeats: int = 3
    placebo_budget: float = 100.0  # seconds per n_jobs setting; at least one run
    unit_repeats: int = 3
    fit_caps: dict[str, float] = field(default_factory=lambda: dict(FIT_CAPS))
    placebo_cap: float = PLACEBO_CAP
    peer_budget: float = PEER_BUDGET
    extras: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=lambda: dict(EXTRAS))
    run_budget: float = RUN_BUDGET
    quick: bool = False


def quick_settings() -> Settings:
    """Basque only, pysyncon only, one placebo unit, single runs, extras in quick mode."""
    return Settings(datasets=("basque",), peer_order=(("pysyncon", "basque"),),
                    placebo_dataset="basque", placebo_units=1, our_repeats=2, peer_repeats=1,
                    placebo_jobs=(1,), placebo_repeats=1, unit_repeats=1,
                    fit_caps={"pysyncon": 60.0}, placebo_cap=60.0, peer_budget=120.0,
                    extras={"speed": (120.0, ("--quick",)), "quality": (60.0, ("--only", "california")),
                            "scaling": (60.0, ("--quick",)), "parallel": (60.0, ("--quick",)),
                            "bench_variants": (120.0, ("--quick",)), "bench_certify": (300.0, ("--quick",))},
                    run_budget=300.0, quick=True)


def log(message: str) -> None:
    """Progress line on stderr (stdout stays free for the peers' noise)."""
    print(f"[run_all {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine --

def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and load (the load shows how busy the machine was)."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    return {
        "cpu": models[0] if models else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gib": round(kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }


def our_versions() -> dict[str, str | None]:
    """Versions of synthcontrol's own environment (this interpreter)."""
    return {d: _version(d) for d in OUR_DISTS}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def peer_versions(peer_python: Path) -> dict[str, str | None]:
    """Versions in the peers' environment, read by its own interpreter."""
    code = ("import json, importlib.metadata as m\n"
            "def v(d):\n    try: return m.version(d)\n    except m.PackageNotFoundError: return None\n"
            f"print(json.dumps({{d: v(d) for d in {list(PEER_VENV_DISTS)!r}}}))")
    out = subprocess.run([str(peer_python), "-c", code], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()[-300:]}


# ------------------------------------------------------- synthcontrol side --

def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    """``func()`` and its wall time in seconds."""
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def repeat(func: Callable[[], Any], times: int,
           budget: float = float("inf")) -> tuple[Any, list[float], list[str]]:
    """Run ``func`` up to ``times`` times, stopping early once ``budget`` seconds are spent.

    Returns the last value, every wall time and the distinct warnings raised in
    this process (a worker process's warnings do not reach it); it always runs
    at least once.
    """
    seconds: list[float] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        while True:
            value, dt = timed(func)
            seconds.append(dt)
            if len(seconds) >= times or sum(seconds) >= budget:
                break
    return value, seconds, sorted({f"{w.category.__name__}: {w.message}" for w in caught})


def our_fit(dataset: str, repeats: int) -> tuple[sc.SynthResult, dict[str, Any]]:
    """Fit ``dataset`` with the benchmark spec ``repeats`` times; the record of the run."""
    df, spec = specs.load(dataset)
    res, seconds, warned = repeat(lambda: sc.fit(df, compare.to_spec(spec)), repeats)
    loss = peers.outcome_mspe(df, spec, res.weights.to_dict())
    record = {"seconds": seconds, "loss": loss, "loss_v": res.loss_v, "warnings": warned,
              "weights": {str(k): float(v) for k, v in res.weights.items()},
              "loss_matches_loss_v": bool(np.isclose(loss, res.loss_v, rtol=1e-9, atol=0))}
    log(f"synthcontrol {dataset}: median {np.median(seconds):.3g} s over {len(seconds)}, loss {loss:.6g}")
    return res, record


def placebo_units(dataset: str, n: int, seed: int) -> list[str]:
    """The sampled placebo units: exactly the draw ``peers.py --placebo-units n --seed seed`` makes."""
    _, spec = specs.load(dataset)
    return [str(u) for u in np.random.default_rng(seed).choice(spec["donors"], size=n, replace=False)]


def our_placebo_units(res: sc.SynthResult, units: list[str], repeats: int) -> dict[str, Any]:
    """Per-unit placebo fits as ``placebo_test`` runs them (own predictor weights each)."""
    out = {}
    for unit in units:
        design = res.design.relabel(res.design.units.index(unit))
        fit, seconds, warned = repeat(lambda: fit_design(design, options=res.options), repeats)
        out[unit] = {"seconds": seconds, "loss": float(fit.loss_v), "warnings": warned,
                     "certified": bool(fit.solution.certified)}
    return out


def our_full_placebo(res: sc.SynthResult, n_jobs: int, repeats: int, budget: float) -> dict[str, Any]:
    """Timed full in-space placebo runs with ``n_jobs`` workers."""
    inf, seconds, warned = repeat(lambda: sc.placebo_test(res, n_jobs=n_jobs), repeats, budget)
    log(f"synthcontrol full placebo, n_jobs={n_jobs}: median {np.median(seconds):.3g} s over {len(seconds)}")
    return {"n_jobs": n_jobs, "seconds": seconds, "n_fits": inf.run.n_computed, "warnings": warned,
            "losses": dict(zip(map(str, inf.units[1:]), map(float, inf.loss_v[1:])))}


# ---------------------------------------------------------------- peers --

class Budget:
    """Seconds left for a group of calls (all peer calls; the whole run)."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def cap(self, wanted: float) -> float:
        """The limit a call gets: what it wants, or what is left if that is less."""
        return max(0.0, min(wanted, self.deadline - time.monotonic()))


def run_capped(cmd: list[str], cap: float, quiet: bool = False) -> tuple[int | None, str, str, float]:
    """Run ``cmd`` from the repository root, killing it and its children after ``cap`` seconds.

    The command gets its own process group so that a timeout also ends any
    workers it started. ``quiet`` discards stdout (SyntheticControlMethods'
    Fortran progress output).

    Returns
    -------
    returncode, stdout, stderr, seconds
        ``returncode`` is None when the command was killed at the cap.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=cap)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return code, out or "", err or "", time.perf_counter() - start


def peer_call(peer_python: Path, dataset: str, peer: str, cap: float,
              placebo_units: int = 0, seed: int = 0) -> dict[str, Any]:
    """One ``peers.py`` subprocess, killed after ``cap`` seconds.

    Returns
    -------
    dict
        ``{"fit": <fit> or None, "placebos": {unit: <fit>}, "version", "timed_out",
        "wall_s", "stderr"}``; what the call wrote before a timeout is kept
        (``peers.py`` rewrites its JSON after each fit).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [str(peer_python), str(ROOT / "benchmarks" / "peers.py"), "--dataset", dataset,
               "--peer", peer, "--json", str(out)]
        if placebo_units:
            cmd += ["--placebo-units", str(placebo_units), "--seed", str(seed)]
        code, _, stderr, wall = run_capped(cmd, cap, quiet=True)
        data = json.loads(out.read_text()) if out.exists() and out.stat().st_size else {}
    return {"fit": data.get("fit"), "placebos": data.get("placebos", {}), "version": data.get("version"),
            "timed_out": code is None, "wall_s": wall, "stderr": stderr.strip()[-500:] if code else ""}


def run_peer(peer_python: Path, peer: str, dataset: str, settings: Settings, budget: Budget,
             with_placebos: bool) -> dict[str, Any]:
    """Every call for one peer on one dataset: the fit (repeated when fast) and any placebos."""
    want = settings.fit_caps[peer] + (settings.placebo_units * settings.placebo_cap if with_placebos else 0)
    cap = budget.cap(want)
    record: dict[str, Any] = {"peer": peer, "dataset": dataset, "cap_s": round(cap, 1), "runs": [],
                              "placebos": {}, "version": None}
    if cap < MIN_CALL:
        log(f"{peer} {dataset}: skipped, peer budget spent")
        return {**record, "status": "skipped", "detail": f"peer budget of {settings.peer_budget:g} s spent"}
    call = peer_call(peer_python, dataset, peer, cap, settings.placebo_units if with_placebos else 0,
                     settings.seed)
    record.update(version=call["version"], placebos=call["placebos"])
    if call["fit"] is not None:
        record["runs"].append(call["fit"])
    record["status"], record["detail"] = _call_status(call, record, cap, dataset)
    while (record["status"] == "ok" and len(record["runs"]) < settings.peer_repeats
           and record["runs"][0]["seconds"] < REPEAT_BELOW
           and budget.cap(settings.fit_caps[peer]) >= MIN_CALL):
        again = peer_call(peer_python, dataset, peer, budget.cap(settings.fit_caps[peer]))
        if again["fit"] is None or again["fit"].get("error"):
            break
        record["runs"].append(again["fit"])
    log(f"{peer} {dataset}: {record['status']} {record['detail']}".rstrip()
        + (f", median {compare.median_seconds(record['runs']):.3g} s over {len(record['runs'])}"
           if record["status"] == "ok" else ""))
    return record


def _call_status(call: dict[str, Any], record: dict[str, Any], cap: float, dataset: str) -> tuple[str, str]:
    if call["fit"] is None:
        if call["timed_out"]:
            return "did not finish", f"no fit within {cap:.0f} s"
        return "failed", call["stderr"] or "peers.py wrote no result"
    status, detail = compare.fit_status(call["fit"], specs.load(dataset)[1]["donors"])
    if status == "ok" and call["timed_out"]:
        detail = f"fit done; {len(record['placebos'])} placebo(s) within the {cap:.0f} s cap"
    return status, detail


def run_peers(peer_python: Path, settings: Settings) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """All peer calls in :data:`PEER_ORDER`, within the overall peer budget."""
    if not peer_python.exists():
        return {}, [f"Peers not run: no peer environment at {peer_python} (create it with `make bench-env`)."]
    budget = Budget(settings.peer_budget)
    results: dict[str, dict[str, Any]] = {}
    for peer, dataset in settings.peer_order:
        if dataset not in settings.datasets:
            continue
        with_placebos = (peer == "pysyncon" and dataset == settings.placebo_dataset)
        results.setdefault(dataset, {})[peer] = run_peer(peer_python, peer, dataset, settings, budget,
                                                         with_placebos)
    return results, []


# ----------------------------------------------------------------- extras --

def run_extra(name: str, cap: float, args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run ``benchmarks/<name>.py --markdown FILE *args`` (the scaling helper's); keep the fragment."""
    script = ROOT / "benchmarks" / f"{name}.py"
    if not script.exists():
        return {"status": "skipped", "detail": f"benchmarks/{name}.py not present", "markdown": ""}
    if cap < MIN_CALL:
        return {"status": "skipped", "detail": "the run's time budget is spent", "markdown": ""}
    with tempfile.TemporaryDirectory() as tmp:
        md = Path(tmp) / f"{name}.md"
        cmd = [sys.executable, str(script), "--markdown", str(md), *args]
        log(f"{name}: {' '.join(cmd[1:])} (cap {cap:.0f} s)")
        code, out, err, seconds = run_capped(cmd, cap)
        if code is None:
            return {"status": "did not finish", "detail": f"not done within {cap:.0f} s", "markdown": ""}
        if code or not md.exists():
            return {"status": "failed", "detail": (err or out).strip()[-500:], "markdown": ""}
        return {"status": "ok", "detail": f"{seconds:.0f} s", "markdown": md.read_text()}


# ---------------------------------------------------------------- report --

def build_tables(results: dict[str, Any]) -> dict[str, Any]:
    """Comparison tables from the raw records (see :mod:`benchmarks.compare`)."""
    fits = compare.fit_table(results["ours"], results["peers"])
    pl = results["placebo"]
    peer = results["peers"].get(pl["dataset"], {}).get("pysyncon")
    missing = "did not finish" if peer and peer["status"] == "ok" else (
        f"not run ({peer['status']})" if peer else "not run")
    placebo = (compare.placebo_table(pl["ours_units"], pl["peer_units"], missing)
               if pl["ours_units"] else None)
    crit = compare.criteria(fits, placebo, pl["full"], pl["n_fits"], results["total_seconds"], pl["dataset"])
    return {"fits": fits, "placebo": placebo, "criteria": crit}


def render(results: dict[str, Any], tables: dict[str, Any], plots: dict[str, str]) -> str:
    """The whole RESULTS.md."""
    m = results["machine"]
    parts = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run_all.py` on {results['date']}"
        + (" (**--quick smoke run: not the benchmark**)" if results["quick"] else "") + ".",
        "",
        "Command (from the repository root):",
        "",
        f"    {results['command']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB memory, {m['os']}, "
        f"Python {m['python']}. Load average at start {_load(m['load_average_start'])}, "
        f"at end {_load(m['load_average_end'])} (1, 5, 15 min); "
        f"the whole run took {results['total_seconds'] / 60:.1f} min.",
        "",
        "Versions: synthcontrol's environment: " + _versions(results["versions"]["ours"])
        + "; peers' environment (`.venv-bench`): " + _versions(results["versions"]["peers"]) + ".",
        "",
        "Times are wall-clock medians over the stated number of runs, ratios are between "
        "figures measured in this run, and loss is the outcome MSPE over the fit window, "
        "computed for every package by `peers.outcome_mspe` from its weights. Specifications: "
        "`benchmarks/specs.py`, the same for every package. Peer fits slower than "
        f"{REPEAT_BELOW:g} s are run once; each peer call runs in a fresh process under a hard "
        "time limit, and a call that hits it is reported as not finished.",
        "",
        compare.markdown("Acceptance criteria (issues 3 and 5)",
                         {"criteria": tables["criteria"].set_index("criterion")}),
        "",
        compare.markdown("One nested fit per dataset", {"fits": _fit_view(tables["fits"])},
                         _peer_notes(results)),
        "",
        *(f"![{name}](results/{path})" for name, path in plots.items() if name != "placebo"),
        "",
        _placebo_section(results, tables, plots),
        "",
        *_extras(results["extras"]),
        "## Reading",
        "",
        *(f"- {line}" for line in reading(results, tables)),
        "",
    ]
    return "\n".join(parts)


def _load(avg: Any) -> str:
    return " / ".join(f"{x:.2f}" for x in avg)


def _versions(versions: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items() if v) or "not available"


def _fit_view(fits: pd.DataFrame) -> pd.DataFrame:
    view = fits.rename(columns={"seconds": "median s", "time_ratio": "time / ours",
                                "loss": "fit-window MSPE", "loss_ratio": "loss / ours",
                                "weights": "largest weights", "cap_s": "cap s"})
    return view.set_index(["dataset", "package"])


def _peer_notes(results: dict[str, Any]) -> list[str]:
    notes = list(results["peer_notes"])
    seen = set()
    for by_peer in results["peers"].values():
        for peer, rec in by_peer.items():
            note = next((r.get("note") for r in rec["runs"] if r.get("note")), "")
            if note and peer not in seen:
                seen.add(peer)
                notes.append(f"{peer}: {note}")
    return notes


def _placebo_section(results: dict[str, Any], tables: dict[str, Any], plots: dict[str, str]) -> str:
    pl, table = results["placebo"], tables["placebo"]
    full = pd.DataFrame([{"n_jobs": r["n_jobs"], "fits": r["n_fits"], "runs": len(r["seconds"]),
                          "median s": float(np.median(r["seconds"])),
                          "s per fit": float(np.median(r["seconds"])) / r["n_fits"],
                          "mean placebo loss": float(np.mean(list(r["losses"].values())))}
                         for r in pl["full"]]).set_index("n_jobs")
    head = (f"## In-space placebo, {pl['dataset']}\n\n"
            f"synthcontrol runs the full placebo ({pl['n_fits']} nested fits, one per donor, each choosing "
            f"its own predictor weights; {pl['n_fits'] + 1} with the treated unit's own fit, which both "
            "sides have already done) with `sc.placebo_test`. pysyncon is timed on a fixed sample of "
            f"{len(pl['units'])} placebo unit(s), drawn with seed {pl['seed']}: "
            f"{', '.join(pl['units'])}; synthcontrol refits the same units the way `placebo_test` does.\n")
    tabs, notes = {"synthcontrol, full placebo": full}, []
    if table is not None:
        tabs["same units, one fit each"] = table
        notes = _extrapolation_notes(table, pl["n_fits"], full["median s"].min())
    body = compare.markdown(f"Placebo timing ({pl['dataset']})", tabs, notes)
    return head + "\n" + body + (f"\n\n![placebo](results/{plots['placebo']})" if "placebo" in plots else "")


def _extrapolation_notes(table: pd.DataFrame, n_fits: int, ours_full: float) -> list[str]:
    """The peer's full placebo time extrapolated from its sampled fits, marked as such."""
    done = int(table["peer_s"].notna().sum())
    if not done:
        return []
    extrap = compare.extrapolated_full_placebo(table, n_fits)
    notes = [f"EXTRAPOLATED, not measured: {n_fits} pysyncon placebo fits would take about {extrap:.4g} s "
             f"(mean of the {done} finished sampled fit(s) x {n_fits}), {compare.ratio(extrap, ours_full):.4g} "
             f"times synthcontrol's measured full run ({ours_full:.3g} s, fastest n_jobs)."]
    if done < len(table):
        notes.append(f"{len(table) - done} sampled unit(s) have no pysyncon time (see peer_status); the "
                     "extrapolation uses the finished ones only, so a unit cut at the time limit makes it "
                     "understate pysyncon's time.")
    return notes


def _extras(extras: dict[str, Any]) -> list[str]:
    out = []
    for name, rec in extras.items():
        out += [f"## {name.capitalize()} (`benchmarks/{name}.py`)", ""]
        included = rec["status"] == "ok"
        out += [rec["markdown"].strip() if included else f"Not included: {rec['status']}: {rec['detail']}", ""]
    return out


def reading(results: dict[str, Any], tables: dict[str, Any]) -> list[str]:
    """Plain sentences on what the numbers say, including where a peer failed or was capped."""
    lines = []
    fits = tables["fits"]
    for _, row in fits[fits["package"] != "synthcontrol"].iterrows():
        where = f"{row['package']} on {row['dataset']}"
        if row["status"] == "ok" and not row["nested"]:
            lines.append(f"{where} does not choose predictor weights (one fit with fixed V, see its note): "
                         f"time / ours = {row['time_ratio']:.3g}, loss / ours = {row['loss_ratio']:.4g}.")
        elif row["status"] == "ok":
            faster = "faster" if row["time_ratio"] >= 1 else "slower"
            lower = "equal or lower" if compare.no_worse(1.0, row["loss_ratio"]) else "higher"
            factor = max(row["time_ratio"], 1 / row["time_ratio"])
            lines.append(f"{where}: synthcontrol was {factor:.3g} times "
                         f"{faster} and its loss {lower} (peer / ours = {row['loss_ratio']:.4g}).")
        else:
            lines.append(f"{where}: {row['status']}" + (f" ({row['detail']})" if row["detail"] else "") + ".")
    mismatched = [d for d, r in results["ours"].items() if not r["loss_matches_loss_v"]]
    lines.append(f"synthcontrol's `loss_v` differs from the uniform MSPE on {mismatched}." if mismatched
                 else "synthcontrol's `loss_v` equals the uniformly computed MSPE on every dataset.")
    for where, warned in _our_warnings(results).items():
        lines.append(f"synthcontrol warned ({where}): " + "; ".join(warned))
    unmet = tables["criteria"][tables["criteria"]["met"] != "yes"]
    verdict = {"no": "NOT met", "not measured": "not measured"}
    lines += [f"Criterion {verdict[r['met']]}: {r['criterion']} "
              f"(measured {_fmt(r['measured'])}, target {r['target']})." for _, r in unmet.iterrows()]
    return lines


def _our_warnings(results: dict[str, Any]) -> dict[str, list[str]]:
    """Warnings synthcontrol raised in this process, by benchmark."""
    pl = results["placebo"]
    found = {f"{d} fit": r.get("warnings", []) for d, r in results["ours"].items()}
    found.update({f"full placebo, n_jobs={r['n_jobs']}": r.get("warnings", []) for r in pl["full"]})
    found.update({f"placebo fit of {u}": r.get("warnings", []) for u, r in pl["ours_units"].items()})
    return {k: v for k, v in found.items() if v}


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_plots(tables: dict[str, Any], folder: Path) -> dict[str, str]:
    """PNG plots next to the results; returns ``{name: file name}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    drawn = {"fit_times": compare.plot_fit_times(tables["fits"]),
             "loss_ratios": compare.plot_loss_ratios(tables["fits"])}
    if tables["placebo"] is not None:
        drawn["placebo"] = compare.plot_placebo(tables["placebo"])
    files = {}
    for name, ax in drawn.items():
        ax.figure.tight_layout()
        ax.figure.savefig(folder / f"{name}.png", dpi=110)
        plt.close(ax.figure)
        files[name] = f"{name}.png"
    return files


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(readme: Path, results_md: Path, tables: dict[str, Any]) -> None:
    """Replace the marked block of ``readme`` with this run's headline numbers."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme} has no {README_START} ... {README_END} block to update")
    block = "\n".join([
        README_START,
        f"Headline numbers from [{results_md.name}]({results_md.name}) "
        "(written by `run_all.py`, do not edit):",
        "",
        compare.markdown("Acceptance criteria", {"criteria": tables["criteria"].set_index("criterion")}),
        "",
        compare.markdown("One nested fit per dataset", {"fits": _fit_view(tables["fits"])[
            ["status", "runs", "median s", "time / ours", "fit-window MSPE", "loss / ours"]]}),
        README_END,
    ])
    head, rest = text.split(README_START, 1)
    readme.write_text(head + block + rest.split(README_END, 1)[1])


# ------------------------------------------------------------------ main --

def run(settings: Settings, peer_python: Path, command: str) -> dict[str, Any]:
    """Every benchmark; the raw records (JSON-ready)."""
    start, overall = time.perf_counter(), Budget(settings.run_budget)
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command,
        "quick": settings.quick, "machine": machine(),
        "versions": {"ours": our_versions(),
                     "peers": peer_versions(peer_python) if peer_python.exists() else {}},
    }
    fitted, results["ours"] = {}, {}
    for dataset in settings.datasets:
        fitted[dataset], results["ours"][dataset] = our_fit(dataset, settings.our_repeats)
    if settings.placebo_dataset not in fitted:
        fitted[settings.placebo_dataset] = our_fit(settings.placebo_dataset, 1)[0]
    res = fitted[settings.placebo_dataset]
    units = placebo_units(settings.placebo_dataset, settings.placebo_units, settings.seed)
    results["placebo"] = {
        "dataset": settings.placebo_dataset, "units": units, "seed": settings.seed,
        "n_fits": len(res.design.units) - 1,
        "full": [our_full_placebo(res, n, settings.placebo_repeats, settings.placebo_budget)
                 for n in settings.placebo_jobs],
        "ours_units": our_placebo_units(res, units, settings.unit_repeats),
    }
    results["peers"], results["peer_notes"] = run_peers(peer_python, settings)
    peer_rec = results["peers"].get(settings.placebo_dataset, {}).get("pysyncon", {})
    results["placebo"]["peer_units"] = peer_rec.get("placebos", {})
    _check_sample(results["placebo"], results["peer_notes"])
    results["extras"] = {name: run_extra(name, overall.cap(cap), args)
                         for name, (cap, args) in settings.extras.items()}
    results["machine"]["load_average_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - start
    return results


def _check_sample(placebo: dict[str, Any], notes: list[str]) -> None:
    """Note (never hide) a peer placebo sample that differs from ours."""
    extra = set(placebo["peer_units"]) - set(placebo["units"])
    if extra:
        notes.append(f"pysyncon's placebo sample differs from ours: {sorted(extra)}; "
                     "those units are not compared.")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    ap.add_argument("--quick", action="store_true", help="about a minute: Basque, pysyncon only, single runs")
    ap.add_argument("--readme", type=Path, help="also refresh this README's marked results block")
    ap.add_argument("--peer-python", type=Path, default=PEER_PYTHON,
                    help="interpreter of the peer environment (missing: peers are skipped, with a note)")
    ap.add_argument("--peer-budget", type=float, help=f"seconds for all peer calls (default {PEER_BUDGET:g})")
    ap.add_argument("--fit-cap", type=float, help="time limit of every peer fit call (default per peer)")
    ap.add_argument("--placebo-cap", type=float, help=f"per placebo unit (default {PLACEBO_CAP:g})")
    ap.add_argument("--no-extras", action="store_true",
                    help="skip benchmarks/speed.py, quality.py, scaling.py and parallel.py")
    args = ap.parse_args(argv)

    settings = quick_settings() if args.quick else Settings()
    if args.peer_budget is not None:
        settings.peer_budget = args.peer_budget
    if args.fit_cap is not None:
        settings.fit_caps = {p: args.fit_cap for p in peers.ADAPTERS}
    if args.placebo_cap is not None:
        settings.placebo_cap = args.placebo_cap
    if args.no_extras:
        settings.extras = {}
    command = shlex.join([Path(sys.executable).relative_to(ROOT).as_posix()
                          if Path(sys.executable).is_relative_to(ROOT) else sys.executable,
                          "benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    results = run(settings, args.peer_python, command)
    tables = build_tables(results)
    folder = args.out.parent / "results"
    plots = write_plots(tables, folder)
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=str))
    args.out.write_text(render(results, tables, plots))
    if args.readme:
        update_readme(args.readme, args.out, tables)
    log(f"wrote {args.out} in {results['total_seconds'] / 60:.1f} min")
    return results


if __name__ == "__main__":
    main()
