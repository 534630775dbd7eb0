"""Adapters running peer synthetic-control packages on a neutral spec.

Each ``fit_<peer>`` runs one nested synthetic-control fit with the peer's own
choice of predictor weights and its default optimiser, and returns a
:class:`PeerFit`.  The peers are imported inside the adapters so that this
module (and :func:`outcome_mspe`) works without them; the CLI is meant to run
in the peer environment (``.venv-bench``) and writes JSON, so the synthcontrol
benchmark can call it as a subprocess::

    python benchmarks/peers.py --dataset basque --peer pysyncon --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.specs import DATA_DIR, donor_pool, load  # noqa: E402

PEER_DISTS = {"pysyncon": "pysyncon", "scm": "SyntheticControlMethods", "scpi": "scpi_pkg"}


@dataclass
class PeerFit:
    """Result of one peer fit.

    Attributes
    ----------
    peer : str
        Peer key (``pysyncon``, ``scm`` or ``scpi``).
    weights : dict
        Donor weights ``{unit: weight}``.
    predictor_weights : dict or None
        Predictor weights V ``{label: weight}`` where the peer exposes them.
    seconds : float
        Wall time of the peer call only (``time.perf_counter``).
    cpu_seconds : float
        CPU time of this process over the same call (``time.process_time``).
    note : str
        How the peer's fit differs from the spec, if it does.
    error : str or None
        The exception text if the fit failed.
    """

    peer: str
    weights: dict[str, float] = field(default_factory=dict)
    predictor_weights: dict[str, float] | None = None
    seconds: float = float("nan")
    cpu_seconds: float = float("nan")
    note: str = ""
    error: str | None = None


class _Clock:
    """Wall and CPU time of a block.

    Wall time is the benchmark figure; CPU time shows how much of it was
    waiting for cores on a shared machine.
    """

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = -time.perf_counter(), -time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter()
        self.cpu += time.process_time()


def predictor_label(pred: dict[str, Any]) -> str:
    """Return a readable label, e.g. ``invest[1964-1969]`` or ``popdens@1969``."""
    if pred["op"] == "mean":
        return f"{pred['var']}[{pred['start']}-{pred['end']}]"
    return f"{pred['var']}@{pred['period']}"


def predictor_periods(pred: dict[str, Any]) -> list[int]:
    """Return the periods a predictor aggregates over."""
    if pred["op"] == "mean":
        return list(range(pred["start"], pred["end"] + 1))
    return [pred["period"]]


def predictor_table(df: pd.DataFrame, spec: dict[str, Any], units: list[Any]) -> pd.DataFrame:
    """Compute each spec predictor for each unit, skipping missing values.

    Returns
    -------
    pandas.DataFrame
        One row per unit (in ``units`` order), one column per predictor label.
    """
    cols = {}
    for pred in spec["predictors"]:
        rows = df[df[spec["time"]].isin(predictor_periods(pred))]
        cols[predictor_label(pred)] = rows.groupby(spec["unit"])[pred["var"]].mean()
    return pd.DataFrame(cols).loc[units]


def _fit_periods(spec: dict[str, Any]) -> list[int]:
    a, b = spec["fit_window"]
    return list(range(a, b + 1))


def outcome_mspe(df: pd.DataFrame, spec: dict[str, Any], weights: dict[Any, float]) -> float:
    """Mean squared gap between treated and synthetic outcome over the fit window.

    Parameters
    ----------
    df : pandas.DataFrame
        Long panel.
    spec : dict
        Neutral spec (uses ``outcome``, ``unit``, ``time``, ``treated``,
        ``fit_window``).
    weights : dict
        ``{unit: weight}``; units absent from the dict get weight 0.

    Returns
    -------
    float
        ``mean_t (y_treated[t] - sum_j w_j y_j[t])**2`` over the fit window.
    """
    wide = df[df[spec["time"]].isin(_fit_periods(spec))].pivot(
        index=spec["time"], columns=spec["unit"], values=spec["outcome"])
    w = pd.Series(weights, dtype=float)
    gap = wide[spec["treated"]] - wide[list(w.index)].to_numpy() @ w.to_numpy()
    return float(np.mean(gap.to_numpy() ** 2))


def _guarded(peer: str) -> Callable[[Callable[..., PeerFit]], Callable[..., PeerFit]]:
    """Turn an adapter's exception into a ``PeerFit`` with ``error`` set.

    A benchmark run compares several peers, so one peer failing must not
    abort the others.
    """
    def wrap(func: Callable[..., PeerFit]) -> Callable[..., PeerFit]:
        @functools.wraps(func)
        def run(df: pd.DataFrame, spec: dict[str, Any]) -> PeerFit:
            try:
                return func(df, spec)
            except Exception as exc:  # noqa: BLE001 -- recorded, not hidden
                return PeerFit(peer=peer, error=f"{type(exc).__name__}: {exc}")
        return run
    return wrap


Predictors = list[dict[str, Any]]


def _pysyncon_split(preds: Predictors) -> tuple[Predictors, Predictors]:
    """Split predictors into pysyncon's plain ``predictors`` and the rest.

    The leading run of means sharing the first window goes to ``predictors``
    with ``time_predictors_prior``; everything after is a special predictor.
    Taking only a leading run keeps pysyncon's row order (plain first, then
    special) equal to the spec's order.
    """
    lead: Predictors = []
    for pred in preds:
        if pred["op"] != "mean" or (lead and predictor_periods(pred) != predictor_periods(lead[0])):
            break
        lead.append(pred)
    return lead, preds[len(lead):]


@_guarded("pysyncon")
def fit_pysyncon(df: pd.DataFrame, spec: dict[str, Any]) -> PeerFit:
    """Fit with pysyncon's ``Synth`` (Nelder-Mead over V from equal weights).

    The spec maps one-to-one onto ``Dataprep``; the timed call covers
    ``Dataprep`` (predictor aggregation) and ``Synth.fit``.
    """
    from pysyncon import Dataprep, Synth

    lead, special = _pysyncon_split(spec["predictors"])
    donors = donor_pool(df, spec)
    with _Clock() as clock:
        prep = Dataprep(
            foo=df,
            predictors=[p["var"] for p in lead],
            predictors_op="mean",
            # With no plain predictors pysyncon still requires rows in this range.
            time_predictors_prior=predictor_periods(lead[0]) if lead else _fit_periods(spec),
            special_predictors=[(p["var"], predictor_periods(p), "mean") for p in special] or None,
            dependent=spec["outcome"],
            unit_variable=spec["unit"],
            time_variable=spec["time"],
            treatment_identifier=spec["treated"],
            controls_identifier=donors,
            time_optimize_ssr=_fit_periods(spec),
        )
        synth = Synth()
        synth.fit(dataprep=prep)
    labels = [predictor_label(p) for p in spec["predictors"]]
    return PeerFit(
        peer="pysyncon",
        weights={str(u): float(w) for u, w in zip(synth.W_names, synth.W)},
        predictor_weights=dict(zip(labels, map(float, synth.V))),
        seconds=clock.wall,
        cpu_seconds=clock.cpu,
    )


def _constant_panel(df: pd.DataFrame, spec: dict[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Long panel of the outcome plus each predictor as a time-constant column.

    Only the treated unit and donors, and only the fit window and the
    post-treatment periods, are kept, so a peer's "pre-treatment" is exactly
    the fit window.

    Returns
    -------
    panel : pandas.DataFrame
        Sorted by unit then time.
    features : list of str
        The predictor columns ``__p0, __p1, ...`` in spec order (neutral names
        so no peer has to parse labels).
    """
    units = [spec["treated"], *donor_pool(df, spec)]
    preds = predictor_table(df, spec, units)
    preds.columns = [f"__p{i}" for i in range(preds.shape[1])]
    periods = _fit_periods(spec) + _post_periods(df, spec)
    keep = df[df[spec["unit"]].isin(units) & df[spec["time"]].isin(periods)]
    panel = keep[[spec["unit"], spec["time"], spec["outcome"]]].join(preds, on=spec["unit"])
    panel = panel.sort_values([spec["unit"], spec["time"]]).reset_index(drop=True)
    return panel, list(preds.columns)


def _post_periods(df: pd.DataFrame, spec: dict[str, Any]) -> list[int]:
    return sorted(t for t in df[spec["time"]].unique() if t >= spec["treatment_start"])


SCM_NOTE = (
    "SyntheticControlMethods averages every non-excluded column over all "
    "pre-treatment periods and has no per-predictor windows; each spec "
    "predictor was precomputed with its own window and passed as a "
    "time-constant column (so its pre-period mean is exactly the spec value), "
    "the outcome column excluded from the covariates, and the panel cut to the "
    "fit window plus post-treatment periods so that its outcome loss (a sum, "
    "not a mean: same minimiser) runs over the fit window. V: L-BFGS-B from "
    "equal weights plus 9 Dirichlet restarts (package defaults n_optim=10, "
    "random_seed=0, pen=0). Predictor precomputation is not timed."
)


@_guarded("scm")
def fit_scm(df: pd.DataFrame, spec: dict[str, Any]) -> PeerFit:
    """Fit with SyntheticControlMethods' ``Synth`` (package defaults)."""
    from SyntheticControlMethods import Synth

    panel, _ = _constant_panel(df, spec)
    with _Clock() as clock:
        synth = Synth(panel, spec["outcome"], spec["unit"], spec["time"],
                      spec["treatment_start"], spec["treated"],
                      exclude_columns=[spec["outcome"]])
    data = synth.original_data
    labels = [predictor_label(p) for p in spec["predictors"]]
    return PeerFit(
        peer="scm",
        weights={str(u): float(w) for u, w in zip(data.control_units, data.w.ravel())},
        predictor_weights=dict(zip(labels, map(float, data.v))),
        seconds=clock.wall,
        cpu_seconds=clock.cpu,
        note=SCM_NOTE,
    )


SCPI_NOTE = (
    "scpi_pkg has no nested search over predictor weights V: it solves one "
    "simplex-constrained least-squares fit of the features with V fixed "
    "(V='separate', identity). The spec predictors (each with its own window) "
    "were passed to scdata as time-constant features, scaled by their standard "
    "deviation across treated and donor units as pysyncon and R Synth do, so "
    "the fit is the spec's predictor match with equal V, not an optimised V. "
    "scest() itself fails when the outcome is not among the features "
    "(scest.py: Y_donors.dot(w) aligns string columns against a MultiIndex), "
    "so the adapter runs scest's own estimation steps (V_prep, w_constr_prep, "
    "b_est from scpi_pkg.funs) on scdata's A and B. Predictor precomputation "
    "is not timed."
)


@_guarded("scpi")
def fit_scpi(df: pd.DataFrame, spec: dict[str, Any]) -> PeerFit:
    """Fit with scpi_pkg's estimator (simplex weights, identity V)."""
    from scpi_pkg.funs import V_prep, b_est, w_constr_prep
    from scpi_pkg.scdata import scdata

    panel, features = _constant_panel(df, spec)
    panel[features] = panel[features] / panel.groupby(spec["unit"])[features].first().std()
    donors = donor_pool(df, spec)
    with _Clock() as clock:
        data = scdata(df=panel, id_var=spec["unit"], time_var=spec["time"],
                      outcome_var=spec["outcome"], period_pre=np.array(_fit_periods(spec)),
                      period_post=np.array(_post_periods(df, spec)), unit_tr=spec["treated"],
                      unit_co=donors, features=features, verbose=False)
        v_mat = V_prep("separate", data.B, data.T0_features, 1)
        w_constr = w_constr_prep({"name": "simplex"}, ["name"], data.A, data.B, v_mat,
                                 data.J, data.KM)
        w = b_est(A=data.A, Z=data.B, J=data.J, KM=data.KM, w_constr=w_constr, V=v_mat)
    # scdata names B's columns "<treated>_<donor>"; map back to donor names.
    names = [c[len(f"{spec['treated']}_"):] for c in data.B.columns]
    return PeerFit(
        peer="scpi",
        weights={n: float(x) for n, x in zip(names, np.ravel(w)[: data.J])},
        seconds=clock.wall,
        cpu_seconds=clock.cpu,
        note=SCPI_NOTE,
    )


ADAPTERS: dict[str, Callable[[pd.DataFrame, dict[str, Any]], PeerFit]] = {
    "pysyncon": fit_pysyncon, "scm": fit_scm, "scpi": fit_scpi,
}


def placebo_fits(peer: str, df: pd.DataFrame, spec: dict[str, Any],
                 units: list[Any]) -> dict[Any, PeerFit]:
    """Refit with each of ``units`` as the treated unit (in-space placebos).

    The real treated unit is dropped from the pool; the other donors of the
    spec stay.

    Returns
    -------
    dict
        ``{unit: PeerFit}``.
    """
    pool = donor_pool(df, spec)
    return {u: ADAPTERS[peer](df, placebo_spec(spec, pool, u)) for u in units}


def placebo_spec(spec: dict[str, Any], pool: list[Any], unit: Any) -> dict[str, Any]:
    """Return ``spec`` with ``unit`` treated and the rest of ``pool`` as donors."""
    return {**spec, "treated": unit, "donors": [d for d in pool if d != unit]}


def _record(fit: PeerFit, df: pd.DataFrame, spec: dict[str, Any]) -> dict[str, Any]:
    """PeerFit as a JSON-ready dict plus the uniformly computed outcome MSPE."""
    out = asdict(fit)
    out["outcome_mspe"] = None if fit.error else outcome_mspe(df, spec, fit.weights)
    return out


def _version(peer: str) -> str | None:
    try:
        return metadata.version(PEER_DISTS[peer])
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> None:
    """Run one peer on one dataset (plus optional placebos) and write JSON.

    Results go only to ``--json``: stdout may carry the peers' own progress
    output (SyntheticControlMethods makes Fortran L-BFGS-B print, which
    Python cannot redirect), so callers should discard it.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, choices=["basque", "california", "texas"])
    ap.add_argument("--peer", required=True, choices=sorted(ADAPTERS))
    ap.add_argument("--placebo-units", type=int, default=0,
                    help="number of donors, drawn at random, to refit as treated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)

    df, spec = load(args.dataset, args.data_dir)
    result: dict[str, Any] = {
        "dataset": args.dataset, "peer": args.peer, "version": _version(args.peer),
        "spec": spec, "fit": _record(ADAPTERS[args.peer](df, spec), df, spec),
    }
    _write(args.json, result)
    if args.placebo_units:
        rng = np.random.default_rng(args.seed)
        units = list(rng.choice(spec["donors"], size=args.placebo_units, replace=False))
        result["placebos"] = {}
        # Rewritten after every placebo so a run cut short by a timeout
        # still leaves the fits it finished.
        for unit in units:
            fit = placebo_fits(args.peer, df, spec, [unit])[unit]
            result["placebos"][str(unit)] = _record(fit, df, placebo_spec(spec, spec["donors"], unit))
            _write(args.json, result)


def _write(path: Path, result: dict[str, Any]) -> None:
    """Write the result JSON (non-JSON values such as numpy ints as strings)."""
    path.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
