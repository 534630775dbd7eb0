"""The one place where inference work is spread over workers, and resumed.

:func:`run_tasks` maps a module-level task over a list of inputs with
:class:`joblib.Parallel` (``return_as="generator"``). Results stream back in task
order; as each arrives the parent reports progress and, given a
:class:`Checkpoint`, writes it to one small JSON file. A rerun with the same
checkpoint directory skips the finished tasks. Results come back in task order and
do not depend on the backend or the number of workers, because every task is a
deterministic function of its input (seeds are fixed in the parent, and the
compiled weighting core sums in a fixed order on one thread).

How the work is spread is chosen by its measured size, unless the caller has
chosen a joblib backend (``joblib.parallel_config(backend="dask")`` sends every
task to a Dask cluster, unchanged, with the caller's ``n_jobs``). Otherwise, with
more than one worker, the first task runs in this process and is timed; the rest
run

* here, one after another, when they would take under :data:`SERIAL_BELOW`
  seconds (even a thread pool would cost more than it saves);
* on threads when under :data:`PROCESSES_ABOVE` seconds: a nested fit spends
  most of its time in one call of the compiled search
  (:func:`synthcontrol.weights._multistart.run_search`), which releases the GIL, and
  threads start in microseconds and share the panel;
* on loky worker processes above that (a cold pool costs about a second: worker
  start, imports), each worker limited to one BLAS thread
  (``inner_max_num_threads=1``) so that workers never compete for cores.

Never more workers start than there are tasks left (``n_jobs=2000`` on 38
placebos starts 37), whatever ``n_jobs`` says.

The weighting core's kernels call no BLAS (they are plain compiled loops; LAPACK
only as the fallback of a singular dense system), so a fit's time is
single-threaded whatever the environment's BLAS settings; the few small numpy
factorisations around them (the tie-break, the regression start) are below the
sizes at which BLAS starts threads.

This is the only module of synthcontrol that imports joblib.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import joblib
import numpy as np

from ..errors import CheckpointError, warn

__all__ = ["Checkpoint", "RunLog", "run_tasks", "fingerprint"]

logger = logging.getLogger("synthcontrol.inference")

_FORMAT = "synthcontrol-checkpoint/2"
_MANIFEST = "manifest.json"
#: How long a process waits for a manifest another process is writing.
_MANIFEST_WAIT_S = 2.0


@cache
def _package_version() -> str:
    try:
        return metadata.version("synthcontrol")
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"

#: Remaining work (estimated from the first task) below which it runs serially, seconds:
#: a thread pool costs about a millisecond to start, and the search of a fit runs
#: in one GIL-free compiled call, so threads pay off from a few fits on.
SERIAL_BELOW = 0.05
#: Remaining work above which it goes to worker processes rather than threads, seconds.
#: Threads share the GIL for the Python part of each fit (about a quarter of a
#: California fit: design, certificate LP, tie-break, result), so they speed up by
#: at most about 1 / (0.25 + 0.75 / workers); processes scale with the workers but
#: cost about a second to start. With two workers they break even near 10 s.
PROCESSES_ABOVE = 10.0


@dataclass(frozen=True)
class RunLog:
    """What a run did: how many tasks it computed and how many it read back.

    Attributes
    ----------
    n_tasks : int
        Tasks in the job.
    n_computed : int
        Tasks run in this call (fits actually performed).
    n_resumed : int
        Tasks read back from the checkpoint directory.
    seconds : float
        Wall time of the call.
    """

    n_tasks: int
    n_computed: int
    n_resumed: int
    seconds: float


def fingerprint(*parts: object) -> str:
    """SHA-256 of ``parts``: arrays by dtype, shape and bytes, anything else by repr.

    Two jobs share a fingerprint only when their designs, specification, options
    and task lists are equal, which is what makes a checkpoint reusable.

    Examples
    --------
    >>> import numpy as np
    >>> fingerprint(np.arange(3.0), "a") == fingerprint(np.arange(3.0), "a")
    True
    >>> fingerprint(np.arange(3.0)) == fingerprint(np.arange(3.0) + 1e-15)
    False
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


class Checkpoint:
    """A directory holding one JSON file per finished task and a manifest.

    The manifest records the job's fingerprint and task keys; a directory whose
    manifest or task files do not match is refused with
    :class:`~synthcontrol.errors.CheckpointError` rather than silently reused. The
    fingerprint stored covers the checkpoint format and the package version too, so
    results written by another version of synthcontrol are never read back.

    Two processes may open the same directory at once: the manifest is created
    atomically (written to a temporary file, then hard-linked into place, which
    fails if it exists), so exactly one process creates it. The other reads it
    (waiting briefly while it is being written): the same job joins it (task files
    are written atomically, and equal tasks give equal results, so both processes
    can only duplicate work); another job is refused.

    Parameters
    ----------
    directory : path
        Created if missing.
    fingerprint : str
        Hash of everything the results depend on (see :func:`fingerprint`).
    keys : sequence of str
        A readable name per task, in task order.
    """

    def __init__(self, directory: str | os.PathLike, fingerprint: str, keys: Sequence[str]):
        self.directory = Path(directory)
        self.version = _package_version()
        self.fingerprint = hashlib.sha256(f"{_FORMAT}\x00{self.version}\x00{fingerprint}".encode()).hexdigest()
        self.keys = [str(k) for k in keys]
        self._open()

    def _open(self) -> None:
        self._make_directory()
        manifest = self.directory / _MANIFEST
        expected = {"format": _FORMAT, "version": self.version, "fingerprint": self.fingerprint, "keys": self.keys}
        names = [p.name for p in self.directory.iterdir()]
        if _MANIFEST not in names:
            strays = [name for name in names if not name.endswith(".tmp")]
            if strays:
                raise CheckpointError(
                    f"checkpoint directory {str(self.directory)!r} has no {_MANIFEST} but holds "
                    f"{strays[:3]}; it is not a synthcontrol checkpoint: use an empty directory"
                )
            if _create_exclusive(manifest, expected):
                return
        self._check_manifest(self._read_manifest(manifest))

    def _make_directory(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(
                f"checkpoint directory {str(self.directory)!r} is a file; give the path of a directory "
                "(it is created if missing)"
            )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(
                f"cannot create checkpoint directory {str(self.directory)!r} ({error.strerror or error}); "
                "give a directory you can write to"
            ) from None

    def _read_manifest(self, manifest: Path) -> dict:
        """The manifest, waiting a little if another process is still creating it."""
        deadline = time.monotonic() + _MANIFEST_WAIT_S
        while True:
            try:
                return self._read_json(manifest)
            except CheckpointError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _check_manifest(self, found: dict) -> None:
        if found.get("fingerprint") == self.fingerprint and found.get("format") == _FORMAT:
            return
        if found.get("format") != _FORMAT or found.get("version") != self.version:
            written_by = f"checkpoint format {found.get('format')!r}, synthcontrol {found.get('version', 'unknown')}"
            raise CheckpointError(
                f"checkpoint directory {str(self.directory)!r} was written by {written_by}; this is "
                f"{_FORMAT!r}, synthcontrol {self.version}, whose results may differ: use a new "
                "directory or delete this one"
            )
        raise CheckpointError(
            f"checkpoint directory {str(self.directory)!r} belongs to another job "
            f"(fingerprint {str(found.get('fingerprint'))[:12]}... instead of "
            f"{self.fingerprint[:12]}...): the data, specification, options or tasks "
            "differ; use a new directory or delete this one"
        )

    def _path(self, index: int) -> Path:
        return self.directory / f"task-{index:06d}.json"

    def _read_json(self, path: Path) -> dict:
        try:
            with open(path, encoding="utf-8") as handle:
                content = json.load(handle)
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint file {str(path)!r} is corrupted ({error}); delete it (or the "
                "whole directory) to recompute"
            ) from None
        if not isinstance(content, dict):
            raise CheckpointError(f"checkpoint file {str(path)!r} is corrupted; delete it to recompute")
        return content

    def load(self) -> dict[int, Any]:
        """Results of the finished tasks, by task index, each checked for integrity."""
        done = {}
        for index, key in enumerate(self.keys):
            path = self._path(index)
            if not path.exists():
                continue
            content = self._read_json(path)
            result = content.get("result")
            intact = (
                content.get("fingerprint") == self.fingerprint
                and content.get("key") == key
                and content.get("sha256") == _digest(result)
            )
            if not intact:
                raise CheckpointError(
                    f"checkpoint file {str(path)!r} does not belong to task {key!r} of this job "
                    "or its content was altered; delete it to recompute that task"
                )
            done[index] = result
        return done

    def save(self, index: int, result: Any) -> None:
        """Write the result of task ``index`` atomically (temporary file, then rename)."""
        payload = {
            "fingerprint": self.fingerprint,
            "key": self.keys[index],
            "sha256": _digest(result),
            "result": result,
        }
        try:
            _atomic_write(self._path(index), payload)
        except OSError as error:
            raise CheckpointError(
                f"cannot write checkpoint file {str(self._path(index))!r} ({error.strerror or error}); "
                "free space or choose another checkpoint directory (finished tasks are kept)"
            ) from None


def _digest(result: Any) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def _create_exclusive(path: Path, content: dict) -> bool:
    """Create ``path`` holding ``content`` unless it exists; False when another
    process created it first. Atomic: the file appears complete or not at all."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(content, stream)
        try:
            os.link(temporary, path)  # fails if path exists, unlike a rename
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: exclusive creation instead
            return _create_exclusive_without_links(path, content)
        return True
    finally:
        Path(temporary).unlink(missing_ok=True)


def _create_exclusive_without_links(path: Path, content: dict) -> bool:
    try:
        with open(path, "x", encoding="utf-8") as stream:
            json.dump(content, stream)
    except FileExistsError:
        return False
    return True


def _atomic_write(path: Path, content: dict) -> None:
    """Write JSON so that a killed process leaves either the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(content, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_tasks(
    task: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    n_jobs: int | None = 1,
    checkpoint: Checkpoint | None = None,
    progress: "bool | Callable[[int, int], None] | None" = None,
    description: str = "inference",
) -> tuple[list, RunLog]:
    """Apply ``task`` to every input, in parallel, resuming from ``checkpoint``.

    Parameters
    ----------
    task : callable
        A module-level function (so that it pickles); its results must be
        JSON-serialisable when a checkpoint is used.
    inputs : sequence
        One argument per task; keep them small, they are sent to the workers.
    n_jobs : int or None, default 1
        Workers, as in joblib (-1: all cores). The backend is joblib's current one:
        wrap the call in ``joblib.parallel_config(backend="dask")`` to use Dask.
    checkpoint : Checkpoint, optional
        Where finished results are stored and read back.
    progress : bool or callable, optional
        True writes ``"<description>: done/total"`` to stderr after each task; a
        callable is called as ``progress(done, total)``. Progress is always logged
        at DEBUG level on the ``synthcontrol.inference`` logger.
    description : str
        Name of the job in progress messages.

    Returns
    -------
    results : list
        Task results in input order.
    log : RunLog
        How many tasks were computed and resumed.

    Examples
    --------
    >>> results, log = run_tasks(abs, [-1, 2, -3])
    >>> results, log.n_computed
    ([1, 2, 3], 3)
    """
    start = time.perf_counter()
    results: dict[int, Any] = checkpoint.load() if checkpoint is not None else {}
    resumed = len(results)
    todo = [i for i in range(len(inputs)) if i not in results]
    report = _reporter(progress, description, len(inputs))
    report(len(results))
    if todo:
        # One pass over every task, results streamed back in task order: workers never
        # wait for a batch to finish, and each result is checkpointed as it arrives.
        outputs = _execute(task, [inputs[i] for i in todo], n_jobs)
        caught: Counter = Counter()
        for index, (result, warned) in zip(todo, outputs):
            if checkpoint is not None:
                checkpoint.save(index, result)
            results[index] = result
            caught.update(set(warned))  # a task that warns twice counts once
            report(len(results))
        _warn_once_each(caught, description, len(todo))
    log = RunLog(len(inputs), len(todo), resumed, time.perf_counter() - start)
    logger.info("%s: %d tasks, %d computed, %d resumed, %.2f s", description, *vars(log).values())
    return [results[i] for i in range(len(inputs))], log


def _execute(task: Callable[[Any], Any], items: list, n_jobs: int | None) -> Iterator[tuple[Any, list]]:
    """``(result, warnings)`` of every item, in order, spread as the module docstring says."""
    def delayed(items: list) -> Iterator:
        return (joblib.delayed(_capturing_warnings)(task, item) for item in items)

    if _backend_chosen_by_caller():
        yield from joblib.Parallel(n_jobs=n_jobs, return_as="generator")(delayed(items))
        return
    start = time.perf_counter()
    yield _capturing_warnings(task, items[0])
    remaining = (time.perf_counter() - start) * (len(items) - 1)
    workers = min(joblib.effective_n_jobs(n_jobs), len(items) - 1)
    if workers <= 1 or remaining < SERIAL_BELOW:
        logger.debug("running %d tasks serially", len(items) - 1)
        yield from (_capturing_warnings(task, item) for item in items[1:])
    elif remaining < PROCESSES_ABOVE:
        logger.debug("running %d tasks on %d threads", len(items) - 1, workers)
        with _warnings_by_thread() as capturing:
            yield from joblib.Parallel(n_jobs=workers, prefer="threads", return_as="generator")(
                joblib.delayed(capturing)(task, item) for item in items[1:])
    else:
        logger.debug("running %d tasks on %d processes", len(items) - 1, workers)
        with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
            yield from joblib.Parallel(n_jobs=workers, return_as="generator")(delayed(items[1:]))


def _backend_chosen_by_caller() -> bool:
    """Whether a joblib backend other than the default process pool is active
    (``joblib.parallel_config(backend=...)``): then every task goes to it."""
    backend, _ = joblib.parallel.get_active_backend()
    return type(backend).__name__ != "LokyBackend"


def _capturing_warnings(task: Callable[[Any], Any], argument: Any) -> tuple[Any, list]:
    """Run ``task`` recording its warnings, which a worker process would otherwise
    print to its own stderr, one line per fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = task(argument)
    return result, [(w.category, str(w.message)) for w in caught]


@contextmanager
def _warnings_by_thread() -> Iterator[Callable[[Callable[[Any], Any], Any], tuple[Any, list]]]:
    """:func:`_capturing_warnings` for tasks on threads. ``warnings.catch_warnings``
    swaps module-wide state, so threads entering and leaving it at once lose or misfile
    each other's warnings, and the counts would depend on the number of workers; here
    one module-wide hook, set for the whole pool, files each warning under the thread
    that raised it."""
    local = threading.local()

    def show(message, category, filename, lineno, file=None, line=None):
        records = getattr(local, "records", None)
        if records is None:  # not raised by a task: as before the pool
            shown(message, category, filename, lineno, file, line)
        else:
            records.append((category, str(message)))

    def capturing(task: Callable[[Any], Any], argument: Any) -> tuple[Any, list]:
        local.records = []
        try:
            return task(argument), local.records
        finally:
            local.records = None

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        shown, warnings.showwarning = warnings.showwarning, show
        yield capturing


def _warn_once_each(caught: Counter, description: str, n_tasks: int) -> None:
    """Re-issue the tasks' warnings in the parent, each distinct one once, counted."""
    for (category, message), count in caught.items():
        warn(f"{description}: in {count} of {n_tasks} tasks: {message}", category)


def _reporter(progress: "bool | Callable[[int, int], None] | None", description: str, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        logger.debug("%s: %d/%d tasks done", description, done, total)
        if callable(progress):
            progress(done, total)
        elif progress:
            sys.stderr.write(f"{description}: {done}/{total}\n")

    return report
