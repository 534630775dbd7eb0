"""Studies: a typed model of what to fit and test, built from a TOML configuration,
run, and read by :mod:`synthcontrol.report`.

Layers, each importing only the ones above it in this list:

* :mod:`~synthcontrol.study.model` -- the study model: data, groups, pools,
  outcomes, analyses, and tasks with their inference plans (no logic);
* :mod:`~synthcontrol.study.schema` -- the configuration's tables, keys and types;
* :mod:`~synthcontrol.study.data`, :mod:`~synthcontrol.study.flags` -- the data and
  its audit flags (the donors they drop);
* :mod:`~synthcontrol.study.expand` -- analyses to tasks and inference plans;
* :mod:`~synthcontrol.study.validate` -- every task checked against the data;
* :mod:`~synthcontrol.study.options`, :mod:`~synthcontrol.study.parse` -- TOML to
  model (:func:`load_config`);
* :mod:`~synthcontrol.study.result` -- typed results and the tidy tables;
* :mod:`~synthcontrol.study.run` -- :func:`run_study`;
* :mod:`~synthcontrol.study.single` -- a study made of fits done in Python.
"""

from .model import (
    Analysis,
    AuditRules,
    Block,
    BlockOptions,
    BlockTask,
    Claim,
    CurveTask,
    Estimator,
    Group,
    InferenceOptions,
    InferencePlan,
    Outcome,
    PlaceboPlan,
    Pool,
    ReportOptions,
    SpecCurveOptions,
    StudyConfig,
    StudyData,
    Task,
)
from .parse import load_config
from .result import BlockResult, CurveResult, Estimate, StudyResult, TaskResult, UnitResult, fit_quality, per_cent
from .run import run_study
from .single import study_of

__all__ = [
    "load_config",
    "run_study",
    "study_of",
    "fit_quality",
    "per_cent",
    "StudyConfig",
    "StudyData",
    "Group",
    "Pool",
    "Outcome",
    "Analysis",
    "AuditRules",
    "Block",
    "BlockOptions",
    "BlockTask",
    "Claim",
    "ReportOptions",
    "Estimator",
    "InferenceOptions",
    "SpecCurveOptions",
    "InferencePlan",
    "PlaceboPlan",
    "Task",
    "CurveTask",
    "StudyResult",
    "TaskResult",
    "BlockResult",
    "UnitResult",
    "CurveResult",
    "Estimate",
]
