"""Exceptions and warnings raised by synthcontrol.

Every error the package raises on bad input derives from :class:`SynthControlError`,
itself a :class:`ValueError`, so existing ``except ValueError`` handlers keep working.
Each subclass also inherits the built-in exception it refines (``KeyError`` for a
missing column, ``TypeError`` for a non-numeric one, ...). Messages name the unit,
period, column or key at fault and say how to fix it.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = [
    "SynthControlError",
    "PanelError",
    "MissingColumnError",
    "DuplicateRowError",
    "NonNumericError",
    "NonFiniteError",
    "MissingDataError",
    "PeriodColumnError",
    "NotFoundError",
    "SpecError",
    "ArgumentError",
    "TypeMismatchError",
    "DonorPoolError",
    "PredictorError",
    "ConfigError",
    "CheckpointError",
    "DataBuildError",
    "SolverError",
    "MissingDependencyError",
    "SynthControlWarning",
    "ConvergenceWarning",
    "DroppedDonorsWarning",
    "AuditWarning",
    "PostTreatmentPredictorWarning",
    "InferenceWarning",
    "MissingOutcomeWarning",
    "ShortPrePeriodWarning",
]


class SynthControlError(ValueError):
    """Base of every error synthcontrol raises on bad input."""


class PanelError(SynthControlError):
    """The long data frame cannot be turned into a panel."""


class MissingColumnError(PanelError, KeyError):
    """A column named in the specification is not in the data."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class NotFoundError(SynthControlError, KeyError):
    """A unit, period or variable looked up that the panel or result does not hold."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class DuplicateRowError(PanelError):
    """A unit appears more than once in one period."""


class NonNumericError(PanelError, TypeError):
    """A variable column holds values that are not numbers."""


class NonFiniteError(PanelError):
    """A variable column holds infinite values, or values whose squares over- or
    underflow double precision."""


class MissingDataError(PanelError):
    """A value the specification needs is missing for some unit and period."""


class PeriodColumnError(PanelError, TypeError):
    """The period column cannot be read as ordered periods (numbers, dates or pandas
    periods), e.g. text that is not a date or a column mixing kinds of values."""


class SpecError(SynthControlError):
    """The specification does not fit the data (dates, windows, units)."""


class ArgumentError(SpecError):
    """A function argument has a value or type the function does not accept."""


class TypeMismatchError(SpecError, TypeError):
    """A period or unit was given with another type than the data's column holds, and
    cannot be converted to it exactly."""


class DonorPoolError(SpecError):
    """The donor pool is unusable: too small, or containing the treated unit."""


class PredictorError(SpecError):
    """A predictor cannot be used (for example it does not vary across units)."""


class ConfigError(SynthControlError):
    """A study configuration file has a missing or invalid key."""


class CheckpointError(SynthControlError):
    """A checkpoint directory is corrupted or belongs to another job."""


class DataBuildError(SynthControlError):
    """Raw data contradict each other in a way the dataset build cannot explain."""


class SolverError(SynthControlError, RuntimeError):
    """Every solver path failed on a weighting problem."""


class MissingDependencyError(SynthControlError, ImportError):
    """An optional feature needs a package that is not installed (the message says which)."""


class SynthControlWarning(UserWarning):
    """Base of the warnings synthcontrol emits."""


class ConvergenceWarning(SynthControlWarning):
    """An optimiser stopped without meeting its tolerance; the result may be suboptimal."""


class DroppedDonorsWarning(SynthControlWarning):
    """Donors were dropped because they lack data the specification needs."""


class AuditWarning(SynthControlWarning):
    """A fit or placebo test relies on data cells the audit flagged (see ``sc.audit``),
    audit flags match nothing in the data, or the audit could not judge a column (too
    few periods or units)."""


class PostTreatmentPredictorWarning(SynthControlWarning):
    """A predictor is measured at or after the treatment start, so the treated
    unit's value may already carry the effect (accepted, as R Synth does, so that
    published specifications such as Abadie, Diamond and Hainmueller 2015 can be
    reproduced as written)."""


class MissingOutcomeWarning(SynthControlWarning):
    """The treated unit has no outcome in some periods after the treatment start: they
    are left out of the gaps and effects (the warning names them)."""


class ShortPrePeriodWarning(SynthControlWarning):
    """The fit window has a single period: a fit to one number is exact or arbitrary,
    and pre-period RMSPE ratios (placebo p-values) mean little."""


class InferenceWarning(SynthControlWarning):
    """An inference result is less informative than asked for (for example no
    confidence interval can be finite at the requested level)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the user's line: the innermost caller outside
    synthcontrol, however deep in the package the warning arises (a fit inside a
    placebo run inside a study). Run as ``python -m synthcontrol``, where the first
    frame outside the package is the interpreter's own ``runpy``, the outermost
    frame of the package."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    if frame.f_code.co_filename.startswith("<frozen "):
        level -= 1
    warnings.warn(message, category, stacklevel=level)
