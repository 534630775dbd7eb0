"""How the weighting core's kernels are compiled: the one decorator they all share.

Everything the nested search repeats thousands of times per fit is compiled with
numba, with no Python twin: the non-negative least-squares active set that solves
the inner problem (:mod:`~synthcontrol.weights._nnls`), the outcome loss and its
gradient in ``v`` (:mod:`~synthcontrol.weights._outer_loss`), the local optimisers
(:mod:`~synthcontrol.weights._optimisers`) and the whole multi-start search
(:mod:`~synthcontrol.weights._multistart`). ``cache=True`` stores the machine code
next to each module (``__pycache__``), so the compile cost (about a minute on a
2-core machine) is paid once per installation, not per process; ``nogil=True`` lets
the placebo runner run fits on threads.

The kernels use no fast-math and no BLAS (LAPACK only as the fallback of a singular
dense system): every sum is a plain loop in a fixed order, so a result is bitwise
the same whatever the number of threads, processes or BLAS threads, and
single-threaded by construction (a fit never competes with another job's fit for
cores).

numba checks a cached kernel against its own module's source file only, but a
kernel carries compiled copies of the kernels it calls from other modules: after an
edit of ``_nnls.py`` alone, the cached ``run_search`` would still run the old active
set. So the package's cache is dropped whenever any kernel module changed
(:func:`_drop_stale_cache`, run once at import). A cache that ``NUMBA_CACHE_DIR``
moves elsewhere is not covered: clear it by hand after changing these files.
"""

from __future__ import annotations

import hashlib
from itertools import chain
from pathlib import Path

from numba import njit

#: The modules whose kernels are compiled into one another.
KERNEL_MODULES = ("_jit", "_nnls", "_outer_loss", "_optimisers", "_multistart")


def _drop_stale_cache(here: Path = Path(__file__).parent) -> None:
    """Delete the cached kernels of the package in ``here`` if any kernel module's
    source differs from the one they were compiled from (a digest kept beside them)."""
    digest = hashlib.sha256(b"".join((here / f"{name}.py").read_bytes() for name in KERNEL_MODULES)).hexdigest()
    cache, stamp = here / "__pycache__", here / "__pycache__" / "kernels.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        for path in chain(cache.glob("*.nbi"), cache.glob("*.nbc")):
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass  # a read-only installation: numba keeps its cache in the user's directory


_drop_stale_cache()
_compiled = njit(cache=True, nogil=True)
