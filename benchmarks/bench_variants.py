"""Estimator variants against their reference packages, run live (issue 10).

synthcontrol runs in this process; the peers (pysyncon's ``AugSynth`` and
``RobustSynth``, scpi_pkg's ``scpi``, synthdid-py's block and staggered estimators)
run in the peer environment ``.venv-bench`` (``make bench-env``) through this same
script with ``--peers JSON``, on the same shipped data (California, Basque, Texas)
and the same options. Writes a Markdown section::

    .venv/bin/python benchmarks/bench_variants.py --markdown /tmp/variants.md
    .venv/bin/python benchmarks/bench_variants.py --quick --markdown /tmp/variants.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "synthcontrol" / "datasets" / "data"
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"

#: Outcome-only designs: (file, outcome, treated, treatment start, donors excluded,
#: outcome divisor). Texas prisoners are counted in thousands: scpi's cvxpy fit reports
#: the raw counts' problem "infeasible_inaccurate" (badly scaled); Vermont's count is
#: constant before 1993, which scpi (and synthcontrol's prediction intervals) refuse.
DESIGNS = {
    "california": ("smoking.csv", "cigsale", "California", 1989, (), 1.0),
    "basque": ("basque.csv", "gdpcap", "Basque Country (Pais Vasco)", 1970, ("Spain (Espana)",), 1.0),
    "texas": ("texas.csv", "bmprison", "Texas", 1993, ("Vermont",), 1000.0),
}
ROBUST_OPTIONS = ({"sv_count": 2, "lambda_": 0.1}, {"sv_count": 4, "lambda_": 1.0})
#: Block and staggered adoption on the smoking data (treated units: start).
SEVERAL = {"block": {"California": 1989, "Utah": 1989}, "staggered": {"California": 1989, "Utah": 1995}}
SEVERAL_ESTIMATORS = {"sdid": "synthdid", "sc": "sc", "did": "did"}


def design_frame(name: str) -> tuple[pd.DataFrame, str, str, int, list[str]]:
    """Long frame of the outcome, the treated unit, start and donors of a design."""
    file, outcome, treated, start, excluded, divisor = DESIGNS[name]
    frame = pd.read_csv(DATA / file)[["unit", "time", outcome]]
    frame = frame[~frame["unit"].isin(excluded)].reset_index(drop=True)
    frame[outcome] = frame[outcome] / divisor
    donors = sorted(u for u in frame["unit"].unique() if u != treated)
    return frame, outcome, treated, start, donors


# ----------------------------------------------------------------- peers --

def peer_augsynth(name: str) -> dict[str, Any]:
    from pysyncon import AugSynth, Dataprep

    frame, outcome, treated, start, donors = design_frame(name)
    pre = sorted(t for t in frame["time"].unique() if t < start)
    prep = Dataprep(foo=frame, predictors=[], predictors_op="mean", time_predictors_prior=pre,
                    dependent=outcome, unit_variable="unit", time_variable="time",
                    treatment_identifier=treated, controls_identifier=donors, time_optimize_ssr=pre)
    aug = AugSynth()
    aug.fit(prep, use_covariates=False)
    post = sorted(t for t in frame["time"].unique() if t >= start)
    return {"lambda": float(aug.lambda_), "effect": float(aug.att(time_period=post)["att"])}


def peer_robust(name: str, options: dict[str, Any]) -> dict[str, float]:
    from pysyncon import Dataprep, RobustSynth

    frame, outcome, treated, start, donors = design_frame(name)
    pre = sorted(t for t in frame["time"].unique() if t < start)
    prep = Dataprep(foo=frame, predictors=[], predictors_op="mean", time_predictors_prior=pre,
                    dependent=outcome, unit_variable="unit", time_variable="time",
                    treatment_identifier=treated, controls_identifier=donors, time_optimize_ssr=pre)
    robust = RobustSynth()
    robust.fit(prep, lambda_=options["lambda_"], sv_count=options["sv_count"])
    return {str(u): float(w) for u, w in zip(donors, robust.W)}


def peer_scpi(name: str, sims: int) -> dict[str, Any]:
    from scpi_pkg.scdata import scdata
    from scpi_pkg.scpi import scpi

    frame, outcome, treated, start, donors = design_frame(name)
    times = sorted(frame["time"].unique())
    data = scdata(df=frame, id_var="unit", time_var="time", outcome_var=outcome,
                  period_pre=np.array([t for t in times if t < start]),
                  period_post=np.array([t for t in times if t >= start]),
                  unit_tr=treated, unit_co=donors, constant=False, cointegrated_data=False)
    np.random.seed(0)  # scpi draws from numpy's global state
    pi = scpi(data, w_constr={"name": "simplex"}, sims=sims, e_method="all", cores=1, verbose=False)
    columns = lambda frame: np.asarray(frame, dtype=float)[:, :2].tolist()  # noqa: E731
    return {
        "synthetic": np.asarray(pi.Y_post_fit, dtype=float).ravel().tolist(),
        "in_sample": columns(pi.CI_in_sample),
        "gaussian": columns(pi.CI_all_gaussian),
        "ls": columns(pi.CI_all_ls),
        "qreg": columns(pi.CI_all_qreg),
        "rho": float(list(pi.rho.values())[0]) if isinstance(pi.rho, dict) else float(pi.rho),
        "weights": np.asarray(pi.w, dtype=float).ravel().tolist(),
    }


def peer_several() -> dict[str, Any]:
    import synthdid

    frame, outcome, *_ = design_frame("california")
    out = {}
    for label, starts in SEVERAL.items():
        treat = [int(u in starts and t >= starts[u]) for u, t in zip(frame["unit"], frame["time"])]
        data = frame.assign(treat=treat)
        for ours, theirs in SEVERAL_ESTIMATORS.items():
            est = synthdid.staggered_synthdid_estimate(data, estimator=theirs, unit="unit", time="time",
                                                       outcome=outcome, treatment="treat")
            out[f"{label}/{ours}"] = {"effect": float(est.att), "jackknife": float(est.se(method="jackknife"))}
    return out


def run_peers(quick: bool) -> dict[str, Any]:
    """Every peer figure (run inside ``.venv-bench``); a failing call is recorded."""
    names = ["california"] if quick else list(DESIGNS)
    versions = {d: _version(d) for d in ("pysyncon", "scpi_pkg", "synthdid-py")}
    return {
        "versions": versions,
        "augsynth": {n: _guarded(peer_augsynth, n) for n in names},
        "robust": {n: [_guarded(peer_robust, n, o) for o in ROBUST_OPTIONS] for n in names},
        "scpi": {n: _guarded(peer_scpi, n, 200 if quick else 1000) for n in names},
        "several": peer_several(),
    }


def _guarded(function, *args) -> dict[str, Any]:
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 -- a peer failing is a result, reported
        return {"error": f"{type(error).__name__}: {str(error)[:160]}"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------ ours --

def _spec(name: str):
    import synthcontrol as sc

    frame, outcome, treated, start, donors = design_frame(name)
    return frame, sc.Spec(outcome=outcome, treated=treated, treatment_start=start, donors=donors)


def ours_augsynth(name: str) -> dict[str, float]:
    import synthcontrol as sc

    frame, spec = _spec(name)
    res = sc.fit(frame, spec, estimator="augmented")
    return {"lambda": res.extras["lambda_"], "effect": res.average_effect}


def ours_robust(name: str, options: dict[str, Any]) -> dict[str, float]:
    import synthcontrol as sc

    frame, spec = _spec(name)
    res = sc.fit(frame, spec, estimator="robust", estimator_options=options)
    return {str(u): float(w) for u, w in res.weights.items()}


def ours_scpi(name: str, sims: int) -> dict[str, Any]:
    import synthcontrol as sc

    frame, spec = _spec(name)
    pi = sc.prediction_intervals(sc.fit(frame, spec), sims=sims)
    table = pi.table
    pairs = lambda prefix: table[[f"{prefix}_lower", f"{prefix}_upper"]].to_numpy().tolist()  # noqa: E731
    return {
        "synthetic": table["synthetic"].tolist(), "in_sample": pairs("in"), "gaussian": pairs("gaussian"),
        "ls": pairs("ls"), "qreg": pairs("qreg"), "rho": pi.rho,
    }


def ours_several() -> dict[str, Any]:
    import synthcontrol as sc

    frame, outcome, *_ = design_frame("california")
    out = {}
    for label, starts in SEVERAL.items():
        spec = sc.Spec(outcome=outcome, treated=list(starts), treatment_start=min(starts.values()))
        for estimator in SEVERAL_ESTIMATORS:
            res = sc.fit_several(frame, spec, treatment_starts=starts, estimator=estimator)
            out[f"{label}/{estimator}"] = {"effect": res.average_effect, "jackknife": res.se_jackknife}
    return out


# ---------------------------------------------------------------- report --

def _width_ratio(ours: list, theirs: list) -> tuple[float, float]:
    """Median and largest ratio of interval widths, ours over theirs."""
    a, b = np.asarray(ours, float), np.asarray(theirs, float)
    ratio = (a[:, 1] - a[:, 0]) / (b[:, 1] - b[:, 0])
    return float(np.median(ratio)), float(np.max(np.abs(ratio - 1)) + 1)


def _max_diff(ours: list, theirs: list) -> float:
    return float(np.max(np.abs(np.asarray(ours, float) - np.asarray(theirs, float))))


def render(peers: dict[str, Any], quick: bool) -> str:
    names = list(peers["augsynth"])
    v = peers["versions"]
    lines = [
        f"Peers: pysyncon {v['pysyncon']}, scpi_pkg {v['scpi_pkg']}, synthdid-py {v['synthdid-py']} "
        "(`.venv-bench`), on the shipped outcome-only designs (California 1989, Basque 1970 without "
        "Spain, Texas 1993 with black male prisoners in thousands and without Vermont; every other "
        "unit a donor).",
        "",
        "**Ridge-augmented SC** (`estimator=\"augmented\"` vs pysyncon `AugSynth.fit(use_covariates=False)`, "
        "cross-validated lambda, min_1se):",
        "",
        "| design | lambda (ours) | lambda (pysyncon) | effect (ours) | effect (pysyncon) |",
        "|---|---|---|---|---|",
    ]
    for n in names:
        o, p = ours_augsynth(n), peers["augsynth"][n]
        if "error" in p:
            lines.append(f"| {n} | {o['lambda']:.6g} | failed: {p['error']} | {o['effect']:.5f} | |")
            continue
        lines.append(f"| {n} | {o['lambda']:.6g} | {p['lambda']:.6g} | {o['effect']:.5f} | {p['effect']:.5f} |")
    lines += ["", "**Robust SC** (`estimator=\"robust\"` vs pysyncon `RobustSynth`, same `sv_count` and "
              "`lambda_`): largest absolute weight difference.", "",
              "| design | " + " | ".join(f"sv_count={o['sv_count']}, lambda={o['lambda_']}" for o in ROBUST_OPTIONS) + " |",
              "|---|" + "---|" * len(ROBUST_OPTIONS)]
    for n in names:
        diffs = []
        for options, theirs in zip(ROBUST_OPTIONS, peers["robust"][n]):
            ours = ours_robust(n, options)
            diffs.append(f"failed: {theirs['error']}" if "error" in theirs
                         else f"{max(abs(ours[u] - theirs[u]) for u in theirs):.1e}")
        lines.append(f"| {n} | " + " | ".join(diffs) + " |")
    sims = 200 if quick else 1000
    lines += ["", f"**Prediction intervals** (`sc.prediction_intervals` vs scpi_pkg `scpi(w_constr=simplex, "
              f"e_method='all')`, {sims} draws each, different random streams): largest absolute difference "
              "of the synthetic outcome and of the deterministic out-of-sample bounds; ratio of interval "
              "widths (median, and the one furthest from 1).", "",
              "| design | rho (ours / scpi) | synthetic | gaussian bounds | ls bounds | qreg bounds | "
              "in-sample width ratio | gaussian width ratio |",
              "|---|---|---|---|---|---|---|---|"]
    for n in names:
        o, p = ours_scpi(n, sims), peers["scpi"][n]
        if "error" in p:
            lines.append(f"| {n} | {o['rho']:.4g} / failed: {p['error']} | | | | | | |")
            continue
        out = {m: _max_diff(np.asarray(o[m]) - np.asarray(o["in_sample"]), np.asarray(p[m]) - np.asarray(p["in_sample"]))
               for m in ("gaussian", "ls", "qreg")}
        w_in, w_gau = _width_ratio(o["in_sample"], p["in_sample"]), _width_ratio(o["gaussian"], p["gaussian"])
        lines.append(
            f"| {n} | {o['rho']:.4g} / {p['rho']:.4g} | {_max_diff(o['synthetic'], p['synthetic']):.1e} | "
            f"{out['gaussian']:.2g} | {out['ls']:.2g} | {out['qreg']:.2g} | {w_in[0]:.3f} ({w_in[1]:.3f}) | "
            f"{w_gau[0]:.3f} ({w_gau[1]:.3f}) |"
        )
    lines += ["", "**Several treated units** (`sc.fit_several` vs synthdid-py `staggered_synthdid_estimate`, "
              "never-treated controls; block = California and Utah from 1989, staggered = California 1989, "
              "Utah 1995):", "",
              "| case | effect (ours) | effect (synthdid-py) | jackknife se (ours) | jackknife se (synthdid-py) |",
              "|---|---|---|---|---|"]
    ours = ours_several()
    for key, theirs in peers["several"].items():
        o = ours[key]
        lines.append(f"| {key} | {o['effect']:.4f} | {theirs['effect']:.4f} | {o['jackknife']:.4f} | "
                     f"{theirs['jackknife']:.4f} |")
    lines += ["", "Differences in the SC and SDID weights come from the solvers: synthcontrol solves the "
              "weighting problems exactly, synthdid (R and synthdid-py) runs Frank-Wolfe to a tolerance "
              "and sparsifies; a NaN jackknife is synthdid's NA (a cohort's unit weights on one donor)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", type=Path, help="write the Markdown section here")
    ap.add_argument("--peers", type=Path, help="(peer environment) write the peers' figures as JSON")
    ap.add_argument("--quick", action="store_true", help="California only, 200 draws")
    ap.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    args = ap.parse_args(argv)
    if args.peers:
        args.peers.write_text(json.dumps(run_peers(args.quick)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peers.json"
        cmd = [str(args.peer_python), str(Path(__file__).resolve()), "--peers", str(out)]
        subprocess.run(cmd + (["--quick"] if args.quick else []), check=True, stdout=subprocess.DEVNULL)
        peers = json.loads(out.read_text())
    text = render(peers, args.quick)
    if args.markdown:
        args.markdown.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
