"""Permutation and conformal inference, and prediction intervals, for synthetic controls.

Every routine refits through :func:`synthcontrol.estimators.fit_design` and spreads
its fits over workers in one place, :mod:`synthcontrol.inference.runner`; every
routine that refits takes the same ``n_jobs``, ``checkpoint_dir`` and ``progress``.

The modules are named for what they hold, not for the functions they define, so that
a function never hides its module: ``synthcontrol.inference.conformal`` is the
function, :mod:`~synthcontrol.inference.conformal_inference` its module, and
:func:`leave_one_out` lives in :mod:`~synthcontrol.inference.robustness`.
"""

from .conformal_inference import ConformalResult, conformal
from .in_time import InTimePlaceboResult, in_time_placebo
from .robustness import LeaveOneOutResult, leave_one_out
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
