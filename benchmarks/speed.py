"""Speed of the compiled search (issue 13): every criterion a ratio measured in this run.

* **California placebo**: the full in-space placebo test of the ADH specification
  (``sc.fit`` of California, then ``sc.placebo_test``: 39 nested fits), by the current
  code and by today's code before the compiled search (commit
  :data:`benchmarks.baseline.COMMIT`, imported beside it by
  :mod:`benchmarks.baseline`), interleaved, ``--repeats`` times each, serially
  (``n_jobs=1``) and on every core (``n_jobs=-1``).
* **J = 1000**: one nested fit (``fit_design``) of each of the five synthetic panels
  with J = 1000, K = 20, T0 = 200 (``benchmarks/synthetic.py``, seeds 0-4), current
  against today's code.
* **Linear in J**: median over three panels of the faster of two nested-fit runs,
  at each J = 1000 to 10,000 (K = 20, T0 = ``--slope-pre``),
  with the treated unit inside the donors' hull (an exact convex combination: every
  ``v`` ties and the tie-break decides) and outside it (predictors shifted out of the
  hull); the log-log slope of time on J.
* **Memory**: peak resident memory of one nested fit at J = 10,000 above the
  process's memory before it (Linux ``VmHWM`` after resetting it to ``VmRSS``, so
  compiled-code allocations count), in a fresh subprocess that reads the prepared
  design from a file.
* **First-use compile time** of the kernels: a fresh subprocess with an empty numba
  cache (``NUMBA_CACHE_DIR``) times its first fit and a second one; the difference is
  the compile cost, reported apart and never inside the timed figures above (every
  timed run follows a warm-up fit).

    python benchmarks/speed.py                  # about 5 minutes on 2 busy cores
    python benchmarks/speed.py --quick          # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks import baseline, compare, specs  # noqa: E402
from benchmarks.synthetic import make_panel  # noqa: E402
from synthcontrol.estimators import fit_design, prepare_designs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"placebo": 10.0, "j1000": 4.0, "slope": 1.05, "memory_mib": 100.0}


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def california_placebo(repeats: int, jobs: tuple[int, ...]) -> dict[str, Any]:
    """Fit + full placebo test of California, current and baseline code, interleaved."""
    base = baseline.load()
    df, neutral = specs.load("california")
    spec = compare.to_spec(neutral)
    base_spec = baseline.spec(base, spec)

    def ours(n_jobs: int):
        result = sc.fit(df, spec)
        return result, sc.placebo_test(result, n_jobs=n_jobs)

    def theirs(n_jobs: int):
        result = base.fit(df, base_spec)
        return result, base.placebo_test(result, n_jobs=n_jobs)

    runs: dict[str, dict[str, list[float]]] = {}
    found: dict[str, Any] = {}
    for n_jobs in jobs:
        ours(n_jobs), theirs(n_jobs)  # warm-up: imports, compiled code, worker pools
        for _ in range(repeats):
            for name, function in (("current", ours), ("baseline", theirs)):
                (result, placebo), seconds = timed(lambda: function(n_jobs))
                runs.setdefault(f"{name}, n_jobs={n_jobs}", {}).setdefault("seconds", []).append(seconds)
                found[name] = np.array([result.loss_v, *placebo.loss_v[1:]])
    best = {name: min(statistics.median(r["seconds"]) for k, r in runs.items() if k.startswith(name))
            for name in ("current", "baseline")}
    losses = found["current"], found["baseline"]
    return {"runs": {k: statistics.median(v["seconds"]) for k, v in runs.items()}, "repeats": repeats,
            "ratio": best["baseline"] / best["current"], "current_s": best["current"], "baseline_s": best["baseline"],
            "fits_lower_or_equal": int(np.sum(losses[0] <= losses[1] * (1 + 1e-9))), "fits": int(losses[0].size),
            "mean_loss": {"current": float(losses[0].mean()), "baseline": float(losses[1].mean())}}


def synthetic_design(n_donors: int, n_pre: int, seed: int, hull: str = "noisy"):
    """The design of a synthetic panel: ``"noisy"`` (the benchmark's default panel),
    ``"inside"`` (an exact combination of the donors) or ``"outside"`` (its predictors
    shifted by five standard deviations, out of the donors' hull)."""
    panel = make_panel(n_donors, 20, n_pre, noise=0.0 if hull == "inside" else 0.1, seed=seed)
    frame = panel.frame
    if hull == "outside":
        treated = (frame.unit == "treated") & (frame.time == 1)
        columns = [f"x{k}" for k in range(20)]
        frame = frame.copy()
        frame.loc[treated, columns] = frame.loc[treated, columns] + 5.0 * frame[columns].std()
    return frame, panel.spec


def j1000(seeds: tuple[int, ...], n_donors: int = 1000) -> dict[str, Any]:
    base = baseline.load()
    rows = []
    for seed in seeds:
        frame, spec = synthetic_design(n_donors, 200, seed)
        design = next(iter(prepare_designs(frame, spec).values()))
        base_design = next(iter(base.estimators.prepare_designs(frame, baseline.spec(base, spec)).values()))
        ours, ours_s = timed(lambda: fit_design(design))
        theirs, theirs_s = timed(lambda: base.estimators.fit_design(base_design))
        rows.append({"seed": seed, "current_s": ours_s, "baseline_s": theirs_s, "current_loss": ours.loss_v,
                     "baseline_loss": theirs.loss_v})
    current, base_total = sum(r["current_s"] for r in rows), sum(r["baseline_s"] for r in rows)
    return {"rows": rows, "ratio": base_total / current}


def slope(donors: tuple[int, ...], n_pre: int, seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    """Median nested-fit time over the panels of ``seeds`` at each J, and the log-log
    slope (one panel per J would mix the cost per inner solve, linear in J, with how
    many solves that panel's search happens to need)."""
    out = {}
    for hull in ("inside", "outside"):
        times = []
        for n in donors:
            runs = []
            for seed in seeds:
                frame, spec = synthetic_design(n, n_pre, seed, hull)
                design = next(iter(prepare_designs(frame, spec).values()))
                result, first = timed(lambda: fit_design(design))
                seconds = min(first, timed(lambda: fit_design(design))[1])  # the faster of two runs
                runs.append((seconds, bool(result.solution.certified), bool(result.solution.tie_broken)))
            times.append({"n_donors": n, "seconds": statistics.median(r[0] for r in runs),
                          "certified": all(r[1] for r in runs), "tie_broken": any(r[2] for r in runs)})
        fitted = np.polyfit(np.log(donors), np.log([t["seconds"] for t in times]), 1)[0]
        out[hull] = {"times": times, "slope": float(fitted)}
    return out


MEMORY_SCRIPT = """
import json, pickle, sys, warnings
sys.path.insert(0, {root!r})
from synthcontrol.estimators import fit_design
warnings.simplefilter("ignore")

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) / 1024 for line in handle if line.startswith(key))

with open({small!r}, "rb") as handle:
    fit_design(pickle.load(handle))  # load the compiled kernels first
with open({path!r}, "rb") as handle:
    design = pickle.load(handle)
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the high-water mark VmHWM to the current resident set
before = status("VmRSS:")
fit_design(design)
after = status("VmHWM:")
print(json.dumps({{"before_mib": before, "peak_mib": after, "fit_mib": after - before}}))
"""


def memory(n_donors: int, n_pre: int) -> dict[str, Any]:
    """Peak memory of one nested fit: the design is built here and handed to a fresh
    process through a file, so the fit's high-water mark is not hidden under the
    one of building the design."""
    import pickle

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.pkl"
        small.write_bytes(pickle.dumps(next(iter(prepare_designs(*synthetic_design(50, n_pre, 1)).values()))))
        for hull in ("inside", "outside"):
            path = Path(tmp) / f"{hull}.pkl"
            path.write_bytes(pickle.dumps(next(iter(prepare_designs(*synthetic_design(n_donors, n_pre, 0, hull)).values()))))
            code = MEMORY_SCRIPT.format(root=str(ROOT), small=str(small), path=str(path))
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            out[hull] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


COMPILE_SCRIPT = """
import json, sys, time, warnings
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import synthcontrol as sc
from benchmarks import compare, specs
warnings.simplefilter("ignore")
df, spec = specs.load("california")
spec = compare.to_spec(spec)
t1 = time.perf_counter(); sc.fit(df, spec); t2 = time.perf_counter(); sc.fit(df, spec); t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_fit_s": t2 - t1, "second_fit_s": t3 - t2}}))
"""


def compile_time() -> dict[str, Any]:
    """First use with an empty numba cache, then with the cache it wrote."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("empty cache", "cache written"):
            done = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT.format(root=str(ROOT))], env=env,
                                  capture_output=True, text=True, check=True)
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    first = out["empty cache"]
    out["compile_s"] = first["first_fit_s"] - first["second_fit_s"]
    return out


def markdown(report: dict[str, Any]) -> str:
    pl, j, sl, mem, comp = (report[k] for k in ("placebo", "j1000", "slope", "memory", "compile"))
    lines = [
        "Current code against today's code before the compiled search (commit "
        f"{baseline.COMMIT}, imported beside it), measured in the same process, interleaved.", "",
        "| criterion | measured | target | met |", "|---|---|---|---|",
        f"| California fit + full placebo (39 nested fits): baseline time / current time (best n_jobs each) | "
        f"{pl['ratio']:.3g} | >= {TARGETS['placebo']:g} | {'yes' if pl['ratio'] >= TARGETS['placebo'] else 'no'} |",
        f"| J = 1000, K = 20, T0 = 200, five panels: baseline time / current time | {j['ratio']:.3g} | "
        f">= {TARGETS['j1000']:g} | {'yes' if j['ratio'] >= TARGETS['j1000'] else 'no'} |",
    ]
    for hull, s in sl.items():
        lines.append(f"| Nested-fit time in J = {sl[hull]['times'][0]['n_donors']} to {sl[hull]['times'][-1]['n_donors']}, "
                     f"treated {hull} the hull: log-log slope | {s['slope']:.3g} | <= {TARGETS['slope']:g} | "
                     f"{'yes' if s['slope'] <= TARGETS['slope'] else 'no'} |")
    for hull, m in mem.items():
        lines.append(f"| Peak memory of one nested fit at J = {report['memory_donors']}, treated {hull} the hull, MiB | "
                     f"{m['fit_mib']:.3g} | < {TARGETS['memory_mib']:g} | {'yes' if m['fit_mib'] < TARGETS['memory_mib'] else 'no'} |")
    lines += ["", "California (medians of " + str(pl["repeats"]) + " runs, seconds): "
              + ", ".join(f"{k} {v:.3g}" for k, v in pl["runs"].items())
              + f"; fits whose loss is equal or lower than the baseline's: {pl['fits_lower_or_equal']} of {pl['fits']} "
              f"(mean loss {pl['mean_loss']['current']:.4g} against {pl['mean_loss']['baseline']:.4g}).",
              "", "J = 1000 panels (seconds, loss): " + "; ".join(
                  f"seed {r['seed']}: {r['current_s']:.3g} against {r['baseline_s']:.3g}, loss {r['current_loss']:.4g} "
                  f"against {r['baseline_loss']:.4g}" for r in j["rows"]) + ".", ""]
    for hull, s in sl.items():
        lines.append(f"Treated {hull} the hull, nested-fit seconds by J: "
                     + ", ".join(f"{t['n_donors']}: {t['seconds']:.3g}" for t in s["times"]) + ".")
    lines += ["", "Memory: peak resident set (VmHWM) of a fresh process during one nested fit, above its "
              "resident set before the fit (data and compiled kernels already loaded).", "",
              f"First-use compile time of the kernels (fresh process, empty numba cache): {comp['compile_s']:.3g} s "
              f"(first fit {comp['empty cache']['first_fit_s']:.3g} s, second {comp['empty cache']['second_fit_s']:.3g} s); "
              f"with the cache written: first fit {comp['cache written']['first_fit_s']:.3g} s. Not in any timed figure above."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one run, small J: a smoke test")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slope-pre", type=int, default=40, help="T0 of the slope panels")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", sc.ConvergenceWarning)
    if args.quick:
        settings = {"repeats": 1, "jobs": (1,), "seeds": (0,), "donors": (100, 200, 400), "memory": 400}
    else:
        settings = {"repeats": args.repeats, "jobs": (1, -1), "seeds": (0, 1, 2, 3, 4),
                    "donors": (1000, 2000, 5000, 10000), "memory": 10000}
    report = {"compile": compile_time(),
              "placebo": california_placebo(settings["repeats"], settings["jobs"]),
              "j1000": j1000(settings["seeds"], 200 if args.quick else 1000),
              "slope": slope(settings["donors"], args.slope_pre),
              "memory": memory(settings["memory"], args.slope_pre), "memory_donors": settings["memory"]}
    text = markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.write_text(text)
    return report


if __name__ == "__main__":
    main()
