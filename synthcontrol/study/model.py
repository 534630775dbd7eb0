"""The typed study model: what a study fits and tests, decided once.

A :class:`StudyConfig` holds the data (:class:`StudyData`) and what the study does
with its audit flags (:class:`AuditRules`), the named unit sets (:class:`Group`,
:class:`Pool`), the :class:`Outcome` s, the :class:`Analysis` es (the main one and the
sensitivity analyses) and their expansion into :class:`Task` s: one fit of every
treated unit of an analysis, outcome, donor pool and estimator, each with the
:class:`InferencePlan` chosen for it at configuration time; blocks of treated units
estimated together (:class:`Block`, :class:`BlockTask`); and the claims the report
answers (:class:`Claim`). Nothing here parses or
validates: :mod:`synthcontrol.study.parse` builds the model from a TOML file,
:mod:`synthcontrol.study.validate` checks it against the data, and
:mod:`synthcontrol.study.run` executes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Literal, Mapping

import pandas as pd

from ..options import FitOptions
from ..spec import Predictor, Spec

__all__ = [
    "REFERENCE_ESTIMATOR",
    "Scope",
    "StudyData",
    "AuditRules",
    "Claim",
    "Block",
    "BlockOptions",
    "BlockTask",
    "ReportOptions",
    "Group",
    "Pool",
    "Outcome",
    "Analysis",
    "Estimator",
    "InferenceOptions",
    "SpecCurveOptions",
    "PlaceboPlan",
    "InferencePlan",
    "Task",
    "CurveTask",
    "StudyConfig",
]

#: The estimator every study fits first and compares the others with.
REFERENCE_ESTIMATOR = "classic"

#: Which tasks an inference method covers: every task, the headline outcome's, none.
Scope = Literal["all", "headline", "none"]


@dataclass(frozen=True)
class StudyData:
    """The panel a study runs on, and how to read it.

    Attributes
    ----------
    frame : DataFrame
        Long data, one row per unit and period.
    source : str
        Where the data came from, in words (a built-in dataset or a file).
    unit, time : str
        Unit and period columns.
    label : str
        Column of readable unit names ("" if none).
    flag : str
        Boolean column flagging units whose series have a known break ("" if none).
    flag_note : str
        What a flag means, for the report.
    datasheet : str
        Documentation of the data to cite in the report ("" if none).
    flagged_units : tuple
        Units flagged in any period.
    names : mapping
        Unit -> readable name (empty without ``label``).
    logs : mapping
        Column the study derived as a natural logarithm (``[data] logs``) -> its source.
    """

    frame: pd.DataFrame = field(repr=False)
    source: str
    unit: str
    time: str
    label: str = ""
    flag: str = ""
    flag_note: str = ""
    datasheet: str = ""
    flagged_units: tuple = ()
    names: Mapping[Hashable, str] = field(default_factory=dict, repr=False)
    logs: Mapping[str, str] = field(default_factory=dict)

    def unit_name(self, unit: Hashable) -> str:
        """Readable name of ``unit`` (its label, else the identifier)."""
        return self.names.get(unit, str(unit))

    @property
    def periods(self) -> list:
        """Sorted periods of the data."""
        return sorted(pd.unique(self.frame[self.time]).tolist())


@dataclass(frozen=True)
class AuditRules:
    """The ``[audit]`` table: the data's flags table and what the study does with it.

    A donor drops out of an outcome (of one task) when it has a flag whose action is
    in ``drop`` on that outcome's column in the task's fit window or post-period;
    a flag whose kind is in ``breaks`` (a change from the previous period) does not
    count at the first period of the fit window, since no comparison within the
    window crosses it. The flags whose action is in ``warn`` go to every fit and
    placebo test (``audit=``), which warn about donors with weight, placebos ranking
    above the treated unit and treated units relying on a flagged cell.

    Attributes
    ----------
    flags : DataFrame
        Columns ``unit, period, column, kind`` (as :func:`synthcontrol.audit` gives
        them) and, optionally, ``action``; without ``action`` every flag counts.
    source : str
        Where the flags came from, in words.
    drop, warn : tuple of str
        Actions (see above).
    breaks : tuple of str
        Kinds that flag a change from the previous period.
    """

    flags: pd.DataFrame = field(repr=False)
    source: str
    drop: tuple[str, ...] = ("exclude",)
    warn: tuple[str, ...] = ("exclude",)
    breaks: tuple[str, ...] = ("common_break", "jump", "relation")

    def with_actions(self, actions: tuple[str, ...]) -> pd.DataFrame:
        """The flags whose action is among ``actions`` (every flag without an action column)."""
        if "action" not in self.flags.columns:
            return self.flags
        return self.flags[self.flags["action"].isin(actions)]


@dataclass(frozen=True)
class Group:
    """A named set of units (``[groups.NAME]``), referred to as ``"group:NAME"``."""

    name: str
    units: tuple
    description: str = ""


@dataclass(frozen=True)
class Pool:
    """A named donor pool (``[pools.NAME]``): its member units, before exclusions."""

    name: str
    units: tuple
    description: str = ""


@dataclass(frozen=True)
class Outcome:
    """One outcome of a study: its column, readable label and predictors.

    ``log``: the column is a natural logarithm, so effects are also reported in per
    cent (``exp(gap) - 1``). ``units``: how the report writes an effect on a
    non-log outcome ("percentage points"; "" for the outcome's own units).
    ``fit_window``: the outcome's own fit window (for example the years after a
    statistical revision), used by analyses that set none of their own.
    """

    column: str
    label: str
    headline: bool
    exclude_flagged: bool
    predictors: tuple[Predictor, ...]
    log: bool = False
    fit_window: tuple[int, int] | None = None
    units: str = ""


@dataclass(frozen=True)
class Analysis:
    """The main analysis or a sensitivity analysis: who is treated, from when, on what.

    ``fit_window`` applies to outcomes without a window of their own, or to every
    outcome when ``own_window`` (a sensitivity analysis that sets its window);
    ``exclude`` adds units that are never donors in this analysis;
    ``drop_audited``: drop donors with flagged outcome data (see :class:`AuditRules`).
    """

    name: str
    treated: tuple
    treatment_start: int
    fit_window: tuple[int, int] | None
    outcomes: tuple[str, ...]
    pools: tuple[str, ...]
    exclude_flagged: bool | None  # None: each outcome's own setting
    description: str = ""
    exclude: tuple = ()
    drop_audited: bool = True
    own_window: bool = False

    @property
    def is_main(self) -> bool:
        return self.name == "main"


@dataclass(frozen=True)
class Estimator:
    """An estimator of the study, its options, the pools it fits (None: every pool
    of the main analysis), and whether it uses predictor weights (outcome-only
    estimators such as sdid have none for placebos to reuse)."""

    name: str
    options: tuple = ()  # (name, value) pairs, as in FitOptions.estimator_options
    uses_predictor_weights: bool = True
    pools: tuple[str, ...] | None = None

    @property
    def is_reference(self) -> bool:
        return self.name == REFERENCE_ESTIMATOR


@dataclass(frozen=True)
class InferenceOptions:
    """The ``[inference]`` table: which inference runs on which tasks.

    ``placebo`` and ``refit_placebo_weights`` cover every estimator and analysis
    (``"headline"``: the headline outcome; for ``refit_placebo_weights`` its reference
    fits in the main analysis); leave-one-out, in-time placebos and conformal
    inference cover the reference fits of the main analysis. The pooled test uses
    ``pooled_statistic`` (see :func:`~synthcontrol.pooled_test`); the signed mean is
    always computed too, for the one-sided tests of the claims.
    """

    placebo: Scope = "all"
    leave_one_out: Scope = "headline"
    in_time: Scope = "headline"
    conformal: Scope = "headline"
    in_time_start: int | None = None
    conformal_alpha: float = 0.1
    pooled: bool = True
    pooled_statistic: str = "mean"
    n_jobs: int = -1
    refit_placebo_weights: Scope = "all"
    placebo_estimators: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SpecCurveOptions:
    """Specification curves of the headline outcome (see :mod:`synthcontrol.speccurve`)."""

    estimators: tuple[str, ...] = (REFERENCE_ESTIMATOR,)
    pools: tuple[str, ...] = ()
    placebo: bool = False
    n_lags: int = 3
    fit_windows: tuple = (None,)  # None: the main analysis' fit window


@dataclass(frozen=True)
class Claim:
    """A claim made for the treatment, which the report answers first (``[[claims]]``).

    Attributes
    ----------
    name : str
        A short heading ("Growth").
    statement : str
        The claim in words.
    outcomes : tuple of str
        The outcomes that measure it (none: it cannot be measured with the data).
    direction : "increase", "decrease" or None
        The direction claimed; the report adds the one-sided tests of it.
    note : str
        What the data cannot say about it, said once after the estimates.
    """

    name: str
    statement: str
    outcomes: tuple[str, ...] = ()
    direction: Literal["increase", "decrease"] | None = None
    note: str = ""


@dataclass(frozen=True)
class Block:
    """Treated units estimated together as a block (:func:`~synthcontrol.fit_several`)."""

    name: str
    treated: tuple


@dataclass(frozen=True)
class BlockOptions:
    """The ``[blocks]`` table: blocks of treated units estimated together, on which
    outcomes ("headline" or "all" of the main analysis), pools and estimators, with
    synthdid's standard error and ``n_replications`` placebo blocks."""

    blocks: tuple[Block, ...]
    estimators: tuple[str, ...] = ("sdid",)
    outcomes: Literal["headline", "all"] = "headline"
    pools: tuple[str, ...] = ()
    standard_error: Literal["placebo", "jackknife"] = "placebo"
    n_replications: int = 200


@dataclass(frozen=True)
class BlockTask:
    """One block estimate: a block of the main analysis' treated units, an outcome, a
    pool and an estimator of :func:`~synthcontrol.fit_several`."""

    block: Block
    outcome: Outcome
    pool: str
    estimator: str
    spec: Spec
    standard_error: str = "placebo"
    n_replications: int = 200
    analysis: str = "main"


@dataclass(frozen=True)
class ReportOptions:
    """The ``[report]`` table.

    Attributes
    ----------
    fit_good, fit_fair : float
        Upper bounds of the relative pre-period RMSPE for "good" and "fair" fits.
    identified_ratio : float
        A treated unit whose pre-period MSPE is more than this many times the median
        placebo's is not identified: its synthetic control misses its own past by more
        than the placebos miss theirs, so its gap cannot be told from that misfit.
    unit_words : (str, str)
        What the report calls a unit, singular and plural ("city", "cities").
    """

    fit_good: float = 0.25
    fit_fair: float = 0.5
    identified_ratio: float = 10.0
    unit_words: tuple[str, str] = ("unit", "units")


@dataclass(frozen=True)
class PlaceboPlan:
    """In-space placebo tests of a task.

    Attributes
    ----------
    reuse_predictor_weights : bool
        Placebos take their treated unit's predictor weights instead of choosing
        their own.
    pooled : bool
        Also test the task's treated units jointly (:func:`~synthcontrol.pooled_test`).
    """

    reuse_predictor_weights: bool
    pooled: bool


@dataclass(frozen=True)
class InferencePlan:
    """The inference of one task, decided when the configuration is read.

    Attributes
    ----------
    placebo : PlaceboPlan or None
    leave_one_out : bool
    in_time_start : int or None
        Fake start of an in-time placebo (None: none).
    conformal_alpha : float or None
        Level of conformal inference (None: none).
    """

    placebo: PlaceboPlan | None = None
    leave_one_out: bool = False
    in_time_start: int | None = None
    conformal_alpha: float | None = None


@dataclass(frozen=True)
class Task:
    """One fit of a study: an analysis, outcome, donor pool and estimator, as a Spec,
    with the inference planned for it."""

    analysis: str
    outcome: Outcome
    pool: str
    estimator: str
    spec: Spec
    estimator_options: tuple = ()  # (name, value) pairs, as in FitOptions
    plan: InferencePlan = InferencePlan()
    reference: bool = True  # fitted with the study's reference estimator
    audit_dropped: tuple = ()  # (donor, its flagged cells in words): dropped by the audit rules

    @property
    def is_main(self) -> bool:
        return self.analysis == "main"

    @property
    def is_reference(self) -> bool:
        """Fitted with the estimator the study compares the others with."""
        return self.reference

    @property
    def is_headline(self) -> bool:
        """Main analysis, headline outcome (any pool, any estimator)."""
        return self.is_main and self.outcome.headline


@dataclass(frozen=True)
class CurveTask:
    """One specification curve: the headline outcome of one treated unit and pool."""

    treated: Hashable
    pool: str
    specs: tuple[tuple[str, Spec], ...]  # (label, specification), as standard_specs gives them
    estimators: tuple[str, ...]
    estimator_options: tuple = ()  # (estimator, ((option, value), ...)) pairs
    placebo: bool = False


@dataclass(frozen=True)
class StudyConfig:
    """A parsed, validated study.

    Attributes
    ----------
    title, description : str
    sources : tuple of str
        Documents the design rests on, cited in the report.
    source : Path or None
        The configuration file (None for a study made from fits in Python).
    data : StudyData
    groups : tuple of Group
    pools : tuple of Pool
    excluded_units : tuple
        Units never used as donors.
    outcomes : tuple of Outcome
    analyses : tuple of Analysis
        The main analysis first.
    estimators : tuple of Estimator
        The reference estimator first.
    estimator_scope : "headline" or "all"
        Outcomes of the main analysis that the other estimators fit.
    fit_options : FitOptions
    inference : InferenceOptions
    report : ReportOptions
    speccurve : SpecCurveOptions or None
    output : Path or None
        Default output folder.
    tasks : tuple of Task
        Every reference fit, then the other estimators' fits.
    curves : tuple of CurveTask
    audit : AuditRules or None
    claims : tuple of Claim
    blocks : BlockOptions or None
    block_tasks : tuple of BlockTask
    """

    title: str
    description: str
    sources: tuple[str, ...]
    source: Path | None
    data: StudyData
    groups: tuple[Group, ...]
    pools: tuple[Pool, ...]
    excluded_units: tuple
    outcomes: tuple[Outcome, ...]
    analyses: tuple[Analysis, ...]
    estimators: tuple[Estimator, ...]
    estimator_scope: Literal["headline", "all"]
    fit_options: FitOptions
    inference: InferenceOptions
    report: ReportOptions
    speccurve: SpecCurveOptions | None
    output: Path | None
    tasks: tuple[Task, ...]
    curves: tuple[CurveTask, ...] = ()
    audit: AuditRules | None = None
    claims: tuple[Claim, ...] = ()
    blocks: BlockOptions | None = None
    block_tasks: tuple[BlockTask, ...] = ()

    @property
    def main(self) -> Analysis:
        return self.analyses[0]

    @property
    def headline(self) -> Outcome:
        return next(o for o in self.outcomes if o.headline)

    @property
    def fit_thresholds(self) -> tuple[float, float]:
        """Upper bounds of the relative pre-period RMSPE for "good" and "fair" fits."""
        return self.report.fit_good, self.report.fit_fair

    def outcome(self, column: str) -> Outcome:
        return next(o for o in self.outcomes if o.column == column)

    def unit_name(self, unit: Hashable) -> str:
        """Readable name of ``unit``."""
        return self.data.unit_name(unit)

    def analysis(self, name: str) -> Analysis:
        return next(a for a in self.analyses if a.name == name)

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)
