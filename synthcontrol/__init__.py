"""synthcontrol: synthetic control evaluation of place-based policies.

Exact donor weights, a nested choice of predictor weights that reports the loss it
reaches and the bound it cannot beat, and fast, deterministic permutation inference.

>>> import synthcontrol as sc
>>> spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
...                predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1988)])
>>> res = sc.fit(sc.datasets.load_smoking(), spec)
>>> res.weights.idxmax() in res.donors
True
"""

from . import datasets
from .errors import *  # noqa: F401,F403  (the exception hierarchy is public)
from .errors import SynthControlError
from .estimators import cross_validate_predictor_weights, fit
from .panel import Panel
from .results import FitOptions, Summary, SynthResult, SynthResults
from .spec import Predictor, Spec, at, mean

__version__ = "0.1.0"

__all__ = [
    "Spec",
    "Predictor",
    "at",
    "mean",
    "fit",
    "cross_validate_predictor_weights",
    "Panel",
    "FitOptions",
    "Summary",
    "SynthResult",
    "SynthResults",
    "SynthControlError",
    "datasets",
]
