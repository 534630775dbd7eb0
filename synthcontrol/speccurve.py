"""Specification curves: one estimate per reasonable specification and estimator.

A synthetic control estimate depends on choices the method leaves open: which
outcome lags and covariates to match, over which fit window, with which estimator.
:func:`specification_curve` fits every combination, runs each one's in-space placebo
test (:func:`synthcontrol.inference.placebo_test`), and returns the estimates sorted,
with their permutation p-values and pre-period fit (Ferman, Pinto and Possebom 2020
argue for reporting them all rather than a chosen one). :func:`standard_specs` builds
the usual set from one base specification.

The fits are spread over workers by :mod:`synthcontrol.inference.runner` (joblib),
and each placebo test parallelises its own refits the same way; the result does not
depend on ``n_jobs``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._validation import check_bool, check_int, check_mapping, check_number
from .errors import ArgumentError, PanelError, SpecError
from .estimators import check_fit_options, fit_design, prepare_designs
from .inference import placebo_test
from .inference._common import Execution
from .inference.runner import run_tasks
from .periods import coerce_period, parse_period_column, sorted_periods
from .options import FitOptions
from .plots import new_axes
from .registry import ESTIMATORS
from .results import Summary, SynthResult, certificate_counts, certificate_counts_note
from .spec import Design, Predictor, Spec, at, check_spec, mean

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["standard_specs", "specification_curve", "SpecCurveResult"]


def _data_periods(data: pd.DataFrame, spec: Spec) -> tuple:
    """The sorted periods of ``data`` (parsed as :class:`~synthcontrol.panel.Panel` does)."""
    if not isinstance(data, pd.DataFrame):
        raise PanelError(f"data must be a pandas DataFrame in long format, got {type(data).__name__}")
    column = data[spec.time] if spec.time in data.columns else None
    if column is None and spec.time in data.index.names:
        column = data.index.get_level_values(spec.time).to_series()
    if column is None:
        raise SpecError(f"column '{spec.time}' (spec.time) is not in the data")
    if column.empty or column.isna().any():
        raise PanelError(f"column '{spec.time}' is empty or has missing periods; every row needs a period")
    return sorted_periods(parse_period_column(column, spec.time), spec.time)


def _pre_periods(all_periods: tuple, spec: Spec, window: tuple | None) -> list:
    def convert(value: Hashable, argument: str) -> Hashable:
        return coerce_period(value, all_periods, argument=argument, column=spec.time)

    start = convert(spec.treatment_start, "treatment_start")
    periods = [p for p in all_periods if p < start]
    if window is not None:
        first, last = convert(window[0], "fit_windows start"), convert(window[1], "fit_windows end")
        if last >= start:  # fit() refuses it; the specs built from the clipped window would mislabel it
            raise SpecError(
                f"fit_windows entry {window!r} reaches into the post-period "
                f"(treatment_start={spec.treatment_start!r}); end it before {spec.treatment_start!r}"
            )
        periods = [p for p in periods if first <= p <= last]
    if not periods:
        raise SpecError(f"no period before treatment_start={spec.treatment_start!r} in fit window {window!r}")
    return periods


def _outcome_sets(outcome: str, periods: list, n_lags: int) -> dict[str, tuple[Predictor, ...]]:
    """Outcome predictors: every lag (the spec default), the pre-period mean, a few lags."""
    positions = np.unique(np.linspace(0, len(periods) - 1, min(n_lags, len(periods))).round().astype(int))
    return {
        "all lags": (),
        "mean": (mean(outcome, periods[0], periods[-1]),),
        f"{positions.size} lags": tuple(at(outcome, periods[i]) for i in positions),
    }


def standard_specs(
    data: pd.DataFrame,
    spec: Spec,
    *,
    covariates: Sequence[Predictor] | None = None,
    n_lags: int = 3,
    fit_windows: Sequence[tuple[Hashable, Hashable] | None] = (None,),
) -> dict[str, Spec]:
    """The usual specifications around ``spec``, by label.

    For every fit window: the outcome in every fit-window period ("all lags"), its
    mean over the window ("mean"), ``n_lags`` evenly spaced lags ending at the last
    one; each alone and with the covariates ("+ covariates").

    Parameters
    ----------
    data : DataFrame
        The long panel (only its periods are read).
    spec : Spec
        The base specification (treated unit, donors, dates).
    covariates : sequence of Predictor, optional
        Default: the predictors of ``spec`` that are not the outcome.
    n_lags : int, default 3
        At least 1.
    fit_windows : sequence of (start, end) or None
        ``None`` stands for the base spec's window.

    Raises
    ------
    ArgumentError
        ``n_lags`` or ``fit_windows`` malformed, naming the value.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                predictors=[sc.mean("retprice", 1980, 1988)])
    >>> list(standard_specs(sc.datasets.load_smoking(), spec))
    ['all lags', 'all lags + covariates', 'mean', 'mean + covariates', '3 lags', '3 lags + covariates']
    """
    check_spec(spec)
    n_lags = check_int(n_lags, "n_lags", minimum=1)
    all_periods = _data_periods(data, spec)
    if covariates is None:
        covariates = tuple(p for p in spec.predictors if p.variable != spec.outcome)
    elif (isinstance(covariates, (Predictor, str)) or not isinstance(covariates, Sequence)
          or not all(isinstance(c, Predictor) for c in covariates)):
        raise ArgumentError(f"covariates must be a list of sc.at(...)/sc.mean(...) predictors, got {covariates!r:.60}")
    specs, suffixes = {}, set()
    for window in _fit_windows(fit_windows):
        window = spec.fit_window if window is None else window
        suffix = "" if window == spec.fit_window else f", fit {window[0]}-{window[1]}"
        if suffix in suffixes:  # its specs would replace the earlier window's under the same labels
            raise ArgumentError(
                f"fit_windows lists the window {window!r} more than once (None stands for the base spec's "
                f"window {spec.fit_window!r}); give each window once"
            )
        suffixes.add(suffix)
        periods = _pre_periods(all_periods, spec, window)
        base = replace(spec, fit_window=window)
        for name, lags in _outcome_sets(spec.outcome, periods, n_lags).items():
            specs[name + suffix] = replace(base, predictors=lags)
            if covariates:
                matched = lags or tuple(at(spec.outcome, p) for p in periods)  # "all lags" spelled out
                specs[f"{name} + covariates{suffix}"] = replace(base, predictors=(*matched, *covariates))
    return specs


def _fit_windows(fit_windows: object) -> list:
    if isinstance(fit_windows, (str, tuple)) and len(fit_windows) == 2 and not any(
        isinstance(w, (tuple, list)) or w is None for w in fit_windows
    ):
        raise ArgumentError(
            f"fit_windows={fit_windows!r} looks like one window; give a list of windows, e.g. [{fit_windows!r}]"
        )
    if isinstance(fit_windows, str) or not isinstance(fit_windows, Sequence) or not fit_windows:
        raise ArgumentError(f"fit_windows must be a non-empty list of (start, end) pairs or None, got {fit_windows!r}")
    windows = []
    for window in fit_windows:
        if window is not None and (isinstance(window, str) or not isinstance(window, Sequence) or len(window) != 2):
            raise ArgumentError(f"each of fit_windows must be (start, end) or None, got {window!r}")
        windows.append(None if window is None else tuple(window))
    return windows


@dataclass(frozen=True)
class _FitJob:
    key: str
    design: Design
    options: FitOptions


def _fit(job: _FitJob) -> SynthResult:
    return fit_design(job.design, options=job.options)


@dataclass(frozen=True, eq=False)
class SpecCurveResult:
    """Estimates over specifications and estimators, with their placebo tests.

    Attributes
    ----------
    labels : tuple of str
        Specification label of each fit.
    estimators : tuple of str
        Estimator of each fit.
    results : tuple of SynthResult
        The fits, in the same order.
    placebos : tuple of PlaceboResult or None
        Their in-space placebo tests (None when not run).
    """

    labels: tuple
    estimators: tuple
    results: tuple
    placebos: tuple

    def __repr__(self) -> str:
        effects = self.table["effect"]
        return (
            f"<SpecCurveResult: {len(self.results)} fits, effects {effects.min():.4g} to "
            f"{effects.max():.4g}, median {effects.median():.4g}>"
        )

    @property
    def table(self) -> pd.DataFrame:
        """One row per fit, sorted by effect: spec label, estimator, effect, placebo
        p-value (NaN without placebos), pre- and post-period RMSPE, donors, whether
        the estimator used the spec's predictors (outcome-based ones such as "sdid"
        give the same fit for specs that differ only in predictors), rank."""
        frame = pd.DataFrame(
            {
                "spec": self.labels,
                "estimator": self.estimators,
                "effect": [r.average_effect for r in self.results],
                "p_value": [np.nan if p is None else p.p_value for p in self.placebos],
                "pre_rmspe": [r.pre_rmspe for r in self.results],
                "post_rmspe": [r.post_rmspe for r in self.results],
                "n_donors": [len(r.donors) for r in self.results],
                "predictors_used": [r.uses_predictor_weights for r in self.results],
            }
        )
        frame = frame.sort_values(["effect", "spec", "estimator"], kind="stable").reset_index(drop=True)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="rank")
        return frame

    def summary(self, alpha: float = 0.1) -> Summary:
        """The table and an overview (median, range, share with ``p <= alpha``, a
        number in (0, 1))."""
        alpha = check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
        table = self.table
        overview = pd.DataFrame(
            {
                "value": [
                    float(len(table)),
                    table["effect"].median(),
                    table["effect"].min(),
                    table["effect"].max(),
                    float((table["effect"] < 0).mean()),
                    float((table["p_value"] <= alpha).mean()) if table["p_value"].notna().any() else np.nan,
                ]
            },
            index=["n_fits", "median_effect", "min_effect", "max_effect", "share_negative", f"share_p<={alpha:g}"],
        )
        notes = (
            "p-values: rank of the treated unit's post/pre RMSPE ratio among the in-space placebos.",
            f"Estimators: {sorted(set(self.estimators))}; specifications: {len(set(self.labels))}.",
        )
        if any(status is not None for status in self._certificate_statuses()):
            notes += (certificate_counts_note(self._certificate_statuses()),)
        return Summary("Specification curve", {"Overview": overview, "Fits": table}, notes)

    @property
    def certificate_counts(self) -> pd.Series:
        """Certificate statuses over every fit of the curve: the specifications' own
        fits and all their placebo refits (see ``specification_curve(certify=True)``)."""
        return certificate_counts(self._certificate_statuses())

    def _certificate_statuses(self) -> list:
        own = [None if r.certificate is None else r.certificate.status for r in self.results]
        placebo = [s for p in self.placebos if p is not None for s in p.certificates[1:]]
        return own + placebo

    def plot(self, ax: "Axes | None" = None, alpha: float = 0.1) -> "Axes":
        """Estimates sorted (filled marker: placebo ``p <= alpha``), pre-period RMSPE
        in a panel below; returns the Axes of the estimates."""
        alpha = check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
        ax = new_axes(ax, figsize=(8.0, 5.0))
        table = self.table
        x = np.arange(1, len(table) + 1)
        significant = (table["p_value"] <= alpha).to_numpy()
        for estimator, colour in zip(sorted(set(table["estimator"])), _COLOURS):
            mine = (table["estimator"] == estimator).to_numpy()
            ax.scatter(x[mine & significant], table["effect"][mine & significant], color=colour, label=estimator)
            ax.scatter(x[mine & ~significant], table["effect"][mine & ~significant], facecolors="none", edgecolors=colour)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel("average effect")
        tested = bool(table["p_value"].notna().any())
        ax.set_title(f"filled: placebo p <= {alpha:g}" if tested else "no placebo tests run", fontsize="small")
        ax.legend(frameon=False, fontsize="small")
        ax.tick_params(labelbottom=False)
        below = ax.inset_axes([0.0, -0.45, 1.0, 0.35], sharex=ax)
        below.bar(x, table["pre_rmspe"], color="grey")
        below.set_ylabel("pre RMSPE")
        below.set_xlabel("specification (sorted by effect)")
        return ax


_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")


def specification_curve(
    data: pd.DataFrame,
    specs: Mapping[str, Spec] | Sequence[Spec],
    *,
    estimators: Sequence[str] = ("classic",),
    estimator_options: Mapping[str, Mapping[str, object]] | None = None,
    options: FitOptions | None = None,
    placebo: bool = True,
    n_jobs: int | None = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    certify: bool | None = None,
) -> SpecCurveResult:
    """Fit every specification with every estimator, with placebo tests.

    Parameters
    ----------
    data : DataFrame
        The long panel.
    specs : mapping of label to Spec, or sequence of Spec
        Each with one treated unit (see :func:`standard_specs`); a sequence is
        labelled ``spec 1``, ``spec 2``, ...
    estimators : sequence of str, default ("classic",)
        Registered estimator names.
    estimator_options : mapping, optional
        Options per estimator name, e.g. ``{"penalized": {"lambda_": 0.1}}``.
    options : FitOptions, optional
        Search settings of the predictor weights (seed, starts, ...); its
        estimator fields are replaced by each estimator's. Default ``FitOptions()``.
    placebo : bool, default True
        Run each fit's in-space placebo test.
    n_jobs : int or None, default 1
        Workers for the fits and the placebo refits (joblib, through the inference
        runner). The result does not depend on it.
    checkpoint_dir : path, optional
        Directory keeping each placebo test's finished refits (one sub-directory
        per fit, see :func:`~synthcontrol.placebo_test`): an interrupted sweep run
        again with the same directory refits only the specifications' own fits, which
        are cheap, and the placebos that were not finished.
    progress : bool or callable, optional
        As in :func:`~synthcontrol.placebo_test`, for the fits and for each
        placebo test.
    certify : bool, optional
        Certify the predictor weights of every classic fit and placebo refit (see
        ``sc.fit(..., certify=True)``); default: ``options.certify``. Other
        estimators choose no predictor weights and get no certificate.
        :attr:`SpecCurveResult.certificate_counts` and the summary count the outcomes.

    Returns
    -------
    SpecCurveResult

    Raises
    ------
    SpecError
        A spec with several treated units, an unknown estimator, or options for an
        estimator not in ``estimators``.
    ArgumentError
        ``options``, ``n_jobs``, ``placebo``, ``checkpoint_dir`` or ``progress`` malformed.

    Examples
    --------
    >>> import synthcontrol as sc
    >>> base = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
    ...                donors=["Utah", "Nevada", "Montana", "Colorado", "Connecticut"])
    >>> df = sc.datasets.load_smoking()
    >>> curve = sc.specification_curve(df, sc.standard_specs(df, base), estimators=("classic", "sdid"))
    >>> curve.table.shape[0], list(curve.table.columns[:4])
    (6, ['spec', 'estimator', 'effect', 'p_value'])
    """
    labelled = _labelled(specs)
    own_options = check_mapping(estimator_options, "estimator_options")
    options = FitOptions() if options is None else check_fit_options(options)
    certify = options.certify if certify is None else check_bool(certify, "certify")
    if certify and not options.certify:
        replace(options, certify=True)  # checks the floor and the solver now
    estimators = _check_estimators(estimators, own_options)
    execution = Execution.checked(n_jobs, checkpoint_dir, progress)
    placebo = check_bool(placebo, "placebo")
    designs = {label: _single_design(data, label, spec) for label, spec in labelled.items()}
    jobs = [
        _FitJob(
            f"{label} / {name}",
            design,
            replace(options, estimator=name, estimator_options=tuple(sorted(own_options.get(name, {}).items())),
                    certify=bool(certify) and ESTIMATORS[name].certifiable),
        )
        for label, design in designs.items()
        for name in estimators
    ]
    results, _ = run_tasks(_fit, jobs, n_jobs=execution.n_jobs, progress=execution.progress,
                           description="specification curve")
    placebos = tuple(
        placebo_test(r, n_jobs=execution.n_jobs, checkpoint_dir=_sub_directory(execution.checkpoint_dir, i),
                     progress=execution.progress) if placebo else None
        for i, r in enumerate(results)
    )
    return SpecCurveResult(
        labels=tuple(label for label in designs for _ in estimators),
        estimators=tuple(name for _ in designs for name in estimators),
        results=tuple(results),
        placebos=placebos,
    )


def _sub_directory(directory: str | os.PathLike | None, index: int) -> Path | None:
    return None if directory is None else Path(directory) / f"fit-{index:04d}"


def _labelled(specs: Mapping[str, Spec] | Sequence[Spec]) -> dict[str, Spec]:
    if isinstance(specs, Spec) or isinstance(specs, str) or not isinstance(specs, (Mapping, Sequence)):
        raise ArgumentError(
            f"specs must be a mapping of label to Spec or a list of Spec (see sc.standard_specs), "
            f"got {type(specs).__name__}"
        )
    labelled = dict(specs) if isinstance(specs, Mapping) else {f"spec {i}": s for i, s in enumerate(specs, 1)}
    if not labelled:
        raise SpecError("specs is empty; give at least one Spec (see sc.standard_specs)")
    return labelled


def _check_estimators(estimators: Sequence[str], estimator_options: Mapping[str, object]) -> tuple[str, ...]:
    if not isinstance(estimators, (str, Sequence)):
        raise ArgumentError(f"estimators must be a list of estimator names, got {estimators!r:.60}")
    estimators = (estimators,) if isinstance(estimators, str) else tuple(estimators)
    if not estimators:
        raise ArgumentError(f"estimators is empty; give at least one of {sorted(ESTIMATORS)}")
    unknown = [e for e in estimators if not isinstance(e, str) or e not in ESTIMATORS]
    if unknown:
        raise SpecError(f"estimators {unknown} not known; choose from {sorted(ESTIMATORS)}")
    stray = sorted(set(estimator_options) - set(estimators))
    if stray:
        raise SpecError(f"estimator_options given for {stray}, which are not in estimators={list(estimators)}")
    for name, own in estimator_options.items():
        check_mapping(own, f"estimator_options[{name!r}]")
    repeated = sorted({e for e in estimators if estimators.count(e) > 1})
    if repeated:
        raise SpecError(f"estimators lists {repeated} more than once; list each estimator once")
    return estimators


def _single_design(data: pd.DataFrame, label: str, spec: Spec) -> Design:
    if not isinstance(spec, Spec) or len(spec.treated_units) != 1:
        raise SpecError(f"specification {label!r} must be a Spec with one treated unit")
    return next(iter(prepare_designs(data, spec).values()))
