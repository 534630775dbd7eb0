"""Turn benchmark records into comparison tables, checks and plots.

Everything here is a pure function of the records that ``run_all.py`` collects
(plain dicts, as stored in ``results.json``), so the tables can be rebuilt and
tested without timing anything. A peer record is what one call of
``benchmarks/peers.py`` left behind::

    {"peer": "pysyncon", "dataset": "california", "status": "ok", "detail": "",
     "cap_s": 120.0, "version": "1.7.0", "runs": [<fit>, ...], "placebos": {unit: <fit>}}

where ``<fit>`` is the JSON of a :class:`peers.PeerFit` plus ``outcome_mspe``.
Status is one of :data:`STATUSES`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import synthcontrol as sc  # noqa: E402
# The one neutral-spec -> sc.Spec converter (the placebo benchmark uses it too).
from benchmarks.bench_placebo import to_spec  # noqa: E402,F401

STATUSES = ("ok", "failed", "wrong answer", "did not finish", "skipped")
# Weights may miss the simplex by solver tolerance, not more.
WEIGHT_TOL = 1e-4
# "Equal or lower loss" allows rounding in the last digits, nothing more.
LOSS_RTOL = 1e-6


def weight_problems(weights: Mapping[str, float], donors: Sequence[str]) -> list[str]:
    """Ways in which ``weights`` are not a synthetic control of ``donors``.

    Parameters
    ----------
    weights : mapping
        ``{donor: weight}`` as a peer returned them.
    donors : sequence of str
        The spec's donor pool.

    Returns
    -------
    list of str
        Empty when the weights are finite, non-negative, sum to one and name
        only donors of the pool.

    Examples
    --------
    >>> weight_problems({"A": 0.5, "B": 0.5}, ["A", "B", "C"])
    []
    >>> weight_problems({"A": 0.7, "Z": 0.2}, ["A", "B"])
    ['weights sum to 0.9, not 1', 'weights on units outside the donor pool: Z']
    """
    w = pd.Series(weights, dtype=float)
    problems = []
    if w.empty or not np.isfinite(w.to_numpy()).all():
        return ["no finite weights returned"]
    if (w < -WEIGHT_TOL).any():
        problems.append(f"negative weights: {', '.join(map(str, w.index[w < -WEIGHT_TOL]))}")
    if abs(w.sum() - 1) > WEIGHT_TOL:
        problems.append(f"weights sum to {w.sum():.4g}, not 1")
    outside = sorted(set(map(str, w.index)) - set(map(str, donors)))
    if outside:
        problems.append(f"weights on units outside the donor pool: {', '.join(outside)}")
    return problems


def fit_status(fit: Mapping[str, Any], donors: Sequence[str]) -> tuple[str, str]:
    """Classify one peer fit as ``ok``, ``failed`` or ``wrong answer`` (with why).

    Examples
    --------
    >>> fit_status({"error": "ValueError: x", "weights": {}}, ["A"])
    ('failed', 'ValueError: x')
    >>> fit_status({"error": None, "weights": {"A": 1.0}, "outcome_mspe": 2.0}, ["A"])
    ('ok', '')
    """
    if fit.get("error"):
        return "failed", str(fit["error"])
    problems = weight_problems(fit.get("weights") or {}, donors)
    loss = fit.get("outcome_mspe")
    if loss is None or not np.isfinite(loss):
        problems.append("outcome MSPE is not finite")
    return ("wrong answer", "; ".join(problems)) if problems else ("ok", "")


def top_weights(weights: Mapping[str, float], k: int = 5, tol: float = 1e-3) -> str:
    """The ``k`` largest weights above ``tol`` as ``"Utah .335, Nevada .236"``.

    Examples
    --------
    >>> top_weights({"A": 0.25, "B": 0.7, "C": 0.05, "D": 1e-9}, k=2)
    'B .700, A .250 (+1)'
    """
    w = pd.Series(weights, dtype=float)
    w = w[w > tol].sort_values(ascending=False)
    shown = ", ".join(f"{u} {x:.3f}".replace(" 0.", " .") for u, x in w.head(k).items())
    return shown + (f" (+{len(w) - k})" if len(w) > k else "")


def ratio(numerator: float | None, denominator: float | None) -> float:
    """``numerator / denominator``, NaN when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or not denominator:
        return float("nan")
    return float(numerator) / float(denominator)


def no_worse(ours: float, theirs: float | None) -> bool:
    """Whether our loss is equal to or lower than the peer's (up to :data:`LOSS_RTOL`)."""
    return theirs is not None and ours <= theirs * (1 + LOSS_RTOL) + 1e-15


def median_seconds(fits: Sequence[Mapping[str, Any]]) -> float:
    """Median wall time of the fits that finished without error."""
    times = [f["seconds"] for f in fits if not f.get("error")]
    return float(np.median(times)) if times else float("nan")


def fit_table(ours: Mapping[str, Any], peers: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One-fit comparison: a row per dataset and package.

    Parameters
    ----------
    ours : mapping
        ``{dataset: {"seconds": [...], "loss": float, "weights": {...}, "version": str}}``.
    peers : mapping
        ``{dataset: {peer: peer record}}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, package, status, runs, seconds`` (median),
        ``time_ratio`` (package time / synthcontrol time), ``loss``
        (fit-window outcome MSPE), ``loss_ratio`` (package loss / synthcontrol
        loss), ``weights`` (largest donor weights), ``detail``, ``cap_s``
        (the peer call's time limit) and ``nested`` (whether the package chose
        predictor weights; False for a failed fit).
    """
    rows = []
    for dataset, mine in ours.items():
        base_t, base_loss = float(np.median(mine["seconds"])), mine["loss"]
        rows.append(_row(dataset, "synthcontrol", "ok", len(mine["seconds"]), base_t, base_loss,
                         mine["weights"], "", base_t, base_loss))
        rows[-1].update(cap_s=float("nan"), nested=True)
        for peer, rec in peers.get(dataset, {}).items():
            fit = rec["runs"][0] if rec.get("runs") else {}
            rows.append(_row(dataset, peer, rec["status"], len(rec.get("runs", [])),
                             median_seconds(rec.get("runs", [])), fit.get("outcome_mspe"),
                             fit.get("weights") or {}, rec.get("detail", ""), base_t, base_loss))
            # A peer that reports no predictor weights solved one fit with V fixed.
            rows[-1].update(cap_s=rec.get("cap_s", float("nan")),
                            nested=fit.get("predictor_weights") is not None)
    return pd.DataFrame(rows)


def _row(dataset: str, package: str, status: str, runs: int, seconds: float, loss: float | None,
         weights: Mapping[str, float], detail: str, base_t: float, base_loss: float) -> dict[str, Any]:
    return {
        "dataset": dataset, "package": package, "status": status, "runs": runs,
        "seconds": seconds, "time_ratio": ratio(seconds, base_t),
        "loss": float("nan") if loss is None else float(loss), "loss_ratio": ratio(loss, base_loss),
        "weights": top_weights(weights) if weights else "", "detail": detail,
    }


def placebo_table(ours: Mapping[str, Mapping[str, Any]], peer: Mapping[str, Mapping[str, Any]],
                  missing: str = "did not finish") -> pd.DataFrame:
    """Per-unit placebo comparison on the sampled units.

    Parameters
    ----------
    ours : mapping
        ``{unit: {"seconds": [...], "loss": float}}`` for synthcontrol.
    peer : mapping
        ``{unit: <fit>}`` for the peer.
    missing : str
        Peer status of a unit absent from ``peer`` (it did not finish, or the
        peer did not run).

    Returns
    -------
    pandas.DataFrame
        Indexed by unit: ``ours_s`` (median), ``peer_s``, ``time_ratio``
        (peer / ours), ``ours_loss``, ``peer_loss``, ``no_worse`` ("yes", "no", or "-"
        without a peer fit), ``peer_status`` and, where ``ours`` records it,
        ``ours_certified`` (whether synthcontrol certified its fit as the global
        optimum, which ends its search early).
    """
    rows = {}
    for unit, mine in ours.items():
        fit = peer.get(unit)
        ours_s = float(np.median(mine["seconds"]))
        peer_ok = fit is not None and not fit.get("error")
        peer_s = fit["seconds"] if peer_ok else float("nan")
        peer_loss = fit.get("outcome_mspe") if peer_ok else None
        rows[unit] = {
            "ours_s": ours_s, "peer_s": peer_s, "time_ratio": ratio(peer_s, ours_s),
            "ours_loss": mine["loss"], "peer_loss": float("nan") if peer_loss is None else peer_loss,
            "no_worse": ("yes" if no_worse(mine["loss"], peer_loss) else "no") if peer_ok else "-",
            "peer_status": missing if fit is None else ("ok" if peer_ok else f"failed: {fit['error']}"),
        }
        if "certified" in mine:
            rows[unit]["ours_certified"] = "yes" if mine["certified"] else "no"
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("unit")


def extrapolated_full_placebo(table: pd.DataFrame, n_fits: int) -> float:
    """Peer time of ``n_fits`` placebo fits, extrapolated from the sampled units' mean.

    Examples
    --------
    >>> t = pd.DataFrame({"peer_s": [2.0, 4.0, float("nan")]})
    >>> extrapolated_full_placebo(t, 39)
    117.0
    """
    finished = table["peer_s"].dropna()
    return float(finished.mean() * n_fits) if len(finished) else float("nan")


def criteria(fits: pd.DataFrame, placebo: pd.DataFrame | None, full: Sequence[Mapping[str, Any]],
             n_fits: int, total_seconds: float, placebo_dataset: str = "california") -> pd.DataFrame:
    """The issue's acceptance criteria, each with the measured value and whether it is met.

    ``full`` holds our full placebo runs (``{"n_jobs", "seconds": [...]}``); the
    full-placebo ratio uses the fastest setting. A criterion whose peer figure
    is missing is reported as not measured, never as met.
    """
    cal = fits[(fits["dataset"] == "california") & (fits["package"] == "pysyncon")]
    speed = cal["time_ratio"].iloc[0] if len(cal) else float("nan")
    loss = cal["loss_ratio"].iloc[0] if len(cal) else float("nan")
    rows = [
        ("California nested fit: pysyncon time / synthcontrol time", speed, ">= 20", speed >= 20),
        ("California nested fit: synthcontrol loss / pysyncon loss", ratio(1.0, loss), "<= 1",
         no_worse(1.0, loss)),
    ]
    if placebo is not None and len(placebo):
        where = placebo_dataset.capitalize()
        done = placebo.dropna(subset=["peer_s"])
        per_fit = ratio(done["peer_s"].sum(), done["ours_s"].sum()) if len(done) else float("nan")
        ours_full = min(float(np.median(r["seconds"])) for r in full) if full else float("nan")
        extrap = ratio(extrapolated_full_placebo(placebo, n_fits), ours_full)
        ours_fit = fits[(fits["dataset"] == placebo_dataset) & (fits["package"] == "synthcontrol")]["seconds"]
        peer_fit = fits[(fits["dataset"] == placebo_dataset) & (fits["package"] == "pysyncon")]["seconds"]
        all_fits = ratio(float(peer_fit.iloc[0]) + extrapolated_full_placebo(placebo, n_fits)
                         if len(peer_fit) else float("nan"),
                         float(ours_fit.iloc[0]) + ours_full if len(ours_fit) else float("nan"))
        rows += [
            (f"{where}, all {n_fits + 1} nested fits (issue 13): pysyncon's fit + {n_fits} x its mean sampled "
             "placebo fit (EXTRAPOLATED) / synthcontrol's fit + measured full placebo", all_fits, ">= 2000",
             all_fits >= 2000),
            (f"{where} placebo fits, same units: pysyncon time / synthcontrol time", per_fit, ">= 100",
             per_fit >= 100),
            (f"{where} placebo fits, same units: units where synthcontrol's loss is equal or lower",
             f"{int(placebo['no_worse'].eq('yes').sum())} of {len(placebo)}" if len(done) else float("nan"),
             "all", bool(placebo["no_worse"].eq("yes").all())),
            (f"{where} full placebo: {n_fits} pysyncon fits (EXTRAPOLATED) / synthcontrol's measured "
             "full run (fastest n_jobs)",
             extrap, ">= 300", extrap >= 300),
        ]
    rows.append(("Whole run of run_all.py, minutes", total_seconds / 60, "< 22", total_seconds < 1320))
    table = pd.DataFrame(rows, columns=["criterion", "measured", "target", "met"])
    table["met"] = [("yes" if m else "no") if _measured(v) else "not measured"
                    for m, v in zip(table["met"], table["measured"])]
    return table


def _measured(value: Any) -> bool:
    return not (isinstance(value, float) and np.isnan(value))


def markdown(title: str, tables: Mapping[str, pd.DataFrame], notes: Sequence[str] = ()) -> str:
    """Markdown of titled tables (rendered by :class:`synthcontrol.Summary`)."""
    return sc.Summary(title, {k: _printable(v) for k, v in tables.items()}, tuple(notes)).as_markdown()


def _printable(table: pd.DataFrame) -> pd.DataFrame:
    """Floats as short strings (NaN as a dash) and ``|`` escaped, for Markdown cells."""
    def cell(v: Any) -> Any:
        if isinstance(v, (float, np.floating)):
            return "-" if np.isnan(v) else (f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}")
        return str(v).replace("|", "\\|").replace("\n", " ") if isinstance(v, str) else v
    return table.map(cell) if hasattr(table, "map") else table.applymap(cell)


def plot_fit_times(fits: pd.DataFrame, ax=None):
    """Bar chart of one-fit wall times per dataset and package (log scale).

    A peer that did not finish is drawn at its cap, hatched, so a missing bar
    never reads as a fast one.
    """
    capped = fits["status"].eq("did not finish")
    values = fits["seconds"].where(~capped, fits["cap_s"])
    ax = _grouped_bars(fits.assign(value=values, hatched=capped), ax)
    ax.set_ylabel("wall time of one fit (s, log scale)")
    return ax


def plot_loss_ratios(fits: pd.DataFrame, ax=None):
    """Bar chart of each package's fit-window loss divided by synthcontrol's (log scale)."""
    ax = _grouped_bars(fits.assign(value=fits["loss_ratio"], hatched=False), ax)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("loss / synthcontrol's loss (log scale)")
    return ax


def _grouped_bars(fits: pd.DataFrame, ax=None):
    """Labelled bars of ``fits["value"]`` grouped by dataset, one colour per package."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    datasets = list(dict.fromkeys(fits["dataset"]))
    packages = ["synthcontrol", *sorted(set(fits["package"]) - {"synthcontrol"})]
    width = 0.8 / len(packages)
    for i, pkg in enumerate(packages):
        rows = fits[fits["package"] == pkg].set_index("dataset").reindex(datasets)
        x = np.arange(len(datasets)) + i * width
        _bars(ax, x, rows["value"], width, pkg, f"C{i}", rows["hatched"].fillna(False).astype(bool))
    ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, datasets)
    _log_axis(ax, fits["value"])
    ax.legend(fontsize="small")
    return ax


def _bars(ax, x: np.ndarray, values: pd.Series, width: float, label: str, color: str,
          hatched: pd.Series | None = None) -> None:
    """Bars with their value written on top; missing values are left out, capped ones hatched."""
    hatched = pd.Series(False, index=values.index) if hatched is None else hatched
    keep = (values > 0).to_numpy()
    bars = ax.bar(x[keep], values[keep], width, label=label, color=color)
    for bar, v, h in zip(bars, values[keep], hatched[keep]):
        bar.set_hatch("//" if h else None)
    ax.bar_label(bars, [f">{v:.0f} (cap)" if h else f"{v:.3g}" for v, h in zip(values[keep], hatched[keep])],
                 fontsize="x-small")


def _log_axis(ax, values: pd.Series) -> None:
    """Log scale reaching well below the smallest bar, so that every bar shows."""
    ax.set_yscale("log")
    positive = values[values > 0]
    if len(positive):
        ax.set_ylim(positive.min() / 5, positive.max() * 5)


def plot_placebo(placebo: pd.DataFrame, ax=None):
    """Per-unit placebo fit times, synthcontrol and the peer side by side (log scale)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(placebo))
    _bars(ax, x - 0.2, placebo["ours_s"], 0.4, "synthcontrol", "C0")
    _bars(ax, x + 0.2, placebo["peer_s"], 0.4, "pysyncon", "C1")
    ax.set_xticks(x, placebo.index)
    _log_axis(ax, pd.concat([placebo["ours_s"], placebo["peer_s"]]))
    ax.set_ylabel("wall time of one placebo fit (s, log)")
    ax.legend(fontsize="small")
    return ax
