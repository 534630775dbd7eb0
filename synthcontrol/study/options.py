"""The option tables of a configuration: ``[estimators]``, ``[fit]``, ``[inference]``,
``[report]``, ``[speccurve]`` and the options of ``[blocks]``, each checked and turned
into its model object."""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

from ..errors import ConfigError, SpecError
from ..estimators import ESTIMATORS
from ..estimators import check_fit_options  # the checks sc.fit applies
from ..inference.pooled import POOLED_STATISTICS
from ..options import FitOptions
from ..variants.several import SEVERAL_ESTIMATORS
from .model import (
    REFERENCE_ESTIMATOR,
    Block,
    BlockOptions,
    Estimator,
    InferenceOptions,
    ReportOptions,
    SpecCurveOptions,
)
from .schema import SCOPES, check_table, choice, distinct, nonempty, unknown, window

__all__ = ["estimators", "fit_options", "inference", "report", "speccurve", "block_options"]


def estimator_names(values: list, key: str) -> tuple[str, ...]:
    for name in distinct(values, key, "estimator"):
        if name not in ESTIMATORS:
            raise ConfigError(unknown(key, name, sorted(ESTIMATORS), "estimator"))
    return tuple(values)


def estimators(table: Mapping[str, Any], pools: tuple[str, ...]) -> tuple[tuple[Estimator, ...],
                                                                          Literal["headline", "all"]]:
    """The estimators, the reference one first, and the outcomes the others fit;
    ``pools`` are the main analysis' pools, which ``pools = {name = [...]}`` may narrow."""
    check_table(table, "estimators", "estimators")
    names = estimator_names(table.get("names", [REFERENCE_ESTIMATOR]), "estimators.names")
    if REFERENCE_ESTIMATOR not in names:
        raise ConfigError(f"key 'estimators.names' must include {REFERENCE_ESTIMATOR!r} (the reference estimator)")
    options = _per_estimator(table, "options", names)
    for name, values in options.items():
        if not isinstance(values, dict):
            raise ConfigError(f"key 'estimators.options.{name}' must be a table such as {{ se = false }}")
    own_pools = _per_estimator(table, "pools", names)
    for name, values in own_pools.items():
        key = f"estimators.pools.{name}"
        if name == REFERENCE_ESTIMATOR:
            raise ConfigError(f"key {key!r}: the reference estimator fits every pool; remove the key")
        if not isinstance(values, list):
            raise ConfigError(f"key {key!r} must be a list of pools, got {values!r}")
        for pool in distinct(nonempty(values, key, "pool"), key, "pool"):
            if pool not in pools:
                raise ConfigError(unknown(key, pool, list(pools), "pool") + " (pools of the main analysis)")
    scope = choice(table.get("outcomes", "headline"), ("headline", "all"), "estimators.outcomes")
    ordered = (REFERENCE_ESTIMATOR, *(n for n in names if n != REFERENCE_ESTIMATOR))
    return tuple(Estimator(n, tuple(sorted(options.get(n, {}).items())),
                           pools=tuple(own_pools[n]) if n in own_pools else None)
                 for n in ordered), scope


def _per_estimator(table: Mapping[str, Any], key: str, names: tuple[str, ...]) -> dict:
    """A table keyed by estimator name, each of them listed in ``names``."""
    values = table.get(key, {})
    for name in values:
        if name not in names:
            raise ConfigError(f"key 'estimators.{key}.{name}': {name!r} is not in estimators.names "
                              f"({', '.join(names)}); add it there or remove its {key}")
    return values


def fit_options(table: Mapping[str, Any]) -> FitOptions:
    """The ``[fit]`` search settings and certificate (``certify``,
    ``certify_time_limit``), checked as :func:`synthcontrol.fit` checks them. A
    certificate applies to the fits of certifiable estimators (the classic one) and
    to their placebos; the other estimators' fits get none."""
    check_table(table, "fit", "fit")
    try:
        return check_fit_options(FitOptions(**table))
    except SpecError as error:
        raise ConfigError(f"[fit]: {error}") from error


def inference(table: Mapping[str, Any], periods: list, treatment_start: int,
              estimators: tuple[str, ...]) -> InferenceOptions:
    """The ``[inference]`` options; ``estimators`` are the study's, which
    ``placebo_estimators`` chooses among."""
    check_table(table, "inference", "inference")
    if "in_time" not in table and "in_time_start" not in table:
        table = {**table, "in_time": "none"}  # no fake start given: nothing to run
    for key in ("placebo", "leave_one_out", "in_time", "conformal", "refit_placebo_weights"):
        if key in table:
            choice(table[key], SCOPES, f"inference.{key}")
    if "in_time_start" in table and not periods[0] < table["in_time_start"] < treatment_start:
        raise ConfigError(
            f"key 'inference.in_time_start' = {table['in_time_start']} must lie after the data's first "
            f"year {periods[0]} and before the treatment start {treatment_start}"
        )
    alpha = table.get("conformal_alpha", 0.1)
    if not 0 < alpha < 1:
        raise ConfigError(f"key 'inference.conformal_alpha' must lie in (0, 1), got {alpha}")
    if table.get("n_jobs", -1) == 0:
        raise ConfigError("key 'inference.n_jobs' = 0 runs nothing; give a number of workers, or -1 for every core")
    if "pooled_statistic" in table:
        choice(table["pooled_statistic"], POOLED_STATISTICS, "inference.pooled_statistic")
    if "placebo_estimators" in table:
        key = "inference.placebo_estimators"
        names = estimator_names(nonempty(table["placebo_estimators"], key, "estimator"), key)
        for name in names:
            if name not in estimators:
                raise ConfigError(f"key {key!r}: {name!r} is not an estimator of the study "
                                  f"(estimators.names: {', '.join(estimators)}); add it there or remove it here")
        table = {**table, "placebo_estimators": names}
    options = InferenceOptions(**table)
    if options.in_time != "none" and options.in_time_start is None:
        raise ConfigError("key 'inference.in_time_start' is missing; give the fake treatment year "
                          "or set in_time = \"none\"")
    return options


def report(table: Mapping[str, Any]) -> ReportOptions:
    check_table(table, "report", "report")
    good, fair = float(table.get("fit_good", 0.25)), float(table.get("fit_fair", 0.5))
    if not 0 < good < fair < math.inf:
        raise ConfigError(f"keys 'report.fit_good' ({good}) and 'report.fit_fair' ({fair}) need 0 < good < fair, "
                          "both finite")
    ratio = float(table.get("identified_ratio", 10.0))
    if not 1 < ratio < math.inf:
        raise ConfigError(f"key 'report.identified_ratio' must be finite and exceed 1 (a multiple of the median "
                          f"placebo's pre-period MSPE), got {ratio}")
    words = table.get("unit_words", ["unit", "units"])
    if len(words) != 2 or not all(isinstance(w, str) and w.strip() for w in words):
        raise ConfigError(f"key 'report.unit_words' must be [singular, plural], such as [\"city\", \"cities\"]; "
                          f"got {words!r}")
    return ReportOptions(good, fair, ratio, (words[0], words[1]))


def speccurve(table: Mapping[str, Any] | None, pools: tuple[str, ...], known: list[str]) -> SpecCurveOptions | None:
    if table is None:
        return None
    check_table(table, "speccurve", "speccurve")
    n_lags = table.get("n_lags", 3)
    if n_lags < 1:
        raise ConfigError(f"key 'speccurve.n_lags' must be at least 1, got {n_lags}")
    windows = tuple(window(w, f"speccurve.fit_windows[{i}]") for i, w in enumerate(table.get("fit_windows", [])))
    distinct([list(w) for w in windows], "speccurve.fit_windows", "window")
    if "pools" in table:
        for name in distinct(nonempty(table["pools"], "speccurve.pools", "pool"), "speccurve.pools", "pool"):
            if name not in known:
                raise ConfigError(unknown("speccurve.pools", name, known, "pool") + "; define it under [pools]")
        pools = tuple(table["pools"])
    names = nonempty(table.get("estimators", [REFERENCE_ESTIMATOR]), "speccurve.estimators", "estimator")
    return SpecCurveOptions(
        estimators=estimator_names(names, "speccurve.estimators"),
        pools=pools,
        placebo=table.get("placebo", False),
        n_lags=n_lags,
        fit_windows=windows or (None,),
    )


def block_options(table: Mapping[str, Any], blocks: tuple[Block, ...], pools: tuple[str, ...]) -> BlockOptions:
    """The options of ``[blocks]`` (its ``treated`` table is resolved into ``blocks``)."""
    names = distinct(nonempty(table.get("estimators", ["sdid"]), "blocks.estimators", "estimator"),
                     "blocks.estimators", "estimator")
    for name in names:
        choice(name, SEVERAL_ESTIMATORS, "blocks.estimators")
    chosen = tuple(table.get("pools", list(pools)))
    for pool in distinct(nonempty(list(chosen), "blocks.pools", "pool"), "blocks.pools", "pool"):
        if pool not in pools:
            raise ConfigError(unknown("blocks.pools", pool, list(pools), "pool") + " (pools of the main analysis)")
    replications = table.get("n_replications", 200)
    if replications < 2:
        raise ConfigError(f"key 'blocks.n_replications' must be at least 2, got {replications}")
    return BlockOptions(
        blocks=blocks,
        estimators=tuple(names),
        outcomes=choice(table.get("outcomes", "headline"), ("headline", "all"), "blocks.outcomes"),
        pools=chosen,
        standard_error=choice(table.get("standard_error", "placebo"), ("placebo", "jackknife"),
                              "blocks.standard_error"),
        n_replications=replications,
    )
