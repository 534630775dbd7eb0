"""How a fit is made: the search settings of the predictor weights and the estimator.

:class:`SearchOptions` holds the settings of the nested search of predictor weights
(and of its optional certificate); :class:`FitOptions` adds the estimator and its
own settings. Both are frozen and checked when they are built, in this one place,
with messages that name the setting, what it allows and the value received, so
every entry point (:func:`synthcontrol.fit`, the specification curve, a study's
``[fit]`` table, every refit of inference) takes the same settings with the same
checks. A result keeps its :class:`FitOptions`, so each placebo and other refit
chooses its weights exactly as the original fit did.

Examples
--------
>>> SearchOptions(seed=3).n_random_starts
2000
>>> SearchOptions(n_local=0)
Traceback (most recent call last):
...
synthcontrol.errors.ArgumentError: n_local=0 is not valid: expected an integer >= 1
>>> FitOptions(estimator="penalized", estimator_options={"lambda_": 0.1}).estimator_options
(('lambda_', 0.1),)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ._validation import check_bool, check_int, check_mapping, check_number, check_seed
from .certify import DEFAULT_TIME_LIMIT, require_solver
from .errors import SpecError
from .registry import RegisteredEstimator, get_estimator

__all__ = ["SearchOptions", "FitOptions", "MAX_RANDOM_STARTS"]

_CERTIFICATE = ("certify", "certify_time_limit")  # settings of the certificate, not the search


#: Most random starts a search screens: each is an inner solve (microseconds) and is held
#: as K numbers, so ten million take about half a minute and half a GiB at K = 7; a number
#: beyond it is a typo, which would otherwise fail as numpy's MemoryError.
MAX_RANDOM_STARTS = 10_000_000


@dataclass(frozen=True)
class SearchOptions:
    """Settings of the nested search of predictor weights, checked when built.

    Attributes
    ----------
    seed : int, default 0
        Seed of the random starts (a non-negative integer); the same seed gives the
        same result.
    n_random_starts : int, default 2000
        Random candidate predictor weights screened besides the deterministic ones
        (0 to :data:`MAX_RANDOM_STARTS`).
    n_local : int, default 6
        Best candidates that start a local search (>= 1).
    n_polish : int, default 3
        Best local optima refined further (>= 0).
    max_iterations : int, default 200
        Iteration cap of each local search (>= 1).
    min_predictor_weight : float, default 1e-8
        The floor ``delta`` of the admissible predictor weights,
        ``min(v) >= delta * max(v)``, in ``[0, 1)``.
    global_search : bool, default False
        Also run differential evolution (slow; for hard problems).
    certify : bool, default False
        After the search, prove the nested choice of ``v`` globally optimal over the
        admissible class, or improve it (:mod:`synthcontrol.certify`; needs the
        optional package ``pyscipopt`` and ``min_predictor_weight > 0``).
    certify_time_limit : float or None, default 60
        Solver CPU seconds allowed to each certification (None: no limit).

    See :func:`synthcontrol.weights.choose_predictor_weights` for what the search
    settings do.
    """

    seed: int = 0
    n_random_starts: int = 2000
    n_local: int = 6
    n_polish: int = 3
    max_iterations: int = 200
    min_predictor_weight: float = 1e-8
    global_search: bool = False
    certify: bool = False
    certify_time_limit: float | None = DEFAULT_TIME_LIMIT

    def __post_init__(self) -> None:
        checked = {
            "seed": check_seed(self.seed),
            "n_random_starts": check_int(self.n_random_starts, "n_random_starts", minimum=0,
                                         maximum=MAX_RANDOM_STARTS),
            "n_local": check_int(self.n_local, "n_local", minimum=1),
            "n_polish": check_int(self.n_polish, "n_polish", minimum=0),
            "max_iterations": check_int(self.max_iterations, "max_iterations", minimum=1),
            "min_predictor_weight": check_number(self.min_predictor_weight, "min_predictor_weight",
                                                 low=0.0, high=1.0, high_open=True),
            "global_search": check_bool(self.global_search, "global_search"),
            "certify": check_bool(self.certify, "certify"),
            "certify_time_limit": None if self.certify_time_limit is None else check_number(
                self.certify_time_limit, "certify_time_limit", low=0.0, low_open=True),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # canonical types: plain int, float, bool
        if self.certify and self.min_predictor_weight <= 0:
            raise SpecError(
                "certify=True needs min_predictor_weight > 0: with a zero floor the nested optimum is "
                "generally not attained (v = 0 makes every donor weighting optimal); use e.g. 1e-8"
            )
        if self.certify:
            require_solver()  # now, before any search, so that a missing package fails fast

    def search_options(self) -> dict[str, Any]:
        """The settings of the search itself (not of its certificate), as keyword
        arguments of :func:`synthcontrol.fit` and
        :func:`~synthcontrol.weights.choose_predictor_weights`."""
        return {f.name: getattr(self, f.name) for f in fields(SearchOptions) if f.name not in _CERTIFICATE}


@dataclass(frozen=True)
class FitOptions(SearchOptions):
    """The search settings (see :class:`SearchOptions`) and the estimator, checked
    when built; reused unchanged by every placebo and other refit.

    Attributes
    ----------
    estimator : str, default "classic"
        A registered estimator (:data:`synthcontrol.registry.ESTIMATORS`).
    estimator_options : mapping or tuple of (name, value) pairs
        The estimator's own settings, checked against what it declares and frozen
        as sorted ``(name, value)`` pairs, so that options stay hashable.

    ``certify=True`` is refused for an estimator whose choice of predictor weights
    cannot be certified (every one but ``"classic"``).
    """

    estimator: str = "classic"
    estimator_options: Any = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        entry = get_estimator(self.estimator)
        given = self.estimator_options
        if isinstance(given, tuple) and all(isinstance(o, tuple) and len(o) == 2 for o in given):
            given = dict(given)  # already frozen, as FitOptions holds them
        object.__setattr__(self, "estimator_options", entry.checked_settings(check_mapping(given, "estimator_options")))
        if self.certify and not entry.certifiable:
            raise SpecError(
                f"certify=True certifies the classic estimator's nested choice of predictor weights; "
                f"estimator={self.estimator!r} has none: drop certify or use estimator='classic'"
            )

    @property
    def entry(self) -> RegisteredEstimator:
        """The estimator's registry entry (its declarations)."""
        return get_estimator(self.estimator)

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting of the estimator: the given ones, else the defaults."""
        return self.entry.resolved(self.estimator_options)
