"""What the report says about the data's audit flags (``[audit]``): what the flags
table holds for the study's outcomes and units, which donors the rules dropped, the
flags of the treated units themselves, and the warnings the fits raised."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .._validation import listing
from ..study import StudyResult
from ..study.expand import task_window
from ..study.flags import flag_words
from .formats import Table

__all__ = ["AuditView"]

_LIST_AT_MOST = 8  # names listed in a cell before "and N more"


@dataclass(frozen=True, eq=False)
class AuditView:
    """The audit part of the report of ``study`` (empty tables without ``[audit]``)."""

    study: StudyResult

    @property
    def rules(self):
        return self.study.config.audit

    @cached_property
    def _relevant(self) -> pd.DataFrame:
        """Flags with a drop action on the outcomes of the study, for its units."""
        config = self.study.config
        units = {u for p in config.pools for u in p.units} | {u for a in config.analyses for u in a.treated}
        flags = self.rules.with_actions(self.rules.drop)
        return flags[flags["column"].isin([o.column for o in config.outcomes]) & flags["unit"].isin(units)]

    @cached_property
    def found(self) -> Table:
        """Per outcome: flagged cells, units and the kinds of flag."""
        if self.rules is None:
            return Table.of([])
        rows = []
        for outcome in self.study.config.outcomes:
            flags = self._relevant[self._relevant["column"] == outcome.column]
            kinds = flags.groupby("kind").size().sort_values(ascending=False)
            rows.append({"outcome": outcome.column, "flagged cells": len(flags),
                         "units": flags["unit"].nunique(),
                         "kinds": ", ".join(f"{k} {n}" for k, n in kinds.items()) or "-"})
        return Table.of(rows)

    @cached_property
    def dropped(self) -> Table:
        """Donors the rules dropped from each outcome and pool of the main analysis."""
        if self.rules is None:
            return Table.of([])
        config = self.study.config
        rows = []
        for tr in self.study.task_results:
            task = tr.task
            if not (task.is_main and task.is_reference):
                continue
            window = task_window(config.main, task.outcome)
            names = [config.unit_name(u) for u, _ in task.audit_dropped]
            rows.append({"outcome": task.outcome.column, "pool": task.pool,
                         "fit window": f"{window[0]}-{window[1]}" if window else "all pre-treatment years",
                         "dropped": len(names), "donors left": len(tr.units[0].fit.donors),
                         "dropped donors": listing(names, _LIST_AT_MOST, str) or "-"})
        return Table.of(rows)

    @cached_property
    def treated(self) -> list[str]:
        """Each treated unit's flagged cells in the windows its main fits rely on."""
        if self.rules is None:
            return []
        config = self.study.config
        main = config.main
        found = []
        for unit in main.treated:
            cells = []
            for outcome in config.outcomes:
                window = task_window(main, outcome) or (config.data.periods[0], main.treatment_start - 1)
                flags = self._relevant[(self._relevant["unit"] == unit) & (self._relevant["column"] == outcome.column)]
                at_start = (flags["period"] == window[0]) & flags["kind"].isin(self.rules.breaks)
                flags = flags[(flags["period"] >= window[0]) & ~at_start]
                if len(flags):
                    cells.append(flag_words(flags))
            if cells:
                found.append(f"{config.unit_name(unit)}: {'; '.join(cells)}")
        return found

    @cached_property
    def warnings(self) -> dict[str, int]:
        """Audit warnings raised, by what they name."""
        messages = [w for tr in self.study.task_results for w in tr.audit_warnings]
        return {
            "total": len(messages),
            "donors": sum(bool(re.search(r"with weight", m)) for m in messages),
            "placebos": sum(bool(re.search(r"placebo unit", m)) for m in messages),
            "treated": sum(bool(re.search(r"the treated unit", m)) for m in messages),
        }
