"""Immutable result objects with tidy pandas outputs and ``summary()``.

Results keep the numbers they were computed from (read-only arrays) and build their
pandas views on access, so a user who edits a returned frame cannot change the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Hashable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from . import plots
from ._arrays import frozen, rmspe
from .certify import Certificate
from .certify import STATUSES as CERTIFICATE_STATUSES
from .errors import NotFoundError
from .options import FitOptions
from .registry import get_estimator
from .spec import Design
from .weights import NestedSolution

# FitOptions lives in synthcontrol.options; it is importable from here as it always was.
__all__ = ["FitOptions", "Summary", "SynthResult", "SynthResults", "certificate_counts"]


class Summary:
    """A titled set of tables with text and HTML renderings; prints nothing itself."""

    def __init__(self, title: str, tables: Mapping[str, pd.DataFrame], notes: tuple[str, ...] = ()):
        self.title = title
        self.tables = dict(tables)
        self.notes = tuple(notes)

    def as_text(self) -> str:
        parts = [self.title, "=" * len(self.title)]
        for name, table in self.tables.items():
            parts += ["", name, "-" * len(name), table.to_string(float_format=_fmt)]
        if self.notes:
            parts += ["", *self.notes]
        return "\n".join(parts)

    def as_html(self) -> str:
        parts = [f"<h3>{self.title}</h3>"]
        for name, table in self.tables.items():
            parts += [f"<h4>{name}</h4>", table.to_html(float_format=_fmt)]
        parts += [f"<p>{note}</p>" for note in self.notes]
        return "\n".join(parts)

    def as_markdown(self) -> str:
        parts = [f"### {self.title}"]
        for name, table in self.tables.items():
            parts += ["", f"**{name}**", "", _markdown_table(table)]
        if self.notes:
            parts += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return f"<Summary {self.title!r}: {', '.join(self.tables)}>"

    def _repr_html_(self) -> str:
        return self.as_html()


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"


def _markdown_table(table: pd.DataFrame) -> str:
    frame = table.reset_index()
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(_fmt(v) if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


@dataclass(frozen=True, eq=False)
class SynthResult:
    """A fitted synthetic control for one treated unit.

    Attributes
    ----------
    design : Design
        The validated numeric problem (kept so inference can refit it).
    solution : NestedSolution
        What the weighting core returned (weights, losses, bound, search record).
    scale : ndarray, shape (K,)
        Standard deviation of each predictor across the units, used to rescale it.
    options : FitOptions
        How predictor weights were chosen.
    predictor_weights_given : bool
        True when the user fixed the predictor weights.
    estimator : str
        Name of the estimator that produced the weights.
    intercept : float
        Constant added to the synthetic outcome (0 for the classic estimator).
    details : tuple of (name, value) pairs
        Estimator-specific outputs (e.g. a penalty chosen by cross-validation, time
        weights); read them with :attr:`extras`.
    certificate : Certificate or None
        How far the nested fit is from the global optimum (``sc.fit(..., certify=True)``);
        None when not requested. When it found a lower loss, ``solution`` already
        holds the improved weights.
    """

    design: Design
    solution: NestedSolution
    scale: np.ndarray
    options: FitOptions = field(default_factory=FitOptions)
    predictor_weights_given: bool = False
    estimator: str = "classic"
    intercept: float = 0.0
    details: tuple = ()
    certificate: Certificate | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", frozen(self.scale))
        for name in ("weights", "predictor_weights"):
            getattr(self.solution, name).setflags(write=False)

    def __repr__(self) -> str:
        return (
            f"<SynthResult {self.estimator}: {self.treated!r}, {len(self.donors)} donors, "
            f"pre-RMSPE {self.pre_rmspe:.4g}, average effect {self.average_effect:.4g}>"
        )

    @property
    def extras(self) -> dict:
        """Estimator-specific outputs as a new dict (see ``details``)."""
        return dict(self.details)

    @property
    def uses_predictor_weights(self) -> bool:
        """Whether the estimator chose (or was given) predictor weights. Estimators
        that match on outcomes only (``"sdid"``, ``"demeaned"``, ...) have none: their
        :attr:`predictor_weights` are NaN and placebos cannot reuse them."""
        return get_estimator(self.estimator).uses_predictor_weights

    # -- identity ---------------------------------------------------------------
    @property
    def spec(self):
        """The single-treated :class:`~synthcontrol.spec.Spec` that was fitted."""
        return self.design.spec

    @property
    def treated(self) -> Hashable:
        return self.design.treated

    @property
    def donors(self) -> tuple:
        return self.design.donors

    # -- weights ----------------------------------------------------------------
    @property
    def weights(self) -> pd.Series:
        """Donor weights (sum to one), indexed by donor."""
        return pd.Series(self.solution.weights, index=list(self.donors), name="weight")

    @property
    def predictor_weights(self) -> pd.Series:
        """Predictor weights ``v`` (sum to one), indexed by predictor label."""
        return pd.Series(
            self.solution.predictor_weights, index=list(self.design.predictor_labels), name="predictor_weight"
        )

    @property
    def scaling(self) -> pd.Series:
        """Standard deviation across units by which each predictor was divided."""
        return pd.Series(self.scale, index=list(self.design.predictor_labels), name="scale")

    # -- fit and effects -------------------------------------------------------
    @cached_property
    def _synthetic(self) -> np.ndarray:
        return frozen(self.design.outcome[:, 1:] @ self.solution.weights + self.intercept)

    @cached_property
    def _gap(self) -> np.ndarray:
        return frozen(self.design.outcome[:, 0] - self._synthetic)

    @property
    def path(self) -> pd.DataFrame:
        """Treated and synthetic outcome and their gap, for every period."""
        index = pd.Index(self.design.periods, name=self.spec.time)
        return pd.DataFrame(
            {"treated": self.design.outcome[:, 0], "synthetic": self._synthetic, "gap": self._gap},
            index=index,
        )

    @property
    def effects(self) -> pd.Series:
        """Per-period effect estimates (the gap) in the post-period."""
        return self.path["gap"][self.design.post_mask].rename("effect")

    @property
    def average_effect(self) -> float:
        """Average post-period gap."""
        return float(np.mean(self._gap[self.design.post_mask]))

    @property
    def pre_rmspe(self) -> float:
        """Root mean squared gap over the fit window before treatment."""
        return float(rmspe(self._gap, self.design.pre_mask))

    @property
    def post_rmspe(self) -> float:
        """Root mean squared gap over the post-period."""
        return float(rmspe(self._gap, self.design.post_mask))

    @property
    def loss_v(self) -> float:
        """Outcome MSPE over the fit window (the criterion choosing ``v``)."""
        return float(np.mean(self._gap[self.design.fit_mask] ** 2))

    @property
    def loss_w(self) -> float:
        """Predictor discrepancy ``(x1 - X0 w)' V (x1 - X0 w)`` on scaled predictors."""
        return self.solution.inner_objective

    @property
    def lower_bound(self) -> float:
        """Smallest outcome MSPE any donor weights could reach over the fit window."""
        return self.solution.lower_bound

    @property
    def balance(self) -> pd.DataFrame:
        """Predictor balance: treated, synthetic and donor mean, unscaled."""
        X = self.design.predictors
        return pd.DataFrame(
            {
                "treated": X[:, 0],
                "synthetic": X[:, 1:] @ self.solution.weights,
                "donor_mean": X[:, 1:].mean(axis=1),
            },
            index=pd.Index(self.design.predictor_labels, name="predictor"),
        )

    @property
    def dropped_donors(self) -> pd.Series:
        """Donors dropped for incomplete data, with the reason."""
        dropped = dict(self.design.dropped_donors)
        return pd.Series(dropped, dtype=object, name="reason")

    @property
    def fit_record(self) -> pd.Series:
        """How the optimisation went: losses, bound, certificate, search effort."""
        s = self.solution
        return pd.Series(
            {
                "loss_v": self.loss_v,
                "loss_w": s.inner_objective,
                "lower_bound": s.lower_bound,
                "gap_to_bound": max(self.loss_v - s.lower_bound, 0.0),
                "certified_global": s.certified,
                "n_starts": s.n_starts,
                "n_inner_solves": s.n_evaluations,
                "converged": s.converged,
                "tie_broken": s.tie_broken,
                "inner_method": s.inner_method,
                "predictor_weights_given": self.predictor_weights_given,
                **_certificate_record(self.certificate),
            },
            name="fit",
        )

    def summary(self) -> Summary:
        """Weights, balance, fit and effects as a :class:`Summary` (prints nothing)."""
        weights = self.weights[self.weights.abs() > 1e-6].sort_values(ascending=False).to_frame()
        balance = self.balance.join(self.predictor_weights).join(self.scaling)
        fit = pd.DataFrame(
            {
                "value": [
                    self.pre_rmspe,
                    self.post_rmspe,
                    self.loss_v,
                    self.lower_bound,
                    self.average_effect,
                ]
            },
            index=["pre_rmspe", "post_rmspe", "loss_v", "lower_bound", "average_effect"],
        )
        notes = [
            f"Estimator: {self.estimator}; outcome '{self.spec.outcome}'; treatment from "
            f"{self.spec.treatment_start}; {len(self.donors)} donors.",
            self._predictor_weights_note(),
        ]
        if (self.solution.weights < 0).any():
            notes.append("Some donor weights are negative (the estimator allows extrapolation).")
        if self.intercept:
            notes.append(f"The synthetic outcome includes an intercept of {self.intercept:.4g}.")
        if self.solution.tie_broken:
            notes.append(
                "Several donor weightings matched the predictors equally well; the one with "
                "the best fit-window outcome fit was chosen."
            )
        if len(self.design.dropped_donors):
            notes.append(f"Dropped donors: {dict(self.design.dropped_donors)}")
        if self.certificate is not None:
            notes.append(_certificate_note(self.certificate))
        return Summary(
            f"Synthetic control for {self.treated}",
            {
                "Donor weights": weights,
                "Predictor balance": balance,
                "Fit and effect": fit,
                "Effects by period": self.effects.to_frame(),
            },
            tuple(notes),
        )

    def _predictor_weights_note(self) -> str:
        if not self.uses_predictor_weights:
            return "This estimator matches on pre-period outcomes; the predictors play no part."
        source = "given by the user." if self.predictor_weights_given else "chosen by the nested optimisation."
        certified = " The loss equals its lower bound: a certified global optimum."
        return "Predictor weights were " + source + (certified if self.solution.certified else "")

    # -- plots -------------------------------------------------------------------
    def plot_path(self, ax=None):
        """Treated and synthetic outcome over time; returns the Axes."""
        return plots.plot_path(self, ax=ax)

    def plot_gap(self, ax=None):
        """Gap between treated and synthetic over time; returns the Axes."""
        return plots.plot_gap(self, ax=ax)

    def plot_weights(self, ax=None):
        """Donor weights as a bar chart; returns the Axes."""
        return plots.plot_weights(self, ax=ax)


def _certificate_record(certificate: Certificate | None) -> dict:
    """The certificate's fields for :attr:`SynthResult.fit_record` (NaN when none)."""
    if certificate is None:
        return {"certificate_status": "not requested", "dual_bound": np.nan, "certificate_gap": np.nan,
                "certificate_seconds": np.nan}
    return {"certificate_status": certificate.status, "dual_bound": certificate.dual_bound,
            "certificate_gap": certificate.gap, "certificate_seconds": certificate.seconds}


def certificate_counts(statuses: Sequence[str | None]) -> pd.Series:
    """How many fits got each certificate status (None: not requested, or fixed ``v``)."""
    labels = (*CERTIFICATE_STATUSES, "none")
    counts = {label: 0 for label in labels}
    for status in statuses:
        counts["none" if status is None else status] += 1
    return pd.Series(counts, name="fits", dtype=int)


def certificate_counts_note(statuses: Sequence[str | None]) -> str:
    """One sentence with :func:`certificate_counts`, for summaries."""
    counts = certificate_counts(statuses)
    certified = counts["certified"] + counts["improved and certified"]
    return (
        f"Certificates: {certified} of {len(statuses)} fits certified globally optimal "
        f"({counts['improved and certified']} after improving the search), {counts['bounded']} bounded "
        f"(time limit or failed check), {counts['ill-posed']} ill-posed, {counts['none']} without a certificate."
    )


def _certificate_note(certificate: Certificate) -> str:
    """One sentence on the certificate, for :meth:`SynthResult.summary`."""
    c = certificate
    if c.status == "ill-posed":
        return (f"Certificate: ill-posed. The treated unit lies in the donors' hull in predictor space, "
                f"so every admissible v gives the same predictor match; optimistic loss {c.loss:.7g}.")
    found = (f"the certificate lowered the search's loss {c.search_loss:.7g} to {c.loss:.7g} (weights "
             f"updated); " if c.improved else "")
    claim = ("a certified global optimum" if c.certified
             else f"not certified: relative gap {c.gap:.2e} to the dual bound {c.dual_bound:.7g}")
    return (f"Certificate ({c.seconds:.1f} s, predictor weights with min/max >= {c.floor:g}): {found}"
            f"loss {c.loss:.7g} is {claim}.")


class SynthResults(Mapping):
    """Results of several treated units, each fitted against its own pool.

    A read-only mapping from treated unit to :class:`SynthResult`.
    """

    def __init__(self, results: Mapping[Hashable, SynthResult]):
        self._results = dict(results)

    def __getitem__(self, treated: Hashable) -> SynthResult:
        if treated not in self._results:
            raise NotFoundError(f"{treated!r} is not a treated unit of this fit; they are {list(self._results)}")
        return self._results[treated]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return f"<SynthResults: {', '.join(map(str, self._results))}>"

    @property
    def table(self) -> pd.DataFrame:
        """One row per treated unit: pre/post RMSPE, average effect, loss, donors."""
        rows = {
            t: {
                "pre_rmspe": r.pre_rmspe,
                "post_rmspe": r.post_rmspe,
                "average_effect": r.average_effect,
                "loss_v": r.loss_v,
                "n_donors": len(r.donors),
            }
            for t, r in self._results.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("treated")

    def summary(self) -> Summary:
        return Summary("Synthetic controls", {"By treated unit": self.table})
