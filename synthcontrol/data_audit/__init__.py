"""Data audit: the suspect cells of a long panel, found before any fit.

A synthetic control copies whatever its donors report, so a statistical revision,
a typing error or a gap filled upstream in one donor's series becomes a fake effect
(or a fake placebo). :func:`audit` looks for six kinds of suspect cells and returns
them as a tidy frame, one row per cell and reason:

``common_break``
    A level break shared by many units in one period (a statistical revision year):
    more units than chance allows (``break_alpha``), overall or within a ``group``,
    change by more than ``break_z`` robust standard deviations of their own history.
``jump``
    A single unit's change far outside both its own history and the cross-section
    of the same period (robust z-scores beyond ``jump_z``).
``reversal``
    A jump undone within ``max_excursion`` periods: one cell, or a few, off the
    unit's path (a typing error, another series spliced in for a few years).
``interpolation``
    Runs of points on a straight line (linear interpolation or a carried-forward
    value upstream): at least ``interpolation_run`` collinear interior points in a
    row, or a single one in a period where at least ``interpolation_share`` of the
    units are collinear.
``relation``
    A quantity implied by several columns (declared as a :class:`Relation`, such as
    the deflator implied by a nominal level and a real growth rate) that is far from
    the cross-section of the period, or breaks an identity.
``source``
    A value that differs from a second source (``reference``) by more than
    ``source_rtol``.

Robust z-scores use the median and the median absolute deviation (times 1.4826, so
that they match standard deviations on normal data). Changes are taken between
consecutive periods of the panel, on logarithms for amounts and on levels for rates
and shares (``transform``). A unit's own scale is floored at half the typical
unit's scale (and the cross-sectional scale at half its typical value), so that a
smooth series does not turn ordinary changes into outliers; a unit (or a period)
with fewer than eight changes gets no z-score at all (in a period with fewer than
eight units, a jump must pass twice ``jump_z`` against the unit's own history alone).

The audit says where to look, not what is wrong: a flagged cell may be a real event
(a crisis, a pandemic, the treatment itself). Pass the frame to
:func:`synthcontrol.fit` (``audit=``) or :func:`synthcontrol.placebo_test` to be
warned when a donor with weight, or a placebo that outranks the treated unit, relies
on a flagged cell.

Modules: :mod:`.suspects` (:func:`audit`), :mod:`.detectors`, :mod:`.scores` (robust
statistics), :mod:`.relations`, :mod:`.flags` (the tidy frame and its look-ups). The
package is ``data_audit`` rather than ``audit`` so that the function
``synthcontrol.audit`` never hides its module.
"""

from __future__ import annotations

from .flags import AUDIT_COLUMNS, KINDS, check_flags, flagged_cells
from .relations import Relation, accounting_identity, implied_deflator, ratio
from .suspects import Transform, audit

__all__ = [
    "audit",
    "Relation",
    "implied_deflator",
    "ratio",
    "accounting_identity",
    "flagged_cells",
    "check_flags",
    "AUDIT_COLUMNS",
    "KINDS",
    "Transform",
]
