"""What the report shows, computed from the typed study model: the selections,
tables and counts the templates turn into prose (``templates/*.j2``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Hashable, Literal

import numpy as np

from ..study import Analysis, Estimate, StudyConfig, StudyResult, TaskResult
from .formats import Table, num, p, span

__all__ = ["ALPHA", "Figure", "Section", "ReportView"]

#: Level at which the report calls a placebo p-value small.
ALPHA = 0.1


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
            ("What was estimated", "intro", True), ("Data", "data", True), ("Donors", "donors", True),
            ("Results", "results", True), ("Reading the results", "reading", True),
            ("Robustness of the headline estimates", "robustness", bool(self.robustness_table)),
            ("Sensitivity analyses", "sensitivity", bool(self.sensitivity)),
            ("Other estimators", "estimators", len(self.estimator_names) > 1),
            ("Specification curves", "curves", bool(self.study.curves)),
            ("Figures", "figures", bool(self.figures)),
            ("How this report was made", "notes", True),
        ]
        return tuple(Section(title, f"sections/{name}.j2") for title, name, shown in candidates if shown)

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

    def named(self, unit: Hashable) -> str:
        """``Name (code)``, or the identifier when it is the name."""
        name = self.config.unit_name(unit)
        return name if name == str(unit) else f"{name} ({unit})"

    def names(self, units) -> str:
        return ", ".join(self.config.unit_name(u) for u in units) or "none"

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
    def fit_window(self) -> str:
        window = self.config.main.fit_window
        return f"{window[0]}-{window[1]}" if window else "every period before treatment"

    @cached_property
    def outcome_table(self) -> Table:
        flag = self.config.data.flag
        rows = []
        for o in self.config.outcomes:
            row = {"outcome": o.column, "meaning": o.label, "headline": "yes" if o.headline else "",
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
                rows.append({"outcome": tr.task.outcome.column, "pool": tr.task.pool, "donors": len(first.donors),
                             "dropped (incomplete data)": dropped,
                             "smallest possible p": p(1 / (len(first.donors) + 1))})
        return Table.of(rows)

    @property
    def donor_lists(self) -> list[str]:
        return [f"{tr.task.pool} ({len(tr.units[0].fit.donors)}): {self.names(tr.units[0].fit.donors)}"
                for tr in self.headline_tasks]

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

    @cached_property
    def results_table(self) -> Table:
        return Table.of([
            {"unit": e.treated, "outcome": e.outcome, "pool": e.pool, "effect": num(e.effect),
             "pre-RMSPE": num(e.pre_rmspe), "fit ratio": f"{e.fit_ratio:.2f}", "fit": e.fit_quality,
             "p (placebo)": p(e.p_value), "donors": e.n_donors}
            for e in self.main
        ])

    @property
    def reading(self) -> list[list[Estimate]]:
        """The headline estimates, grouped by treated unit."""
        groups: dict[Hashable, list[Estimate]] = {}
        for e in self.headline:
            groups.setdefault(e.treated_code, []).append(e)
        return list(groups.values())

    @property
    def counts(self) -> dict[str, int]:
        main = self.main
        return {"estimates": len(main), "units": len({e.treated_code for e in main}),
                "outcomes": len({e.outcome for e in main}), "pools": len({e.pool for e in main}),
                "tested": len(self.tested), "small": sum(e.p_value <= self.alpha for e in self.tested),
                "poor": sum(e.fit_quality == "poor" for e in main)}

    @cached_property
    def post_periods(self) -> dict[str, list]:
        """Outcome -> post-treatment periods of its main reference fits."""
        spans: dict[str, set] = {}
        for e in self.main:
            design = e.result.fit.design
            spans.setdefault(e.outcome, set()).update(np.array(design.periods, dtype=object)[design.post_mask])
        return {outcome: sorted(periods) for outcome, periods in spans.items()}

    @property
    def pool_donors(self) -> dict[str, int]:
        donors: dict[str, int] = {}
        for e in self.main:
            donors[e.pool] = max(donors.get(e.pool, 0), e.n_donors)
        return donors

    # -- robustness, sensitivity, estimators, curves --------------------------------
    @cached_property
    def robustness_table(self) -> Table:
        return Table.of([
            {"unit": e.treated, "pool": e.pool, "effect": num(e.effect),
             "leave-one-out range": f"{num(e.loo_min)} to {num(e.loo_max)}",
             f"in-time placebo effect ({self.in_time_start})": num(e.in_time_effect),
             "in-time ratio / real ratio": f"{num(e.in_time_ratio)} / {num(e.real_ratio)}",
             "conformal p": p(e.conformal_p), "pooled p": p(e.pooled_p)}
            for e in self.robustness_estimates
        ])

    @property
    def robustness_estimates(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.headline
                     if any(x is not None for x in (e.result.leave_one_out, e.result.in_time, e.result.conformal)))

    @staticmethod
    def in_time_reading(e: Estimate) -> Literal["none", "larger", "comparable", "small"]:
        """How the in-time placebo's fake effect compares with the real effect."""
        fake, real = e.in_time_effect, e.effect
        if not np.isfinite(fake):
            return "none"
        if np.sign(fake) != np.sign(real) or abs(fake) < abs(real) / 2:
            return "small"
        return "larger" if abs(fake) >= 2 * abs(real) else "comparable"

    @staticmethod
    def loo_keeps_sign(e: Estimate) -> bool:
        return bool(np.sign(e.loo_min) == np.sign(e.loo_max) == np.sign(e.effect))

    @property
    def in_time_start(self) -> object:
        return next((e.task.plan.in_time_start for e in self.headline if e.task.plan.in_time_start is not None), "-")

    @cached_property
    def conformal_table(self) -> Table:
        rows = []
        for e in self.study.estimates:
            result = e.result.conformal
            for period, r in ([] if result is None else result.table.iterrows()):
                edge = " (grid edge)" if r.lower_open or r.upper_open else ""
                rows.append({"unit": e.treated, "pool": e.pool, "period": period, "gap": num(r.estimate),
                             f"{1 - result.alpha:.0%} interval": f"[{num(r.lower)}, {num(r.upper)}]{edge}",
                             "p": p(r.p_value)})
        return Table.of(rows)

    @cached_property
    def pooled_table(self) -> Table:
        return Table.of([
            {"outcome": tr.task.outcome.column, "pool": tr.task.pool, "average standardised gap": num(tr.pooled.average),
             "pooled p": p(tr.pooled.p_value), "null": f"{tr.pooled.method}, {tr.pooled.n_draws} placebo averages"}
            for tr in self.study.task_results if tr.pooled is not None and tr.task.is_main
        ])

    @cached_property
    def sensitivity(self) -> list[tuple[Analysis, Table]]:
        found = []
        for analysis in self.config.analyses[1:]:
            rows = [e for e in self.study.estimates if e.analysis == analysis.name]
            found.append((analysis, Table.of([
                {"unit": e.treated, "outcome": e.outcome, "pool": e.pool, "effect": num(e.effect),
                 "fit": e.fit_quality, "p (placebo)": p(e.p_value), "donors": e.n_donors} for e in rows])))
        return [(a, t) for a, t in found if t]

    @cached_property
    def estimator_names(self) -> tuple[str, ...]:
        rows = self._headline_all
        return tuple(dict.fromkeys(e.estimator for e in rows))

    @property
    def _headline_all(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.study.estimates if e.task.is_headline)

    def by_estimator(self, column: str) -> Table:
        """``column`` of the headline estimates: one row per unit and pool, a column per estimator."""
        cells: dict[tuple, dict[str, str]] = {}
        formatted = p if column == "p_value" else num
        for e in self._headline_all:
            cells.setdefault((e.treated, e.pool), {})[e.estimator] = formatted(getattr(e, column))
        return Table.of([{"unit": unit, "pool": pool, **{n: row.get(n, "-") for n in self.estimator_names}}
                         for (unit, pool), row in cells.items()])

    @property
    def untested_estimators(self) -> list[str]:
        return [n for n in self.estimator_names
                if not any(e.tested for e in self._headline_all if e.estimator == n)]

    @cached_property
    def curves_table(self) -> Table:
        rows = []
        for c in self.study.curves:
            effects = c.curve.table["effect"]
            rows.append({"unit": self.config.unit_name(c.treated), "pool": c.pool, "fits": len(effects),
                         "median effect": num(effects.median()), "range": f"{num(effects.min())} to {num(effects.max())}",
                         "share negative": f"{(effects < 0).mean():.2f}"})
        return Table.of(rows)

    @property
    def cpu_count(self) -> int | None:
        return os.cpu_count()
