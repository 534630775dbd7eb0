"""What the report shows, computed from the typed study model: the selections,
tables and counts the templates turn into prose (``templates/*.j2``).

The report opens with the answer (:mod:`~synthcontrol.report.answer`), then the
figures, then the details. Per-unit numbers live in tables; the prose states each
rule and caveat once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Hashable

import numpy as np

from ..results import certificate_counts_note
from ..study import Analysis, Estimate, Outcome, StudyConfig, StudyResult, TaskResult
from .answer import ClaimAnswer, answers
from .audit import AuditView
from .formats import Table, num, p, signed, span

__all__ = ["ALPHA", "Figure", "Section", "ReportView"]

#: Level at which the report calls a p-value small.
ALPHA = 0.1

#: How the report names the pooled statistics.
STATISTIC_WORDS = {
    "mean": "average standardised gap",
    "mean_abs": "mean absolute standardised gap",
    "mean_squared": "mean squared standardised gap",
    "fisher": "Fisher combination of the placebo p-values",
}


@dataclass(frozen=True)
class Figure:
    file: str
    caption: str


@dataclass(frozen=True)
class Section:
    """A level-2 section: its title and the template that writes its body."""

    title: str
    template: str


@dataclass(frozen=True, eq=False)
class ReportView:
    """The report of ``study`` with its ``figures``, as the templates read it."""

    study: StudyResult
    figures: tuple[Figure, ...] = ()
    alpha: float = ALPHA

    @property
    def config(self) -> StudyConfig:
        return self.study.config

    @cached_property
    def sections(self) -> tuple[Section, ...]:
        """The sections that have something to say, in order."""
        candidates = [
            ("The answer", "answer", True), ("Figures", "figures", bool(self.figures)),
            ("What was estimated", "intro", True), ("Data", "data", True),
            ("Data audit", "audit", self.config.audit is not None), ("Donors", "donors", True),
            ("Results", "results", True), ("Reading the results", "reading", True),
            ("Robustness of the headline estimates", "robustness", bool(self.robustness_table)),
            ("Treated units estimated together", "blocks", bool(self.study.blocks)),
            ("Sensitivity analyses", "sensitivity", bool(self.sensitivity_table)),
            ("Other estimators", "estimators", len(self.estimator_names) > 1),
            ("Specification curves", "curves", bool(self.study.curves)),
            ("How this report was made", "notes", True),
        ]
        return tuple(Section(title, f"sections/{name}.j2") for title, name, shown in candidates if shown)

    # -- formatting ------------------------------------------------------------------
    def effect(self, value: float, outcome: Outcome, change: bool = False) -> str:
        """An effect (a gap, or with ``change`` a difference of gaps) as the reader
        reads it: per cent for a log outcome, else the outcome's units."""
        if not np.isfinite(value):
            return "-"
        if outcome.log:
            return f"{float(np.expm1(value) * 100):+.1f}%"
        return signed(value) + (f" {outcome.units}" if outcome.units else "")

    def effect_of(self, e: Estimate) -> str:
        return self.effect(e.effect, self.config.outcome(e.outcome))

    def change_of(self, e: Estimate) -> str:
        return self.effect(e.change, self.config.outcome(e.outcome), change=True)

    @property
    def words(self) -> tuple[str, str]:
        """What a unit is called, singular and plural."""
        return self.config.report.unit_words

    @staticmethod
    def statistic_words(statistic: str) -> str:
        return STATISTIC_WORDS.get(statistic, statistic)

    def named(self, unit: Hashable) -> str:
        """``Name (code)``, or the identifier when it is the name."""
        name = self.config.unit_name(unit)
        return name if name == str(unit) else f"{name} ({unit})"

    def names(self, units) -> str:
        return ", ".join(self.config.unit_name(u) for u in units) or "none"

    # -- selections ----------------------------------------------------------------
    @cached_property
    def main(self) -> tuple[Estimate, ...]:
        """Reference estimates of the main analysis."""
        return tuple(e for e in self.study.estimates if e.task.is_main and e.task.is_reference)

    @cached_property
    def headline(self) -> tuple[Estimate, ...]:
        """Reference estimates of the main analysis' headline outcome."""
        return tuple(e for e in self.main if e.task.outcome.headline)

    @cached_property
    def headline_tasks(self) -> tuple[TaskResult, ...]:
        return tuple(tr for tr in self.study.task_results if tr.task.is_headline and tr.task.is_reference)

    @property
    def tested(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.main if e.tested)

    @cached_property
    def answers(self) -> tuple[ClaimAnswer, ...]:
        return answers(self.study, self.alpha)

    @cached_property
    def audit(self) -> AuditView:
        return AuditView(self.study)

    @property
    def unmeasured(self) -> tuple[Outcome, ...]:
        """Outcomes of the main analysis that no claim measures."""
        claimed = {c for a in self.answers for c in a.claim.outcomes}
        return tuple(o for o in self.config.outcomes if o.column not in claimed and o.column in self.config.main.outcomes)

    def outcome_summary(self, outcome: Outcome) -> list[dict]:
        """Median and range of the main estimates of ``outcome``, per pool, and the pooled tests."""
        rows = []
        for tr in self.study.task_results:
            task = tr.task
            if not (task.is_main and task.is_reference and task.outcome.column == outcome.column):
                continue
            estimates = [e for e in self.main if e.task is task]
            effects = sorted(e.effect for e in estimates)
            rows.append({"pool": task.pool, "median": self.effect(float(np.median(effects)), outcome),
                         "range": f"{self.effect(effects[0], outcome)} to {self.effect(effects[-1], outcome)}",
                         "small": sum(e.tested and e.p_value <= self.alpha for e in estimates),
                         "pooled p": p(tr.pooled.p_value) if tr.pooled else "-"})
        return rows

    # -- what was estimated, data, donors -------------------------------------------
    @property
    def treated_named(self) -> str:
        return ", ".join(self.named(t) for t in self.config.main.treated)

    @property
    def unit_count(self) -> int:
        data = self.config.data
        return int(data.frame[data.unit].nunique())

    @property
    def period_span(self) -> str:
        return span(self.config.data.periods)

    @property
    def group_lines(self) -> list[str]:
        return [f"{g.name} ({len(g.units)})" + (f", {g.description}" if g.description else "")
                + f": {self.names(g.units)}" for g in self.config.groups]

    @property
    def pool_lines(self) -> list[str]:
        return [f"{pool.name} ({len(pool.units)} units before exclusions)"
                + (f": {pool.description}" if pool.description else "") for pool in self.config.pools]

    @property
    def fit_window(self) -> str:
        window = self.config.main.fit_window
        return f"{window[0]}-{window[1]}" if window else "every period before treatment"

    @cached_property
    def outcome_table(self) -> Table:
        flag = self.config.data.flag
        rows = []
        for o in self.config.outcomes:
            window = o.fit_window or self.config.main.fit_window
            row = {"outcome": o.column, "meaning": o.label, "headline": "yes" if o.headline else "",
                   "fit window": f"{window[0]}-{window[1]}" if window else "all pre-treatment periods",
                   "predictors": ", ".join(x.label for x in o.predictors) or "the outcome in every fit-window period"}
            if flag:
                row[f"donors flagged in {flag}"] = "excluded" if o.exclude_flagged else "kept"
            rows.append(row)
        return Table.of(rows)

    @cached_property
    def observed(self) -> tuple[tuple[str, str], ...]:
        """Each outcome and the periods it is observed in."""
        data = self.config.data
        frame = data.frame
        return tuple((o.column, span(sorted(frame.loc[frame[o.column].notna(), data.time].unique().tolist())))
                     for o in self.config.outcomes)

    @property
    def flagged_treated(self) -> list[str]:
        flagged = set(self.config.data.flagged_units)
        return list(dict.fromkeys(self.config.unit_name(u) for a in self.config.analyses for u in a.treated
                                  if u in flagged))

    @cached_property
    def donor_table(self) -> Table:
        rows = []
        for tr in self.study.task_results:
            if tr.task.is_main and tr.task.is_reference:
                first = tr.units[0].fit
                dropped = ", ".join(self.config.unit_name(u) for u, _ in first.design.dropped_donors) or "-"
                n = len(first.donors)
                rows.append({"outcome": tr.task.outcome.column, "pool": tr.task.pool, "donors": n,
                             "dropped (incomplete data)": dropped, "smallest possible p": f"1/{n + 1} = {p(1 / (n + 1))}"})
        return Table.of(rows)

    @property
    def top_donors(self) -> list[str]:
        items = []
        for tr in self.headline_tasks:
            for unit in tr.units:
                weights = unit.fit.weights.sort_values(ascending=False)
                top = ", ".join(f"{self.config.unit_name(d)} {w:.2f}" for d, w in weights[weights > 0.01].items())
                items.append(f"{self.config.unit_name(unit.treated)}, {tr.task.pool} pool: {top}")
        return items

    # -- results ---------------------------------------------------------------------
    @property
    def placebo_counts(self) -> dict[str, int]:
        kinds = [e.placebo_weights for e in self.study.estimates]
        return {"refitted": kinds.count("refitted"), "reused": kinds.count("reused")}

    @property
    def last_pre(self) -> object:
        """The last period before the main treatment start."""
        start = self.config.main.treatment_start
        return max((t for t in self.config.data.periods if t < start), default="-")

    @cached_property
    def results_table(self) -> Table:
        return Table.of([
            {"unit": e.treated, "outcome": e.outcome, "pool": e.pool, "effect": self.effect_of(e),
             f"change since {self.last_pre}": self.change_of(e), "fit": e.fit_quality or "-",
             "pre-MSPE / placebos'": num(e.pre_mspe_ratio), "identified": e.identified or "-",
             "p (placebo)": p(e.p_value), "donors": e.n_donors}
            for e in self.main
        ])

    @property
    def counts(self) -> dict[str, int]:
        main = self.main
        return {"estimates": len(main), "units": len({e.treated_code for e in main}),
                "outcomes": len({e.outcome for e in main}), "pools": len({e.pool for e in main}),
                "tested": len(self.tested), "small": sum(e.p_value <= self.alpha for e in self.tested),
                "poor": sum(e.fit_quality == "poor" for e in main),
                "unidentified": sum(e.identified == "no" for e in main)}

    @property
    def certificate_note(self) -> str:
        """How many distinct fits of the main estimates (treated fits and their placebo
        refits; a placebo shared by several treated units counts once) are certified."""
        statuses: dict[tuple, str | None] = {}
        for e in self.main:
            if e.scope != "unit":
                continue
            statuses[(id(e.task), e.treated_code)] = e.certificate or None
            placebo = e.result.placebo
            if placebo is not None:
                for donor, status in zip(placebo.units[1:], placebo.certificates[1:]):
                    statuses[(id(e.task), donor, placebo.units[1:])] = status
        return certificate_counts_note(list(statuses.values()))

    @cached_property
    def post_periods(self) -> dict[str, list]:
        """Outcome -> post-treatment periods of its main reference fits."""
        spans: dict[str, set] = {}
        for e in self.main:
            design = e.result.fit.design
            spans.setdefault(e.outcome, set()).update(np.array(design.periods, dtype=object)[design.post_mask])
        return {outcome: sorted(periods) for outcome, periods in spans.items()}

    @property
    def donor_range(self) -> tuple[int, int]:
        counts = [e.n_donors for e in self.main] or [0]
        return min(counts), max(counts)

    @property
    def short_windows(self) -> list[str]:
        """Outcomes fitted on fewer than five pre-treatment periods."""
        return [f"{e.outcome} ({int(e.result.fit.design.pre_mask.sum())})"
                for e in {e.outcome: e for e in self.main}.values() if e.result.fit.design.pre_mask.sum() < 5]

    # -- robustness, blocks, sensitivity, estimators, curves ------------------------
    @cached_property
    def robustness_table(self) -> Table:
        rows = []
        for e in self.robustness_estimates:
            outcome = self.config.outcome(e.outcome)
            rows.append({"unit": e.treated, "pool": e.pool, "effect": self.effect_of(e),
                         f"change since {self.last_pre}": self.change_of(e),
                         f"in-time placebo gap ({self.in_time_window})": self.effect(e.in_time_effect, outcome),
                         "fake / real": num(self.fake_ratio(e), 2),
                         "leave-one-out range": f"{self.effect(e.loo_min, outcome)} to {self.effect(e.loo_max, outcome)}",
                         "conformal p": p(e.conformal_p)})
        return Table.of(rows)

    @property
    def robustness_estimates(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.headline
                     if any(x is not None for x in (e.result.leave_one_out, e.result.in_time, e.result.conformal)))

    @staticmethod
    def fake_ratio(e: Estimate) -> float:
        """The in-time placebo's fake gap over the real effect."""
        return e.in_time_effect / e.effect if e.effect != 0 else float("nan")

    @property
    def predating(self) -> list[str]:
        """Fits whose in-time placebo gap has the real effect's sign and at least half its size."""
        return [f"{e.treated} ({e.pool}, {self.fake_ratio(e):.1f} times)" for e in self.robustness_estimates
                if np.isfinite(e.in_time_effect) and self.fake_ratio(e) >= 0.5]

    @property
    def sign_changes(self) -> list[str]:
        return [f"{e.treated} ({e.pool})" for e in self.robustness_estimates if e.result.leave_one_out is not None
                and not (np.sign(e.loo_min) == np.sign(e.loo_max) == np.sign(e.effect))]

    @property
    def in_time_start(self) -> object:
        return next((e.task.plan.in_time_start for e in self.headline if e.task.plan.in_time_start is not None), "-")

    @property
    def in_time_window(self) -> str:
        start = self.in_time_start
        return f"{start}-{self.last_pre}" if start != "-" else "-"

    @cached_property
    def pooled_table(self) -> Table:
        return Table.of([
            {"outcome": tr.task.outcome.column, "pool": tr.task.pool,
             "statistic": self.statistic_words(tr.pooled.statistic), "value": num(tr.pooled.average),
             "pooled p": p(tr.pooled.p_value),
             "one-sided p (decrease / increase)": "-" if tr.pooled_signed is None else
             f"{p(tr.pooled_signed.p_negative)} / {p(tr.pooled_signed.p_positive)}",
             "null": f"{tr.pooled.method}, {tr.pooled.n_draws} placebo combinations"}
            for tr in self.study.task_results if tr.pooled is not None and tr.task.is_main
        ])

    @cached_property
    def block_table(self) -> Table:
        rows = []
        for e in self.study.block_estimates:
            outcome = self.config.outcome(e.outcome)
            rows.append({"block": e.treated, "outcome": e.outcome, "pool": e.pool, "estimator": e.estimator,
                         "effect": self.effect_of(e),
                         "95% interval": f"{self.effect(e.ci_lower, outcome)} to {self.effect(e.ci_upper, outcome)}",
                         "placebo p": p(e.p_value), "p (decrease / increase)": f"{p(e.p_negative)} / {p(e.p_positive)}",
                         "donors": e.n_donors})
        return Table.of(rows)

    @cached_property
    def sensitivity_table(self) -> Table:
        """One row per sensitivity analysis, outcome and pool: median, range, small p-values."""
        rows = []
        for tr in self.study.task_results:
            task = tr.task
            if task.is_main or not task.is_reference:
                continue
            estimates = [e for e in self.study.estimates if e.task is task]
            effects = sorted(e.effect for e in estimates)
            rows.append({"analysis": task.analysis, "outcome": task.outcome.column, "pool": task.pool,
                         "units": len(estimates), "donors": estimates[0].n_donors,
                         "median": self.effect(float(np.median(effects)), task.outcome),
                         "range": f"{self.effect(effects[0], task.outcome)} to {self.effect(effects[-1], task.outcome)}",
                         f"p <= {self.alpha}": ", ".join(e.treated for e in estimates if e.tested and e.p_value <= self.alpha)
                         or "none",
                         "pooled p": p(tr.pooled.p_value) if tr.pooled else "-"})
        return Table.of(rows)

    @property
    def sensitivity_lines(self) -> list[str]:
        return [f"{a.name}: {a.description}" if a.description else a.name for a in self.sensitivity_analyses]

    @property
    def sensitivity_analyses(self) -> tuple[Analysis, ...]:
        return self.config.analyses[1:]

    @cached_property
    def estimator_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.estimator for e in self._headline_all))

    @property
    def _headline_all(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.study.estimates if e.task.is_headline)

    def by_estimator(self, column: str) -> Table:
        """``column`` of the headline estimates: one row per unit and pool, a column per estimator."""
        cells: dict[tuple, dict[str, str]] = {}
        for e in self._headline_all:
            value = p(e.p_value) if column == "p_value" else self.effect_of(e)
            cells.setdefault((e.treated, e.pool), {})[e.estimator] = value
        return Table.of([{"unit": unit, "pool": pool, **{n: row.get(n, "-") for n in self.estimator_names}}
                         for (unit, pool), row in cells.items()])

    @property
    def untested_estimators(self) -> list[str]:
        return [n for n in self.estimator_names
                if not any(e.tested for e in self._headline_all if e.estimator == n)]

    @cached_property
    def curves_table(self) -> Table:
        rows = []
        outcome = self.config.headline
        for c in self.study.curves:
            effects = c.curve.table["effect"]
            rows.append({"unit": self.config.unit_name(c.treated), "pool": c.pool, "fits": len(effects),
                         "median effect": self.effect(float(effects.median()), outcome),
                         "range": f"{self.effect(effects.min(), outcome)} to {self.effect(effects.max(), outcome)}",
                         "share negative": f"{(effects < 0).mean():.2f}"})
        return Table.of(rows)

    @property
    def cpu_count(self) -> int | None:
        return os.cpu_count()
