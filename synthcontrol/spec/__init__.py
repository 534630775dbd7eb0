"""Specifications: what to match on, over which periods, against which donors.

A :class:`Spec` is declared by the user (:mod:`.specification`); :func:`prepare`
checks it against a :class:`~synthcontrol.panel.Panel` and returns a :class:`Design`
(:mod:`.design`), the numeric problem (unscaled predictor matrix and outcome matrix
for the treated unit and its donors) that the estimators and every placebo reuse.

Predictors follow R Synth: a variable at one period (:func:`at`) or averaged over a
window (:func:`mean`), skipping missing periods inside the window as Synth does.
"""

from __future__ import annotations

from .design import Design, is_constant, prepare, require_treated_units
from .specification import Predictor, Spec, at, check_spec, mean, shift_spec

__all__ = ["Predictor", "at", "mean", "Spec", "Design", "prepare", "shift_spec", "check_spec", "require_treated_units", "is_constant"]
