"""The nested problem in canonical form: the same work for any donor order or units.

:class:`_Problem` holds a treated unit's nested problem with its donors sorted by
their data (:func:`canonical_columns`), exact duplicates merged, and discrepancies
scaled to unit size, together with the work arrays of the compiled inner solves
and searches; it maps merged weights back to the donors as given.
"""

from __future__ import annotations

import numpy as np

from . import _nnls, _outer_loss
from .inner import FloatArray, Workspace, solve_weights_cvxpy


class _Problem:
    """A nested problem in canonical form, with the work arrays of its searches.

    Canonical form makes the work independent of how the data were given: donors
    are sorted by their data (so any donor order gives bitwise the same work),
    exact duplicates (same predictors and outcomes) are merged into one column
    whose weight is split equally among them afterwards, and predictor and outcome
    discrepancies are divided by their largest absolute value (unit size).
    """

    def __init__(self, x1: FloatArray, X0: FloatArray, z1: FloatArray, Z0: FloatArray):
        C, D = X0 - x1[:, None], Z0 - z1[:, None]
        order, new_group = canonical_columns(C, D)
        self.order = order
        self.group = np.cumsum(new_group) - 1  # group of each sorted donor
        keep = order[new_group]
        self.counts = np.bincount(self.group)
        # Unit maximum: the same data in other units give the same numbers to round-off.
        self.C_scale = float(np.max(np.abs(C))) or 1.0
        self.D_scale = float(np.max(np.abs(D))) or 1.0
        self.C = np.take(C, keep, axis=1)
        self.C /= self.C_scale
        del C
        self.D = np.take(D, keep, axis=1)
        self.D /= self.D_scale
        self.workspace = Workspace(np.vstack([self.C, np.ones((1, keep.size))]))

    @property
    def K(self) -> int:
        return self.C.shape[0]

    @property
    def n_evaluations(self) -> int:
        return int(self.workspace.state[-1][0])

    def expand(self, w_reduced: FloatArray) -> FloatArray:
        """Weights of the original donors (in their given order) from merged columns."""
        w = np.zeros(self.order.size)
        w[self.order] = (w_reduced / self.counts)[self.group]
        return w

    def weights(self, v: FloatArray, cold: bool = False) -> FloatArray:
        """``W(v)`` of the merged problem (warm-started from the last solve unless ``cold``)."""
        _nnls.inner_row_scales(np.asarray(v, float), self.workspace.row_scales)
        return self.workspace.solve(cold=cold)[0]

    def loss(self, w: FloatArray) -> float:
        """Outcome loss at unit scale (the search's own units)."""
        r = self.D @ w
        return float(r @ r) / self.D.shape[0]

    def search_loss(self, x: FloatArray, delta: float) -> float:
        return float(_outer_loss.loss_at(np.asarray(x, float), delta, self.workspace.M, self.D, self.workspace.state))

    def weights_on(self, v: FloatArray, support: FloatArray) -> FloatArray:
        """``W(v)`` of the merged problem warm-started from ``support``: where round-off
        leaves several supports optimal at ``v`` (weights spanning many orders of
        magnitude), the one the search evaluated."""
        _nnls.inner_row_scales(np.asarray(v, float), self.workspace.row_scales)
        return self.workspace.solve(start=support)[0]

    def inner_objective(self, v: FloatArray, w: FloatArray) -> float:
        r = np.sqrt(np.asarray(v, float) / np.max(v))[:, None] * self.C @ w
        return float(r @ r)

    def matches_exactly(self) -> bool:
        """Whether some donor weights reproduce the treated predictors (to round-off)."""
        residual = self.C @ self.weights(np.full(self.K, 1.0 / self.K), cold=True)
        return float(residual @ residual) <= 1e-24 * self.K

    def lower_bound(self) -> tuple[FloatArray, float]:
        """The outcome-only fit ``min_w |D w|^2 / T0`` (merged weights, unit scale)."""
        bound = Workspace(np.vstack([self.D, np.ones((1, self.D.shape[1]))]))
        w, status = bound.solve(cold=True)
        if status != _nnls.OK:  # the cvxpy formulation is the fallback
            w = solve_weights_cvxpy(np.zeros(self.D.shape[0]), self.D, np.ones(self.D.shape[0]))
        return w, self.loss(w)


def canonical_columns(*blocks: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The columns shared by ``blocks`` (2-D arrays with as many columns each) sorted
    by their values, the rows of the blocks in turn as keys, and whether each sorted
    column differs from the one before it (False: an exact duplicate).

    Sorted by the first row, then only runs of columns tied in it by all rows (one
    sort of J values for continuous data); compared chunk by chunk, so no sorted
    copy of the data is made.
    """
    rows = [row for block in blocks for row in block]
    order = np.argsort(rows[0], kind="stable")
    tied = rows[0][order[1:]] == rows[0][order[:-1]]
    if tied.any():
        run_starts = np.flatnonzero(np.concatenate([[True], ~tied]))
        run_ends = np.append(run_starts[1:], order.size)
        for start, end in zip(run_starts, run_ends):
            if end - start > 1:
                members = order[start:end]
                order[start:end] = members[np.lexsort([row[members] for row in rows][::-1])]
    new_group = np.zeros(order.size, dtype=bool)
    for block in blocks:
        new_group |= _differs_from_previous(block, order)
    return order, new_group


def _differs_from_previous(block: FloatArray, order: FloatArray) -> FloatArray:
    """Whether each column of ``block`` taken in ``order`` differs from the one before
    it (the first always does); chunk by chunk."""
    differs = np.ones(order.size, dtype=bool)
    for start in range(0, order.size - 1, 2048):
        part = block[:, order[start : start + 2049]]
        differs[start + 1 : start + part.shape[1]] = np.any(part[:, 1:] != part[:, :-1], axis=0)
    return differs
