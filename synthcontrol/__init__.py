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

from . import datasets, variants  # variants: registers the non-classic estimators
from .errors import *  # noqa: F401,F403  (the exception hierarchy is public)
from .errors import SynthControlError
from .data_audit import Relation, accounting_identity, audit, implied_deflator, ratio
from .estimators import cross_validate_predictor_weights, fit
from . import inference
from .inference import *  # noqa: F401,F403  (every inference routine and result is public)
from .panel import Panel
from .options import FitOptions, SearchOptions
from .results import Summary, SynthResult, SynthResults
from .spec import Predictor, Spec, at, mean
from .speccurve import SpecCurveResult, specification_curve, standard_specs
from .study import StudyConfig, StudyResult, load_config, run_study
from .variants import SeveralTreatedResult, fit_several
from .report import write_report

__version__ = "0.1.0"

__all__ = [
    "Spec",
    "Predictor",
    "at",
    "mean",
    "fit",
    "fit_several",
    "SeveralTreatedResult",
    "cross_validate_predictor_weights",
    "Panel",
    "FitOptions",
    "SearchOptions",
    "Summary",
    "SynthResult",
    "SynthResults",
    "SynthControlError",
    "audit",
    "Relation",
    "implied_deflator",
    "ratio",
    "accounting_identity",
    "datasets",
    "variants",
    "specification_curve",
    "standard_specs",
    "SpecCurveResult",
    "load_config",
    "run_study",
    "write_report",
    "StudyConfig",
    "StudyResult",
    *inference.__all__,
]
