"""The runner's choice of serial, threads or processes never changes a result."""

from __future__ import annotations

import numpy as np
import pytest

import synthcontrol as sc
from synthcontrol.inference import runner

DONORS = ["Utah", "Nevada", "Montana", "Colorado", "Idaho", "Wyoming", "Kansas"]


@pytest.fixture(scope="module")
def small():
    spec = sc.Spec(outcome="cigsale", treated="California", treatment_start=1989,
                   predictors=[sc.at("cigsale", 1975), sc.at("cigsale", 1980), sc.mean("retprice", 1980, 1988)],
                   donors=DONORS)
    return sc.fit(sc.datasets.load_smoking(), spec)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_threads_and_processes_give_the_serial_answer(small, mode, monkeypatch):
    serial = sc.placebo_test(small, n_jobs=1)
    monkeypatch.setattr(runner, "SERIAL_BELOW", 0.0)
    monkeypatch.setattr(runner, "PROCESSES_ABOVE", float("inf") if mode == "threads" else 0.0)
    parallel = sc.placebo_test(small, n_jobs=2)
    np.testing.assert_array_equal(parallel.gap_matrix, serial.gap_matrix)
    np.testing.assert_array_equal(parallel.predictor_weights, serial.predictor_weights)
    assert parallel.p_value == serial.p_value


def test_small_work_stays_in_this_process(small, monkeypatch):
    """Work estimated below SERIAL_BELOW is not worth a pool: every task runs here
    (a task that records its process id)."""
    monkeypatch.setattr(runner, "SERIAL_BELOW", float("inf"))
    results, log = runner.run_tasks(_pid, list(range(5)), n_jobs=2)
    assert set(results) == {__import__("os").getpid()} and log.n_computed == 5


def _pid(_: int) -> int:
    return __import__("os").getpid()


class _RecordingParallel:
    """joblib.Parallel that records the ``n_jobs`` it was given and runs the tasks here."""

    calls: list = []

    def __init__(self, n_jobs=None, **_):
        _RecordingParallel.calls.append(n_jobs)

    def __call__(self, tasks):
        return (function(*args, **kwargs) for function, args, kwargs in tasks)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_never_more_workers_than_tasks(mode, monkeypatch):
    """n_jobs=2000 on six tasks: the pool gets five workers (the first task runs here)."""
    monkeypatch.setattr(runner, "SERIAL_BELOW", 0.0)
    monkeypatch.setattr(runner, "PROCESSES_ABOVE", float("inf") if mode == "threads" else 0.0)
    monkeypatch.setattr(runner.joblib, "Parallel", _RecordingParallel)
    _RecordingParallel.calls = []
    results, _ = runner.run_tasks(abs, [-1, -2, -3, -4, -5, -6], n_jobs=2000)
    assert results == [1, 2, 3, 4, 5, 6] and _RecordingParallel.calls == [5]


def test_a_backend_chosen_by_the_caller_gets_n_jobs_unchanged(monkeypatch):
    import joblib

    monkeypatch.setattr(runner.joblib, "Parallel", _RecordingParallel)
    _RecordingParallel.calls = []
    with joblib.parallel_config(backend="threading"):
        results, _ = runner.run_tasks(abs, [-1, -2, -3], n_jobs=2000)
    assert results == [1, 2, 3] and _RecordingParallel.calls == [2000]


def _warns(index: int) -> int:
    import warnings

    for _ in range(3):  # the same warning thrice: all three count
        warnings.warn(f"task warning {index % 2}", UserWarning)
    return index


def test_warnings_of_tasks_on_threads_are_all_counted(monkeypatch):
    """catch_warnings is not thread-safe: with it in every thread, concurrent tasks
    lost each other's warnings and the counts depended on the number of workers."""
    import warnings

    monkeypatch.setattr(runner, "SERIAL_BELOW", 0.0)
    monkeypatch.setattr(runner, "PROCESSES_ABOVE", float("inf"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results, _ = runner.run_tasks(_warns, list(range(400)), n_jobs=2, description="job")
    assert results == list(range(400))
    messages = sorted(str(w.message) for w in caught)
    assert messages == ["job: in 200 of 400 tasks: task warning 0", "job: in 200 of 400 tasks: task warning 1"]
