"""The certificate of a nested fit: what was proven, checked exactly (see
:mod:`synthcontrol.certify`), and the solver it needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._arrays import frozen
from ..errors import MissingDependencyError

__all__ = ["Certificate", "require_solver", "relative_gap", "STATUSES", "CERTIFIED_RTOL", "DEFAULT_TIME_LIMIT",
           "IMPROVEMENT_RTOL"]

FloatArray = np.ndarray

#: The statuses a certificate can have.
STATUSES = ("certified", "improved and certified", "bounded", "ill-posed")

#: A loss is certified when it is within this relative distance of the dual bound.
#: The exact check of the solver's ``v`` typically lands 1e-7 above the solver's own
#: objective (its tolerances), so a tighter threshold would refuse true optima.
CERTIFIED_RTOL = 1e-6

#: Default time budget of one certification, in seconds (the solver's CPU time).
#: Measured: California (ADH) 2.4 s, Basque and Texas at once (the outcome-only bound
#: is attained); the 39 California fits a median of 2.2 s and at most 37 s.
DEFAULT_TIME_LIMIT = 60.0

#: A loss below the search's by more than this (relative) counts as an improvement.
IMPROVEMENT_RTOL = CERTIFIED_RTOL


@dataclass(frozen=True, eq=False)
class Certificate:
    """How far the nested fit is from the global optimum over the admissible class.

    Attributes
    ----------
    status : str
        ``"certified"``: the search's loss equals the dual bound (within
        :data:`CERTIFIED_RTOL`); ``"improved and certified"``: the solver found a lower
        loss, checked exactly, that equals the bound; ``"bounded"``: the time ran out
        or the check failed, so only ``dual_bound <= optimum <= loss`` is proven;
        ``"ill-posed"``: the treated unit lies in the donors' hull in predictor space,
        every admissible ``v`` gives the same predictor match, and ``loss`` is the
        optimistic value (best outcome fit among the exact matches).
    loss : float
        Best outcome MSPE attained by admissible predictor weights, checked by an
        exact inner solve.
    dual_bound : float
        No admissible predictor weights reach a lower loss.
    gap : float
        ``(loss - dual_bound) / loss`` (0 when both are 0).
    floor : float
        The ratio floor ``delta`` of the class (``min(v) >= delta * max(v)``).
    seconds : float
        Wall time of the certification (screen, solve and checks).
    search_loss : float
        The loss of the search that seeded the solver.
    predictor_weights, weights : ndarray or None
        The improved ``v`` and ``W(v)`` when the certificate lowers the loss, else None.
    solver_status : str
        SCIP's final status (``"optimal"``, ``"timelimit"``, ...), or ``"not run"``.
    n_nodes : int
        Branch-and-bound nodes.
    n_donors_screened : int
        Donors fixed to zero because no admissible ``v`` can weight them.
    note : str
        What happened, in words (for summaries).
    """

    status: str
    loss: float
    dual_bound: float
    gap: float
    floor: float
    seconds: float
    search_loss: float
    predictor_weights: FloatArray | None = None
    weights: FloatArray | None = None
    solver_status: str = "not run"
    n_nodes: int = 0
    n_donors_screened: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} is not one of {STATUSES}")
        for name in ("predictor_weights", "weights"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, frozen(value))

    @property
    def certified(self) -> bool:
        """True when the loss reported is proven globally optimal in the class."""
        return self.status in ("certified", "improved and certified")

    @property
    def improved(self) -> bool:
        """True when the certificate carries better weights than the search found."""
        return self.predictor_weights is not None

    def as_dict(self) -> dict:
        """The scalar fields, for tables and records."""
        return {
            "certificate_status": self.status,
            "certified_loss": self.loss,
            "dual_bound": self.dual_bound,
            "certificate_gap": self.gap,
            "certificate_floor": self.floor,
            "certificate_seconds": self.seconds,
            "certificate_improved": self.improved,
        }


def require_solver():
    """The ``pyscipopt`` module, or a :class:`MissingDependencyError` saying how to get it."""
    try:
        import pyscipopt
    except ImportError as error:
        raise MissingDependencyError(
            "certify=True needs the SCIP solver from the optional package pyscipopt: "
            "install it with `pip install synthcontrol[certify]` (or `pip install pyscipopt`)"
        ) from error
    return pyscipopt


def relative_gap(loss: float, bound: float) -> float:
    if loss == bound:
        return 0.0
    return (loss - bound) / max(abs(loss), 1e-300)
