"""How the weighting core's kernels are compiled: the one decorator they all share.

Everything the nested search repeats thousands of times per fit is compiled with
numba, with no Python twin: the non-negative least-squares active set that solves
the inner problem (:mod:`~synthcontrol.weights._nnls`), the outcome loss and its
gradient in ``v`` (:mod:`~synthcontrol.weights._outer_loss`), the local optimisers
(:mod:`~synthcontrol.weights._optimisers`) and the whole multi-start search
(:mod:`~synthcontrol.weights._multistart`). ``cache=True`` stores the machine code
next to each module (``__pycache__``), so the compile cost (a few seconds) is paid
once per installation, not per process; ``nogil=True`` lets the placebo runner run
fits on threads.

The kernels call no BLAS and use no fast-math: every sum is a plain loop in a fixed
order, so a result is bitwise the same whatever the number of threads, processes
or BLAS threads, and single-threaded by construction (a fit never competes with
another job's fit for cores).

numba checks a cached kernel against its own module's source file only: after
editing a kernel module, delete the ``*.nbi``/``*.nbc`` files of this package's
``__pycache__`` so that the kernels of the other modules, which compile in the
kernels they call, are rebuilt too.
"""

from __future__ import annotations

from numba import njit

_compiled = njit(cache=True, nogil=True)
