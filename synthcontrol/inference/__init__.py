"""Permutation and conformal inference, and prediction intervals, for synthetic controls.

Every routine refits through :func:`synthcontrol.estimators.fit_design` and spreads
its fits over workers in one place, :mod:`synthcontrol.inference.runner`.
"""

from .conformal import ConformalResult, conformal
from .in_time import InTimePlaceboResult, in_time_placebo
from .leave_one_out import LeaveOneOutResult, leave_one_out
from .placebo import ADH_CUTOFFS, PlaceboResult, placebo_test, placebo_tests
from .pooled import PooledResult, pooled_test
from .prediction import PredictionIntervalResult, prediction_intervals
from .runner import RunLog

__all__ = [
    "placebo_test",
    "placebo_tests",
    "in_time_placebo",
    "leave_one_out",
    "pooled_test",
    "conformal",
    "prediction_intervals",
    "PredictionIntervalResult",
    "PlaceboResult",
    "InTimePlaceboResult",
    "LeaveOneOutResult",
    "PooledResult",
    "ConformalResult",
    "RunLog",
    "ADH_CUTOFFS",
]
