"""The answer a report opens with: for each claim of the study (``[[claims]]``; the
headline outcome when none is declared), the estimates of its outcomes in the main
analysis' first pool, their uncertainty, whether the design identifies them, and a
verdict.

Rules, stated once here and in the report:

* an outcome's estimates are the reference fits of the main analysis, one per treated
  unit, in the first pool of the main analysis (the other pools are summarised), and
  the blocks of treated units fitted with the first estimator of ``[blocks]``;
* the verdict is "detectable" when, in that pool, the pooled test (the configured
  statistic), the one-sided pooled test of the claimed direction, or a block of
  treated units estimated together has a p-value at most the report's level;
  otherwise "none detected" (which is not evidence of no effect);
* a claim without outcomes cannot be measured with the data; its note says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from ..inference import PooledResult
from ..study import Claim, Estimate, Outcome, StudyResult

__all__ = ["OutcomeAnswer", "ClaimAnswer", "answers"]


@dataclass(frozen=True, eq=False)
class OutcomeAnswer:
    """The estimates of one outcome of a claim in one pool, and their tests."""

    outcome: Outcome
    pool: str
    estimates: tuple[Estimate, ...]
    bias_corrected: tuple[Estimate, ...] = ()
    blocks: tuple[Estimate, ...] = ()
    pooled: PooledResult | None = None
    signed: PooledResult | None = None
    direction: Literal["increase", "decrease"] | None = None
    alpha: float = 0.1

    @property
    def n_donors(self) -> tuple[int, int]:
        counts = [e.n_donors for e in self.estimates]
        return min(counts), max(counts)

    @cached_property
    def ordered(self) -> tuple[Estimate, ...]:
        """The estimates from the most negative effect to the most positive."""
        return tuple(sorted(self.estimates, key=lambda e: e.effect))

    @property
    def median(self) -> float:
        return float(np.median([e.effect for e in self.estimates]))

    @property
    def unidentified(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.ordered if e.identified == "no")

    @property
    def identified(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.ordered if e.identified != "no")

    @property
    def small(self) -> tuple[Estimate, ...]:
        """Estimates whose placebo p-value is at most ``alpha``."""
        return tuple(e for e in self.ordered if e.tested and e.p_value <= self.alpha)

    @property
    def tested(self) -> int:
        return sum(e.tested for e in self.estimates)

    @property
    def one_sided(self) -> float:
        """The pooled one-sided p-value of the claimed direction (NaN: none claimed or run)."""
        if self.signed is None or self.direction is None:
            return float("nan")
        return self.signed.p_positive if self.direction == "increase" else self.signed.p_negative

    @property
    def detected_by(self) -> tuple[str, ...]:
        """The joint tests with a p-value at most ``alpha`` (see the module notes)."""
        found = []
        if self.pooled is not None and self.pooled.p_value <= self.alpha:
            found.append(f"the pooled test (p = {self.pooled.p_value:.2f})")
        if self.one_sided <= self.alpha:
            found.append(f"the one-sided test of the claimed {self.direction} (p = {self.one_sided:.2f})")
        found += [f"the {b.treated} estimated together (p = {b.p_value:.2f})"
                  for b in self.blocks if b.p_value <= self.alpha]
        return tuple(found)


@dataclass(frozen=True, eq=False)
class ClaimAnswer:
    """A claim and the answers of its outcomes: first pool, then the other pools."""

    claim: Claim
    outcomes: tuple[OutcomeAnswer, ...]
    others: tuple[OutcomeAnswer, ...] = ()

    @property
    def verdict(self) -> Literal["unmeasured", "detectable", "none detected"]:
        if not self.outcomes:
            return "unmeasured"
        return "detectable" if any(o.detected_by for o in self.outcomes) else "none detected"

    def other_pools(self, outcome: Outcome) -> tuple[OutcomeAnswer, ...]:
        return tuple(o for o in self.others if o.outcome.column == outcome.column)


def answers(study: StudyResult, alpha: float) -> tuple[ClaimAnswer, ...]:
    """The answer to each claim of ``study`` (its headline outcome when it declares none);
    a claim whose outcomes the main analysis does not fit (a quick run) is left out."""
    config = study.config
    claims = config.claims or (Claim(config.headline.label, "", (config.headline.column,)),)
    first, *rest = config.main.pools
    found = []
    for claim in claims:
        fitted = [c for c in claim.outcomes if c in config.main.outcomes]
        if claim.outcomes and not fitted:
            continue
        found.append(ClaimAnswer(
            claim,
            tuple(_answer(study, config.outcome(c), first, claim, alpha) for c in fitted),
            tuple(_answer(study, config.outcome(c), pool, claim, alpha) for c in fitted for pool in rest),
        ))
    return tuple(found)


def _block_estimator(study: StudyResult) -> str:
    blocks = study.config.blocks
    return blocks.estimators[0] if blocks is not None else ""


def _answer(study: StudyResult, outcome: Outcome, pool: str, claim: Claim, alpha: float) -> OutcomeAnswer:
    def main(e: Estimate) -> bool:
        return e.analysis == "main" and e.outcome == outcome.column and e.pool == pool

    estimates = tuple(e for e in study.estimates if main(e) and e.task.is_reference)
    task = next((tr for tr in study.task_results if tr.task.is_main and tr.task.is_reference
                 and tr.task.outcome.column == outcome.column and tr.task.pool == pool), None)
    return OutcomeAnswer(
        outcome=outcome, pool=pool, estimates=estimates,
        bias_corrected=tuple(e for e in study.estimates if main(e) and e.estimator == "augmented"),
        blocks=tuple(e for e in study.block_estimates if main(e) and e.estimator == _block_estimator(study)),
        pooled=None if task is None else task.pooled,
        signed=None if task is None else task.pooled_signed,
        direction=claim.direction, alpha=alpha,
    )
