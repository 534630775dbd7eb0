"""Run mlsynth's MSCMT-style differential evolution on stored nested problems.

Runs in mlsynth's own environment (``.venv-mlsynth``, ``make mlsynth-env``), driven by
``benchmarks/bench_certify.py``; it imports nothing from synthcontrol::

    .venv-mlsynth/bin/python benchmarks/mlsynth_mscmt.py PROBLEMS.npz OUT.json

``PROBLEMS.npz`` holds ``names`` and, per problem ``i``, arrays ``x1_i``, ``X0_i``,
``z1_i``, ``Z0_i`` (scaled predictors, fit-window outcomes). For each problem the
output records mlsynth's predictor weights ``V``, donor weights ``W``, its own
reported loss and the wall and CPU time of ``solve_mscmt`` (MSCMT's floor ``lb = 1e-8``,
seed 0, mlsynth's defaults otherwise).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
from mlsynth.utils.bilevel.mscmt import solve_mscmt
from mlsynth.utils.bilevel.structure import BilevelProblem


def main(source: str, target: str) -> None:
    stored = np.load(source, allow_pickle=False)
    records = []
    for i, name in enumerate(stored["names"]):
        problem = BilevelProblem(
            y1_pre=stored[f"z1_{i}"], Y0_pre=stored[f"Z0_{i}"], X1=stored[f"x1_{i}"], X0=stored[f"X0_{i}"]
        )
        start, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            solution = solve_mscmt(problem, lb=1e-8, seed=0)
        records.append({
            "name": str(name),
            "seconds": time.perf_counter() - start,
            "cpu": time.process_time() - cpu,
            "V": np.asarray(solution.V, float).tolist(),
            "W": np.asarray(solution.W, float).tolist(),
            "reported_loss": float(solution.upper_loss),
            "stage": str(solution.stage),
        })
        print(f"mlsynth mscmt {name}: {records[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
        with open(target, "w") as handle:  # rewritten each time: a capped run keeps what finished
            json.dump(records, handle)


if __name__ == "__main__":
    main(*sys.argv[1:3])
