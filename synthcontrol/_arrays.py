"""Small array helpers every result type shares: read-only copies and the RMSPE.

Results never hand out arrays the caller could change (statsmodels and linearmodels
keep their results read-only the same way), and every module measures a fit by the
same root mean squared gap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frozen", "rmspe"]


def frozen(array: object, dtype: object = float) -> np.ndarray:
    """A read-only copy of ``array`` (results never share writable arrays with the caller).

    Examples
    --------
    >>> a = frozen([1, 2])
    >>> a.dtype, a.flags.writeable
    (dtype('float64'), False)
    """
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def rmspe(gaps: object, mask: object = None) -> np.ndarray | float:
    """Root mean squared gap over the rows in ``mask`` (every row by default), per
    column of a 2-D ``gaps``; NaN where no row is selected.

    Examples
    --------
    >>> round(float(rmspe(np.array([3.0, 4.0, 0.0]), np.array([True, True, False]))), 4)
    3.5355
    >>> rmspe(np.array([[1.0, 2.0], [1.0, 2.0]]))
    array([1., 2.])
    >>> float(rmspe(np.array([1.0]), np.array([False])))
    nan
    """
    values = np.asarray(gaps, dtype=float)
    if mask is not None:
        values = values[np.asarray(mask, dtype=bool)]
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan) if values.ndim > 1 else float("nan")
    return np.sqrt(np.mean(values**2, axis=0))
