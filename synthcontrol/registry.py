"""The estimator registry: which estimators exist and what each one declares.

Every estimator is registered once, with :func:`register_estimator`, together with
what the rest of the package needs to know about it without fitting anything:

* its settings (``estimator_options``): name, default, check and the allowed
  values in words, so that :class:`~synthcontrol.options.FitOptions` refuses a bad
  setting when it is built, before any data are read;
* whether it uses predictor weights (a nested search of ``v``, or ``v`` given by the
  user), so that placebos know whether they may reuse them;
* whether its nested choice of ``v`` can be certified, whether its weights lie on the
  simplex with no intercept (prediction intervals need that), which of its settings
  it chooses from the data (held fixed in conformal refits, as augsynth holds its
  cross-validated ``lambda``) and whether it needs a post-period to be defined.

Fitting goes through :func:`synthcontrol.estimators.fit_design`, which looks the
estimator up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import ArgumentError

__all__ = ["Setting", "RegisteredEstimator", "ESTIMATORS", "register_estimator", "get_estimator"]


@dataclass(frozen=True)
class Setting:
    """One estimator setting: its default, a check, and the allowed values in words."""

    default: Any
    check: Callable[[Any], bool]
    allowed: str


@dataclass(frozen=True)
class RegisteredEstimator:
    """An estimator and its declarations (see the module notes).

    Attributes
    ----------
    name : str
    fit : callable
        ``fit(design, request) -> Estimate`` (see :mod:`synthcontrol.estimators`).
    settings : mapping of str to Setting
        Its ``estimator_options``.
    uses_predictor_weights : bool
        True when it chooses predictor weights (or takes them from the user).
    certifiable : bool
        True when ``certify=True`` can prove its nested choice of ``v`` optimal.
    simplex_weights : bool
        True when its donor weights lie on the simplex with no intercept.
    chosen_from_data : mapping of str to str or None
        Settings it chooses from the data when not given, each mapped to the key of
        ``extras`` that reports the choice (None: the setting is unset when the
        choice is held fixed).
    needs_post_period : bool
        True when its weights depend on the post-period (the estimator is then
        undefined on a window without one, as in a conformal null refit).
    check : callable, optional
        A check of the settings together, given them with defaults filled in; raises
        an :class:`~synthcontrol.errors.ArgumentError`.
    """

    name: str
    fit: Callable[..., Any]
    settings: Mapping[str, Setting] = field(default_factory=dict)
    uses_predictor_weights: bool = False
    certifiable: bool = False
    simplex_weights: bool = False
    chosen_from_data: Mapping[str, str | None] = field(default_factory=dict)
    needs_post_period: bool = False
    check: Callable[[Mapping[str, Any]], None] | None = None

    def checked_settings(self, given: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """``given`` checked against the declared settings, as sorted ``(name, value)``
        pairs (lists frozen to tuples, so that options stay hashable).

        Raises
        ------
        ArgumentError
            Naming the unknown or invalid setting and what it allows.
        """
        unknown = sorted(set(given) - set(self.settings))
        if unknown and not self.settings:
            raise ArgumentError(
                f"estimator_options {unknown} are not settings of estimator {self.name!r}, which takes none: "
                f"drop them, or choose an estimator that takes them "
                f"(one of {sorted(n for n, e in ESTIMATORS.items() if e.settings)})"
            )
        if unknown:
            raise ArgumentError(
                f"estimator_options {unknown} are not settings of estimator {self.name!r}; "
                f"it accepts {sorted(self.settings)}"
            )
        for name, value in given.items():
            if not self.settings[name].check(value):
                raise ArgumentError(
                    f"estimator_options[{name!r}]={value!r} is not valid for estimator {self.name!r}; "
                    f"allowed: {self.settings[name].allowed}"
                )
        if self.check is not None:
            self.check(self.resolved(given))
        return tuple(sorted((name, _frozen_value(value)) for name, value in given.items()))

    def resolved(self, given: Mapping[str, Any] | tuple) -> dict[str, Any]:
        """Every setting: the given value, else the default."""
        given = dict(given)
        return {name: given.get(name, setting.default) for name, setting in self.settings.items()}


def _frozen_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


#: Registered estimators by name (filled by :func:`register_estimator`).
ESTIMATORS: dict[str, RegisteredEstimator] = {}


def register_estimator(
    name: str,
    *,
    settings: Mapping[str, Setting] | None = None,
    uses_predictor_weights: bool = False,
    certifiable: bool = False,
    simplex_weights: bool = False,
    chosen_from_data: Mapping[str, str | None] | None = None,
    needs_post_period: bool = False,
    check: Callable[[Mapping[str, Any]], None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated ``fit(design, request)`` under ``name`` with its
    declarations (see :class:`RegisteredEstimator`), so that :func:`sc.fit
    <synthcontrol.fit>`, the placebos and every other refit reach it, with no
    special cases."""

    def decorate(fit: Callable[..., Any]) -> Callable[..., Any]:
        ESTIMATORS[name] = RegisteredEstimator(
            name=name, fit=fit, settings=dict(settings or {}), uses_predictor_weights=uses_predictor_weights,
            certifiable=certifiable, simplex_weights=simplex_weights,
            chosen_from_data=dict(chosen_from_data or {}), needs_post_period=needs_post_period, check=check,
        )
        return fit

    return decorate


def get_estimator(name: object) -> RegisteredEstimator:
    """The registered estimator called ``name``, or an
    :class:`~synthcontrol.errors.ArgumentError` listing the known ones."""
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise ArgumentError(f"estimator={name!r} is not known; choose one of {sorted(ESTIMATORS)}")
    return ESTIMATORS[name]
