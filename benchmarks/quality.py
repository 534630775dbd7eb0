"""Search quality (issue 13): default fits against the long-search reference losses.

Every problem of ``benchmarks/reference_losses.json`` (written by
``benchmarks/reference.py``) is fitted with the default search, exactly as
``sc.fit`` and ``sc.placebo_test`` fit it, and its loss is compared with the
reference: the criterion is a loss within 0.1% of the reference on each of the 39
California fits and within 1% on each synthetic J = 1000 panel.

    python benchmarks/quality.py                        # both sets
    python benchmarks/quality.py --only california --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
from benchmarks.reference import REFERENCE, SETS  # noqa: E402
from synthcontrol.estimators import fit_design  # noqa: E402

#: Largest relative excess over the reference loss the criterion allows, per set.
TARGETS = {"california": 1e-3, "synthetic": 1e-2}


def run(only: list[str], reference: dict[str, Any]) -> dict[str, Any]:
    """Default fits of every problem of the sets in ``only``, against the reference."""
    rows = []
    for name in only:
        for unit, design in SETS[name]():
            key = f"{name}/{unit}"
            if key not in reference["problems"]:
                continue
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", sc.ConvergenceWarning)
                fit = fit_design(design)
            seconds = time.perf_counter() - start
            best = reference["problems"][key]["loss"]
            rows.append({"set": name, "problem": unit, "loss": fit.loss_v, "reference": best,
                         "excess": fit.loss_v / best - 1 if best > 0 else float(fit.loss_v > 0),
                         "seconds": seconds, "certified": bool(fit.solution.certified)})
    summary = {}
    for name in only:
        excess = np.array([r["excess"] for r in rows if r["set"] == name])
        summary[name] = {"fits": int(excess.size), "max_excess": float(excess.max()),
                         "over_target": int((excess > TARGETS[name]).sum()), "target": TARGETS[name],
                         "below_reference": int((excess < -1e-9).sum())}
    return {"rows": rows, "summary": summary}


def markdown(report: dict[str, Any]) -> str:
    lines = ["Default search against the long-search reference (`benchmarks/reference_losses.json`, "
             "written by `benchmarks/reference.py`; excess = loss / reference - 1):", "",
             "| set | fits | largest excess | target | fits over target | fits below the reference |",
             "|---|---|---|---|---|---|"]
    for name, s in report["summary"].items():
        lines.append(f"| {name} | {s['fits']} | {s['max_excess']:.3g} | {s['target']:g} | {s['over_target']} | "
                     f"{s['below_reference']} |")
    worst = sorted(report["rows"], key=lambda r: -r["excess"])[:5]
    lines += ["", "Largest excesses: " + ", ".join(f"{r['set']}/{r['problem']} {r['excess']:.2e}" for r in worst) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(SETS), nargs="+", default=sorted(SETS))
    ap.add_argument("--reference", type=Path, default=REFERENCE)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    reference = json.loads(args.reference.read_text())
    only = [name for name in args.only if any(k.startswith(f"{name}/") for k in reference["problems"])]
    report = run(only, reference)
    text = markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.write_text(text)
    return report


if __name__ == "__main__":
    main()
