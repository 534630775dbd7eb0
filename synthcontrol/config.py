"""Study configurations (kept for imports of ``synthcontrol.config``): the parser and
the model now live in :mod:`synthcontrol.study` (``parse``, ``schema``, ``model``)."""

from .study.model import Analysis, InferenceOptions, Outcome, SpecCurveOptions, StudyConfig, Task
from .study.parse import DATASETS, load_config

__all__ = ["Outcome", "Analysis", "Task", "InferenceOptions", "SpecCurveOptions", "StudyConfig", "load_config",
           "DATASETS"]
